/**
 * The matrix product kernel shared by `dense` and `batch_matmul`: one `[M, K] x [K, N]`
 * product read from strided operands, written with an i-k-j loop.
 */

import type { TensorData } from "../tensor.ts";

/** A matrix view into a flat array: element (r, c) is `data[offset + r * rowStride + c * colStride]`. */
export interface MatrixView {
  readonly data: TensorData;
  readonly offset: number;
  readonly rowStride: number;
  readonly colStride: number;
}

/**
 * A view of a logical `[rows, cols]` matrix stored row-major at `offset`, either as is or, when
 * `transposed`, as its transpose `[cols, rows]`.
 */
export function matrixView(
  data: TensorData,
  offset: number,
  rows: number,
  cols: number,
  transposed: boolean,
): MatrixView {
  return transposed
    ? { data, offset, rowStride: 1, colStride: rows }
    : { data, offset, rowStride: cols, colStride: 1 };
}

/**
 * The view itself when its rows are contiguous (colStride 1), else a row-major copy of the
 * `[rows, cols]` matrix it shows, so that inner loops run along memory.
 */
export function rowMajor(v: MatrixView, rows: number, cols: number): MatrixView {
  if (v.colStride === 1) return v;
  const data = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) data[r * cols + c] = v.data[v.offset + r * v.rowStride + c * v.colStride];
  }
  return { data, offset: 0, rowStride: cols, colStride: 1 };
}

/**
 * Writes `a · b` (a: `[M, K]`, b: `[K, N]`) into `out[outOffset ..]` as a row-major `[M, N]`
 * matrix, adding `bias[n]` to each column when given. Sums are kept in f64. `b` is copied
 * by `rowMajor` when its rows are strided (callers reusing one `b` should do that once).
 */
export function matmulInto(
  a: MatrixView,
  b: MatrixView,
  M: number,
  K: number,
  N: number,
  out: TensorData,
  outOffset: number,
  bias?: TensorData,
): void {
  const bRows = rowMajor(b, K, N);
  const acc = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    if (bias) { for (let j = 0; j < N; j++) acc[j] = bias[j]; }
    else acc.fill(0);
    for (let k = 0; k < K; k++) {
      const aik = a.data[a.offset + i * a.rowStride + k * a.colStride];
      const row = bRows.offset + k * bRows.rowStride;
      for (let j = 0; j < N; j++) acc[j] += aik * bRows.data[row + j];
    }
    out.set(acc, outOffset + i * N);
  }
}
