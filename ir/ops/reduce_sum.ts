/** The `reduce_sum` op: the sum of x over some axes, keeping them as size-1 dims or not. */

import type { OpDef } from "../registry.ts";
import { strides, Tensor } from "../tensor.ts";
import { numel, type TensorType } from "../types.ts";
import { requireFloat, stridedOffsets } from "./common.ts";
import { reducedAxes, reduceMean, spreadBack } from "./reduce_mean.ts";

/**
 * `reduce_sum(x) {axes, keepdims}`: the sum over `axes` of a float tensor, kept in f64 while
 * summing (bias gradients, un-broadcasting). Gradient: dy spread back over the reduced axes.
 */
export const reduceSum: OpDef = {
  name: "reduce_sum",
  summary: "Sum of x over the given axes, keeping them as size-1 dims when keepdims.",
  operands: [{ name: "x" }],
  attrs: reduceMean.attrs,
  infer([x], attrs, declared): TensorType {
    requireFloat(x, "x");
    return reduceMean.infer([x], attrs, declared);
  },
  interpret([x], attrs, result): Tensor {
    const axes = reducedAxes(attrs.ints("axes"), x.shape.length);
    // Each element of x adds into the result element with its reduced indices set to 0.
    const kept = strides(x.shape.map((d, i) => axes.has(i) ? 1 : d));
    const to = stridedOffsets(x.shape, kept.map((s, i) => axes.has(i) ? 0 : s));
    const sums = new Float64Array(numel(result.shape));
    for (let i = 0; i < to.length; i++) sums[to[i]] += x.data[i];
    const out = Tensor.zeros(result);
    out.data.set(sums);
    return out;
  },
  grad: (e, dy) => [spreadBack(e, dy, 1)],
};
