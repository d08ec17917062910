/**
 * The packed weight layout the GEMM kernels read (codegen/wasm/gemm.ts), made once at compile
 * time: B `[K, N]` is cut into panels of `PACK_WIDTH` columns, each stored row after row, so a
 * micro-kernel reads one contiguous stream per panel. Element `(k, n)` is at
 * `floor(n / PACK_WIDTH) * K * PACK_WIDTH + k * PACK_WIDTH + n % PACK_WIDTH`; the last panel is
 * padded with zeros to the full width.
 */

/** Columns per panel of the packed layout: two f32x4 vectors. */
export const PACK_WIDTH = 8;

/** Number of f32 elements packB produces for a K x N matrix. */
export function packedLength(K: number, N: number): number {
  return K * Math.ceil(N / PACK_WIDTH) * PACK_WIDTH;
}

/**
 * Repacks a weight into the layout gemm kernels with b.layout "packed" read. `w` is row-major
 * [K, N], or [N, K] when `transposed` (PyTorch Linear [out, in] = transposed). Pads ragged edges
 * with zeros.
 */
export function packB(w: Float32Array, K: number, N: number, transposed: boolean): Float32Array {
  if (w.length < K * N) throw new Error(`packB: ${w.length} elements, a ${K}x${N} matrix needs ${K * N}`);
  const out = new Float32Array(packedLength(K, N));
  for (let n0 = 0; n0 < N; n0 += PACK_WIDTH) {
    const width = Math.min(PACK_WIDTH, N - n0);
    for (let k = 0; k < K; k++) {
      const row = n0 * K + k * PACK_WIDTH;
      for (let j = 0; j < width; j++) out[row + j] = transposed ? w[(n0 + j) * K + k] : w[k * N + n0 + j];
    }
  }
  return out;
}
