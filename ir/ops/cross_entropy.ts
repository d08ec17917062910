/**
 * The `cross_entropy` op: the mean softmax cross-entropy of a batch of logits against integer
 * class labels (PyTorch's `CrossEntropyLoss()` with its default mean reduction), a scalar loss.
 */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { requireFloat } from "./common.ts";

/**
 * For row b of logits `[B, C]` and its label: `logsumexp(row) - row[label]`, computed stably.
 * Throws a RangeError naming the row when the label is outside `0..C-1`.
 */
export function rowLoss(logits: ArrayLike<number>, b: number, C: number, label: number): number {
  if (!Number.isInteger(label) || label < 0 || label >= C) {
    throw new RangeError(`label ${label} of row ${b} is out of range for ${C} classes`);
  }
  let max = -Infinity;
  for (let c = 0; c < C; c++) max = Math.max(max, logits[b * C + c]);
  let sum = 0;
  for (let c = 0; c < C; c++) sum += Math.exp(logits[b * C + c] - max);
  return max + Math.log(sum) - logits[b * C + label];
}

/**
 * `cross_entropy(logits, labels)`: logits `[B, C]` float, labels `[B]` i32 or i64 in `0..C-1`;
 * the result is a scalar of the logits' dtype, `mean_b(logsumexp(logits[b]) - logits[b, labels[b]])`.
 * Gradient: `cross_entropy_grad(dy, logits, labels)` = dy · (softmax(logits) - onehot(labels)) / B
 * to the logits; none to the labels.
 */
export const crossEntropy: OpDef = {
  name: "cross_entropy",
  summary: "Mean softmax cross-entropy of logits [B, C] against integer labels [B]: a scalar.",
  operands: [{ name: "logits" }, { name: "labels" }],
  attrs: {},
  infer([logits, labels]): TensorType {
    requireFloat(logits, "logits");
    check(logits.shape.length === 2, `operand 'logits' must be rank 2 [B, C], got ${formatType(logits)}`);
    check(
      labels.dtype === "i32" || labels.dtype === "i64",
      `operand 'labels' must be i32 or i64, got ${formatType(labels)}`,
    );
    check(
      labels.shape.length === 1 && labels.shape[0] === logits.shape[0],
      `operand 'labels' must be [${logits.shape[0]}], got ${formatType(labels)}`,
    );
    return { shape: [], dtype: logits.dtype };
  },
  interpret([logits, labels], _attrs, result): Tensor {
    const [B, C] = logits.shape;
    let total = 0;
    for (let b = 0; b < B; b++) total += rowLoss(logits.data, b, C, labels.data[b]);
    return Tensor.from([], result.dtype, [B > 0 ? total / B : 0]);
  },
  grad: (e, dy) => {
    const [logits, labels] = e.operands;
    return [e.op("cross_entropy_grad", [dy, logits, labels]), undefined];
  },
};
