/** The `softmax_grad` op: the cotangent of softmax's input, from the cotangent and the output. */

import type { OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { prod, requireFloat } from "./common.ts";

/**
 * `softmax_grad(dy, y) {axis}`: `y · (dy - Σ_axis dy·y)`, the cotangent of z for `y = softmax(z)`
 * along axis (sums in f64). dy and y have one float type, which the result has.
 */
export const softmaxGrad: OpDef = {
  name: "softmax_grad",
  summary: "Cotangent of softmax's input: y · (dy - sum(dy · y)) along axis, y the softmax output.",
  operands: [{ name: "dy" }, { name: "y" }],
  attrs: {
    axis: { type: "int", default: -1, doc: "The softmax's axis; negative counts from the end." },
  },
  infer([dy, y], attrs): TensorType {
    requireFloat(y, "y");
    check(
      formatType(dy) === formatType(y),
      `operands 'dy' and 'y' differ: ${formatType(dy)} and ${formatType(y)}`,
    );
    normalizeAxis(attrs.int("axis"), y.shape.length);
    return { shape: [...y.shape], dtype: y.dtype };
  },
  interpret([dy, y], attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const axis = normalizeAxis(attrs.int("axis"), y.shape.length);
    const n = y.shape[axis];
    const inner = prod(y.shape, axis + 1);
    const outer = prod(y.shape, 0, axis);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const at = (k: number) => (o * n + k) * inner + i;
        let dot = 0;
        for (let k = 0; k < n; k++) dot += dy.data[at(k)] * y.data[at(k)];
        for (let k = 0; k < n; k++) out.data[at(k)] = y.data[at(k)] * (dy.data[at(k)] - dot);
      }
    }
    return out;
  },
};
