/**
 * The `prune` pass: hand-checked small matrices (1x1 magnitude, 1x2 and 2x1 blocks where l1
 * and l2 disagree, a ragged 3x5 with 2x2 blocks, the [in, out] layout), per-matrix and global
 * thresholds, rules files, target and attention-only on a synthetic bert-tiny, determinism,
 * achieved sparsity, bad options, and the pruned model still running in the interpreter.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bertConfig, buildBertModule } from "../../frontend/synthetic_bert.ts";
import { seededInputs, seededWeights } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { Tensor } from "../../ir/tensor.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";
import { createPassRegistry } from "../../passes/index.ts";
import { PassError, type PipelineResult, runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { lowest } from "../../passes/prune.ts";

const registry = createPassRegistry;

/** A weight of a test module: name, its stored shape, and whether dense uses it with transpose_b. */
interface W {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly values: number[];
  readonly transposeB?: boolean;
}

/** A module with one dense op per weight, and a store holding the weights' values. */
function model(ws: readonly W[]): { m: Module; store: WeightStore } {
  const decls = ws.map((w) => `    @${w.name} : tensor<${w.rows}x${w.cols}xf32>`).join("\n");
  const tb = (w: W) => w.transposeB ?? true;
  const K = (w: W) => tb(w) ? w.cols : w.rows;
  const N = (w: W) => tb(w) ? w.rows : w.cols;
  const params = ws.map((w, i) => `%x${i}: tensor<1x${K(w)}xf32>`).join(", ");
  const results = ws.map((w) => `tensor<1x${N(w)}xf32>`).join(", ");
  const ops = ws.map((w, i) =>
    `    %y${i} = dense %x${i}, @${w.name} {transpose_b = ${tb(w)}} : tensor<1x${N(w)}xf32>`
  ).join("\n");
  const text = `module @t {
  weights "t.safetensors" {
${decls}
  }

  func @main(${params}) -> (${results}) {
${ops}
    return ${ws.map((_, i) => `%y${i}`).join(", ")}
  }
}
`;
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!), []);
  const store = memoryStore(new Map(ws.map((w) => [w.name, Tensor.from([w.rows, w.cols], "f32", w.values)])));
  return { m: module!, store };
}

/** Runs `prune{...}` with the given options (values JSON-quoted when strings). */
function run(
  m: Module,
  store: WeightStore,
  opts: Record<string, string | number | boolean> = {},
  logs: string[] = [],
): PipelineResult {
  const text = Object.entries(opts)
    .map(([k, v]) => `${k}=${typeof v === "string" && !/^[\w.-]+$/.test(v) ? JSON.stringify(v) : v}`)
    .join(" ");
  return runPipeline(m, parsePipeline(`prune{${text}}`, registry()), {
    weights: store,
    log: (l) => logs.push(l),
  });
}

function pruned(r: PipelineResult, name: string): number[] {
  const t = r.changedWeights.get(name);
  assert.ok(t, `weight ${name} was replaced`);
  return [...t.data];
}

function stat(r: PipelineResult, name: string): number | undefined {
  return r.stats.find((s) => s.pass === "prune" && s.name === name)?.value;
}

const ALL = { target: ".*" };

Deno.test("prune: 1x1 magnitude zeroes the smallest |w|, and l1/l2 agree on 1x1", () => {
  const { m, store } = model([{ name: "a", rows: 2, cols: 3, values: [1, -5, 2, -0.5, 3, 0.1] }]);
  for (const score of ["magnitude", "l1", "l2"]) {
    const logs: string[] = [];
    const r = run(m, store, { ...ALL, sparsity: 0.5, score }, logs);
    assert.deepEqual(pruned(r, "a"), [0, -5, 2, 0, 3, 0], score);
    assert.equal(stat(r, "weights"), 1);
    assert.equal(stat(r, "blocks"), 3);
    assert.equal(stat(r, "elements"), 3);
    assert.equal(r.runs[0].changed, true);
    assert.deepEqual(logs, [
      `prune: @a [2x3] block 1x1 ${score}: pruned 3/6 blocks (50.00%), element sparsity 50.00%`,
    ]);
  }
  assert.deepEqual(
    [...store.get(m.weights.get("a")!).data],
    [1, -5, 2, -0.5, 3, Math.fround(0.1)],
    "input untouched",
  );
});

Deno.test("prune: 1x2 and 2x1 blocks where l1 and l2 choose differently", () => {
  // Rows [3, 0] and [2, 2]: l1 (mean |w|) 1.5 < 2, l2 (rms) 2.12 > 2.
  const rows = model([{ name: "a", rows: 2, cols: 2, values: [3, 0, 2, 2] }]);
  const opts = { ...ALL, sparsity: 0.5, block: "1x2" };
  assert.deepEqual(pruned(run(rows.m, rows.store, { ...opts, score: "l1" }), "a"), [0, 0, 2, 2]);
  assert.deepEqual(pruned(run(rows.m, rows.store, { ...opts, score: "l2" }), "a"), [3, 0, 0, 0]);
  // The same as columns, with 2x1 blocks.
  const cols = model([{ name: "a", rows: 2, cols: 2, values: [3, 2, 0, 2] }]);
  const opts2 = { ...ALL, sparsity: 0.5, block: "2x1" };
  assert.deepEqual(pruned(run(cols.m, cols.store, { ...opts2, score: "l1" }), "a"), [0, 2, 0, 2]);
  assert.deepEqual(pruned(run(cols.m, cols.store, { ...opts2, score: "l2" }), "a"), [3, 0, 0, 0]);
});

Deno.test("prune: a weight stored [in, out] (transpose_b = false) is cut in its [out, in] view", () => {
  // Stored [in=2, out=2]: W[out, in] = transpose. 1x2 blocks of W are columns of the stored data.
  const { m, store } = model([{ name: "a", rows: 2, cols: 2, values: [3, 2, 0, 2], transposeB: false }]);
  // W = [[3, 0], [2, 2]]: l1 prunes W row 0 = stored column 0.
  assert.deepEqual(pruned(run(m, store, { ...ALL, sparsity: 0.5, block: "1x2", score: "l1" }), "a"), [
    0,
    2,
    0,
    2,
  ]);
});

Deno.test("prune: a ragged 3x5 with 2x2 blocks scores edge blocks by rms over the elements they have", () => {
  // Blocks (rms): b0 rows 0-1 cols 0-1: 1.6; b1 cols 2-3: 5; b2 col 4: 9 (2 elements);
  // b3 row 2 cols 0-1: 4; b4 row 2 cols 2-3: 0.5; b5 row 2 col 4: 3 (1 element).
  // k = round(0.3 * 6) = 2: b4 and b0. (Raw l2 norms would take b4 and b5: 0.71 and 3 < 3.2.)
  const values = [
    [1.6, 1.6, 5, 5, 9],
    [1.6, 1.6, 5, 5, 9],
    [4, 4, 0.5, 0.5, 3],
  ].flat();
  const { m, store } = model([{ name: "a", rows: 3, cols: 5, values }]);
  const logs: string[] = [];
  const r = run(m, store, { ...ALL, sparsity: 0.3, block: "2x2" }, logs);
  const want = [
    [0, 0, 5, 5, 9],
    [0, 0, 5, 5, 9],
    [4, 4, 0, 0, 3],
  ].flat();
  assert.deepEqual(pruned(r, "a").map((x) => Math.fround(x)), want.map((x) => Math.fround(x)));
  assert.equal(stat(r, "blocks"), 2);
  assert.equal(stat(r, "elements"), 6);
  assert.deepEqual(logs, [
    "prune: @a [3x5] block 2x2 l2: pruned 2/6 blocks (33.33%), element sparsity 40.00%",
  ]);
  // A block larger than the matrix (in either dimension) is refused, naming the weight.
  for (const block of ["1x384", "4x2", "4096x4096"]) {
    assert.throws(
      () => run(m, store, { ...ALL, sparsity: 0.34, block }),
      (e: Error) =>
        e instanceof PassError &&
        e.message.includes(`block ${block} is larger than weight '@a' (3x5 as [out, in])`),
    );
  }
  // A block as large as the matrix fits: one block.
  assert.deepEqual(
    pruned(run(m, store, { ...ALL, sparsity: 0.5, block: "3x5" }), "a"),
    new Array(15).fill(0),
  );
});

Deno.test("prune: per-matrix vs global thresholds, ties by declaration order then block index", () => {
  const { m, store } = model([
    { name: "a", rows: 1, cols: 4, values: [1, 2, 3, 4] },
    { name: "b", rows: 1, cols: 4, values: [10, 20, 30, 40] },
  ]);
  const per = run(m, store, { ...ALL, sparsity: 0.5 });
  assert.deepEqual(pruned(per, "a"), [0, 0, 3, 4]);
  assert.deepEqual(pruned(per, "b"), [0, 0, 30, 40]);
  const global = run(m, store, { ...ALL, sparsity: 0.5, scope: "global" });
  assert.deepEqual(pruned(global, "a"), [0, 0, 0, 0]);
  assert.equal(global.changedWeights.has("b"), false);
  assert.equal(stat(global, "weights"), 1);

  const ties = model([
    { name: "a", rows: 1, cols: 3, values: [1, 1, 1] },
    { name: "b", rows: 1, cols: 3, values: [-1, 1, -1] },
  ]);
  const t = run(ties.m, ties.store, { ...ALL, sparsity: 0.5, scope: "global" });
  assert.deepEqual(pruned(t, "a"), [0, 0, 0]);
  assert.equal(t.changedWeights.has("b"), false);
  const t2 = run(ties.m, ties.store, { ...ALL, sparsity: 0.5 });
  assert.deepEqual(pruned(t2, "a"), [0, 0, 1], "round(1.5) = 2, lowest indices first");
  assert.deepEqual(pruned(t2, "b"), [0, 0, -1]);
});

Deno.test("prune: rules files override per target, first match wins", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const { m, store } = model([
      { name: "a", rows: 1, cols: 4, values: [1, 2, 3, 4] },
      { name: "b", rows: 1, cols: 4, values: [4, 3, 2, 1] },
    ]);
    const rules = join(dir, "rules.json");
    Deno.writeTextFileSync(
      rules,
      JSON.stringify([{ match: "^b$", sparsity: 0.25, block: "1x2", score: "l1" }, {
        match: ".",
        sparsity: 0.75,
      }]),
    );
    const logs: string[] = [];
    const r = run(m, store, { ...ALL, rules }, logs);
    assert.deepEqual(pruned(r, "a"), [0, 0, 0, 4]);
    assert.deepEqual(pruned(r, "b"), [4, 3, 0, 0], "round(0.25 * 2) = 1 block of 1x2");
    assert.ok(logs.some((l) => l.includes("@b [1x4] block 1x2 l1: pruned 1/2 blocks")), logs.join("\n"));

    // Under global scope a rule's own sparsity keeps its target out of the pool.
    Deno.writeTextFileSync(rules, JSON.stringify([{ match: "^b$", sparsity: 0.25 }, { match: "zzz" }]));
    const logs2: string[] = [];
    const g = run(m, store, { ...ALL, rules, scope: "global", sparsity: 0.5 }, logs2);
    assert.deepEqual(pruned(g, "a"), [0, 0, 3, 4]);
    assert.deepEqual(pruned(g, "b"), [4, 3, 2, 0]);
    assert.ok(logs2.some((l) => l.includes("rules entry 1 (/zzz/) matched no target")), logs2.join("\n"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

function tinyBert(): { m: Module; store: WeightStore } {
  const c = bertConfig("bert-tiny", { seq: 8 });
  const m = buildBertModule(c, "w.safetensors");
  return { m, store: seededWeights(m, 3) };
}

Deno.test("prune: target and attention-only on a synthetic bert-tiny; embeddings, LayerNorm, biases untouched", () => {
  const { m, store } = tinyBert();
  const names = (r: PipelineResult) => [...r.changedWeights.keys()].sort();
  const byDefault = names(run(m, store));
  assert.equal(byDefault.length, 12, byDefault.join("\n"));
  assert.ok(byDefault.every((n) => /encoder\.layer\.[01]\..*(query|key|value|dense)\.weight$/.test(n)));
  const attention = names(run(m, store, { "attention-only": true }));
  assert.equal(attention.length, 8, attention.join("\n"));
  assert.ok(attention.every((n) => /(query|key|value)\.weight$|attention\.output\.dense\.weight$/.test(n)));
  const layer0 = names(run(m, store, { target: String.raw`layer\.0\.` }));
  assert.equal(layer0.length, 6);
  // Even a catch-all target only reaches the w operands of dense ops.
  const all = names(run(m, store, ALL));
  assert.ok(all.length >= 12);
  assert.ok(all.every((n) => n.endsWith(".weight") && !/embeddings|LayerNorm|bias/.test(n)), all.join("\n"));
  for (const n of all) assert.equal(m.weights.get(n)!.type.shape.length, 2);
});

Deno.test("prune: achieved sparsity is within one block of the target; pruning is deterministic", () => {
  const { m, store } = tinyBert();
  for (
    const [block, sparsity, scope] of [
      ["1x1", 0.8, "per-matrix"],
      ["1x32", 0.7, "per-matrix"],
      [
        "1x48",
        0.55,
        "per-matrix",
      ],
      ["32x1", 0.9, "global"],
      ["4x4", 0.5, "global"],
    ] as const
  ) {
    const opts = { block, sparsity, scope };
    const logs: string[] = [];
    const r = run(m, store, opts, logs);
    const [R, C] = block.split("x").map(Number);
    let blocks = 0, pruned = 0;
    for (const [name, t] of r.changedWeights) {
      const [out, inp] = t.shape;
      const grid = Math.ceil(out / R) * Math.ceil(inp / C);
      blocks += grid;
      const line = logs.find((l) => l.includes(`@${name} `))!;
      const [k, total] = /pruned (\d+)\/(\d+) blocks/.exec(line)!.slice(1).map(Number);
      assert.equal(total, grid);
      pruned += k;
      if (scope === "per-matrix") assert.ok(Math.abs(k - sparsity * grid) <= 0.5, line);
    }
    assert.ok(
      Math.abs(pruned - sparsity * blocks) <= (scope === "global" ? 0.5 : r.changedWeights.size * 0.5),
    );
    assert.equal(stat(r, "blocks"), pruned);
    const again = run(m, store, opts);
    for (const [name, t] of r.changedWeights) {
      assert.deepEqual(again.changedWeights.get(name)!.data, t.data, `${name} ${block}`);
    }
  }
});

Deno.test("prune: the pruned model still runs in the interpreter", () => {
  const { m, store } = tinyBert();
  const r = run(m, store, { block: "1x32", sparsity: 0.9 });
  const inputs = seededInputs(r.module.funcs[0], 1);
  const got = interpret(r.module, inputs, r.weights);
  const want = interpret(m, inputs, store);
  assert.equal(got.length, want.length);
  got.forEach((t, i) => {
    assert.deepEqual(t.shape, want[i].shape);
    assert.ok(t.data.every((x) => Number.isFinite(x)));
  });
  assert.ok(got.some((t, i) => t.data.some((x, j) => x !== want[i].data[j])), "pruning changed the outputs");
});

Deno.test("prune: sparsity 0 and already-zero blocks leave the module unchanged", () => {
  const { m, store } = model([{ name: "a", rows: 1, cols: 4, values: [0, 0, 3, 4] }]);
  const r0 = run(m, store, { ...ALL, sparsity: 0 });
  assert.equal(r0.runs[0].changed, false);
  assert.equal(r0.changedWeights.size, 0);
  const r = run(m, store, { ...ALL, sparsity: 0.5 });
  assert.equal(r.runs[0].changed, false, "the chosen blocks were zero already");
  assert.equal(stat(r, "blocks"), 2);
  // No targets: the default target matches no name here.
  assert.equal(run(m, store).runs[0].changed, false);
});

Deno.test("prune: bad options and rules files are clear errors naming the pass", () => {
  const { m, store } = model([{ name: "a", rows: 2, cols: 4, values: [1, 2, 3, 4, 5, 6, 7, 8] }]);
  const fails = (opts: Record<string, string | number>, pattern: RegExp) => {
    let e: unknown;
    try {
      run(m, store, { ...ALL, ...opts });
    } catch (err) {
      e = err;
    }
    assert.ok(e instanceof PassError, `${JSON.stringify(opts)} fails with a PassError, got ${e}`);
    assert.equal(e.pass, "prune");
    assert.match(e.message, pattern);
  };
  fails({ score: "magnitude", block: "1x4" }, /magnitude' needs 1x1 blocks, got 1x4 for '@a'/);
  // Out-of-range values are refused by the pipeline parser (the option's declared range).
  assert.throws(
    () => parsePipeline("prune{sparsity=1.2}", registry()),
    /option 'sparsity' of 'prune' must be in \[0, 1\), got '1.2'/,
  );
  assert.throws(
    () => parsePipeline("prune{sparsity=1}", registry()),
    /option 'sparsity' of 'prune' must be in \[0, 1\)/,
  );
  fails({ target: "(" }, /option 'target' is not a valid regex/);
  const dir = Deno.makeTempDirSync();
  try {
    const file = join(dir, "rules.json");
    const cases: [string, RegExp][] = [
      ["[{", /rules file '.*rules\.json' is not valid JSON/],
      [`{"match": "a"}`, /rules file '.*rules\.json' must hold a JSON array/],
      [
        `[{"match": "a"}, {"match": "b", "block": "1by4"}]`,
        /rules\.json': entry 1: 'block' must be a block shape/,
      ],
      [`[{"match": "a", "sparsity": 1.5}]`, /entry 0: 'sparsity' must be a number in \[0, 1\), got 1.5/],
      [`[{"sparsity": 0.5}]`, /entry 0: 'match' must be a regex string/],
      [`[{"match": "["}]`, /entry 0: 'match' is not a valid regex/],
      [`[{"match": "a", "blocks": "1x4"}]`, /entry 0: unknown key 'blocks'/],
      [`[3]`, /entry 0: must be an object/],
      [`[{"match": "a", "score": "magnitude", "block": "1x2"}]`, /magnitude' needs 1x1 blocks/],
    ];
    for (const [text, pattern] of cases) {
      Deno.writeTextFileSync(file, text);
      fails({ rules: file }, pattern);
    }
    fails({ rules: join(dir, "missing.json") }, /cannot read rules file '.*missing\.json'/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  // Bad enum values are caught by the pipeline parser.
  assert.throws(() => parsePipeline("prune{score=l3}", registry()), /must be one of l1, l2, magnitude/);
});

Deno.test("prune: a weight also used by another op (a tied embedding) is skipped; mixed transpose_b fails", () => {
  const text = `module @tied {
  weights "t.safetensors" {
    @emb : tensor<4x2xf32>
  }

  func @main(%ids: tensor<1x3xi64>) -> (tensor<1x3x4xf32>) {
    %h = gather @emb, %ids : tensor<1x3x2xf32>
    %logits = dense %h, @emb {transpose_b = true} : tensor<1x3x4xf32>
    return %logits
  }
}
`;
  const { module } = parse(text, { file: "tied.sir" });
  assert.deepEqual(verify(module!), []);
  const store = seededWeights(module!, 1);
  const logs: string[] = [];
  const r = run(module!, store, ALL, logs);
  assert.equal(r.runs[0].changed, false);
  assert.deepEqual(logs, [
    "prune: @emb is skipped: it is used by ops other than as the w of dense (shared weights)",
  ]);

  const mixed = parse(
    `module @mixed {
  weights "t.safetensors" {
    @w : tensor<2x2xf32>
  }

  func @main(%x: tensor<1x2xf32>) -> (tensor<1x2xf32>) {
    %a = dense %x, @w {transpose_b = true} : tensor<1x2xf32>
    %b = dense %a, @w : tensor<1x2xf32>
    return %b
  }
}
`,
    { file: "mixed.sir" },
  ).module!;
  assert.deepEqual(verify(mixed), []);
  let e: unknown;
  try {
    run(mixed, seededWeights(mixed, 1), ALL);
  } catch (err) {
    e = err;
  }
  assert.ok(e instanceof PassError);
  assert.match(
    e.message,
    /mixed\.sir:7:.*pass 'prune' failed: weight '@w' is used both with and without transpose_b/,
  );
});

Deno.test("prune: block selection matches a full sort by (score, index), with many ties", () => {
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (const [n, distinct] of [[1, 1], [10, 3], [1000, 5], [5000, 1000], [3000, 1]]) {
    const scores = Float64Array.from({ length: n }, () => Math.floor(next() * distinct));
    const order = [...scores.keys()].sort((a, b) => scores[a] - scores[b] || a - b);
    for (const k of [0, 1, Math.round(n / 3), n - 1, n]) {
      const want = new Uint8Array(n);
      for (const j of order.slice(0, k)) want[j] = 1;
      assert.deepEqual(lowest(scores, k), want, `n=${n} k=${k}`);
    }
  }
});
