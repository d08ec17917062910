/** The `tanh` op, a unary elementwise float op built by `unaryOp` (unary.ts). */

import type { OpDef } from "../registry.ts";
import { tanhGrad } from "./grad_common.ts";
import { unaryOp } from "./unary.ts";

/** `tanh(x)`: elementwise hyperbolic tangent of a float tensor. Gradient: dy · (1 - y²). */
export const tanh: OpDef = {
  ...unaryOp("tanh", "Elementwise hyperbolic tangent of a float tensor.", Math.tanh),
  grad: (e, dy) => [tanhGrad(e, dy, e.result)],
};
