/** The `sqrt` op, a unary elementwise float op built by `unaryOp` (unary.ts). */

import type { OpDef } from "../registry.ts";
import { unaryOp } from "./unary.ts";

/** `sqrt(x)`: elementwise square root of a float tensor. Gradient: dy · 0.5 / y. */
export const sqrt: OpDef = {
  ...unaryOp("sqrt", "Elementwise square root of a float tensor.", Math.sqrt),
  grad: (e, dy) => [e.op("div", [e.op("mul", [dy, e.constant(0.5, dy.type.dtype)]), e.result])],
};
