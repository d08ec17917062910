/**
 * The `dense` op: a fully connected layer `x · w (+ bias)` over the last dim(s) of x, with
 * optional transposes and an optional fused activation. Hugging Face `Linear` weights are
 * `[out, in]` and use `transpose_b`.
 */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { activationAttr, applyActivation } from "./activation.ts";
import { prod, requireFloat, requireRankAtLeast, requireSameDtype } from "./common.ts";
import { ifNeeded, reshapeTo, sumToShape, throughActivation } from "./grad_common.ts";
import { matmulInto, matrixView, rowMajor } from "./matmul_kernel.ts";

/**
 * `dense(x, w, bias?) {transpose_a, transpose_b, activation}`: x `[..., M, K]` (`[..., K, M]` with
 * transpose_a when rank >= 2; a rank-1 x is `[K]`), w `[K, N]` (`[N, K]` with transpose_b), bias
 * `[N]`; the result is `[..., M, N]` (`[N]` for a rank-1 x). Float dtypes, all equal. The
 * activation (activation.ts) is applied after the bias.
 *
 * Gradient, with dz the cotangent before the activation (see `throughActivation`) and W the
 * logical `[K, N]` matrix: dx = dz · Wᵀ (a `dense` with transpose_b flipped; with transpose_a, a
 * `batch_matmul` W · dzᵀ), dw = xᵀ · dz summed over the batch (x and dz flattened to rows, one
 * `batch_matmul`, laid out as w), dbias = dz summed over all but its last dim.
 */
export const dense: OpDef = {
  name: "dense",
  summary: "Fully connected layer: activation(x · w + bias) over the last dims of x (rank-1 x is a vector).",
  operands: [{ name: "x" }, { name: "w" }, { name: "bias", optional: true }],
  attrs: {
    transpose_a: { type: "bool", default: false, doc: "The last two dims of x are [K, M] (rank >= 2 only)." },
    transpose_b: { type: "bool", default: false, doc: "w is [N, K] (the [out, in] layout of Linear)." },
    activation: activationAttr,
  },
  infer([x, w, bias], attrs): TensorType {
    requireRankAtLeast(x, "x", 1);
    check(w.shape.length === 2, `operand 'w' must be rank 2, got ${formatType(w)}`);
    requireFloat(x, "x");
    requireSameDtype(x, w);
    const r = x.shape.length;
    const transA = attrs.bool("transpose_a") && r >= 2;
    const [K, M] = transA ? [x.shape[r - 2], x.shape[r - 1]] : [x.shape[r - 1], x.shape[r - 2]];
    const [wK, N] = attrs.bool("transpose_b") ? [w.shape[1], w.shape[0]] : [w.shape[0], w.shape[1]];
    check(
      wK === K,
      `contraction dims differ: x has K = ${K} (${formatType(x)}), w has K = ${wK} (${formatType(w)})`,
    );
    if (bias) {
      requireSameDtype(x, bias);
      check(
        bias.shape.length === 1 && bias.shape[0] === N,
        `operand 'bias' must be [${N}], got ${formatType(bias)}`,
      );
    }
    const shape = r === 1 ? [N] : [...x.shape.slice(0, r - 2), M, N];
    return { shape, dtype: x.dtype };
  },
  interpret([x, w, bias], attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const r = x.shape.length;
    const transA = attrs.bool("transpose_a") && r >= 2;
    const transB = attrs.bool("transpose_b");
    const N = result.shape[result.shape.length - 1];
    const M = r === 1 ? 1 : result.shape[result.shape.length - 2];
    const K = transA ? x.shape[r - 2] : x.shape[r - 1];
    const batch = prod(x.shape, 0, Math.max(r - 2, 0));
    const b = rowMajor(matrixView(w.data, 0, K, N, transB), K, N);
    for (let i = 0; i < batch; i++) {
      const a = matrixView(x.data, i * M * K, M, K, transA);
      matmulInto(a, b, M, K, N, out.data, i * M * N, bias?.data);
    }
    return applyActivation(out, attrs.string("activation"));
  },
  grad: (e, dy) => {
    const [x, w, bias] = e.operands;
    const dz = throughActivation(e, "dense", dy);
    const r = x.type.shape.length;
    const transA = e.attrs.bool("transpose_a") && r >= 2;
    const transB = e.attrs.bool("transpose_b");
    const N = dz.type.shape[dz.type.shape.length - 1];
    const dx = ifNeeded(
      e,
      0,
      () =>
        transA
          ? e.op("batch_matmul", [w, dz], { transpose_a: transB, transpose_b: true })
          : e.op("dense", [dz, w], { transpose_b: !transB }),
    );
    const dw = ifNeeded(e, 1, () => {
      if (transA) {
        const g = transB
          ? e.op("batch_matmul", [dz, x], { transpose_a: true, transpose_b: true })
          : e.op("batch_matmul", [x, dz]);
        return sumToShape(e, g, w.type.shape);
      }
      const K = x.type.shape[r - 1];
      const x2 = reshapeTo(e, x, [prod(x.type.shape) / K, K]);
      const dz2 = reshapeTo(e, dz, [prod(dz.type.shape) / N, N]);
      return transB
        ? e.op("batch_matmul", [dz2, x2], { transpose_a: true })
        : e.op("batch_matmul", [x2, dz2], { transpose_a: true });
    });
    const dbias = bias && ifNeeded(e, 2, () => sumToShape(e, dz, [N]));
    return bias ? [dx, dw, dbias] : [dx, dw];
  },
};
