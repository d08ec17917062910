/**
 * The `qgather` op: embedding lookup in an INT8 table quantized per row (issue 18). The `quantize`
 * pass makes it from `gather(@table, ids) {axis = 0}` over an f32 table with `embeddings = true`;
 * the wasm kernel and the ONNX exporter compute exactly what `interpret` below defines.
 */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";

/**
 * `qgather(table, scale, indices)`: table i8 `[V, H]`, scale f32 `[V]`, indices i32 or i64 of any
 * shape; the result is f32 `indices.shape ++ [H]` with `out[..., h] = fround(table[i, h] · scale[i])`
 * for each index i (negative indices count from the end, as in `gather`). No gradient: the table
 * is int8.
 */
export const qgather: OpDef = {
  name: "qgather",
  summary: "Rows of an int8 table, each times its f32 scale (int8 embedding lookup).",
  operands: [{ name: "table" }, { name: "scale" }, { name: "indices" }],
  attrs: {},
  infer([table, scale, indices]): TensorType {
    check(
      table.shape.length === 2 && table.dtype === "i8" && !table.sparse,
      `operand 'table' must be a dense i8 [V, H] matrix, got ${formatType(table)}`,
    );
    const [V, H] = table.shape;
    check(
      scale.dtype === "f32" && scale.shape.length === 1 && scale.shape[0] === V,
      `operand 'scale' must be f32 [${V}], got ${formatType(scale)}`,
    );
    check(
      indices.dtype === "i32" || indices.dtype === "i64",
      `operand 'indices' must be i32 or i64, got ${formatType(indices)}`,
    );
    return { shape: [...indices.shape, H], dtype: "f32" };
  },
  interpret([table, scale, indices], _attrs, result): Tensor {
    const [V, H] = table.shape;
    const out = Tensor.zeros(result);
    for (let j = 0; j < indices.data.length; j++) {
      const index = indices.data[j];
      if (index < -V || index >= V) {
        throw new RangeError(`qgather index ${index} (at position ${j}) is out of range for ${V} rows`);
      }
      const row = index < 0 ? index + V : index;
      const s = scale.data[row];
      for (let h = 0; h < H; h++) out.data[j * H + h] = Math.fround(table.data[row * H + h] * s);
    }
    return out;
  },
};
