/** The `mul` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";

/** `mul(lhs, rhs)`: elementwise product lhs * rhs, with numpy broadcasting. */
export const mul: OpDef = binaryOp(
  "mul",
  "Elementwise product lhs * rhs, with numpy broadcasting.",
  (a, b) => a * b,
);
