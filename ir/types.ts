/**
 * Tensor types of the IR: a static shape, an element dtype and, for sparse tensors,
 * a block-sparse-row (BSR) encoding.
 *
 * Text form: `tensor<128x768xf32>`, `tensor<f32>` (a scalar) and
 * `tensor<768x768xf32, bsr<1x32, nnz = 3686>>` (block shape rows×cols of the matrix in
 * `[out, in]` layout, and the count of stored, non-zero blocks).
 */

/** Element types the IR knows. f16 and bf16 are computed in f32 by the interpreter. */
export const DTYPES = ["f32", "f16", "bf16", "f64", "i64", "i32", "i8", "u8", "bool"] as const;

/** One element type. */
export type DType = typeof DTYPES[number];

/** Whether `s` names a dtype. */
export function isDType(s: string): s is DType {
  return (DTYPES as readonly string[]).includes(s);
}

/** Whether a dtype holds floating-point values. */
export function isFloat(dtype: DType): boolean {
  return dtype === "f32" || dtype === "f16" || dtype === "bf16" || dtype === "f64";
}

/**
 * Block-sparse-row encoding of a 2-D tensor `[rows, cols]`, the layout of SciPy's `bsr_matrix`.
 * The matrix is cut into `block[0]×block[1]` blocks; `nnzBlocks` of them are stored. When a
 * dimension is not a multiple of the block, the last block row or column is padded with zeros.
 */
export interface BsrEncoding {
  /** The encoding's tag; always `bsr`. */
  readonly kind: "bsr";
  /** Block rows × block columns, e.g. `[1, 32]`; TVM's `(bs_r, bs_c)`. */
  readonly block: readonly [number, number];
  /** Number of stored blocks. */
  readonly nnzBlocks: number;
}

/** A tensor type with a static shape. */
export interface TensorType {
  /** Dimensions; `[]` for a scalar. */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Present when the tensor is stored block-sparse. */
  readonly sparse?: BsrEncoding;
}

/** Builds a dense tensor type. */
export function tensorType(shape: readonly number[], dtype: DType = "f32"): TensorType {
  return { shape: [...shape], dtype };
}

/** Number of elements of a shape (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Formats a shape as `128x768`. */
export function formatShape(shape: readonly number[]): string {
  return shape.join("x");
}

/** Formats a type in the IR's text form. */
export function formatType(t: TensorType): string {
  const dims = t.shape.map((d) => `${d}x`).join("");
  const enc = t.sparse ? `, bsr<${formatShape(t.sparse.block)}, nnz = ${t.sparse.nnzBlocks}>` : "";
  return `tensor<${dims}${t.dtype}${enc}>`;
}

/** Whether two shapes are equal. */
export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Whether two types are equal, encoding included. */
export function sameType(a: TensorType, b: TensorType): boolean {
  if (a.dtype !== b.dtype || !sameShape(a.shape, b.shape)) return false;
  if (!a.sparse || !b.sparse) return !a.sparse && !b.sparse;
  return sameShape(a.sparse.block, b.sparse.block) && a.sparse.nnzBlocks === b.sparse.nnzBlocks;
}

/** The block grid `[blockRows, blockCols]` of a BSR matrix, rounding partial blocks up. */
export function bsrGrid(shape: readonly number[], block: readonly [number, number]): [number, number] {
  return [Math.ceil(shape[0] / block[0]), Math.ceil(shape[1] / block[1])];
}
