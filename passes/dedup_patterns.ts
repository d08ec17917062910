/**
 * `dedup-patterns`: finds identical sparsity patterns across a model (whole matrices, block rows
 * and block columns), puts BSR weights in canonical form and marks every `bsr_dense` op with the
 * id of its weight's pattern, so that codegen emits one kernel per distinct pattern. It also
 * reports how much structure there is to reuse, the instrumentation the paper's discussion asks
 * for. It runs after `bsr-lower`: `prune{block=1x32},bsr-lower,dedup-patterns`.
 *
 * **Which ops.** Every `bsr_dense` whose `w` is a declared BSR weight (a BSR function parameter
 * has no pattern at compile time and is left alone). A weight used by several ops is one pattern.
 *
 * **Canonical form** is SciPy's `has_canonical_format`: within each block row the block columns
 * (`indices`) are strictly increasing. A weight that is not canonical is rewritten as SciPy's
 * `sort_indices()` and `sum_duplicates()` would: its blocks are sorted by block column (the
 * `data` blocks move with them) and blocks of the same block row and column are summed into
 * one (their products were summed anyway; the nnz in the weight's type goes down). The new
 * arrays go through `ctx.weights.set`. `bsr-lower` already writes canonical weights, so this
 * matters for imported or hand-written ones.
 *
 * **Pattern ids.** A weight's pattern is its logical shape `[N, K]`, its block `RxC` and its
 * canonical `indptr` and `indices` (not the dtype or the values). Its id is `p` and the first
 * hex digits of a 64-bit hash of those, at least 8 and as many as the module needs for distinct
 * patterns to get distinct ids (equality is decided by comparing the arrays, never by the hash
 * alone; a full-hash collision would get a `-2` suffix). The id is set as the op's `pattern`
 * attribute; equal ids mean equal patterns, in this module and, for the same ids, in any other.
 * Codegen shares one kernel among ops with equal `pattern` and equal kernel signature (rows M of
 * x, dtype, bias or not, activation): the report counts kernels that way.
 *
 * **Block-row and block-column patterns.** A block row's pattern is its list of block columns; a
 * block column's pattern is the set of block rows that store a block in it (an empty row or
 * column is a pattern too). The reuse factor of a weight is block rows / distinct block-row
 * patterns: 1 when every row is different, 32 when 128 rows have 4 patterns.
 *
 * **The report.** `patternReport(m, weights)` (exported) gives, per weight: name, shape, block,
 * stored blocks, grid blocks, block density, block rows, distinct block-row patterns (and how
 * many of them occur in two rows or more), block columns, distinct block-column patterns, the
 * reuse factor, the pattern id, how many other weights share it, the number of ops, and a short
 * code-sharing note; then the distinct whole-matrix patterns with their weights, and model
 * totals (weights, ops, distinct patterns, kernels needed without dedup (one per op) and with,
 * stored and grid blocks, overall density, block rows, row patterns summed per weight and
 * distinct across the whole model). With `table=true` (default) the pass logs it on stderr as
 * a table (`formatPatternTable`). `deno task compile --report FILE.json` writes it as JSON.
 *
 * **Why the CLI writes the file.** Passes run on a copy of the module and nothing is written
 * unless the whole pipeline succeeds; a pass writing a file would break that, and would need the
 * compile worker to grant write access to a path hidden in pipeline text. So the pass only logs;
 * the CLI computes the same report (the same function) on the final module and writes it
 * (`formatPatternReportJson`) after the output, with write access to the report's folder
 * granted by the launcher (`cli/compile.ts`). `--report` needs `dedup-patterns` in the pipeline.
 *
 * **Output.** Statistics `weights` (BSR weights marked), `ops` (ops marked), `patterns`
 * (distinct whole-matrix patterns), `kernels` (kernels needed with dedup) and `canonicalized`
 * (weights rewritten to canonical form). Returns "changed" iff a weight was rewritten or an op's
 * `pattern` was added or changed (an op already carrying its id is not a change).
 */

import { attrFromJs } from "../ir/attrs.ts";
import type { Module, Op, Weight } from "../ir/module.ts";
import { BsrTensor, roundToDType, type Tensor } from "../ir/tensor.ts";
import { bsrGrid, formatShape, numel, type TensorType } from "../ir/types.ts";
import { definePass } from "./pass.ts";

const options = {
  table: { type: "bool", default: true, doc: "log the per-weight pattern table on stderr" },
} as const;

const statistics = {
  weights: "BSR weights marked",
  ops: "bsr_dense ops marked",
  patterns: "distinct whole-matrix patterns",
  kernels: "kernels needed with dedup",
  canonicalized: "weights put in canonical form",
} as const;

/** Weight data by weight: a pass context's `ctx.weights` or a `WeightStore`. */
export interface WeightSource {
  /** The data of a declared weight. */
  get(w: Weight): Tensor;
}

/** Whether the block columns of every block row are strictly increasing (SciPy's has_canonical_format). */
export function isCanonical(indices: Int32Array, indptr: Int32Array): boolean {
  for (let r = 0; r + 1 < indptr.length; r++) {
    for (let k = indptr[r] + 1; k < indptr[r + 1]; k++) if (indices[k] <= indices[k - 1]) return false;
  }
  return true;
}

/**
 * The canonical form of BSR arrays with blocks of `blockSize` elements: block columns sorted in
 * each block row (stably, data moving with its block), duplicates summed into the first. Returns
 * new arrays and the number of blocks merged away.
 */
export function canonicalBsr(
  data: Float32Array,
  indices: Int32Array,
  indptr: Int32Array,
  blockSize: number,
): { data: Float32Array; indices: Int32Array; indptr: Int32Array; merged: number } {
  const outIndices: number[] = [];
  const out = new Float32Array(data.length);
  const outPtr = new Int32Array(indptr.length);
  for (let r = 0; r + 1 < indptr.length; r++) {
    const ks = [];
    for (let k = indptr[r]; k < indptr[r + 1]; k++) ks.push(k);
    ks.sort((a, b) => indices[a] - indices[b] || a - b);
    let last = -1;
    for (const k of ks) {
      const src = data.subarray(k * blockSize, (k + 1) * blockSize);
      if (indices[k] === last) {
        const at = (outIndices.length - 1) * blockSize;
        for (let j = 0; j < blockSize; j++) out[at + j] += src[j];
      } else {
        out.set(src, outIndices.length * blockSize);
        outIndices.push(indices[k]);
        last = indices[k];
      }
    }
    outPtr[r + 1] = outIndices.length;
  }
  return {
    data: out.slice(0, outIndices.length * blockSize),
    indices: Int32Array.from(outIndices),
    indptr: outPtr,
    merged: indices.length - outIndices.length,
  };
}

/** The pattern facts of one weight, as the report gives them. */
export interface WeightPatterns {
  /** The weight's name, without `@`. */
  name: string;
  /** Logical shape `[N, K]` (`[out, in]`). */
  shape: [number, number];
  /** Block shape `[R, C]`. */
  block: [number, number];
  /** Stored blocks. */
  nnzBlocks: number;
  /** Blocks of the grid (block rows × block columns). */
  gridBlocks: number;
  /** nnzBlocks / gridBlocks. */
  density: number;
  /** Block rows, ceil(N / R). */
  blockRows: number;
  /** Block rows that store nothing. */
  emptyBlockRows: number;
  /** Distinct block-row patterns (lists of block columns). */
  rowPatterns: number;
  /** Distinct block-row patterns that occur in two block rows or more. */
  rowPatternsReused: number;
  /** Block columns, ceil(K / C). */
  blockCols: number;
  /** Distinct block-column patterns (sets of block rows). */
  colPatterns: number;
  /** blockRows / rowPatterns. */
  reuseFactor: number;
  /** The whole-matrix pattern id, as in the ops' `pattern` attribute. */
  pattern: string;
  /** Other weights with the same pattern. */
  sharedWith: number;
  /** bsr_dense ops using the weight. */
  ops: number;
  /** What code can be shared, in words. */
  sharing: string;
}

/** A distinct whole-matrix pattern and the weights that have it. */
export interface PatternGroup {
  /** The id. */
  id: string;
  /** Logical shape `[N, K]`. */
  shape: [number, number];
  /** Block shape `[R, C]`. */
  block: [number, number];
  /** Stored blocks. */
  nnzBlocks: number;
  /** The weights, in declaration order. */
  weights: string[];
}

/** The pattern report of a module: per weight, per distinct pattern, and totals. */
export interface PatternReport {
  /** Always `sparrow-pattern-report`. */
  format: "sparrow-pattern-report";
  /** Version of the format: 1. */
  version: 1;
  /** The module's name. */
  module: string;
  /** One entry per BSR weight used by a bsr_dense op, in declaration order. */
  weights: WeightPatterns[];
  /** The distinct whole-matrix patterns, in order of first appearance. */
  patterns: PatternGroup[];
  /** Model totals. */
  totals: {
    /** BSR weights. */
    weights: number;
    /** bsr_dense ops over them. */
    ops: number;
    /** Distinct whole-matrix patterns. */
    patterns: number;
    /**
     * Kernels codegen needs: one per op without dedup; with it, one per distinct
     * (pattern, M, dtype, bias, activation).
     */
    kernels: { withoutDedup: number; withDedup: number };
    /** Stored blocks. */
    nnzBlocks: number;
    /** Grid blocks. */
    gridBlocks: number;
    /** Stored elements (blocks × R × C) / grid elements. */
    density: number;
    /** Block rows. */
    blockRows: number;
    /** Distinct block-row patterns, summed over the weights. */
    rowPatterns: number;
    /** Distinct block-row patterns across all weights (same block, K and block columns). */
    rowPatternsAcrossWeights: number;
    /** blockRows / rowPatterns. */
    reuseFactor: number;
  };
}

/** A 32-bit murmur3 round. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3's finalizer. */
function fmix(h: number, length: number): string {
  h ^= length;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0).toString(16).padStart(8, "0");
}

/** 64 bits of hash (16 hex digits) of a list of int32 words, from two seeded murmur3 lanes. */
function hash64(words: readonly ArrayLike<number>[]): string {
  let a = 0x5bd1e995, b = 0x1b873593 ^ 0x9747b28c, n = 0;
  for (const ws of words) {
    for (let i = 0; i < ws.length; i++, n++) {
      a = mix(a, ws[i]);
      b = mix(b, ws[i] ^ Math.imul(n, 0x27d4eb2f));
    }
  }
  return fmix(a, n) + fmix(b, n);
}

/** A weight's canonical pattern arrays, computed without touching its data. */
function canonicalPattern(t: BsrTensor): { indices: Int32Array; indptr: Int32Array } {
  if (isCanonical(t.indices, t.indptr)) return { indices: t.indices, indptr: t.indptr };
  const { indices, indptr } = canonicalBsr(new Float32Array(t.indices.length), t.indices, t.indptr, 1);
  return { indices, indptr };
}

/** Whether two int arrays are equal. */
function sameInts(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The bsr_dense ops over each declared BSR weight, in declaration order of the weights. */
export function bsrWeightUses(m: Module): Map<Weight, Op[]> {
  const uses = new Map<Weight, Op[]>();
  for (const f of m.funcs) {
    for (const op of f.body) {
      const v = op.operands[1];
      const w = op.name === "bsr_dense" && v?.kind === "weight" ? m.weights.get(v.name) : undefined;
      if (!w?.type.sparse) continue;
      const ops = uses.get(w) ?? [];
      ops.push(op);
      uses.set(w, ops);
    }
  }
  return new Map([...m.weights.values()].filter((w) => uses.has(w)).map((w) => [w, uses.get(w)!]));
}

/** Rounds for the report. */
const round = (x: number, digits = 4) => Number.isFinite(x) ? Number(x.toFixed(digits)) : 0;

/** One weight's facts, before ids are known. */
interface Analysed {
  facts: Omit<WeightPatterns, "pattern" | "sharedWith" | "sharing">;
  hash: string;
  indices: Int32Array;
  indptr: Int32Array;
  /** Keys of its block rows across weights. */
  rowKeys: Set<string>;
  /** The bsr_dense ops over it. */
  uses: Op[];
}

function analyse(w: Weight, t: BsrTensor, uses: Op[]): Analysed {
  const [N, K] = w.type.shape;
  const [R, C] = w.type.sparse!.block;
  const [gr, gc] = bsrGrid([N, K], [R, C]);
  const { indices, indptr } = canonicalPattern(t);
  const rows = new Map<string, number>();
  const cols: number[][] = Array.from({ length: gc }, () => []);
  let empty = 0;
  for (let r = 0; r < gr; r++) {
    const row = indices.subarray(indptr[r], indptr[r + 1]);
    if (row.length === 0) empty++;
    const key = row.join(",");
    rows.set(key, (rows.get(key) ?? 0) + 1);
    for (const c of row) cols[c].push(r);
  }
  const colPatterns = new Set(cols.map((c) => c.join(","))).size;
  const nnz = indices.length;
  return {
    facts: {
      name: w.name,
      shape: [N, K],
      block: [R, C],
      nnzBlocks: nnz,
      gridBlocks: gr * gc,
      density: round(gr * gc === 0 ? 0 : nnz / (gr * gc)),
      blockRows: gr,
      emptyBlockRows: empty,
      rowPatterns: rows.size,
      rowPatternsReused: [...rows.values()].filter((n) => n >= 2).length,
      blockCols: gc,
      colPatterns,
      reuseFactor: round(rows.size === 0 ? 0 : gr / rows.size, 2),
      ops: uses.length,
    },
    hash: hash64([[0x62737200, N, K, R, C], indptr, indices]),
    indices,
    indptr,
    rowKeys: new Set([...rows.keys()].map((k) => `${R}x${C}/${K}:${k}`)),
    uses,
  };
}

/**
 * The pattern report of `m` with weight data from `weights` (see the module comment). Weights
 * need not be canonical: patterns are compared in canonical form.
 */
export function patternReport(m: Module, weights: WeightSource): PatternReport {
  const uses = bsrWeightUses(m);
  const analysed = [...uses].map(([w, ops]) => analyse(w, weights.get(w) as BsrTensor, ops));

  // Distinct patterns: equal hash and equal arrays (shape and block are hashed and in the key).
  const groups: { a: Analysed; members: Analysed[] }[] = [];
  const byKey = new Map<string, { a: Analysed; members: Analysed[] }[]>();
  const groupOf = new Map<Analysed, { a: Analysed; members: Analysed[] }>();
  for (const a of analysed) {
    const key = `${a.hash}/${a.facts.shape}/${a.facts.block}`;
    const candidates = byKey.get(key) ?? [];
    byKey.set(key, candidates);
    let g = candidates.find((c) => sameInts(c.a.indptr, a.indptr) && sameInts(c.a.indices, a.indices));
    if (!g) {
      g = { a, members: [] };
      candidates.push(g);
      groups.push(g);
    }
    g.members.push(a);
    groupOf.set(a, g);
  }
  // Ids: the shortest hash prefix (>= 8 digits) that tells the distinct hashes apart.
  const hashes = [...new Set(groups.map((g) => g.a.hash))];
  let digits = 8;
  while (digits < 16 && new Set(hashes.map((h) => h.slice(0, digits))).size < hashes.length) digits++;
  const ids = new Map<object, string>();
  const seen = new Map<string, number>();
  for (const g of groups) {
    const base = `p${g.a.hash.slice(0, digits)}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    ids.set(g, n === 1 ? base : `${base}-${n}`);
  }

  // Kernels: one per op without dedup; with dedup, one per distinct pattern and signature.
  const kernelsOf = new Map<Analysed, Set<string>>();
  const weightsOfKernel = new Map<string, Set<Analysed>>();
  for (const a of analysed) {
    const keys = new Set(a.uses.map((op) => {
      const [x, , bias] = op.operands;
      const activation = op.attrs.get("activation")?.value ?? "none";
      const M = numel(x.type.shape) / a.facts.shape[1];
      return `${ids.get(groupOf.get(a)!)}|${M}|${x.type.dtype}|${bias !== undefined}|${activation}`;
    }));
    kernelsOf.set(a, keys);
    for (const k of keys) weightsOfKernel.set(k, (weightsOfKernel.get(k) ?? new Set()).add(a));
  }

  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const reports: WeightPatterns[] = analysed.map((a) => {
    const g = groupOf.get(a)!;
    const others = g.members.length - 1;
    const kernelMates = new Set([...kernelsOf.get(a)!].flatMap((k) => [...weightsOfKernel.get(k)!]));
    kernelMates.delete(a);
    const notes = [];
    if (kernelMates.size > 0) notes.push(`shares kernel with ${plural(kernelMates.size, "other")}`);
    else if (others > 0) notes.push(`same pattern as ${plural(others, "other")}`);
    const reused = a.facts.rowPatternsReused;
    if (reused > 0) notes.push(`${plural(reused, "block-row pattern")} reused ≥2x`);
    return { ...a.facts, pattern: ids.get(g)!, sharedWith: others, sharing: notes.join("; ") || "none" };
  });
  const sum = (f: (a: Analysed) => number) => analysed.reduce((s, a) => s + f(a), 0);
  const elements = (a: Analysed, blocks: number) => blocks * a.facts.block[0] * a.facts.block[1];
  const gridElements = sum((a) => elements(a, a.facts.gridBlocks));
  const blockRows = sum((a) => a.facts.blockRows);
  const rowPatterns = sum((a) => a.facts.rowPatterns);
  return {
    format: "sparrow-pattern-report",
    version: 1,
    module: m.name,
    weights: reports,
    patterns: groups.map((g) => ({
      id: ids.get(g)!,
      shape: g.a.facts.shape,
      block: g.a.facts.block,
      nnzBlocks: g.a.facts.nnzBlocks,
      weights: g.members.map((a) => a.facts.name),
    })),
    totals: {
      weights: analysed.length,
      ops: sum((a) => a.uses.length),
      patterns: groups.length,
      kernels: { withoutDedup: sum((a) => a.uses.length), withDedup: weightsOfKernel.size },
      nnzBlocks: sum((a) => a.facts.nnzBlocks),
      gridBlocks: sum((a) => a.facts.gridBlocks),
      density: round(gridElements === 0 ? 0 : sum((a) => elements(a, a.facts.nnzBlocks)) / gridElements),
      blockRows,
      rowPatterns,
      rowPatternsAcrossWeights: new Set(analysed.flatMap((a) => [...a.rowKeys])).size,
      reuseFactor: round(rowPatterns === 0 ? 0 : blockRows / rowPatterns, 2),
    },
  };
}

/** The report as JSON text: two-space indent, number lists such as shapes on one line, a final newline. */
export function formatPatternReportJson(r: PatternReport): string {
  const text = JSON.stringify(r, null, 2).replace(
    /\[\s+(-?[\d.]+(?:,\s+-?[\d.]+)*)\s+\]/g,
    (_, xs: string) => `[${xs.split(/,\s+/).join(", ")}]`,
  );
  return `${text}\n`;
}

/** The report as table lines: a header, one row per weight, and two lines of totals. */
export function formatPatternTable(r: PatternReport): string[] {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const head = [
    "weight",
    "shape",
    "block",
    "blocks",
    "density",
    "rows",
    "row-pat",
    "reuse",
    "col-pat",
    "pattern",
  ];
  const rows = r.weights.map((w) => [
    `@${w.name}`,
    formatShape(w.shape),
    formatShape(w.block),
    `${w.nnzBlocks}/${w.gridBlocks}`,
    pct(w.density),
    String(w.blockRows),
    String(w.rowPatterns),
    `${w.reuseFactor.toFixed(2)}x`,
    String(w.colPatterns),
    w.pattern,
  ]);
  const table = [head, ...rows];
  const widths = head.map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const left = new Set([0, 9]);
  const line = (row: string[]) =>
    row.map((cell, c) => left.has(c) ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  ");
  const t = r.totals;
  return [
    `${line(head)}  sharing`,
    ...rows.map((row, i) => `${line(row)}  ${r.weights[i].sharing}`),
    `total: ${t.weights} weights, ${t.ops} ops, ${t.patterns} distinct patterns: ` +
    `${t.kernels.withoutDedup} kernels without dedup, ${t.kernels.withDedup} with`,
    `total: ${t.nnzBlocks}/${t.gridBlocks} blocks (${
      pct(t.density)
    } of the elements), ${t.blockRows} block rows, ` +
    `${t.rowPatterns} block-row patterns (reuse ${t.reuseFactor.toFixed(2)}x), ` +
    `${t.rowPatternsAcrossWeights} distinct across weights`,
  ];
}

/** The pass. */
export const dedupPatterns = definePass({
  name: "dedup-patterns",
  description: "Canonicalizes BSR weights and marks bsr_dense ops with pattern ids (one kernel per pattern).",
  options,
  statistics,
  filter: { ops: ["bsr_dense"] },
  runOnModule(m, ctx) {
    const uses = bsrWeightUses(m);
    let changed = false;
    for (const w of uses.keys()) {
      const t = ctx.weights.get(w) as BsrTensor;
      if (isCanonical(t.indices, t.indptr)) continue;
      const [R, C] = w.type.sparse!.block;
      const c = canonicalBsr(t.data as Float32Array, t.indices, t.indptr, R * C);
      if (c.merged > 0 && m.funcs.some((f) => f.returns.includes(w))) {
        ctx.log(`@${w.name} is not canonical but is returned, so its nnz cannot change; left as it is`);
        continue;
      }
      const type: TensorType = { ...w.type, sparse: { ...w.type.sparse!, nnzBlocks: c.indices.length } };
      const bsr = new BsrTensor(type, c.data, c.indices, c.indptr);
      if (c.merged > 0) roundToDType(bsr); // f16 / bf16 sums
      w.type = type;
      ctx.weights.set(w.name, bsr);
      ctx.stat("canonicalized");
      changed = true;
      ctx.log(
        `@${w.name}: sorted its block columns${c.merged > 0 ? `, summed ${c.merged} duplicate blocks` : ""}` +
          ` (canonical form, nnz = ${c.indices.length})`,
      );
    }

    const report = patternReport(m, ctx.weights);
    const spec = ctx.registry.get("bsr_dense")?.attrs.pattern;
    if (!spec) throw ctx.error(undefined, "the op registry's bsr_dense has no 'pattern' attribute");
    report.weights.forEach((r) => {
      for (const op of uses.get(m.weights.get(r.name)!)!) {
        const old = op.attrs.get("pattern");
        if (old?.kind === "string" && old.value === r.pattern) continue;
        op.attrs.set("pattern", attrFromJs(spec, r.pattern));
        changed = true;
      }
    });
    const t = report.totals;
    if (t.weights > 0) {
      ctx.stat("weights", t.weights);
      ctx.stat("ops", t.ops);
      ctx.stat("patterns", t.patterns);
      ctx.stat("kernels", t.kernels.withDedup);
    }
    if (ctx.options.table && t.weights > 0) {
      ctx.log(`@${m.name}: sparsity patterns of ${t.weights} BSR weights`);
      for (const line of formatPatternTable(report)) ctx.log(line);
    }
    return changed ? "changed" : "unchanged";
  },
});
