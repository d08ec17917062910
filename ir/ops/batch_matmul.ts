/**
 * The `batch_matmul` op: a batch of matrix products over the last two dims, with numpy
 * broadcasting of the leading batch dims (numpy `matmul` for rank >= 2), e.g. attention scores.
 */

import type { OpDef } from "../registry.ts";
import { broadcastShapes, check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { broadcastOffsets, requireFloat, requireRankAtLeast, requireSameDtype } from "./common.ts";
import { ifNeeded, sumToShape } from "./grad_common.ts";
import { matmulInto, matrixView } from "./matmul_kernel.ts";

/** The `[rows, cols]` of the matrices of a batch operand, after its optional transpose. */
function matrixDims(t: TensorType, transposed: boolean): [number, number] {
  const [r, c] = t.shape.slice(-2);
  return transposed ? [c, r] : [r, c];
}

/**
 * `batch_matmul(a, b) {transpose_a, transpose_b}`: a `[...A, M, K]` (`[..., K, M]` with
 * transpose_a), b `[...B, K, N]` (`[..., N, K]` with transpose_b); the batch dims A and B
 * broadcast to `batch`; the result is `[...batch, M, N]`. Float dtypes, equal.
 *
 * Gradient (two `batch_matmul`s, laid out as each operand, summed back over broadcast batch
 * dims): da = dy · bᵀ (with transpose_a: b · dyᵀ), db = aᵀ · dy (with transpose_b: dyᵀ · a).
 */
export const batchMatmul: OpDef = {
  name: "batch_matmul",
  summary: "Batched matrix product over the last two dims, with broadcast batch dims (numpy matmul).",
  operands: [{ name: "a" }, { name: "b" }],
  attrs: {
    transpose_a: { type: "bool", default: false, doc: "The last two dims of a are [K, M]." },
    transpose_b: { type: "bool", default: false, doc: "The last two dims of b are [N, K]." },
  },
  infer([a, b], attrs): TensorType {
    requireRankAtLeast(a, "a", 2);
    requireRankAtLeast(b, "b", 2);
    requireFloat(a, "a");
    requireSameDtype(a, b);
    const [M, K] = matrixDims(a, attrs.bool("transpose_a"));
    const [bK, N] = matrixDims(b, attrs.bool("transpose_b"));
    check(
      K === bK,
      `contraction dims differ: a has K = ${K} (${formatType(a)}), b has K = ${bK} (${formatType(b)})`,
    );
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return { shape: [...batch, M, N], dtype: a.dtype };
  },
  interpret([a, b], attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const transA = attrs.bool("transpose_a");
    const transB = attrs.bool("transpose_b");
    const [M, K] = matrixDims(a.type, transA);
    const N = matrixDims(b.type, transB)[1];
    const batch = result.shape.slice(0, -2);
    const aBatch = broadcastOffsets(a.shape.slice(0, -2), batch);
    const bBatch = broadcastOffsets(b.shape.slice(0, -2), batch);
    for (let i = 0; i < aBatch.length; i++) {
      const am = matrixView(a.data, aBatch[i] * M * K, M, K, transA);
      const bm = matrixView(b.data, bBatch[i] * K * N, K, N, transB);
      matmulInto(am, bm, M, K, N, out.data, i * M * N);
    }
    return out;
  },
  grad: (e, dy) => {
    const [a, b] = e.operands;
    const transA = e.attrs.bool("transpose_a");
    const transB = e.attrs.bool("transpose_b");
    return [
      ifNeeded(e, 0, () => {
        const g = transA
          ? e.op("batch_matmul", [b, dy], { transpose_a: transB, transpose_b: true })
          : e.op("batch_matmul", [dy, b], { transpose_b: !transB });
        return sumToShape(e, g, a.type.shape);
      }),
      ifNeeded(e, 1, () => {
        const g = transB
          ? e.op("batch_matmul", [dy, a], { transpose_a: true, transpose_b: transA })
          : e.op("batch_matmul", [a, dy], { transpose_a: !transA });
        return sumToShape(e, g, b.type.shape);
      }),
    ];
  },
};
