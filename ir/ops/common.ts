/**
 * Helpers shared by the op definitions: common type rules (with the IR's message style) and
 * index arithmetic for broadcasting and strided copies.
 */

import { OpError } from "../registry.ts";
import { check } from "../shape.ts";
import { strides } from "../tensor.ts";
import { formatType, isFloat, numel, type TensorType } from "../types.ts";

/** Formats an int list as `[0, 2, 1, 3]`, for messages. */
export function formatList(xs: readonly number[]): string {
  return `[${xs.join(", ")}]`;
}

/** Product of `shape[from:to]` (1 for an empty range). */
export function prod(shape: readonly number[], from = 0, to = shape.length): number {
  return numel(shape.slice(from, to));
}

/** Requires a float dtype: `operand 'x' must be a float tensor, got tensor<4xi32>`. */
export function requireFloat(t: TensorType, name: string): void {
  check(isFloat(t.dtype), `operand '${name}' must be a float tensor, got ${formatType(t)}`);
}

/** Requires a rank of at least `min`: `operand 'a' must be rank >= 2, got tensor<4xf32>`. */
export function requireRankAtLeast(t: TensorType, name: string, min: number): void {
  check(t.shape.length >= min, `operand '${name}' must be rank >= ${min}, got ${formatType(t)}`);
}

/** Requires equal dtypes: `dtypes differ: f32 and i32`. */
export function requireSameDtype(a: TensorType, b: TensorType): void {
  check(a.dtype === b.dtype, `dtypes differ: ${a.dtype} and ${b.dtype}`);
}

/** The result type written in the IR, for ops that cannot infer it; it must be dense. */
export function requireDeclared(declared: TensorType | undefined): TensorType {
  if (declared === undefined) throw new OpError("needs a result type");
  check(!declared.sparse, `result type must be dense, got ${formatType(declared)}`);
  return declared;
}

/**
 * Visits `shape` in row-major order and returns, for each element, `base + Σ index[d] * steps[d]`:
 * the flat offset of the matching element of another tensor read with the strides `steps`.
 */
export function stridedOffsets(shape: readonly number[], steps: readonly number[], base = 0): Int32Array {
  const n = numel(shape);
  const out = new Int32Array(n);
  const index = new Array<number>(shape.length).fill(0);
  let offset = base;
  for (let flat = 0; flat < n; flat++) {
    out[flat] = offset;
    // Odometer: bump the last dim, carrying into earlier dims.
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      offset += steps[d];
      if (index[d] < shape[d]) break;
      offset -= index[d] * steps[d];
      index[d] = 0;
    }
  }
  return out;
}

/**
 * For each element of `outShape` (row-major), the flat offset of the element of a tensor of
 * `shape` that numpy broadcasting maps to it. `shape` must broadcast to `outShape`.
 */
export function broadcastOffsets(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const inStrides = strides(shape);
  const lead = outShape.length - shape.length;
  const steps = outShape.map((_, d) => d < lead || shape[d - lead] === 1 ? 0 : inStrides[d - lead]);
  return stridedOffsets(outShape, steps);
}
