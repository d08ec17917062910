/** The `add` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";

/** `add(lhs, rhs)`: elementwise sum lhs + rhs, with numpy broadcasting. */
export const add: OpDef = binaryOp(
  "add",
  "Elementwise sum lhs + rhs, with numpy broadcasting.",
  (a, b) => a + b,
);
