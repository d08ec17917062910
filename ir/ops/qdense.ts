/**
 * The `qdense` op: a fully connected layer with INT8 weights, quantized per output channel, and
 * activations quantized to integers row by row (issue 18). The `quantize` pass makes it from
 * `dense {transpose_b}`; the wasm kernels and the ONNX exporter compute exactly what
 * `interpret` below defines, in f32.
 */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { BsrTensor, Tensor } from "../tensor.ts";
import { bsrGrid, formatType, type TensorType } from "../types.ts";
import { activationAttr, applyActivation } from "./activation.ts";
import { requireRankAtLeast } from "./common.ts";

/** The largest `act_max`: the largest magnitude of an int8. */
export const ACT_MAX_LIMIT = 127;

/** Rounds to the nearest integer, ties to the even one (ONNX Round, IEEE roundTiesToEven). */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The activation scale of one row `x[from .. from + k)`: `act_scale` when it is > 0, else
 * max|x| / act_max in f32 (1 for a row of zeros).
 */
export function rowScale(
  x: ArrayLike<number>,
  from: number,
  k: number,
  actMax: number,
  actScale: number,
): number {
  if (actScale > 0) return Math.fround(actScale);
  let a = 0;
  for (let j = 0; j < k; j++) a = Math.max(a, Math.abs(x[from + j]));
  return a === 0 ? 1 : Math.fround(a / actMax);
}

/** `clamp(roundHalfEven(fround(v / s)), -actMax, actMax)`: one quantized activation. */
export function quantizeValue(v: number, s: number, actMax: number): number {
  return Math.min(actMax, Math.max(-actMax, roundHalfEven(Math.fround(v / s))));
}

/** The `[N, K]` int8 values of wq: its data, or a BSR wq densified (blocks outside it are zeros). */
export function denseInt8(wq: Tensor): ArrayLike<number> {
  if (!(wq instanceof BsrTensor)) return wq.data;
  const [N, K] = wq.sparseType.shape;
  const [R, C] = wq.sparseType.sparse!.block;
  const out = new Int8Array(N * K);
  for (let br = 0; br + 1 < wq.indptr.length; br++) {
    for (let b = wq.indptr[br]; b < wq.indptr[br + 1]; b++) {
      const col0 = wq.indices[b] * C;
      for (let i = 0; i < R && br * R + i < N; i++) {
        for (let j = 0; j < C && col0 + j < K; j++) {
          out[(br * R + i) * K + col0 + j] = wq.data[(b * R + i) * C + j];
        }
      }
    }
  }
  return out;
}

/**
 * `qdense(x, wq, w_scale, bias?) {act_max, act_scale, activation}`: x f32 `[..., K]` (rank >= 1),
 * wq i8 `[N, K]` (always the `[out, in]` layout; dense, or a BSR tensor, which means the same
 * as its densified matrix), w_scale f32 `[N]`, bias f32 `[N]`; the result is f32 `[..., N]`. Every step is in f32 (`Math.fround`), so that kernels can match it exactly.
 * For each row r of x (over the last axis):
 *
 * 1. a = max_k |x[r, k]|; s = act_scale when act_scale > 0 (static), else (dynamic)
 *    s = a === 0 ? 1 : fround(a / act_max);
 * 2. q[r, k] = clamp(roundHalfEven(fround(x[r, k] / s)), -act_max, act_max), an integer;
 * 3. acc[r, n] = Σ_k q[r, k] · wq[n, k], exact (an integer; |acc| ≤ K · 127 · 128);
 * 4. y[r, n] = fround(fround(fround(acc[r, n]) · fround(s · w_scale[n])) + bias[n]) (without a
 *    bias: without the add);
 * 5. then the activation, as `dense` applies it (activation.ts).
 *
 * `act_max = 63` (the default) keeps q in 7 bits, which the relaxed-SIMD kernel needs for exact
 * results with `i32x4.relaxed_dot_i8x16_i7x16_add_s` after an offset of +64. A NaN in a row of
 * x gives NaN in every element of its result row.
 */
export const qdense: OpDef = {
  name: "qdense",
  summary: "INT8 fully connected layer: per-row quantized x times per-channel int8 [out, in] weights.",
  operands: [{ name: "x" }, { name: "wq", sparse: true }, { name: "w_scale" }, {
    name: "bias",
    optional: true,
  }],
  attrs: {
    act_max: {
      type: "int",
      default: 63,
      doc: "Largest quantized activation magnitude, in [1, 127]; 63 gives 7-bit activations.",
    },
    act_scale: {
      type: "float",
      default: 0.0,
      doc: "Activation scale: 0 computes one per row (dynamic), > 0 is used for every row (static).",
    },
    activation: activationAttr,
  },
  infer([x, wq, wScale, bias], attrs): TensorType {
    const actMax = attrs.int("act_max");
    check(
      Number.isInteger(actMax) && actMax >= 1 && actMax <= ACT_MAX_LIMIT,
      `attribute 'act_max' must be in [1, ${ACT_MAX_LIMIT}], got ${actMax}`,
    );
    const actScale = attrs.float("act_scale");
    check(
      Number.isFinite(actScale) && actScale >= 0,
      `attribute 'act_scale' must be a finite float >= 0, got ${actScale}`,
    );
    requireRankAtLeast(x, "x", 1);
    check(x.dtype === "f32", `operand 'x' must be f32, got ${formatType(x)}`);
    check(
      wq.shape.length === 2 && wq.dtype === "i8",
      `operand 'wq' must be an i8 [N, K] matrix, got ${formatType(wq)}`,
    );
    const [N, K] = wq.shape;
    if (wq.sparse) {
      const [rows, cols] = bsrGrid(wq.shape, wq.sparse.block);
      check(
        wq.sparse.nnzBlocks <= rows * cols,
        `operand 'wq' stores ${wq.sparse.nnzBlocks} blocks, more than its ${rows}x${cols} block grid`,
      );
    }
    const xK = x.shape[x.shape.length - 1];
    check(
      xK === K,
      `contraction dims differ: x has K = ${xK} (${formatType(x)}), wq is [N, K] = ${formatType(wq)}`,
    );
    check(
      wScale.dtype === "f32" && wScale.shape.length === 1 && wScale.shape[0] === N,
      `operand 'w_scale' must be f32 [${N}], got ${formatType(wScale)}`,
    );
    if (bias) {
      check(
        bias.dtype === "f32" && bias.shape.length === 1 && bias.shape[0] === N,
        `operand 'bias' must be f32 [${N}], got ${formatType(bias)}`,
      );
    }
    return { shape: [...x.shape.slice(0, -1), N], dtype: "f32" };
  },
  interpret([x, wq, wScale, bias], attrs, result): Tensor {
    const actMax = attrs.int("act_max");
    const actScale = attrs.float("act_scale");
    const [N, K] = wq instanceof BsrTensor ? wq.sparseType.shape : wq.shape;
    const w = denseInt8(wq);
    const out = Tensor.zeros(result);
    const rows = K === 0 ? out.data.length / Math.max(N, 1) : x.data.length / K;
    const q = new Float64Array(K); // integers (NaN stays NaN)
    const f = Math.fround;
    for (let r = 0; r < rows; r++) {
      const s = rowScale(x.data, r * K, K, actMax, actScale);
      for (let k = 0; k < K; k++) q[k] = quantizeValue(x.data[r * K + k], s, actMax);
      for (let n = 0; n < N; n++) {
        let acc = 0; // exact: every partial sum is an integer far below 2^53
        for (let k = 0; k < K; k++) acc += q[k] * w[n * K + k];
        const y = f(f(acc) * f(s * wScale.data[n]));
        out.data[r * N + n] = bias ? f(y + bias.data[n]) : y;
      }
    }
    return applyActivation(out, attrs.string("activation"));
  },
};
