/** The `slice_grad` op: the adjoint of `slice`, putting dy back in place in a zero tensor. */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { strides, Tensor } from "../tensor.ts";
import { formatType, sameShape, type TensorType } from "../types.ts";
import { formatList, requireDeclared, stridedOffsets } from "./common.ts";
import { resolve, slice } from "./slice.ts";

/**
 * `slice_grad(dy) {starts, ends, axes?, steps?} : T`: zeros of the declared type T (x's type in
 * `slice(x)` with the same attributes) with dy written where that slice takes its elements. dy
 * has T's dtype and the slice's result shape.
 */
export const sliceGrad: OpDef = {
  name: "slice_grad",
  summary: "Zeros of the declared type with dy placed where slice (same attributes) takes its elements.",
  operands: [{ name: "dy" }],
  attrs: slice.attrs,
  infer([dy], attrs, declared): TensorType {
    const t = requireDeclared(declared);
    check(dy.dtype === t.dtype, `dtypes differ: ${dy.dtype} and ${t.dtype}`);
    const shape = resolve(t.shape, attrs).map((d) => d.count);
    check(
      sameShape(dy.shape, shape),
      `operand 'dy' must have shape ${formatList(shape)}, got ${formatType(dy)}`,
    );
    return t;
  },
  interpret([dy], attrs, result): Tensor {
    const dims = resolve(result.shape, attrs);
    const outStrides = strides(result.shape);
    const base = dims.reduce((sum, d, i) => sum + d.start * outStrides[i], 0);
    const to = stridedOffsets(dy.shape, dims.map((d, i) => d.step * outStrides[i]), base);
    const out = Tensor.zeros(result);
    for (let i = 0; i < to.length; i++) out.data[to[i]] = dy.data[i];
    return out;
  },
};
