/**
 * The `gather` op (ONNX `Gather`): picks slices of a table along one axis by index, e.g.
 * embedding lookup. Negative indices count from the end.
 */

import type { OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { prod, requireRankAtLeast } from "./common.ts";

/**
 * `gather(table, indices) {axis}`: the result has shape
 * `table.shape[:axis] ++ indices.shape ++ table.shape[axis+1:]` and the table's dtype;
 * indices are i32 or i64. Gradient: `scatter_add(dy, indices)` (of the table's type) to the table,
 * adding the rows of dy where they were taken from; none to the indices.
 */
export const gather: OpDef = {
  name: "gather",
  summary: "Takes slices of table along axis at the given indices (embedding lookup).",
  operands: [{ name: "table" }, { name: "indices" }],
  attrs: {
    axis: { type: "int", default: 0, doc: "The table axis indexed; negative counts from the end." },
  },
  infer([table, indices], attrs): TensorType {
    requireRankAtLeast(table, "table", 1);
    check(
      indices.dtype === "i32" || indices.dtype === "i64",
      `operand 'indices' must be i32 or i64, got ${formatType(indices)}`,
    );
    const axis = normalizeAxis(attrs.int("axis"), table.shape.length);
    const shape = [...table.shape.slice(0, axis), ...indices.shape, ...table.shape.slice(axis + 1)];
    return { shape, dtype: table.dtype };
  },
  interpret([table, indices], attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const axis = normalizeAxis(attrs.int("axis"), table.shape.length);
    // View the table as [outer, n, inner] and the result as [outer, count, inner].
    const n = table.shape[axis];
    const inner = prod(table.shape, axis + 1);
    const outer = prod(table.shape, 0, axis);
    const count = indices.data.length;
    for (let j = 0; j < count; j++) {
      const index = indices.data[j];
      if (index < -n || index >= n) {
        throw new RangeError(
          `gather index ${index} (at position ${j}) is out of range for axis ${axis} of size ${n}`,
        );
      }
      const k = index < 0 ? index + n : index;
      for (let o = 0; o < outer; o++) {
        const from = (o * n + k) * inner;
        out.data.set(table.data.subarray(from, from + inner), (o * count + j) * inner);
      }
    }
    return out;
  },
  grad: (e, dy) => {
    const [table, indices] = e.operands;
    return [e.op("scatter_add", [dy, indices], { axis: e.attrs.int("axis") }, table.type), undefined];
  },
};
