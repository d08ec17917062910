/**
 * The `bsr_dense_grad_w` op: the cotangent of `bsr_dense`'s BSR weight, as the gradient of its
 * stored blocks only, so a pruned (unstored) block never gets a gradient and stays pruned.
 */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { type BsrTensor, Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { requireFloat, requireSameDtype } from "./common.ts";

/**
 * `bsr_dense_grad_w(dy, x, w)`: dy `[..., N]`, x `[..., K]` (same leading dims), w a BSR tensor of
 * logical shape `[N, K]` with `nnz` stored `R×C` blocks. The result is a dense `[nnz, R, C]`
 * tensor in w's dtype, laid out as `w.data`: element `(k, i, j)` is `Σ_rows dy[row, n]·x[row, m]`
 * for the entry `(n, m)` of W that block k's `(i, j)` holds (0 in the padding of edge blocks).
 * It is the gradient of the stored block values, the form `grad` gives for a BSR weight.
 */
export const bsrDenseGradW: OpDef = {
  name: "bsr_dense_grad_w",
  summary: "Cotangent of bsr_dense's BSR weight, as its stored blocks [nnz, R, C]: Σ dyᵀ · x on the pattern.",
  operands: [{ name: "dy" }, { name: "x" }, { name: "w", sparse: true }],
  attrs: {},
  infer([dy, x, w]): TensorType {
    requireFloat(x, "x");
    requireSameDtype(dy, x);
    requireSameDtype(x, w);
    check(
      w.sparse !== undefined && w.shape.length === 2,
      `operand 'w' must be a 2-D bsr tensor, got ${formatType(w)}`,
    );
    const [N, K] = w.shape;
    const lead = (t: TensorType) => t.shape.slice(0, -1).join("x");
    check(
      dy.shape.length >= 1 && dy.shape.length === x.shape.length && lead(dy) === lead(x),
      `operands 'dy' and 'x' must have the same leading dims, got ${formatType(dy)} and ${formatType(x)}`,
    );
    check(dy.shape[dy.shape.length - 1] === N, `operand 'dy' must end in N = ${N}, got ${formatType(dy)}`);
    check(x.shape[x.shape.length - 1] === K, `operand 'x' must end in K = ${K}, got ${formatType(x)}`);
    const [R, C] = w.sparse.block;
    return { shape: [w.sparse.nnzBlocks, R, C], dtype: w.dtype };
  },
  interpret([dy, x, wt], _attrs, result): Tensor {
    const w = wt as BsrTensor;
    const [N, K] = w.sparseType.shape;
    const [R, C] = w.sparseType.sparse!.block;
    const rows = x.data.length / K;
    const sums = new Float64Array(result.shape[0] * R * C);
    for (let br = 0; br + 1 < w.indptr.length; br++) {
      for (let k = w.indptr[br]; k < w.indptr[br + 1]; k++) {
        const col0 = w.indices[k] * C;
        for (let i = 0; i < R && br * R + i < N; i++) {
          const n = br * R + i;
          for (let j = 0; j < C && col0 + j < K; j++) {
            let s = 0;
            for (let r = 0; r < rows; r++) s += dy.data[r * N + n] * x.data[r * K + col0 + j];
            sums[(k * R + i) * C + j] = s;
          }
        }
      }
    }
    const out = Tensor.zeros(result);
    out.data.set(sums);
    return out;
  },
};
