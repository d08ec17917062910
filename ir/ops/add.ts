/** The `add` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";
import { ifNeeded, sumToShape } from "./grad_common.ts";

/**
 * `add(lhs, rhs)`: elementwise sum lhs + rhs, with numpy broadcasting. Gradient: dy to both,
 * summed back to each operand's shape.
 */
export const add: OpDef = {
  ...binaryOp("add", "Elementwise sum lhs + rhs, with numpy broadcasting.", (a, b) => a + b),
  grad: (e, dy) => e.operands.map((v, i) => ifNeeded(e, i, () => sumToShape(e, dy, v.type.shape))),
};
