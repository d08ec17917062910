/** The `transpose` op: permutes the dims of a tensor (numpy `transpose` with explicit axes). */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { strides, Tensor } from "../tensor.ts";
import type { TensorType } from "../types.ts";
import { formatList, stridedOffsets } from "./common.ts";

/** `transpose(x) {perm}`: result dim i is x's dim `perm[i]`. Gradient: dy transposed by the inverse perm. */
export const transpose: OpDef = {
  name: "transpose",
  summary: "Permutes the dims of x: result dim i is x's dim perm[i].",
  operands: [{ name: "x" }],
  attrs: {
    perm: { type: "ints", doc: "A permutation of 0..rank-1; result dim i is x's dim perm[i]." },
  },
  infer([x], attrs): TensorType {
    const perm = attrs.ints("perm");
    const rank = x.shape.length;
    const isPerm = perm.length === rank && [...perm].sort((p, q) => p - q).every((p, i) => p === i);
    check(isPerm, `attribute 'perm' must be a permutation of 0..${rank - 1}, got ${formatList(perm)}`);
    return { shape: perm.map((p) => x.shape[p]), dtype: x.dtype };
  },
  interpret([x], attrs, result): Tensor {
    const perm = attrs.ints("perm");
    const xStrides = strides(x.shape);
    const from = stridedOffsets(result.shape, perm.map((p) => xStrides[p]));
    const out = Tensor.zeros(result);
    for (let i = 0; i < from.length; i++) out.data[i] = x.data[from[i]];
    return out;
  },
  grad: (e, dy) => {
    const perm = e.attrs.ints("perm");
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [e.op("transpose", [dy], { perm: inverse })];
  },
};
