/**
 * Compile-time packing of block-sparse (BSR) weights for the wasm BSR kernels
 * (codegen/wasm/bsr.ts).
 *
 * Weight values (`packBsrData`): the kernel walks each block row of W one row chunk (`rows`
 * rows of the block, the variant's register blocking) at a time, and within a chunk every block
 * of the row, column after column, so the packed layout is exactly that stream. For block row
 * `br` with blocks `p0 .. p1 - 1` (`cnt = p1 - p0`), chunk `c` (block rows `r0 = c · rows` ..
 * `r0 + rc - 1`, `rc = min(rows, R - r0)`), the i-th block of the row, column j and chunk row r:
 * `p0·R·C + r0·cnt·C + i·rc·C + j·rc + r`. Every block row is one contiguous stream and all of
 * them are in order, so the total length is `nnz·R·C`. Values outside W (ragged edge blocks
 * beyond N or K) are stored as 0, whatever SciPy's padding held.
 *
 * Row-grouped variants are packed by codegen/grouped_pack.ts (dense panels per group, and an
 * index of output rows).
 *
 * Index (`packBsrIndex`, generic variants only): `indptr` (nbr + 1 block offsets) followed by,
 * per block, the byte offset of its first column's row in the transposed x scratch
 * (`indices[b] · C · Mp · 4`, Mp = the padded token count).
 */

import type { BsrSpec, BsrVariant } from "./wasm/bsr.ts";
import { paddedTokens } from "./wasm/bsr.ts";
import { packGroupedData, packGroupedIndex, unpackGroupedData } from "./grouped_pack.ts";

/** The weight values in the layout the kernel of `variant` reads, from SciPy's `[nnz, R, C]`. */
export function packBsrData(spec: BsrSpec, variant: BsrVariant, data: Float32Array): Float32Array {
  if (variant.grouped) return packGroupedData(spec, data);
  const [R, C] = spec.block;
  const nnz = spec.indices.length;
  if (data.length < nnz * R * C) {
    throw new Error(`packBsrData: ${data.length} values, ${nnz} blocks need ${nnz * R * C}`);
  }
  const out = new Float32Array(nnz * R * C);
  const nbr = spec.indptr.length - 1;
  const rows = variant.rows;
  for (let br = 0; br < nbr; br++) {
    const p0 = spec.indptr[br], cnt = spec.indptr[br + 1] - p0;
    for (let r0 = 0; r0 < R; r0 += rows) {
      const rc = Math.min(rows, R - r0);
      for (let i = 0; i < cnt; i++) {
        const b = p0 + i;
        const col0 = spec.indices[b] * C;
        const base = p0 * R * C + r0 * cnt * C + i * rc * C;
        for (let j = 0; j < C; j++) {
          for (let r = 0; r < rc; r++) {
            const inside = br * R + r0 + r < spec.N && col0 + j < spec.K;
            out[base + j * rc + r] = inside ? data[(b * R + r0 + r) * C + j] : 0;
          }
        }
      }
    }
  }
  return out;
}

/** Inverse of packBsrData (for tests): SciPy's `[nnz, R, C]`, zeros outside W. */
export function unpackBsrData(spec: BsrSpec, variant: BsrVariant, packed: Float32Array): Float32Array {
  if (variant.grouped) return unpackGroupedData(spec, packed);
  const [R, C] = spec.block;
  const out = new Float32Array(spec.indices.length * R * C);
  const nbr = spec.indptr.length - 1;
  for (let br = 0; br < nbr; br++) {
    const p0 = spec.indptr[br], cnt = spec.indptr[br + 1] - p0;
    for (let r0 = 0; r0 < R; r0 += variant.rows) {
      const rc = Math.min(variant.rows, R - r0);
      for (let i = 0; i < cnt; i++) {
        const base = p0 * R * C + r0 * cnt * C + i * rc * C;
        for (let j = 0; j < C; j++) {
          for (let r = 0; r < rc; r++) out[((p0 + i) * R + r0 + r) * C + j] = packed[base + j * rc + r];
        }
      }
    }
  }
  return out;
}

/** The index generic variants read (indptr, then each block's byte offset into x^T); undefined for specialized ones. */
export function packBsrIndex(spec: BsrSpec, variant: BsrVariant): Int32Array | undefined {
  if (variant.grouped) return packGroupedIndex(spec);
  if (variant.specialized) return undefined;
  const C = spec.block[1];
  const Mp = paddedTokens(spec.M, variant);
  const nbr = spec.indptr.length - 1;
  const out = new Int32Array(nbr + 1 + spec.indices.length);
  out.set(spec.indptr.subarray(0, nbr + 1), 0);
  for (let b = 0; b < spec.indices.length; b++) out[nbr + 1 + b] = spec.indices[b] * C * Mp * 4;
  return out;
}
