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
 * **Pattern ids** are ir/bsr_pattern.ts's, computed on the canonical arrays: a weight's pattern is
 * its logical shape `[N, K]`, its block `RxC` and its canonical `indptr` and `indices` (not the
 * dtype or the values); its id is `p` and the first hex digits of a 64-bit hash of those, at least
 * 8 and as many as the module needs for distinct patterns to get distinct ids (equality is decided
 * by comparing the arrays, never by the hash alone; a full-hash collision would get a `-2`
 * suffix). The id is set as the op's `pattern` attribute; equal ids mean equal patterns, in this
 * module and, for the same ids, in any other. Codegen names specialized kernels by it, checking
 * the arrays too (codegen/lower/bsr.ts).
 *
 * **The report** (passes/pattern_report.ts; `patternReport` and its formatters are re-exported
 * here) gives per weight its block-row and block-column patterns, reuse factor, pattern id and
 * code sharing, then the distinct patterns and model totals. With `table=true` (default) the pass logs it on stderr as a table
 * (`formatPatternTable`). `deno task compile --report FILE.json` writes it as JSON.
 *
 * **Why the CLI writes the file.** Passes run on a copy of the module and nothing is written
 * unless the whole pipeline succeeds; a pass writing a file would break that, and would need the
 * compile worker to grant write access to a path hidden in pipeline text. So the pass only logs;
 * the CLI computes the same report (the same function) on the final module and writes it
 * (`formatPatternReportJson`) after the output, with write access to the report's folder
 * granted by the launcher (`cli/compile.ts`). `--report` needs `dedup-patterns` in the pipeline.
 *
 * **Row groups.** After the table, the weights whose block rows share few column patterns (at
 * most `GROUPED_MAX_GROUPS`, ir/bsr_pattern.ts, the threshold codegen's cost model uses too) are
 * summed up: their groups of block rows, the distinct group signatures (what a row-grouped kernel
 * bakes: each group's columns and row count, codegen/wasm/grouped_bsr.ts) with the weights of
 * each, and the row-grouped kernels needed without dedup (one per op) and with (one per signature
 * and kernel signature). The compile report gives their code size (`row-grouped kernels: ...`).
 *
 * **Output.** Statistics `weights` (BSR weights marked), `ops` (ops marked), `patterns`
 * (distinct whole-matrix patterns), `kernels` (kernels needed with dedup), `canonicalized`
 * (weights rewritten to canonical form), and for row groups `grouped` (weights with few
 * block-row patterns), `row-groups` (their groups) and `group-kernels` (row-grouped kernels
 * needed with dedup). Returns "changed" iff a weight was rewritten or an op's
 * `pattern` was added or changed (an op already carrying its id is not a change).
 */

import { attrFromJs } from "../ir/attrs.ts";
import {
  bsrGroupedSignature,
  bsrGroupRows,
  bsrPatternIds,
  bsrPatternOf,
  bsrRowGroups,
  canonicalBsr,
  fewRowPatterns,
  GROUPED_MAX_GROUPS,
  isCanonical,
} from "../ir/bsr_pattern.ts";
import type { Op, Weight } from "../ir/module.ts";
import type { WeightSource } from "./pattern_report.ts";
import { BsrTensor, roundToDType } from "../ir/tensor.ts";
import type { TensorType } from "../ir/types.ts";
import { definePass } from "./pass.ts";
import { bsrWeightUses, formatPatternTable, patternReport } from "./pattern_report.ts";

export {
  formatPatternReportJson,
  formatPatternTable,
  type PatternReport,
  patternReport,
} from "./pattern_report.ts";

const options = {
  table: { type: "bool", default: true, doc: "log the per-weight pattern table on stderr" },
} as const;

const statistics = {
  weights: "BSR weights marked",
  ops: "bsr_dense ops marked",
  patterns: "distinct whole-matrix patterns",
  kernels: "kernels needed with dedup",
  canonicalized: "weights put in canonical form",
  grouped: "weights whose block rows share few column patterns (row-grouped kernel candidates)",
  "row-groups": "groups of block rows with equal columns, over those weights",
  "group-kernels": "row-grouped kernels needed with dedup",
} as const;

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
    const grouped = rowGroupReport([...uses], ctx.weights);
    if (grouped.weights > 0) {
      ctx.stat("grouped", grouped.weights);
      ctx.stat("row-groups", grouped.groups);
      ctx.stat("group-kernels", grouped.kernels);
    }
    if (ctx.options.table && t.weights > 0) {
      ctx.log(`@${m.name}: sparsity patterns of ${t.weights} BSR weights`);
      for (const line of formatPatternTable(report)) ctx.log(line);
      for (const line of grouped.lines) ctx.log(line);
    }
    return changed ? "changed" : "unchanged";
  },
});

/** The row groups of a module's BSR weights with few block-row patterns, and the report's lines. */
export interface RowGroupReport {
  /** Weights with at most `GROUPED_MAX_GROUPS` block-row patterns (or half their block rows). */
  weights: number;
  /** Their groups of block rows, summed. */
  groups: number;
  /** Their block rows, summed. */
  blockRows: number;
  /** Distinct group signatures (the columns each group keeps and its output rows: what a row-grouped kernel bakes). */
  signatures: number;
  /** Row-grouped kernels with dedup: one per distinct signature, rows M, dtype, bias and activation. */
  kernels: number;
  /** bsr_dense ops over those weights: the row-grouped kernels without dedup. */
  ops: number;
  /** The report's lines (empty when no weight qualifies). */
  lines: string[];
}

/**
 * The row-grouped side of the report: which weights' block rows share few column patterns (so
 * codegen may give them one dense micro-GEMM per group, codegen/wasm/grouped_bsr.ts), how many
 * groups, and how many kernels those need once equal groups share one across weights and
 * layers. Signatures are `bsrGroupedSignature`s named as `bsrPatternIds` names patterns; the
 * compile report gives the kernels' code size.
 */
export function rowGroupReport(uses: [Weight, Op[]][], weights: WeightSource): RowGroupReport {
  const found: {
    w: Weight;
    groups: number;
    blockRows: number;
    signature: ReturnType<typeof bsrGroupedSignature>;
  }[] = [];
  for (const [w] of uses) {
    const p = bsrPatternOf(weights.get(w) as BsrTensor);
    const groups = bsrRowGroups(p);
    const blockRows = p.indptr.length - 1;
    if (!fewRowPatterns(groups.length, blockRows)) continue;
    found.push({
      w,
      groups: groups.length,
      blockRows,
      signature: bsrGroupedSignature(p, groups, (g) => bsrGroupRows(p, g)),
    });
  }
  const ids = bsrPatternIds(found.map((f) => f.signature));
  const kernels = new Set<string>();
  const byId = new Map<string, string[]>();
  let ops = 0;
  found.forEach((f, i) => {
    byId.set(ids[i], [...(byId.get(ids[i]) ?? []), `@${f.w.name}`]);
    for (const op of uses.find(([w]) => w === f.w)![1]) {
      const [x, , bias] = op.operands;
      const K = f.w.type.shape[1];
      const M = x.type.shape.reduce((a, b) => a * b, 1) / K;
      const activation = op.attrs.get("activation")?.value ?? "none";
      kernels.add(`${ids[i]}|${M}|${x.type.dtype}|${bias !== undefined}|${activation}`);
      ops++;
    }
  });
  const sum = (get: (f: (typeof found)[number]) => number) => found.reduce((n, f) => n + get(f), 0);
  const report: RowGroupReport = {
    weights: found.length,
    groups: sum((f) => f.groups),
    blockRows: sum((f) => f.blockRows),
    signatures: byId.size,
    kernels: kernels.size,
    ops,
    lines: [],
  };
  if (found.length === 0) return report;
  report.lines.push(
    `row groups: ${report.weights} weights with at most ${GROUPED_MAX_GROUPS} block-row patterns: ` +
      `${report.groups} groups over ${report.blockRows} block rows ` +
      `(${
        (report.blockRows / report.groups).toFixed(2)
      } rows per group); ${report.signatures} distinct group ` +
      `signatures: ${report.ops} row-grouped kernels without dedup, ${report.kernels} with ` +
      `(the compile report gives their code size; its cost model decides which products run them)`,
  );
  for (const [id, ws] of byId) {
    const f = found[ids.indexOf(id)];
    report.lines.push(`  groups ${id}: ${f.groups} groups of ${f.blockRows} block rows, ${ws.join(", ")}`);
  }
  return report;
}
