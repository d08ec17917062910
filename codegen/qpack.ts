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
