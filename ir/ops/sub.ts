/** The `sub` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";
import { ifNeeded, negate, sumToShape } from "./grad_common.ts";

/**
 * `sub(lhs, rhs)`: elementwise difference lhs - rhs, with numpy broadcasting. Gradient: dy to
 * lhs, -dy to rhs, each summed back to its operand's shape.
 */
export const sub: OpDef = {
  ...binaryOp("sub", "Elementwise difference lhs - rhs, with numpy broadcasting.", (a, b) => a - b),
  grad: (e, dy) => [
    ifNeeded(e, 0, () => sumToShape(e, dy, e.operands[0].type.shape)),
    ifNeeded(e, 1, () => sumToShape(e, negate(e, dy), e.operands[1].type.shape)),
  ],
};
