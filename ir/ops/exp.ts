/** The `exp` op, a unary elementwise float op built by `unaryOp` (unary.ts). */

import type { OpDef } from "../registry.ts";
import { unaryOp } from "./unary.ts";

/** `exp(x)`: elementwise natural exponential of a float tensor. Gradient: dy · y. */
export const exp: OpDef = {
  ...unaryOp("exp", "Elementwise natural exponential of a float tensor.", Math.exp),
  grad: (e, dy) => [e.op("mul", [dy, e.result])],
};
