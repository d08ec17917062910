/** The `erf` op, a unary elementwise float op built by `unaryOp` (unary.ts). */

import type { OpDef } from "../registry.ts";
import { unaryOp } from "./unary.ts";
import { erfFn } from "./erf_fn.ts";

/** `erf(x)`: elementwise Gauss error function of a float tensor. Gradient: dy · 2/√π · exp(-x²). */
export const erf: OpDef = {
  ...unaryOp("erf", "Elementwise Gauss error function of a float tensor.", erfFn),
  grad: (e, dy) => {
    const [x] = e.operands;
    const dtype = x.type.dtype;
    const expo = e.op("exp", [e.op("mul", [e.op("mul", [x, x]), e.constant(-1, dtype)])]);
    return [e.op("mul", [dy, e.op("mul", [expo, e.constant(2 / Math.sqrt(Math.PI), dtype)])])];
  },
};
