/** The `where` op: picks elements from x where cond is non-zero and from y elsewhere. */

import type { OpDef } from "../registry.ts";
import { broadcastShapes, check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { broadcastOffsets, requireSameDtype } from "./common.ts";
import { ifNeeded, sumToShape } from "./grad_common.ts";

/**
 * `where(cond, x, y)`: `cond ? x : y` per element; cond is bool or u8; all three broadcast.
 * Gradient: `where(cond, dy, 0)` to x and `where(cond, 0, dy)` to y, summed back to their shapes;
 * none to cond.
 */
export const where: OpDef = {
  name: "where",
  summary: "Selects x where cond is non-zero and y elsewhere, with numpy broadcasting of all three.",
  operands: [{ name: "cond" }, { name: "x" }, { name: "y" }],
  attrs: {},
  infer([cond, x, y]): TensorType {
    check(
      cond.dtype === "bool" || cond.dtype === "u8",
      `operand 'cond' must be bool or u8, got ${formatType(cond)}`,
    );
    requireSameDtype(x, y);
    return { shape: broadcastShapes(broadcastShapes(cond.shape, x.shape), y.shape), dtype: x.dtype };
  },
  interpret([cond, x, y], _attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const ci = broadcastOffsets(cond.shape, result.shape);
    const xi = broadcastOffsets(x.shape, result.shape);
    const yi = broadcastOffsets(y.shape, result.shape);
    for (let i = 0; i < out.data.length; i++) out.data[i] = cond.data[ci[i]] ? x.data[xi[i]] : y.data[yi[i]];
    return out;
  },
  grad: (e, dy) => {
    const [cond, x, y] = e.operands;
    const zero = () => e.constant(0, dy.type.dtype);
    return [
      undefined,
      ifNeeded(e, 1, () => sumToShape(e, e.op("where", [cond, dy, zero()]), x.type.shape)),
      ifNeeded(e, 2, () => sumToShape(e, e.op("where", [cond, zero(), dy]), y.type.shape)),
    ];
  },
};
