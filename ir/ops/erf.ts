/** The `erf` op, a unary elementwise float op built by `unaryOp` (unary.ts). */

import type { OpDef } from "../registry.ts";
import { unaryOp } from "./unary.ts";
import { erfFn } from "./erf_fn.ts";

/** `erf(x)`: elementwise Gauss error function of a float tensor. */
export const erf: OpDef = unaryOp("erf", "Elementwise Gauss error function of a float tensor.", erfFn);
