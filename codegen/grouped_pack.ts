/**
 * Compile-time packing of a BSR weight for the row-grouped kernel (codegen/wasm/grouped_bsr.ts).
 *
 * Weights (`packGroupedData`): per group (in `groupedLayout` order), the group's kept weights as
 * a dense `[K', n]` matrix (K' kept columns of x, n output rows) in the dense GEMM's packed
 * layout (codegen/pack.ts): panels of 8 output rows, each stored K step after K step, element
 * `(k, f)` at `dataOffset + floor(f / 8) · Kp · 8 + k · 8 + f % 8`. Rows K' .. Kp - 1 are zero;
 * slots past the group's last output row repeat a real row's weights (`paddedFeature`), so the
 * kernel stores the same value there twice instead of branching.
 *
 * Index (`packGroupedIndex`): per group and panel, 8 byte offsets `4 · row` of the slots' output
 * rows in a row of y (and in the bias), padded slots repeating a real row's.
 */

import type { BsrSpec } from "./wasm/bsr.ts";
import { GROUP_PANEL, groupedLayout, paddedFeature } from "./wasm/grouped_bsr.ts";

/** The packed weights of `spec` from SciPy's `[nnz, R, C]` blocks. */
export function packGroupedData(spec: BsrSpec, data: Float32Array): Float32Array {
  const [R, C] = spec.block;
  if (data.length < spec.indices.length * R * C) {
    throw new Error(`packGroupedData: ${data.length} values, ${spec.indices.length} blocks need more`);
  }
  const layout = groupedLayout(spec);
  const out = new Float32Array(layout.dataLength);
  for (const g of layout.groups) {
    const n = g.features.length;
    // Kept column k: the block's position i in the row's list and the column j within it (a
    // column list may name a block column more than once: each is its own kept column).
    const where: { i: number; j: number }[] = [];
    g.columns.forEach((c, i) => {
      for (let j = 0; j < C && c * C + j < spec.K; j++) where.push({ i, j });
    });
    for (let f = 0; f < g.panels * GROUP_PANEL; f++) {
      const row = g.features[paddedFeature(f, n, layout.vectorStores)];
      const br = Math.floor(row / R), r = row - br * R;
      const base = g.dataOffset + Math.floor(f / GROUP_PANEL) * g.Kp * GROUP_PANEL + (f % GROUP_PANEL);
      where.forEach(({ i, j }, k) => {
        const b = spec.indptr[br] + i;
        out[base + k * GROUP_PANEL] = data[(b * R + r) * C + j];
      });
    }
  }
  return out;
}

/** The output-row byte offsets the kernel reads per panel. */
export function packGroupedIndex(spec: BsrSpec): Int32Array {
  const layout = groupedLayout(spec);
  const out = new Int32Array(Math.max(1, layout.indexLength));
  for (const g of layout.groups) {
    for (let f = 0; f < g.panels * GROUP_PANEL; f++) {
      out[g.indexOffset + f] = 4 * g.features[paddedFeature(f, g.features.length, layout.vectorStores)];
    }
  }
  return out;
}

/** Inverse of packGroupedData (for tests): SciPy's `[nnz, R, C]`, zeros outside W. */
export function unpackGroupedData(spec: BsrSpec, packed: Float32Array): Float32Array {
  const [R, C] = spec.block;
  const layout = groupedLayout(spec);
  const out = new Float32Array(spec.indices.length * R * C);
  for (const g of layout.groups) {
    g.features.forEach((row, f) => {
      const br = Math.floor(row / R), r = row - br * R;
      const base = g.dataOffset + Math.floor(f / GROUP_PANEL) * g.Kp * GROUP_PANEL + (f % GROUP_PANEL);
      let k = 0;
      g.columns.forEach((c, i) => {
        for (let j = 0; j < C && c * C + j < spec.K; j++, k++) {
          out[((spec.indptr[br] + i) * R + r) * C + j] = packed[base + k * GROUP_PANEL];
        }
      });
    });
  }
  return out;
}
