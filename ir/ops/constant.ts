/** The `constant` op: a tensor given by a literal attribute, or a splat filling the tensor. */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, isFloat, numel, sameShape, type TensorType } from "../types.ts";
import { formatList, requireDeclared } from "./common.ts";

/**
 * `constant() {value} : T`: the declared type T is the result; the literal has T's shape, or is
 * a splat (shape `[]`) filling the tensor. Integer and bool dtypes need integer values.
 * Gradient: it has no operands, so none.
 */
export const constant: OpDef = {
  name: "constant",
  summary: "A tensor of the declared type given by a literal, or a splat of one value.",
  operands: [],
  attrs: {
    value: { type: "dense", doc: "The elements: a literal of the result's shape, or a splat dense<v>." },
  },
  infer(_operands, attrs, declared): TensorType {
    const t = requireDeclared(declared);
    const lit = attrs.dense("value");
    const splat = lit.shape.length === 0;
    check(
      splat || sameShape(lit.shape, t.shape),
      `attribute 'value' has shape ${formatList(lit.shape)}, result type is ${formatType(t)}`,
    );
    const count = splat ? 1 : numel(t.shape);
    check(
      lit.values.length === count,
      `attribute 'value' must have ${count} value${count === 1 ? "" : "s"}, got ${lit.values.length}`,
    );
    check(
      isFloat(t.dtype) || lit.values.every(Number.isInteger),
      `attribute 'value' must hold integers for ${formatType(t)}`,
    );
    check(
      t.dtype !== "bool" || lit.values.every((v) => v === 0 || v === 1),
      `attribute 'value' must hold 0 or 1 for ${formatType(t)}`,
    );
    return t;
  },
  interpret(_inputs, attrs, result): Tensor {
    const lit = attrs.dense("value");
    const out = Tensor.zeros(result);
    if (lit.shape.length === 0) out.data.fill(lit.values[0]);
    else out.data.set(lit.values);
    return out;
  },
  grad: () => [],
};
