/** The `reshape` op: the same elements in row-major order under the declared shape. */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, numel, type TensorType } from "../types.ts";
import { requireDeclared, requireSameDtype } from "./common.ts";

/**
 * `reshape(x) : T`: the result type T is declared; it has x's dtype and element count.
 * Gradient: dy reshaped back to x's type.
 */
export const reshape: OpDef = {
  name: "reshape",
  summary: "Reinterprets x under the declared shape (same dtype and element count).",
  operands: [{ name: "x" }],
  attrs: {},
  infer([x], _attrs, declared): TensorType {
    const t = requireDeclared(declared);
    requireSameDtype(x, t);
    check(
      numel(x.shape) === numel(t.shape),
      `element counts differ: ${formatType(x)} has ${numel(x.shape)}, ${formatType(t)} has ${numel(t.shape)}`,
    );
    return t;
  },
  interpret([x], _attrs, result): Tensor {
    const out = Tensor.zeros(result);
    out.data.set(x.data);
    return out;
  },
  grad: (e, dy) => [e.op("reshape", [dy], {}, e.operands[0].type)],
};
