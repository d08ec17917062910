/** The `cross_entropy_grad` op: the cotangent of `cross_entropy`'s logits. */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { crossEntropy, rowLoss } from "./cross_entropy.ts";

/**
 * `cross_entropy_grad(dy, logits, labels)`: dy a scalar of the logits' dtype; logits and labels
 * as `cross_entropy`'s. The result has the logits' type: `dy · (softmax(logits[b]) - onehot(labels[b])) / B`.
 */
export const crossEntropyGrad: OpDef = {
  name: "cross_entropy_grad",
  summary: "Cotangent of cross_entropy's logits: dy · (softmax(logits) - onehot(labels)) / B.",
  operands: [{ name: "dy" }, { name: "logits" }, { name: "labels" }],
  attrs: {},
  infer([dy, logits, labels], attrs, declared): TensorType {
    const loss = crossEntropy.infer([logits, labels], attrs, declared);
    check(
      formatType(dy) === formatType(loss),
      `operand 'dy' must be ${formatType(loss)}, got ${formatType(dy)}`,
    );
    return { shape: [...logits.shape], dtype: logits.dtype };
  },
  interpret([dy, logits, labels], _attrs, result): Tensor {
    const [B, C] = logits.shape;
    const out = Tensor.zeros(result);
    const scale = dy.data[0] / B;
    for (let b = 0; b < B; b++) {
      const label = labels.data[b];
      // softmax(row)[c] = exp(row[c] - logsumexp(row)), and logsumexp = rowLoss + row[label].
      const lse = rowLoss(logits.data, b, C, label) + logits.data[b * C + label];
      for (let c = 0; c < C; c++) {
        const p = Math.exp(logits.data[b * C + c] - lse);
        out.data[b * C + c] = scale * (p - (c === label ? 1 : 0));
      }
    }
    return out;
  },
};
