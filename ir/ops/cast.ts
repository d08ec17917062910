/** The `cast` op: converts the elements of x to the declared dtype, keeping the shape. */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { type DType, formatType, isFloat, sameShape, type TensorType } from "../types.ts";
import { requireDeclared } from "./common.ts";

/** Converts one value to a dtype: bool gives 1 for non-zero, integers truncate (and wrap). */
function convert(v: number, dtype: DType): number {
  if (dtype === "bool") return v !== 0 ? 1 : 0;
  if (isFloat(dtype)) return v;
  return Number.isNaN(v) ? 0 : Math.trunc(v);
}

/**
 * `cast(x) : T`: the declared type T has x's shape and any dtype. Floats to integers truncate
 * toward zero (out-of-range values wrap as the typed arrays do, as ONNX Cast does); to bool, non-zero is 1.
 * Gradient: between float dtypes, dy cast back to x's dtype; none to or from other dtypes.
 */
export const cast: OpDef = {
  name: "cast",
  summary: "Converts x to the declared dtype (same shape); float to int truncates, bool is 1 for non-zero.",
  operands: [{ name: "x" }],
  attrs: {},
  infer([x], _attrs, declared): TensorType {
    const t = requireDeclared(declared);
    check(sameShape(x.shape, t.shape), `shapes differ: ${formatType(x)} cast to ${formatType(t)}`);
    return t;
  },
  interpret([x], _attrs, result): Tensor {
    const out = Tensor.zeros(result);
    for (let i = 0; i < out.data.length; i++) out.data[i] = convert(x.data[i], result.dtype);
    return out;
  },
  grad: (e, dy) => {
    const x = e.operands[0];
    const floats = isFloat(x.type.dtype) && isFloat(dy.type.dtype);
    return [floats ? e.op("cast", [dy], {}, { shape: [...x.type.shape], dtype: x.type.dtype }) : undefined];
  },
};
