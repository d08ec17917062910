/**
 * The `softmax` op: softmax along one axis, optionally of `x + mask` (an additive attention
 * mask, e.g. -10000 at padding), computed stably by subtracting the max first.
 */

import type { OpDef } from "../registry.ts";
import { broadcastShapes, check, normalizeAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, sameShape, type TensorType } from "../types.ts";
import { broadcastOffsets, prod, requireFloat, requireSameDtype } from "./common.ts";
import { ifNeeded, sumToShape } from "./grad_common.ts";

/**
 * `softmax(x, mask?) {axis}`: softmax of `x + mask` along axis; the mask broadcasts to x's shape.
 * Gradient: `dz = softmax_grad(dy, y)` to x, and dz summed back to the mask's shape to the mask
 * (an attention mask computed from the inputs is not differentiated: `needs` is false for it).
 */
export const softmax: OpDef = {
  name: "softmax",
  summary: "Softmax of x (+ an additive mask broadcast to x) along one axis.",
  operands: [{ name: "x" }, { name: "mask", optional: true }],
  attrs: {
    axis: { type: "int", default: -1, doc: "The axis to normalize along; negative counts from the end." },
  },
  infer([x, mask], attrs): TensorType {
    requireFloat(x, "x");
    normalizeAxis(attrs.int("axis"), x.shape.length);
    if (mask) {
      requireSameDtype(x, mask);
      check(
        sameShape(broadcastShapes(x.shape, mask.shape), x.shape),
        `operand 'mask' must broadcast to x's shape, got ${formatType(mask)} for ${formatType(x)}`,
      );
    }
    return { shape: [...x.shape], dtype: x.dtype };
  },
  interpret([x, mask], attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const z = Float64Array.from(x.data);
    if (mask) {
      const m = broadcastOffsets(mask.shape, x.shape);
      for (let i = 0; i < z.length; i++) z[i] += mask.data[m[i]];
    }
    // View x as [outer, n, inner]: each (outer, inner) pair is one softmax over n values.
    const axis = normalizeAxis(attrs.int("axis"), x.shape.length);
    const n = x.shape[axis];
    const inner = prod(x.shape, axis + 1);
    const outer = prod(x.shape, 0, axis);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const at = (k: number) => (o * n + k) * inner + i;
        let max = -Infinity;
        for (let k = 0; k < n; k++) max = Math.max(max, z[at(k)]);
        let sum = 0;
        for (let k = 0; k < n; k++) {
          z[at(k)] = Math.exp(z[at(k)] - max);
          sum += z[at(k)];
        }
        for (let k = 0; k < n; k++) out.data[at(k)] = z[at(k)] / sum;
      }
    }
    return out;
  },
  grad: (e, dy) => {
    const dz = e.op("softmax_grad", [dy, e.result], { axis: e.attrs.int("axis") });
    const mask = e.operands[1];
    return [ifNeeded(e, 0, () => dz), mask && ifNeeded(e, 1, () => sumToShape(e, dz, mask.type.shape))];
  },
};
