/** The `div` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";

/** `div(lhs, rhs)`: elementwise quotient lhs / rhs, broadcasting; integer division truncates toward zero. */
export const div: OpDef = binaryOp(
  "div",
  "Elementwise quotient lhs / rhs, with numpy broadcasting; integers truncate toward zero.",
  (a, b) => a / b,
);
