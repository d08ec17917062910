/** The `mul` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";
import { ifNeeded, sumToShape } from "./grad_common.ts";

/**
 * `mul(lhs, rhs)`: elementwise product lhs * rhs, with numpy broadcasting. Gradient: dy · rhs to
 * lhs and dy · lhs to rhs, each summed back to its operand's shape.
 */
export const mul: OpDef = {
  ...binaryOp("mul", "Elementwise product lhs * rhs, with numpy broadcasting.", (a, b) => a * b),
  grad: (e, dy) => {
    const [a, b] = e.operands;
    return [
      ifNeeded(e, 0, () => sumToShape(e, e.op("mul", [dy, b]), a.type.shape)),
      ifNeeded(e, 1, () => sumToShape(e, e.op("mul", [dy, a]), b.type.shape)),
    ];
  },
};
