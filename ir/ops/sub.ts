/** The `sub` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";

/** `sub(lhs, rhs)`: elementwise difference lhs - rhs, with numpy broadcasting. */
export const sub: OpDef = binaryOp(
  "sub",
  "Elementwise difference lhs - rhs, with numpy broadcasting.",
  (a, b) => a - b,
);
