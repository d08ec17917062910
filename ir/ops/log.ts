/** The `log` op, a unary elementwise float op built by `unaryOp` (unary.ts). */

import type { OpDef } from "../registry.ts";
import { unaryOp } from "./unary.ts";

/** `log(x)`: elementwise natural logarithm of a float tensor. Gradient: dy / x. */
export const log: OpDef = {
  ...unaryOp("log", "Elementwise natural logarithm of a float tensor (NaN below 0, -inf at 0).", Math.log),
  grad: (e, dy) => [e.op("div", [dy, e.operands[0]])],
};
