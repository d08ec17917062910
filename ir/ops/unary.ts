/**
 * Factory for the unary elementwise float ops (`tanh`, `erf`, `sqrt`).
 */

import type { OpDef } from "../registry.ts";
import { Tensor } from "../tensor.ts";
import type { TensorType } from "../types.ts";
import { requireFloat } from "./common.ts";

/** Defines `name(x)`, computing `fn(x)` per element of a float tensor; the result has x's type. */
export function unaryOp(name: string, summary: string, fn: (x: number) => number): OpDef {
  return {
    name,
    summary,
    operands: [{ name: "x" }],
    attrs: {},
    infer([x]): TensorType {
      requireFloat(x, "x");
      return { shape: [...x.shape], dtype: x.dtype };
    },
    interpret([x], _attrs, result): Tensor {
      const out = Tensor.zeros(result);
      for (let i = 0; i < out.data.length; i++) out.data[i] = fn(x.data[i]);
      return out;
    },
  };
}
