/** The `reduce_mean` op: the mean of x over some axes, keeping them as size-1 dims or not. */

import type { Value } from "../module.ts";
import type { GradEmitter, OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { strides, Tensor } from "../tensor.ts";
import { numel, type TensorType } from "../types.ts";
import { formatList, requireFloat, stridedOffsets } from "./common.ts";

/** The normalized, checked reduction axes (shared with `reduce_sum`). */
export function reducedAxes(axes: readonly number[], rank: number): Set<number> {
  check(axes.length > 0, "attribute 'axes' must not be empty");
  const set = new Set(axes.map((a) => normalizeAxis(a, rank, "attribute 'axes' entry")));
  check(set.size === axes.length, `attribute 'axes' must be distinct, got ${formatList(axes)}`);
  return set;
}

/**
 * The gradient of a reduction (`reduce_mean`, `reduce_sum`) of `e.operands[0]`: dy (reshaped to
 * keep the reduced dims as 1 when `keepdims` is false) times `scale`, broadcast to x's shape.
 */
export function spreadBack(e: GradEmitter, dy: Value, scale: number): Value {
  const x = e.operands[0];
  const axes = reducedAxes(e.attrs.ints("axes"), x.type.shape.length);
  const keptShape = x.type.shape.map((d, i) => axes.has(i) ? 1 : d);
  const kept = e.attrs.bool("keepdims")
    ? dy
    : e.op("reshape", [dy], {}, { shape: keptShape, dtype: dy.type.dtype });
  return e.op("mul", [kept, e.constant(scale, x.type.dtype, x.type.shape)]);
}

/**
 * `reduce_mean(x) {axes, keepdims}`: the mean over `axes` of a float tensor. Gradient: dy / count
 * spread back over the reduced axes.
 */
export const reduceMean: OpDef = {
  name: "reduce_mean",
  summary: "Mean of x over the given axes, keeping them as size-1 dims when keepdims.",
  operands: [{ name: "x" }],
  attrs: {
    axes: { type: "ints", doc: "The reduced axes, distinct and non-empty; negative counts from the end." },
    keepdims: { type: "bool", default: true, doc: "Keep each reduced axis as a dim of size 1." },
  },
  infer([x], attrs): TensorType {
    requireFloat(x, "x");
    const axes = reducedAxes(attrs.ints("axes"), x.shape.length);
    const shape = attrs.bool("keepdims")
      ? x.shape.map((d, i) => axes.has(i) ? 1 : d)
      : x.shape.filter((_, i) => !axes.has(i));
    return { shape, dtype: x.dtype };
  },
  interpret([x], attrs, result): Tensor {
    const axes = reducedAxes(attrs.ints("axes"), x.shape.length);
    // Each element of x adds into the result element with its reduced indices set to 0.
    const kept = strides(x.shape.map((d, i) => axes.has(i) ? 1 : d));
    const to = stridedOffsets(x.shape, kept.map((s, i) => axes.has(i) ? 0 : s));
    const sums = new Float64Array(numel(result.shape));
    for (let i = 0; i < to.length; i++) sums[to[i]] += x.data[i];
    const count = x.shape.reduce((n, d, i) => axes.has(i) ? n * d : n, 1);
    const out = Tensor.zeros(result);
    for (let i = 0; i < sums.length; i++) out.data[i] = sums[i] / count;
    return out;
  },
  grad: (e, dy) => {
    const x = e.operands[0].type;
    const axes = reducedAxes(e.attrs.ints("axes"), x.shape.length);
    const count = x.shape.reduce((n, d, i) => axes.has(i) ? n * d : n, 1);
    return [spreadBack(e, dy, 1 / count)];
  },
};
