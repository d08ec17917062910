/** The `pow` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";

/** `pow(lhs, rhs)`: elementwise power lhs ** rhs, with numpy broadcasting. */
export const pow: OpDef = binaryOp("pow", "Elementwise power lhs ** rhs, with numpy broadcasting.", Math.pow);
