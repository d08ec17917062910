/**
 * The weights layout of the int8 GEMM kernels (codegen/wasm/qgemm.ts), the same for both wasm
 * targets: the int8 weight `[N, K]` (the `[out, in]` layout) in blocks of 4 output channels by 4
 * inputs, 16 bytes each (`[n][k]` inside a block), blocks ordered by channel group, then by
 * input: group g's stream is `Kp / 4` blocks, `Kp` = K rounded up to a multiple of 4 with zero
 * weights, and `Np` = N rounded up to a multiple of 4 with zero channels. Beside it, per channel,
 * the correction `ACT_OFFSET · Σ_k w[n, k]`: the kernels read activations offset into [0, 127]
 * and subtract it, so their integer sums are exact.
 */

/** What activations are offset by (the quantized value q in [-63, 63] is stored as q + 64). */
export const ACT_OFFSET = 64;

/** The int8 weight in the kernels' layout, with its per-channel correction. */
export interface PackedQWeight {
  /** Channels padded to a multiple of 4. */
  readonly Np: number;
  /** Inputs padded to a multiple of 4. */
  readonly Kp: number;
  /** `Np · Kp` bytes (as an Int32Array over them, for the weights region). */
  readonly data: Int32Array;
  /** `Np` entries: `ACT_OFFSET · Σ_k w[n, k]` (0 for padding). */
  readonly correction: Int32Array;
}

/** Rounds `n` up to a multiple of 4. */
export const roundUp4 = (n: number): number => Math.ceil(n / 4) * 4;

/** Packs the int8 weight `w` (`[N, K]`, row-major) for the int8 GEMM kernels. */
export function packQWeight(w: Int8Array, N: number, K: number): PackedQWeight {
  if (w.length !== N * K) throw new Error(`packQWeight: ${w.length} values for [${N}, ${K}]`);
  const Np = roundUp4(N), Kp = roundUp4(K);
  const bytes = new Int8Array(Np * Kp);
  const correction = new Int32Array(Np);
  for (let n = 0; n < N; n++) {
    const group = n >> 2, lane = n & 3;
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const v = w[n * K + k];
      sum += v;
      bytes[group * Kp * 4 + (k >> 2) * 16 + lane * 4 + (k & 3)] = v;
    }
    correction[n] = ACT_OFFSET * sum;
  }
  return { Np, Kp, data: new Int32Array(bytes.buffer), correction };
}

/** An int8 BSR weight in the layout of codegen/wasm/qbsr.ts, with its index and corrections. */
export interface PackedQBsr {
  /** Block rows. */
  readonly blockRows: number;
  /** Channels the epilogue block covers: `blockRows · R`. */
  readonly Np: number;
  /** Per stored block, R/4 x C/4 sub-blocks of 16 bytes (`[n][k]`), zeros outside [N, K]. */
  readonly data: Int32Array;
  /** `indptr` (blockRows + 1 entries), then per block the byte offset of its first input: `indices[b] · C`. */
  readonly index: Int32Array;
  /** `ACT_OFFSET · Σ_k w[n, k]` over the stored entries of each channel (`Np` entries). */
  readonly correction: Int32Array;
}

/**
 * Packs an int8 BSR weight (SciPy's `[nnz, R, C]` blocks, `indptr`, `indices`; logical `[N, K]`)
 * for the int8 BSR kernel; R and C must be multiples of 4.
 */
export function packQBsr(
  blocks: Int8Array,
  indptr: Int32Array,
  indices: Int32Array,
  [N, K]: readonly number[],
  [R, C]: readonly number[],
): PackedQBsr {
  if (R % 4 !== 0 || C % 4 !== 0) throw new Error(`packQBsr: block ${R}x${C} is not made of 4x4 blocks`);
  const blockRows = indptr.length - 1, nnz = indices.length;
  const bytes = new Int8Array(nnz * R * C);
  const Np = blockRows * R;
  const correction = new Int32Array(Np);
  for (let br = 0; br < blockRows; br++) {
    for (let b = indptr[br]; b < indptr[br + 1]; b++) {
      for (let n = 0; n < R; n++) {
        for (let k = 0; k < C; k++) {
          const channel = br * R + n, input = indices[b] * C + k;
          const v = channel < N && input < K ? blocks[(b * R + n) * C + k] : 0;
          const sub = (n >> 2) * (C >> 2) + (k >> 2);
          bytes[b * R * C + sub * 16 + (n & 3) * 4 + (k & 3)] = v;
          correction[channel] += ACT_OFFSET * v;
        }
      }
    }
  }
  const index = new Int32Array(blockRows + 1 + nnz);
  index.set(indptr);
  for (let b = 0; b < nnz; b++) index[blockRows + 1 + b] = indices[b] * C;
  return { blockRows, Np, data: new Int32Array(bytes.buffer), index, correction };
}
