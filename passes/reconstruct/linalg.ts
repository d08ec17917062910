/**
 * Dense linear algebra for `prune-reconstruct`, on row-major Float64Arrays: Cholesky
 * factorization, the upper Cholesky factor of an inverse, quadratic forms, and the Gram and
 * cross matrices XᵀX and XᵀY accumulated over row blocks.
 */

/**
 * The lower Cholesky factor L (H = LLᵀ) of the symmetric n×n `h`, or undefined when `h` is not
 * positive definite.
 */
export function cholesky(h: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = h[rj + j];
    for (let k = 0; k < j; k++) d -= l[rj + k] * l[rj + k];
    if (!(d > 0)) return undefined;
    const ljj = Math.sqrt(d);
    l[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = h[ri + j];
      for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
      l[ri + j] = s / ljj;
    }
  }
  return l;
}

/** The inverse of the lower-triangular n×n `l` (lower triangular too), row by row. */
function invertLower(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    // Row i: (e_i − Σ_{k<i} L_ik · X_k,:) / L_ii.
    inv[ri + i] = 1;
    for (let k = 0; k < i; k++) {
      const a = l[ri + k];
      if (a === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) inv[ri + j] -= a * inv[rk + j];
    }
    const d = 1 / l[ri + i];
    for (let j = 0; j <= i; j++) inv[ri + j] *= d;
  }
  return inv;
}

/**
 * The upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) for the symmetric positive-definite `h`, or
 * undefined when `h` is not positive definite. With P the order-reversing permutation and
 * PHP = L̂L̂ᵀ, H = VVᵀ for the upper-triangular V = PL̂P, so H⁻¹ = V⁻ᵀV⁻¹ and U = V⁻¹ = PL̂⁻¹P:
 * one Cholesky factorization and one triangular inverse.
 */
export function inverseCholeskyUpper(h: Float64Array, n: number): Float64Array | undefined {
  const flipped = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) flipped[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  }
  const l = cholesky(flipped, n);
  if (!l) return undefined;
  const li = invertLower(l, n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = li[(n - 1 - i) * n + (n - 1 - j)];
  return u;
}

/** Σ_r d_rᵀ H d_r over the rows of the `rows`×n matrix `d`, for the symmetric n×n `h`. */
export function quadraticForm(d: Float64Array, rows: number, h: Float64Array, n: number): number {
  let total = 0;
  const hd = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const dr = r * n;
    hd.fill(0);
    for (let a = 0; a < n; a++) {
      const x = d[dr + a];
      if (x === 0) continue;
      const ha = a * n;
      for (let b = 0; b < n; b++) hd[b] += x * h[ha + b];
    }
    for (let b = 0; b < n; b++) total += d[dr + b] * hd[b];
  }
  return total;
}

/** Accumulates H += XᵀX for the `rows`×n row-major `x` into the full symmetric n×n `h`. */
export function accumulateGram(h: Float64Array, x: Float64Array, rows: number, n: number): void {
  const T = 32;
  const tile = new Float64Array(n * T);
  for (let r0 = 0; r0 < rows; r0 += T) {
    const t = Math.min(T, rows - r0);
    for (let i = 0; i < t; i++) for (let a = 0; a < n; a++) tile[a * T + i] = x[(r0 + i) * n + a];
    for (let a = 0; a < n; a++) {
      const ta = a * T;
      for (let b = a; b < n; b++) {
        const tb = b * T;
        let s = 0;
        for (let i = 0; i < t; i++) s += tile[ta + i] * tile[tb + i];
        h[a * n + b] += s;
      }
    }
  }
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) h[b * n + a] = h[a * n + b];
}

/** Accumulates C += XᵀY for the `rows`×n row-major `x` and `y` into the n×n `c`. */
export function accumulateCross(
  c: Float64Array,
  x: Float64Array,
  y: Float64Array,
  rows: number,
  n: number,
): void {
  const T = 32;
  const tx = new Float64Array(n * T), ty = new Float64Array(n * T);
  for (let r0 = 0; r0 < rows; r0 += T) {
    const t = Math.min(T, rows - r0);
    for (let i = 0; i < t; i++) {
      for (let a = 0; a < n; a++) {
        tx[a * T + i] = x[(r0 + i) * n + a];
        ty[a * T + i] = y[(r0 + i) * n + a];
      }
    }
    for (let a = 0; a < n; a++) {
      const ta = a * T;
      for (let b = 0; b < n; b++) {
        const tb = b * T;
        let s = 0;
        for (let i = 0; i < t; i++) s += tx[ta + i] * ty[tb + i];
        c[a * n + b] += s;
      }
    }
  }
}
