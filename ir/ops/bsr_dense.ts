/**
 * The `bsr_dense` op: a fully connected layer with a block-sparse weight and an optional fused
 * activation, `y = activation(x · Wᵀ + bias)`, where W is the logical `[N, K]` (`[out, in]`)
 * matrix stored in BSR form (SciPy `bsr_matrix`: blocks `[nnz, R, C]`, block columns `indices`,
 * block-row starts `indptr`).
 */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { type BsrTensor, Tensor } from "../tensor.ts";
import { bsrGrid, formatType, type TensorType } from "../types.ts";
import { activationAttr, applyActivation } from "./activation.ts";
import { requireFloat, requireRankAtLeast, requireSameDtype } from "./common.ts";
import { ifNeeded, sumToShape, throughActivation } from "./grad_common.ts";

/**
 * `bsr_dense(x, w, bias?) {activation}`: x `[..., K]`, w a BSR tensor of logical shape `[N, K]`,
 * bias `[N]`; the result is `[..., N]`. Float dtypes, all equal. The activation (activation.ts)
 * is applied after the bias. The optional `pattern` attribute only marks the op for codegen (see
 * passes/dedup_patterns.ts); it does not change what the op computes.
 *
 * Gradient, with dz the cotangent before the activation: dx = `bsr_dense_grad_x(dz, w)` (dz · W),
 * dw = `bsr_dense_grad_w(dz, x, w)`, the gradient of w's stored blocks as a dense `[nnz, R, C]`
 * tensor laid out as `w.data` (pruned blocks have none and stay pruned), dbias = dz summed over
 * all but its last dim.
 */
export const bsrDense: OpDef = {
  name: "bsr_dense",
  summary: "Fully connected layer with a block-sparse [out, in] weight: activation(x · wᵀ + bias).",
  operands: [{ name: "x" }, { name: "w", sparse: true }, { name: "bias", optional: true }],
  attrs: {
    activation: activationAttr,
    pattern: {
      type: "string",
      optional: true,
      doc:
        "Sparsity pattern id set by dedup-patterns: equal ids mean equal shape, block, indptr and indices.",
    },
  },
  infer([x, w, bias]): TensorType {
    requireRankAtLeast(x, "x", 1);
    requireFloat(x, "x");
    requireSameDtype(x, w);
    check(w.sparse !== undefined, `operand 'w' must be a bsr tensor, got ${formatType(w)}`);
    check(w.shape.length === 2, `operand 'w' must be rank 2, got ${formatType(w)}`);
    const [N, K] = w.shape;
    const [gridRows, gridCols] = bsrGrid(w.shape, w.sparse.block);
    check(
      w.sparse.nnzBlocks <= gridRows * gridCols,
      `operand 'w' stores ${w.sparse.nnzBlocks} blocks, more than its ${gridRows}x${gridCols} block grid`,
    );
    const xK = x.shape[x.shape.length - 1];
    check(
      xK === K,
      `contraction dims differ: x has K = ${xK} (${formatType(x)}), w is [N, K] = ${formatType(w)}`,
    );
    if (bias) {
      requireSameDtype(x, bias);
      check(
        bias.shape.length === 1 && bias.shape[0] === N,
        `operand 'bias' must be [${N}], got ${formatType(bias)}`,
      );
    }
    return { shape: [...x.shape.slice(0, -1), N], dtype: x.dtype };
  },
  interpret([x, wt, bias], attrs, result): Tensor {
    const w = wt as BsrTensor;
    const [N, K] = w.sparseType.shape;
    const [R, C] = w.sparseType.sparse!.block;
    const out = Tensor.zeros(result);
    const rows = x.data.length / K;
    const acc = new Float64Array(N);
    for (let r = 0; r < rows; r++) {
      const xRow = r * K;
      if (bias) { for (let n = 0; n < N; n++) acc[n] = bias.data[n]; }
      else acc.fill(0);
      // Block row br covers W rows br*R .. br*R+R-1; block k of it covers columns indices[k]*C ...
      for (let br = 0; br + 1 < w.indptr.length; br++) {
        for (let k = w.indptr[br]; k < w.indptr[br + 1]; k++) {
          const col0 = w.indices[k] * C;
          for (let i = 0; i < R && br * R + i < N; i++) {
            const block = (k * R + i) * C;
            let sum = 0;
            for (let j = 0; j < C && col0 + j < K; j++) sum += w.data[block + j] * x.data[xRow + col0 + j];
            acc[br * R + i] += sum;
          }
        }
      }
      out.data.set(acc, r * N);
    }
    return applyActivation(out, attrs.string("activation"));
  },
  grad: (e, dy) => {
    const [x, w, bias] = e.operands;
    const dz = throughActivation(e, "bsr_dense", dy);
    const dx = ifNeeded(e, 0, () => e.op("bsr_dense_grad_x", [dz, w]));
    const dw = ifNeeded(e, 1, () => e.op("bsr_dense_grad_w", [dz, x, w]));
    const dbias = bias && ifNeeded(e, 2, () => sumToShape(e, dz, bias.type.shape));
    return bias ? [dx, dw, dbias] : [dx, dw];
  },
};
