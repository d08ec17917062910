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
 * **Output.** Statistics `weights` (BSR weights marked), `ops` (ops marked), `patterns`
 * (distinct whole-matrix patterns), `kernels` (kernels needed with dedup) and `canonicalized`
 * (weights rewritten to canonical form). Returns "changed" iff a weight was rewritten or an op's
 * `pattern` was added or changed (an op already carrying its id is not a change).
 */

import { attrFromJs } from "../ir/attrs.ts";
import { canonicalBsr, isCanonical } from "../ir/bsr_pattern.ts";
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
    if (ctx.options.table && t.weights > 0) {
      ctx.log(`@${m.name}: sparsity patterns of ${t.weights} BSR weights`);
      for (const line of formatPatternTable(report)) ctx.log(line);
    }
    return changed ? "changed" : "unchanged";
  },
});
