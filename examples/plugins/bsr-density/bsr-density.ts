/**
 * `bsr-density`: an analysis pass over block-sparse weights. For every weight a `bsr_dense`
 * uses, it reads the `BsrTensor` from the weight store and, from its `indptr` alone, reports the
 * stored blocks and density, how many blocks each block row stores (min, median, max, empty
 * rows), and a histogram of block rows by how many blocks they store. It changes nothing.
 *
 * ```sh
 * deno task compile ../shared/models/sst2-bert-mini-pruned-1x32-80 --plugin examples/plugins/bsr-density/bsr-density.ts \
 *   --passes 'bsr-lower,bsr-density' > /dev/null
 * ```
 *
 * Block row r stores `indptr[r + 1] - indptr[r]` blocks out of the grid's block columns
 * (`ceil(in / C)` for a weight `[out, in]` in RxC blocks). The histogram has at most `bins`
 * bins of equal width over 0..columns: one per count when they fit. An even pruning gives a narrow
 * histogram; a wide one means some output rows kept far more weights than others, which is
 * where a sparse kernel's threads, which split the work by block rows, wait for each other.
 */

import { BsrTensor, definePass, type Weight } from "../../../mod.ts";

/** What `indptr` says about one BSR weight. */
export interface BsrDensity {
  /** The weight's name. */
  readonly weight: string;
  /** The logical shape `[out, in]`. */
  readonly shape: readonly number[];
  /** The block shape `[R, C]`. */
  readonly block: readonly [number, number];
  /** Block rows and block columns of the grid. */
  readonly grid: readonly [number, number];
  /** Stored blocks. */
  readonly nnz: number;
  /** Stored blocks per block row. */
  readonly perRow: readonly number[];
  /** Block rows by stored blocks: each bin covers the counts `from..to` (inclusive). */
  readonly histogram: readonly { readonly from: number; readonly to: number; rows: number }[];
}

/** The density of a BSR weight from its `indptr`, with at most `bins` histogram bins. */
export function bsrDensity(name: string, t: BsrTensor, bins: number): BsrDensity {
  const [out, inner] = t.sparseType.shape;
  const block = t.sparseType.sparse!.block;
  const grid: [number, number] = [Math.ceil(out / block[0]), Math.ceil(inner / block[1])];
  const perRow = Array.from({ length: grid[0] }, (_, r) => t.indptr[r + 1] - t.indptr[r]);
  // Counts run 0..grid[1]: grid[1] + 1 values, cut into bins of equal width.
  const width = Math.ceil((grid[1] + 1) / bins);
  const histogram = Array.from({ length: Math.ceil((grid[1] + 1) / width) }, (_, i) => ({
    from: i * width,
    to: Math.min(grid[1], (i + 1) * width - 1),
    rows: 0,
  }));
  for (const count of perRow) histogram[Math.floor(count / width)].rows++;
  return { weight: name, shape: [out, inner], block, grid, nnz: t.indptr[grid[0]], perRow, histogram };
}

/** The median of some numbers (the lower one of the middle two). */
function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

const percent = (x: number) => `${(100 * x).toFixed(1)}%`;

export default definePass({
  name: "bsr-density",
  description:
    "Reports each BSR weight's stored blocks and a histogram of blocks per block row (analysis only).",
  options: {
    bins: { type: "int", default: 10, doc: "at most this many histogram bins over blocks per block row" },
  },
  filter: { ops: ["bsr_dense"] },
  runOnModule(m, ctx) {
    const bins = ctx.options.bins;
    if (bins < 1) throw ctx.error(m.loc, `bins must be at least 1, got ${bins}`);
    const seen = new Set<string>();
    let stored = 0, total = 0;
    for (const f of m.funcs) {
      for (const op of f.body) {
        const w = op.operands[1];
        if (op.name !== "bsr_dense" || w.kind !== "weight" || seen.has(w.name)) continue;
        seen.add(w.name);
        const t = ctx.weights.get(w as Weight);
        if (!(t instanceof BsrTensor)) throw ctx.error(op, `${w.ref} is not stored as BSR`);
        const d = bsrDensity(w.name, t, bins);
        const cells = d.grid[0] * d.grid[1];
        stored += d.nnz;
        total += cells;
        const empty = d.perRow.filter((n) => n === 0).length;
        ctx.log(
          `${w.ref} [${d.shape.join("x")}] ${d.block.join("x")}: ${d.nnz}/${cells} blocks (${
            percent(d.nnz / cells)
          }); blocks per row of ${d.grid[1]}: min ${Math.min(...d.perRow)}, median ${median(d.perRow)}, max ${
            Math.max(...d.perRow)
          }, empty rows ${empty}/${d.grid[0]}`,
        );
        const bar = d.histogram.map((b) => `${b.from === b.to ? b.from : `${b.from}-${b.to}`}:${b.rows}`);
        ctx.log(`  block rows by blocks stored: ${bar.join(" ")}`);
      }
    }
    ctx.log(
      `${seen.size} BSR weights: ${stored}/${total} blocks stored (${percent(total ? stored / total : 0)})`,
    );
    return "unchanged";
  },
});
