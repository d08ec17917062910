/**
 * The `scatter_add` op: the adjoint of `gather`. Starts from zeros of the declared type and adds
 * each slice of `updates` at the index it came from, so repeated indices add up. The gradient of
 * an embedding table.
 */

import type { OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, isFloat, sameShape, type TensorType } from "../types.ts";
import { formatList, prod, requireDeclared, requireRankAtLeast } from "./common.ts";

/**
 * `scatter_add(updates, indices) {axis} : T`: the declared type T (float) is the result; updates
 * have T's dtype and the shape `gather` would give for a table of type T,
 * `T.shape[:axis] ++ indices.shape ++ T.shape[axis+1:]`; indices are i32 or i64 (negative ones
 * count from the end). result[..., k, ...] = Σ over j with indices[j] = k of updates[..., j, ...].
 */
export const scatterAdd: OpDef = {
  name: "scatter_add",
  summary: "Zeros of the declared type plus each slice of updates added at its index (gather's adjoint).",
  operands: [{ name: "updates" }, { name: "indices" }],
  attrs: {
    axis: {
      type: "int",
      default: 0,
      doc: "The result axis indexed, as gather's; negative counts from the end.",
    },
  },
  infer([updates, indices], attrs, declared): TensorType {
    const t = requireDeclared(declared);
    requireRankAtLeast(t, "result", 1);
    check(isFloat(t.dtype), `result type must be float, got ${formatType(t)}`);
    check(updates.dtype === t.dtype, `dtypes differ: ${updates.dtype} and ${t.dtype}`);
    check(
      indices.dtype === "i32" || indices.dtype === "i64",
      `operand 'indices' must be i32 or i64, got ${formatType(indices)}`,
    );
    const axis = normalizeAxis(attrs.int("axis"), t.shape.length);
    const shape = [...t.shape.slice(0, axis), ...indices.shape, ...t.shape.slice(axis + 1)];
    check(
      sameShape(updates.shape, shape),
      `operand 'updates' must have shape ${formatList(shape)}, got ${formatType(updates)}`,
    );
    return t;
  },
  interpret([updates, indices], attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const axis = normalizeAxis(attrs.int("axis"), result.shape.length);
    // View the result as [outer, n, inner] and updates as [outer, count, inner].
    const n = result.shape[axis];
    const inner = prod(result.shape, axis + 1);
    const outer = prod(result.shape, 0, axis);
    const count = indices.data.length;
    const sums = new Float64Array(out.data.length);
    for (let j = 0; j < count; j++) {
      const index = indices.data[j];
      if (index < -n || index >= n) {
        throw new RangeError(
          `scatter_add index ${index} (at position ${j}) is out of range for axis ${axis} of size ${n}`,
        );
      }
      const k = index < 0 ? index + n : index;
      for (let o = 0; o < outer; o++) {
        const to = (o * n + k) * inner, from = (o * count + j) * inner;
        for (let i = 0; i < inner; i++) sums[to + i] += updates.data[from + i];
      }
    }
    out.data.set(sums);
    return out;
  },
};
