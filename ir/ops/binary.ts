/**
 * Factory for the broadcasting binary elementwise ops (`add`, `sub`, `mul`, `div`, `pow`).
 */

import type { OpDef } from "../registry.ts";
import { broadcastShapes, check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, isFloat, type TensorType } from "../types.ts";
import { broadcastOffsets, requireSameDtype } from "./common.ts";

/**
 * Defines `name(lhs, rhs)`, computing `fn(lhs, rhs)` per element with numpy broadcasting.
 * Both operands have one numeric dtype (not bool), which the result keeps. On integer dtypes
 * the result is truncated toward zero, so `div` is integer division.
 */
export function binaryOp(name: string, summary: string, fn: (a: number, b: number) => number): OpDef {
  return {
    name,
    summary,
    operands: [{ name: "lhs" }, { name: "rhs" }],
    attrs: {},
    infer([lhs, rhs]): TensorType {
      requireSameDtype(lhs, rhs);
      check(lhs.dtype !== "bool", `operand 'lhs' must be numeric, got ${formatType(lhs)}`);
      return { shape: broadcastShapes(lhs.shape, rhs.shape), dtype: lhs.dtype };
    },
    interpret([lhs, rhs], _attrs, result): Tensor {
      const out = Tensor.zeros(result);
      const li = broadcastOffsets(lhs.shape, result.shape);
      const ri = broadcastOffsets(rhs.shape, result.shape);
      const integer = !isFloat(result.dtype);
      for (let i = 0; i < out.data.length; i++) {
        const v = fn(lhs.data[li[i]], rhs.data[ri[i]]);
        out.data[i] = integer ? Math.trunc(v) : v;
      }
      return out;
    },
  };
}
