/**
 * The `dedup-patterns` pass: canonical form (SciPy's sort_indices and sum_duplicates, data moving
 * with its blocks, the interpreter agreeing before and after), pattern ids (equal patterns equal
 * ids, different ones different, shared weights, BSR parameters left alone, stale ids replaced,
 * a second run unchanged), block-row and block-column pattern counts on hand-derived matrices,
 * the report's fields and table, and a pruned synthetic bert-tiny through the CLI with
 * `--report`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bertConfig, buildBertModule, writeSyntheticBert } from "../../frontend/synthetic_bert.ts";
import { seededInputs, seededWeights } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import { loadModule, loadWeights } from "../../ir/load.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { BsrTensor, type Tensor } from "../../ir/tensor.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";
import { canonicalBsr, isCanonical } from "../../ir/bsr_pattern.ts";
import { formatPatternTable, type PatternReport, patternReport } from "../../passes/pattern_report.ts";
import { createPassRegistry } from "../../passes/index.ts";
import { type PipelineResult, runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { CAN_RUN, compile } from "../compile_cli.ts";

function pipeline(m: Module, store: WeightStore, text: string, logs: string[] = []): PipelineResult {
  return runPipeline(m, parsePipeline(text, createPassRegistry()), {
    weights: store,
    log: (l) => logs.push(l),
  });
}

function stat(r: PipelineResult, name: string): number | undefined {
  return r.stats.find((s) => s.pass === "dedup-patterns" && s.name === name)?.value;
}

/** Max |a - b| over the outputs of `a` and `b` on seeded inputs. */
function maxDiff(a: Module, as: WeightStore, b: Module, bs: WeightStore, seed = 1): number {
  const inputs = seededInputs(a.funcs[0], seed);
  const x = interpret(a, inputs, as), y = interpret(b, inputs, bs);
  let d = 0;
  x.forEach((t, i) => {
    for (let j = 0; j < t.data.length; j++) d = Math.max(d, Math.abs(t.data[j] - y[i].data[j]));
  });
  return d;
}

/** The module printed, parsed again and verified against `store`'s entries. */
function reparse(m: Module, store: WeightStore): Module {
  const text = print(m);
  const { module, diagnostics } = parse(text, { file: "after.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!, { weights: store.entries() }), []);
  return module!;
}

/** A BSR weight of a test module: `[N, K]`, its block, SciPy arrays (default data: (k+1)*10 + j). */
interface W {
  readonly name: string;
  readonly shape: readonly [number, number];
  readonly block: readonly [number, number];
  readonly indices: readonly number[];
  readonly indptr: readonly number[];
  readonly data?: readonly number[];
}

/** One `bsr_dense %xI, @w {attrs}` per entry of `ops` (weight name and optional attrs), x `[2, K]`. */
function model(
  ws: readonly W[],
  ops: readonly (readonly [string, string?])[],
): { m: Module; store: WeightStore } {
  const byName = new Map(ws.map((w) => [w.name, w]));
  const type = (w: W) =>
    `tensor<${w.shape[0]}x${w.shape[1]}xf32, bsr<${w.block[0]}x${w.block[1]}, nnz = ${w.indices.length}>>`;
  const params = ops.map(([n], i) => `%x${i}: tensor<2x${byName.get(n)!.shape[1]}xf32>`).join(", ");
  const results = ops.map(([n]) => `tensor<2x${byName.get(n)!.shape[0]}xf32>`).join(", ");
  const body = ops.map(([n, attrs], i) =>
    `    %y${i} = bsr_dense %x${i}, @${n}${attrs ? ` {${attrs}}` : ""} : tensor<2x${
      byName.get(n)!.shape[0]
    }xf32>`
  ).join("\n");
  const text = `module @t {
  weights "t.safetensors" {
${ws.map((w) => `    @${w.name} : ${type(w)}`).join("\n")}
  }

  func @main(${params}) -> (${results}) {
${body}
    return ${ops.map((_, i) => `%y${i}`).join(", ")}
  }
}
`;
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!), []);
  const tensors = new Map<string, Tensor>();
  for (const w of ws) {
    const size = w.block[0] * w.block[1];
    const data = w.data ??
      w.indices.flatMap((_, k) => Array.from({ length: size }, (_, j) => (k + 1) * 10 + j));
    tensors.set(
      w.name,
      new BsrTensor(
        module!.weights.get(w.name)!.type,
        Float32Array.from(data),
        Int32Array.from(w.indices),
        Int32Array.from(w.indptr),
      ),
    );
  }
  return { m: module!, store: memoryStore(tensors) };
}

/** The `pattern` attribute of each op of @main. */
function patterns(m: Module): (string | undefined)[] {
  return m.funcs[0].body.map((op) => op.attrs.get("pattern")?.value as string | undefined);
}

// 8x8 in 2x2 blocks, a 4x4 grid:
//   block row 0: columns 0, 2      block column 0: rows 0, 1
//   block row 1: columns 0, 2      block column 1: row 2
//   block row 2: column 1          block column 2: rows 0, 1
//   block row 3: (empty)           block column 3: (empty)
// Row patterns {0,2}, {1}, {}: 3, of which {0,2} occurs twice; column patterns {0,1}, {2}, {}: 3.
const P: W = { name: "p", shape: [8, 8], block: [2, 2], indices: [0, 2, 0, 2, 1], indptr: [0, 2, 4, 5, 5] };

Deno.test("dedup-patterns: canonicalBsr sorts each block row, moves the data, sums duplicates", () => {
  assert.equal(isCanonical(Int32Array.from([0, 2, 1]), Int32Array.from([0, 2, 3])), true);
  assert.equal(isCanonical(Int32Array.from([2, 0, 1]), Int32Array.from([0, 2, 3])), false);
  assert.equal(isCanonical(Int32Array.from([1, 1]), Int32Array.from([0, 2])), false); // duplicate
  // Blocks of 2 elements; row 0 holds columns 3, 0, 1; row 1 columns 2, 0, 2 (a duplicate).
  const c = canonicalBsr(
    Float32Array.from([30, 31, 0, 1, 10, 11, 20, 21, 0, 1, 200, 210]),
    Int32Array.from([3, 0, 1, 2, 0, 2]),
    Int32Array.from([0, 3, 6]),
    2,
  );
  assert.deepEqual([...c.indices], [0, 1, 3, 0, 2]);
  assert.deepEqual([...c.indptr], [0, 3, 5]);
  assert.deepEqual([...c.data], [0, 1, 10, 11, 30, 31, 0, 1, 220, 231]);
  assert.equal(c.merged, 1);
  // Canonical input comes back equal.
  const same = canonicalBsr(
    Float32Array.from([1, 2, 3]),
    Int32Array.from([0, 4, 1]),
    Int32Array.from([0, 2, 3]),
    1,
  );
  assert.deepEqual([...same.indices], [0, 4, 1]);
  assert.deepEqual([...same.data], [1, 2, 3]);
  assert.equal(same.merged, 0);
});

Deno.test("dedup-patterns: block-row and block-column patterns of a hand-derived matrix", () => {
  const { m, store } = model([P], [["p"]]);
  const r = patternReport(m, store);
  const w = r.weights[0];
  assert.deepEqual(
    { ...w, pattern: undefined },
    {
      name: "p",
      shape: [8, 8],
      block: [2, 2],
      nnzBlocks: 5,
      gridBlocks: 16,
      density: 0.3125,
      blockRows: 4,
      emptyBlockRows: 1,
      rowPatterns: 3,
      rowPatternsReused: 1,
      blockCols: 4,
      colPatterns: 3,
      reuseFactor: 1.33,
      pattern: undefined,
      sharedWith: 0,
      ops: 1,
      sharing: "1 block-row pattern reused ≥2x",
    },
  );
  assert.match(w.pattern, /^p[0-9a-f]{8}$/);
  // 1x1 blocks (CSR) of a 3x4: rows {0, 3}, {0, 3}, {0, 3}: one row pattern used 3 times;
  // columns {0, 1, 2}, {}, {}, {0, 1, 2}: two column patterns.
  const csr = model([{
    name: "c",
    shape: [3, 4],
    block: [1, 1],
    indices: [0, 3, 0, 3, 0, 3],
    indptr: [0, 2, 4, 6],
  }], [[
    "c",
  ]]);
  const c = patternReport(csr.m, csr.store).weights[0];
  assert.deepEqual([c.rowPatterns, c.rowPatternsReused, c.colPatterns, c.reuseFactor], [1, 1, 2, 3]);
  // Patterns are compared in canonical form: an unsorted copy of P has P's id and counts.
  const unsorted = model([P, { ...P, name: "q", indices: [2, 0, 0, 2, 1] }], [["p"], ["q"]]);
  const u = patternReport(unsorted.m, unsorted.store);
  assert.equal(u.weights[1].pattern, u.weights[0].pattern);
  assert.equal(u.weights[1].rowPatterns, 3);
});

Deno.test("dedup-patterns: equal patterns get one id, different ones differ; kernels and totals", () => {
  const { m, store } = model(
    [
      P,
      { ...P, name: "same", data: new Array(20).fill(1) }, // same pattern, other values
      { ...P, name: "other", indices: [0, 2, 0, 3, 1], indptr: [0, 2, 4, 5, 5] },
      { ...P, name: "wide", shape: [8, 9], block: [2, 2], indices: [0, 2, 0, 2, 1], indptr: [0, 2, 4, 5, 5] },
    ],
    [["p"], ["same"], ["other"], ["p", "activation = gelu"], ["wide"]],
  );
  const logs: string[] = [];
  const r = pipeline(m, store, "dedup-patterns", logs);
  const ids = patterns(r.module);
  assert.equal(ids[0], ids[1], "same pattern, same id");
  assert.equal(ids[3], ids[0], "an op sharing the weight has its id");
  assert.notEqual(ids[2], ids[0], "another index list");
  assert.notEqual(ids[4], ids[0], "another shape, same arrays");
  assert.equal(new Set(ids).size, 3);
  assert.ok(ids.every((id) => /^p[0-9a-f]{8}$/.test(id!)), ids.join());
  assert.equal(r.runs[0].changed, true);
  assert.equal(r.changedWeights.size, 0, "canonical weights are not rewritten");
  const text = print(r.module);
  assert.ok(
    text.includes(`%y3 = bsr_dense %x3, @p {activation = gelu, pattern = "${ids[0]}"} : tensor<2x8xf32>`),
  );
  assert.deepEqual([stat(r, "weights"), stat(r, "ops"), stat(r, "patterns"), stat(r, "kernels")], [
    4,
    5,
    3,
    4,
  ]);
  assert.equal(stat(r, "canonicalized"), undefined);

  const report = patternReport(r.module, store);
  assert.deepEqual(report.totals, {
    weights: 4,
    ops: 5,
    patterns: 3,
    // One per op without dedup; with: p and same share one, p with gelu needs its own.
    kernels: { withoutDedup: 5, withDedup: 4 },
    nnzBlocks: 20,
    gridBlocks: 68,
    density: 0.2941,
    blockRows: 16,
    // 3 + 3 + 4 ({0,2}, {0,3}, {1}, {}) + 3.
    rowPatterns: 13,
    // K = 8 rows {0,2}, {1}, {} and {0,3}; K = 9 rows are apart: {0,2}, {1}, {}.
    rowPatternsAcrossWeights: 7,
    reuseFactor: 1.23,
  });
  assert.deepEqual(report.patterns.map((p) => p.weights), [["p", "same"], ["other"], ["wide"]]);
  assert.deepEqual(report.patterns[0], {
    id: ids[0],
    shape: [8, 8],
    block: [2, 2],
    nnzBlocks: 5,
    weights: ["p", "same"],
  });
  assert.equal(report.weights[0].sharedWith, 1);
  assert.equal(report.weights[0].ops, 2);
  assert.equal(report.weights[0].sharing, "shares kernel with 1 other; 1 block-row pattern reused ≥2x");
  assert.equal(report.weights[2].sharing, "none");
  assert.equal(report.format, "sparrow-pattern-report");
  assert.equal(report.version, 1);
  assert.equal(report.module, "t");
  // The JSON round-trips (no typed arrays or undefined in it).
  assert.deepEqual(JSON.parse(JSON.stringify(report)), report);

  // One pattern under two activations: two kernels, and the note says so.
  const two = model([P, { ...P, name: "t" }], [["p"], ["t", "activation = tanh"]]);
  const twoReport = patternReport(two.m, two.store);
  assert.deepEqual([twoReport.totals.patterns, twoReport.totals.kernels.withDedup], [1, 2]);
  assert.equal(twoReport.weights[0].sharing, "same pattern as 1 other; 1 block-row pattern reused ≥2x");

  // The table: header, one row per weight, two totals lines; logged with the pass's name.
  const table = formatPatternTable(report);
  assert.equal(table.length, 1 + 4 + 2);
  assert.match(
    table[0],
    /^weight\s+shape\s+block\s+blocks\s+density\s+rows\s+row-pat\s+reuse\s+col-pat\s+pattern\s+sharing$/,
  );
  assert.match(
    table[1],
    new RegExp(
      `^@p\\s+8x8\\s+2x2\\s+5/16\\s+31\\.3%\\s+4\\s+3\\s+1\\.33x\\s+3\\s+${ids[0]}\\s+shares kernel`,
    ),
  );
  assert.equal(table[5], "total: 4 weights, 5 ops, 3 distinct patterns: 5 kernels without dedup, 4 with");
  assert.deepEqual(logs.slice(0, 1 + table.length), [
    "dedup-patterns: @t: sparsity patterns of 4 BSR weights",
    ...table.map((l) => `dedup-patterns: ${l}`),
  ]);
  // Then the row groups: every weight here has few block-row patterns. p and same share their
  // groups; p's gelu op needs a kernel of its own.
  assert.deepEqual(logs.slice(1 + table.length).map((l) => l.replace(/p[0-9a-f]{8}/g, "ID")), [
    "dedup-patterns: row groups: 4 weights with at most 32 block-row patterns: 13 groups over 16 block " +
    "rows (1.23 rows per group); 3 distinct group signatures: 5 row-grouped kernels without dedup, 4 with " +
    "(the compile report gives their code size; its cost model decides which products run them)",
    "dedup-patterns:   groups ID: 3 groups of 4 block rows, @p, @same",
    "dedup-patterns:   groups ID: 4 groups of 4 block rows, @other",
    "dedup-patterns:   groups ID: 3 groups of 4 block rows, @wide",
  ]);
  assert.deepEqual([stat(r, "grouped"), stat(r, "row-groups"), stat(r, "group-kernels")], [4, 13, 4]);

  // A second run finds every op marked: unchanged, and silent with table=false.
  const quiet: string[] = [];
  const again = pipeline(r.module, store, "dedup-patterns{table=false}", quiet);
  assert.equal(again.runs[0].changed, false);
  assert.deepEqual(quiet, []);
  assert.deepEqual(patterns(again.module), ids);
});

Deno.test("dedup-patterns: a stale id is replaced; BSR parameters are left alone", () => {
  const text = `module @s {
  weights "s.safetensors" {
    @w : tensor<4x4xf32, bsr<2x2, nnz = 2>>
  }

  func @main(%x: tensor<1x4xf32>, %v: tensor<4x4xf32, bsr<2x2, nnz = 1>>)
      -> (tensor<1x4xf32>, tensor<1x4xf32>) {
    %a = bsr_dense %x, @w {pattern = "p00000000"} : tensor<1x4xf32>
    %b = bsr_dense %x, %v : tensor<1x4xf32>
    return %a, %b
  }
}
`;
  const m = parse(text, { file: "s.sir" }).module!;
  assert.deepEqual(verify(m), []);
  const store = seededWeights(m, 1);
  const r = pipeline(m, store, "dedup-patterns{table=false}");
  assert.equal(r.runs[0].changed, true);
  const [a, b] = patterns(r.module);
  assert.match(a!, /^p[0-9a-f]{8}$/);
  assert.notEqual(a, "p00000000");
  assert.equal(b, undefined);
  // No bsr_dense over a weight: the filter still lets it run (bsr_dense is there), nothing to do.
  const params = parse(text.replace(/@w \{pattern = "p00000000"\}/, "%v"), { file: "s.sir" }).module!;
  const none = pipeline(params, store, "dedup-patterns");
  assert.equal(none.runs[0].changed, false);
  assert.equal(stat(none, "weights"), undefined);
});

Deno.test("dedup-patterns: unsorted blocks are sorted (data moved), duplicates summed, same outputs", () => {
  // Block row 0 stores columns 2, 0 (unsorted); block row 1 stores column 1 twice.
  const { m, store } = model(
    [
      { name: "u", shape: [4, 6], block: [2, 2], indices: [2, 0, 1, 1], indptr: [0, 2, 4] },
      { name: "v", shape: [4, 6], block: [2, 2], indices: [0, 2, 1], indptr: [0, 2, 3] },
    ],
    [["u"], ["v"]],
  );
  const logs: string[] = [];
  const r = pipeline(m, store, "dedup-patterns{table=false}", logs);
  const u = r.changedWeights.get("u") as BsrTensor;
  assert.ok(u instanceof BsrTensor);
  assert.deepEqual([...u.indices], [0, 2, 1]);
  assert.deepEqual([...u.indptr], [0, 2, 3]);
  // Blocks k = 0..3 held (k+1)*10 + j; the column-0 block (k = 1) comes first, the two column-1
  // blocks (k = 2, 3) are summed.
  assert.deepEqual([...u.data], [20, 21, 22, 23, 10, 11, 12, 13, 70, 72, 74, 76]);
  assert.equal(r.module.weights.get("u")!.type.sparse!.nnzBlocks, 3);
  assert.ok(!r.changedWeights.has("v"), "a canonical weight is left alone");
  assert.equal(stat(r, "canonicalized"), 1);
  assert.deepEqual(logs, [
    "dedup-patterns: @u: sorted its block columns, summed 1 duplicate blocks (canonical form, nnz = 3)",
  ]);
  // Now equal to v's pattern, so one id.
  const ids = patterns(r.module);
  assert.equal(ids[0], ids[1]);
  // The result prints, parses, verifies against the new weights and computes the same.
  const store2 = r.weights;
  const m2 = reparse(r.module, store2);
  assert.ok(maxDiff(m, store, m2, store2) <= 1e-4);
  assert.ok(isCanonical(u.indices, u.indptr));
  // Idempotent.
  const again = pipeline(m2, store2, "dedup-patterns{table=false}");
  assert.equal(again.runs[0].changed, false);
  assert.equal(again.changedWeights.size, 0);
});

Deno.test("dedup-patterns: a pruned bert-tiny after bsr-lower: every bsr_dense marked, outputs agree", () => {
  const m = buildBertModule(bertConfig("bert-tiny", { seq: 8 }), "w.safetensors");
  const store = seededWeights(m, 3);
  const lowered = pipeline(m, store, "prune{block=1x32 sparsity=0.8},bsr-lower");
  const loweredStore = lowered.weights;
  const logs: string[] = [];
  const r = pipeline(lowered.module, loweredStore, "dedup-patterns", logs);
  assert.equal(r.changedWeights.size, 0, "bsr-lower writes canonical weights");
  const ops = r.module.funcs[0].body.filter((op) => op.name === "bsr_dense");
  assert.equal(ops.length, 12);
  assert.ok(ops.every((op) => /^p[0-9a-f]{8,}$/.test(op.attrs.get("pattern")?.value as string)));
  const report: PatternReport = patternReport(r.module, loweredStore);
  assert.equal(report.totals.weights, 12);
  for (const w of report.weights) {
    assert.deepEqual(w.block, [1, 32]);
    assert.equal(w.blockCols, w.shape[1] / 32);
    // At most 2^(block columns) row patterns, and never more than the rows.
    assert.ok(w.rowPatterns <= Math.min(w.blockRows, 2 ** w.blockCols), w.name);
    assert.equal(w.reuseFactor, Number((w.blockRows / w.rowPatterns).toFixed(2)));
  }
  // The table (title, header, 12 weights, 2 totals), then the row groups of the weights with at
  // most 32 block-row patterns (or half their rows): a line, and one per distinct signature.
  const few = report.weights.filter((w) => w.rowPatterns <= 32 || w.rowPatterns <= w.blockRows / 2);
  assert.ok(few.length > 0);
  assert.equal(stat(r, "grouped"), few.length);
  assert.equal(stat(r, "row-groups"), few.reduce((n, w) => n + w.rowPatterns, 0));
  const signatures = logs.filter((l) => l.startsWith("dedup-patterns:   groups p")).length;
  assert.ok(signatures >= 1 && signatures <= few.length);
  assert.equal(logs.length, 1 + 1 + 12 + 2 + 1 + signatures, logs.join("\n"));
  assert.match(logs[16], new RegExp(`^dedup-patterns: row groups: ${few.length} weights with at most 32 `));
  assert.ok(maxDiff(lowered.module, loweredStore, reparse(r.module, loweredStore), loweredStore, 5) === 0);
});

Deno.test({
  name: "dedup-patterns: a pruned bert-tiny through the CLI writes --report and prints the table",
  ignore: !CAN_RUN,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-dedup-" });
    try {
      const path = join(dir, "bert-tiny.sir");
      await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16 }), path);
      const out = join(dir, "out", "tiny.sir");
      const reportPath = join(dir, "reports", "patterns.json");
      const passes = "prune{block=1x32 sparsity=0.8},bsr-lower,dedup-patterns";
      const r = await compile(path, "--passes", passes, "-o", out, "--report", reportPath, "--stats");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      const report = JSON.parse(await Deno.readTextFile(reportPath)) as PatternReport;
      assert.equal(report.format, "sparrow-pattern-report");
      assert.equal(report.module, "bert-tiny");
      assert.equal(report.totals.weights, 12);
      assert.equal(report.totals.kernels.withoutDedup, 12);
      assert.ok(report.totals.rowPatterns < report.totals.blockRows);
      for (const key of ["name", "shape", "block", "nnzBlocks", "density", "rowPatterns", "colPatterns"]) {
        assert.ok(key in report.weights[0], key);
      }
      // The ids in the written IR are the report's.
      const loaded = await loadModule(out);
      assert.deepEqual(loaded.diagnostics, []);
      const written = loaded.module!;
      await loadWeights(written, out);
      for (const w of report.weights) {
        const op = written.funcs[0].body.find((o) => o.operands[1]?.name === w.name)!;
        assert.equal(op.attrs.get("pattern")?.value, w.pattern, w.name);
      }
      // The table on stderr, then the files written, the IR first.
      const lines = r.stderr.split("\n");
      assert.ok(lines.includes("dedup-patterns: @bert-tiny: sparsity patterns of 12 BSR weights"), r.stderr);
      assert.ok(lines.some((l) => /^dedup-patterns: weight\s+shape\s+block\s+blocks/.test(l)), r.stderr);
      const row = lines.find((l) =>
        l.startsWith("dedup-patterns: @bert.encoder.layer.0.intermediate.dense.weight")
      );
      assert.match(row ?? "", /512x128\s+1x32\s+410\/2048\s+20\.0%\s+512\s+\d+/);
      assert.ok(lines.some((l) => l.startsWith("dedup-patterns: total: 12 weights, 12 ops,")), r.stderr);
      assert.ok(lines.includes("dedup-patterns: BSR weights marked: 12"), r.stderr);
      assert.ok(lines.indexOf(`wrote ${out}`) < lines.indexOf(`wrote ${reportPath}`), r.stderr);

      // --report without dedup-patterns is a usage error, and nothing is written.
      const bad = await compile(path, "--passes", "dce", "--report", join(dir, "none", "r.json"));
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /^error: --report needs dedup-patterns in --passes; the pipeline is: dce\n$/);
      await assert.rejects(Deno.stat(join(dir, "none")), Deno.errors.NotFound);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
