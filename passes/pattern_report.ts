/**
 * The pattern report of a module's block-sparse weights: how much sparsity structure there is to
 * reuse, the instrumentation the paper's discussion asks for. `dedup-patterns` logs it as a table
 * (`formatPatternTable`); `deno task compile --report FILE.json` writes it as JSON
 * (`formatPatternReportJson`), computed on the final module by the CLI with this same function.
 *
 * **Which weights.** Every declared BSR weight used as `w` by a `bsr_dense` op, in declaration
 * order (a BSR function parameter has no pattern at compile time). A weight used by several ops
 * is one pattern. Patterns and their ids are ir/bsr_pattern.ts's, compared in canonical form, so
 * a weight need not be canonical to be reported.
 *
 * **Block-row and block-column patterns.** A block row's pattern is its list of block columns; a
 * block column's pattern is the set of block rows that store a block in it (an empty row or
 * column is a pattern too). The reuse factor of a weight is block rows / distinct block-row
 * patterns: 1 when every row is different, 32 when 128 rows have 4 patterns.
 *
 * **Kernels.** Codegen shares one kernel among ops with equal `pattern` and equal kernel
 * signature (rows M of x, dtype, bias or not, activation); the report counts kernels that way.
 *
 * **Contents.** Per weight: name, shape, block, stored blocks, grid blocks, block density, block
 * rows, distinct block-row patterns (and how many of them occur in two rows or more), block
 * columns, distinct block-column patterns, the reuse factor, the pattern id, how many other
 * weights share it, the number of ops, and a short code-sharing note; then the distinct
 * whole-matrix patterns with their weights, and model totals (weights, ops, distinct patterns,
 * kernels needed without dedup (one per op) and with, stored and grid blocks, overall density,
 * block rows, row patterns summed per weight and distinct across the whole model).
 */

import { type BsrPattern, bsrPatternIds, bsrPatternOf, canonicalBsrPattern } from "../ir/bsr_pattern.ts";
import type { Module, Op, Weight } from "../ir/module.ts";
import type { BsrTensor, Tensor } from "../ir/tensor.ts";
import { bsrGrid, formatShape, numel } from "../ir/types.ts";

/** Weight data by weight: a pass context's `ctx.weights` or a `WeightStore`. */
export interface WeightSource {
  /** The data of a declared weight. */
  get(w: Weight): Tensor;
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
  /** Its pattern in canonical form. */
  pattern: BsrPattern;
  /** Keys of its block rows across weights. */
  rowKeys: Set<string>;
  /** The bsr_dense ops over it. */
  uses: Op[];
}

function analyse(w: Weight, t: BsrTensor, uses: Op[]): Analysed {
  const pattern = canonicalBsrPattern(bsrPatternOf(t));
  const [N, K] = pattern.shape;
  const [R, C] = pattern.block;
  const [gr, gc] = bsrGrid([N, K], [R, C]);
  const { indices, indptr } = pattern;
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
    pattern,
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
  const ids = new Map(bsrPatternIds(analysed.map((a) => a.pattern)).map((id, i) => [analysed[i], id]));
  // The distinct patterns, in order of first appearance, and the weights that have each.
  const groups = new Map<string, Analysed[]>();
  for (const a of analysed) {
    const id = ids.get(a)!;
    groups.set(id, [...(groups.get(id) ?? []), a]);
  }

  // Kernels: one per op without dedup; with dedup, one per distinct pattern and signature.
  const kernelsOf = new Map<Analysed, Set<string>>();
  const weightsOfKernel = new Map<string, Set<Analysed>>();
  for (const a of analysed) {
    const keys = new Set(a.uses.map((op) => {
      const [x, , bias] = op.operands;
      const activation = op.attrs.get("activation")?.value ?? "none";
      const M = numel(x.type.shape) / a.facts.shape[1];
      return `${ids.get(a)}|${M}|${x.type.dtype}|${bias !== undefined}|${activation}`;
    }));
    kernelsOf.set(a, keys);
    for (const k of keys) weightsOfKernel.set(k, (weightsOfKernel.get(k) ?? new Set()).add(a));
  }

  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const reports: WeightPatterns[] = analysed.map((a) => {
    const others = groups.get(ids.get(a)!)!.length - 1;
    const kernelMates = new Set([...kernelsOf.get(a)!].flatMap((k) => [...weightsOfKernel.get(k)!]));
    kernelMates.delete(a);
    const notes = [];
    if (kernelMates.size > 0) notes.push(`shares kernel with ${plural(kernelMates.size, "other")}`);
    else if (others > 0) notes.push(`same pattern as ${plural(others, "other")}`);
    const reused = a.facts.rowPatternsReused;
    if (reused > 0) notes.push(`${plural(reused, "block-row pattern")} reused ≥2x`);
    return { ...a.facts, pattern: ids.get(a)!, sharedWith: others, sharing: notes.join("; ") || "none" };
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
    patterns: [...groups].map(([id, [first, ...rest]]) => ({
      id,
      shape: first.facts.shape,
      block: first.facts.block,
      nnzBlocks: first.facts.nnzBlocks,
      weights: [first, ...rest].map((a) => a.facts.name),
    })),
    totals: {
      weights: analysed.length,
      ops: sum((a) => a.uses.length),
      patterns: groups.size,
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
