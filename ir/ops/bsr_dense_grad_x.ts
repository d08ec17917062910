/** The `bsr_dense_grad_x` op: the cotangent of `bsr_dense`'s input, `dy · W`, W in BSR form. */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { type BsrTensor, Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { requireFloat, requireRankAtLeast, requireSameDtype } from "./common.ts";

/**
 * `bsr_dense_grad_x(dy, w)`: dy `[..., N]`, w a BSR tensor of logical shape `[N, K]`; the result
 * is `dy · W`, `[..., K]`, in dy's dtype (sums in f64). Only the stored blocks contribute.
 */
export const bsrDenseGradX: OpDef = {
  name: "bsr_dense_grad_x",
  summary: "Cotangent of bsr_dense's x: dy · W with W [N, K] block-sparse.",
  operands: [{ name: "dy" }, { name: "w", sparse: true }],
  attrs: {},
  infer([dy, w]): TensorType {
    requireRankAtLeast(dy, "dy", 1);
    requireFloat(dy, "dy");
    requireSameDtype(dy, w);
    check(
      w.sparse !== undefined && w.shape.length === 2,
      `operand 'w' must be a 2-D bsr tensor, got ${formatType(w)}`,
    );
    const N = dy.shape[dy.shape.length - 1];
    check(
      N === w.shape[0],
      `dims differ: dy has N = ${N} (${formatType(dy)}), w is [N, K] = ${formatType(w)}`,
    );
    return { shape: [...dy.shape.slice(0, -1), w.shape[1]], dtype: dy.dtype };
  },
  interpret([dy, wt], _attrs, result): Tensor {
    const w = wt as BsrTensor;
    const [N, K] = w.sparseType.shape;
    const [R, C] = w.sparseType.sparse!.block;
    const out = Tensor.zeros(result);
    const rows = dy.data.length / N;
    const acc = new Float64Array(K);
    for (let r = 0; r < rows; r++) {
      acc.fill(0);
      for (let br = 0; br + 1 < w.indptr.length; br++) {
        for (let k = w.indptr[br]; k < w.indptr[br + 1]; k++) {
          const col0 = w.indices[k] * C;
          for (let i = 0; i < R && br * R + i < N; i++) {
            const g = dy.data[r * N + br * R + i];
            const block = (k * R + i) * C;
            for (let j = 0; j < C && col0 + j < K; j++) acc[col0 + j] += g * w.data[block + j];
          }
        }
      }
      out.data.set(acc, r * K);
    }
    return out;
  },
};
