/** The `div` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";
import { ifNeeded, negate, sumToShape } from "./grad_common.ts";

/**
 * `div(lhs, rhs)`: elementwise quotient lhs / rhs, broadcasting; integer division truncates
 * toward zero. Gradient (floats): dy / rhs to lhs and -dy · y / rhs to rhs (y the result), each
 * summed back to its operand's shape.
 */
export const div: OpDef = {
  ...binaryOp(
    "div",
    "Elementwise quotient lhs / rhs, with numpy broadcasting; integers truncate toward zero.",
    (a, b) => a / b,
  ),
  grad: (e, dy) => {
    const [a, b] = e.operands;
    return [
      ifNeeded(e, 0, () => sumToShape(e, e.op("div", [dy, b]), a.type.shape)),
      ifNeeded(e, 1, () => {
        const g = e.op("div", [e.op("mul", [dy, e.result]), b]);
        return sumToShape(e, negate(e, g), b.type.shape);
      }),
    ];
  },
};
