/**
 * The `slice` op, with ONNX `Slice` semantics for positive steps: along each listed axis, take
 * `start, start + step, ...` below `end`; negative bounds count from the end and are then
 * clamped to `[0, dim]`.
 */

import type { AttrReader } from "../attrs.ts";
import type { OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { strides, Tensor } from "../tensor.ts";
import type { TensorType } from "../types.ts";
import { formatList, stridedOffsets } from "./common.ts";

/** Per dim of x: the first index taken, the step and the count taken. */
export interface DimSlice {
  start: number;
  step: number;
  count: number;
}

/**
 * Resolves the attributes against x's shape into one `DimSlice` per dim, checking them (shared
 * with `slice_grad`).
 */
export function resolve(shape: readonly number[], attrs: AttrReader): DimSlice[] {
  const starts = attrs.ints("starts");
  const ends = attrs.ints("ends");
  const axes = attrs.has("axes") ? attrs.ints("axes") : starts.map((_, i) => i);
  const steps = attrs.has("steps") ? attrs.ints("steps") : starts.map(() => 1);
  for (const [name, list] of [["ends", ends], ["axes", axes], ["steps", steps]] as const) {
    check(
      list.length === starts.length,
      `attribute '${name}' must have as many entries as 'starts' (${starts.length}), got ${formatList(list)}`,
    );
  }
  const dims: DimSlice[] = shape.map((d) => ({ start: 0, step: 1, count: d }));
  const seen = new Set<number>();
  axes.forEach((a, i) => {
    const axis = normalizeAxis(a, shape.length, `attribute 'axes' entry`);
    check(!seen.has(axis), `attribute 'axes' must be distinct, got ${formatList(axes)}`);
    seen.add(axis);
    check(steps[i] > 0, `attribute 'steps' must be positive, got ${formatList(steps)}`);
    const dim = shape[axis];
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
    const start = clamp(starts[i]);
    const end = clamp(ends[i]);
    dims[axis] = { start, step: steps[i], count: Math.max(0, Math.ceil((end - start) / steps[i])) };
  });
  return dims;
}

/**
 * `slice(x) {starts, ends, axes?, steps?}`: along `axes[i]`, keeps indices
 * `starts[i], starts[i] + steps[i], ...` below `ends[i]`; other dims are kept whole.
 * E.g. the [CLS] row: `slice %h {starts = [0], ends = [1], axes = [1]}`, 1x128x768 -> 1x1x768.
 * Gradient: `slice_grad(dy)` with the same attributes, which puts dy back in place in zeros.
 */
export const slice: OpDef = {
  name: "slice",
  summary: "Takes a strided sub-box of x along some axes (ONNX Slice, positive steps).",
  operands: [{ name: "x" }],
  attrs: {
    starts: { type: "ints", doc: "First index per sliced axis; negative counts from the end, then clamped." },
    ends: {
      type: "ints",
      doc: "End index (exclusive) per sliced axis; negative counts from the end, then clamped.",
    },
    axes: { type: "ints", optional: true, doc: "The sliced axes, distinct; when absent, 0..len(starts)-1." },
    steps: { type: "ints", optional: true, doc: "Positive step per sliced axis; when absent, all 1." },
  },
  infer([x], attrs): TensorType {
    return { shape: resolve(x.shape, attrs).map((d) => d.count), dtype: x.dtype };
  },
  interpret([x], attrs, result): Tensor {
    const dims = resolve(x.shape, attrs);
    const xStrides = strides(x.shape);
    const base = dims.reduce((sum, d, i) => sum + d.start * xStrides[i], 0);
    const from = stridedOffsets(result.shape, dims.map((d, i) => d.step * xStrides[i]), base);
    const out = Tensor.zeros(result);
    for (let i = 0; i < from.length; i++) out.data[i] = x.data[from[i]];
    return out;
  },
  grad: (e, dy) => [e.op("slice_grad", [dy], e.written, e.operands[0].type)],
};
