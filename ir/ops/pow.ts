/** The `pow` op, a broadcasting binary elementwise op built by `binaryOp` (binary.ts). */

import type { OpDef } from "../registry.ts";
import { binaryOp } from "./binary.ts";
import { ifNeeded, sumToShape } from "./grad_common.ts";

/**
 * `pow(lhs, rhs)`: elementwise power lhs ** rhs, with numpy broadcasting. Gradient:
 * dy · rhs · lhs^(rhs - 1) to lhs and dy · y · log(lhs) to rhs (y the result; defined for
 * lhs > 0), each summed back to its operand's shape.
 */
export const pow: OpDef = {
  ...binaryOp("pow", "Elementwise power lhs ** rhs, with numpy broadcasting.", Math.pow),
  grad: (e, dy) => {
    const [a, b] = e.operands;
    return [
      ifNeeded(e, 0, () => {
        const bMinus1 = e.op("sub", [b, e.constant(1, b.type.dtype)]);
        const d = e.op("mul", [b, e.op("pow", [a, bMinus1])]);
        return sumToShape(e, e.op("mul", [dy, d]), a.type.shape);
      }),
      ifNeeded(e, 1, () => {
        const d = e.op("mul", [e.result, e.op("log", [a])]);
        return sumToShape(e, e.op("mul", [dy, d]), b.type.shape);
      }),
    ];
  },
};
