/**
 * Pattern-grouped pruning, `prune-reconstruct{patterns=K}` (passes/reconstruct/groups.ts): block
 * rows in at most K groups, every row of a group keeping the same block columns. On random
 * weights and correlated inputs: the exact block count, at most K distinct block-row patterns,
 * whole blocks, a group's rows sharing their columns, reconstruction beating the same mask
 * without update; the clustering finding planted patterns; the budget program against brute
 * force; through the pass manager on a small synthetic BERT, then `bsr-lower` and
 * `dedup-patterns`: at most K distinct `indices` lists per weight, exact sparsity, the report,
 * determinism under a seed, and bad options named in the error.
 */

import assert from "node:assert/strict";
import { bertConfig, buildBertModule } from "../../frontend/synthetic_bert.ts";
import { seededWeights } from "../../ir/inputs.ts";
import type { Module } from "../../ir/module.ts";
import { Random } from "../../ir/random.ts";
import type { BsrTensor } from "../../ir/tensor.ts";
import type { WeightStore } from "../../ir/weights.ts";
import { createPassRegistry } from "../../passes/index.ts";
import { PassError, type PipelineResult, runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { allocateBudgets, clusterBlockRows, distinctRowPatterns } from "../../passes/reconstruct/groups.ts";
import { accumulateGram } from "../../passes/reconstruct/linalg.ts";
import { reconstructWeight } from "../../passes/reconstruct/obs.ts";

/** Random W [out, in] and H = XᵀX of n correlated rows. */
function problem(out: number, inn: number, n: number, seed: number) {
  const rng = new Random(seed);
  const w = Float64Array.from({ length: out * inn }, () => rng.normal());
  const a = Float64Array.from({ length: inn * inn }, () => rng.normal());
  const x = new Float64Array(n * inn);
  for (let r = 0; r < n; r++) {
    const z = Array.from({ length: inn }, () => rng.normal());
    for (let j = 0; j < inn; j++) {
      let s = 0;
      for (let k = 0; k < inn; k++) s += z[k] * a[k * inn + j] * (k < 4 ? 3 : 1);
      x[r * inn + j] = s;
    }
  }
  const h = new Float64Array(inn * inn);
  accumulateGram(h, x, n, inn);
  return { w, h };
}

Deno.test("pattern groups: exact blocks, at most K patterns, shared columns per group, reconstruction helps", () => {
  const out = 64, inn = 64;
  const { w, h } = problem(out, inn, 300, 11);
  for (const block of [[1, 1], [1, 4], [1, 8], [4, 4], [2, 8], [1, 32]] as const) {
    for (const max of [1, 4, 8]) {
      for (const sparsity of [0.5, 0.8]) {
        const what = `${block.join("x")} K=${max} at ${sparsity}`;
        const r = reconstructWeight(w, out, inn, h, {
          sparsity,
          block,
          window: 32,
          groups: { max, seed: 3 },
        });
        const [R, C] = block;
        const gr = Math.ceil(out / R), gc = Math.ceil(inn / C);
        const g = r.grouping!;
        assert.ok(g.groups >= 1 && g.groups <= max, `${what}: ${g.groups} groups`);
        assert.ok(distinctRowPatterns(r.mask, gr, gc) <= g.groups, what);
        // Every row of a group has the group's mask row.
        const first = new Map<number, string>();
        for (let br = 0; br < gr; br++) {
          const row = r.mask.subarray(br * gc, (br + 1) * gc).join("");
          if (!first.has(g.group[br])) first.set(g.group[br], row);
          assert.equal(row, first.get(g.group[br]), `${what}: block row ${br}`);
        }
        // The block count: exact whenever the groups can reach it (always with more than one group here).
        const k = Math.round(sparsity * gr * gc);
        assert.equal(r.mask.reduce((n, b) => n + b, 0), r.pruned, what);
        if (g.exact) assert.equal(r.pruned, k, what);
        if (max > 1) assert.ok(g.exact, `${what}: ${r.pruned} of ${k}`);
        else assert.ok(Math.abs(r.pruned - k) <= gr / 2, what);
        // Zeros are whole blocks; kept weights are not zero.
        for (let o = 0; o < out; o++) {
          for (let i = 0; i < inn; i++) {
            const p = r.mask[Math.floor(o / R) * gc + Math.floor(i / C)] === 1;
            assert.equal(r.w[o * inn + i] === 0, p, `${what}: (${o}, ${i})`);
          }
        }
        // The OBS update never loses to the same mask without update; it strictly helps when
        // pruned blocks have kept columns after them in their rows to take up their error.
        if (r.pruned === gr * gc) continue; // one pattern and two block columns: all pruned, as close as it gets
        assert.ok(r.errorReconstructed <= r.errorMaskOnly + 1e-12, `${what}: ${r.errorReconstructed}`);
        if (gc >= 8) {
          assert.ok(
            r.errorReconstructed < r.errorMaskOnly,
            `${what}: ${r.errorReconstructed} >= ${r.errorMaskOnly}`,
          );
        }
      }
    }
  }
});

Deno.test("pattern groups: deterministic for a seed; more patterns allowed fit better", () => {
  const { w, h } = problem(64, 64, 300, 5);
  const opts = { sparsity: 0.8, block: [1, 4] as const, window: 0 };
  const a = reconstructWeight(w, 64, 64, h, { ...opts, groups: { max: 4, seed: 1 } });
  const b = reconstructWeight(w, 64, 64, h, { ...opts, groups: { max: 4, seed: 1 } });
  assert.deepEqual(a.w, b.w);
  assert.deepEqual(a.grouping, b.grouping);
  // One pattern for all rows is the most constrained; unconstrained (no groups) the least.
  const one = reconstructWeight(w, 64, 64, h, { ...opts, groups: { max: 1, seed: 1 } });
  const free = reconstructWeight(w, 64, 64, h, opts);
  assert.ok(one.errorMaskOnly > a.errorMaskOnly, `${one.errorMaskOnly} <= ${a.errorMaskOnly}`);
  assert.ok(a.errorMaskOnly > free.errorMaskOnly, `${a.errorMaskOnly} <= ${free.errorMaskOnly}`);
});

Deno.test("pattern groups: the clustering finds planted patterns", () => {
  // 40 rows drawn from 4 planted patterns of 3 kept columns out of 12, with noise.
  const rng = new Random(2);
  const gr = 40, gc = 12;
  const planted = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [1, 5, 9]];
  const truth = Array.from({ length: gr }, (_, r) => (r * 7) % 4);
  const s = new Float64Array(gr * gc);
  for (let r = 0; r < gr; r++) {
    for (let c = 0; c < gc; c++) s[r * gc + c] = 0.1 * rng.next() + (planted[truth[r]].includes(c) ? 1 : 0);
  }
  for (const seed of [0, 1, 2]) {
    const g = clusterBlockRows(s, gr, gc, 4, 9, seed);
    for (let r = 0; r < gr; r++) {
      for (let q = 0; q < gr; q++) {
        assert.equal(g[r] === g[q], truth[r] === truth[q], `seed ${seed}: rows ${r}, ${q}`);
      }
    }
    assert.equal(g[0], 0, "groups numbered by their first row");
  }
  // With room for fewer patterns than planted, the groups still partition the rows in at most K.
  const two = clusterBlockRows(s, gr, gc, 2, 9, 0);
  assert.ok(two.every((x) => x === 0 || x === 1));
});

Deno.test("pattern groups: budgets hit the block count with the least pruned score (brute force)", () => {
  const rng = new Random(4);
  const gc = 5;
  const group = Int32Array.from([0, 0, 1, 2, 2, 2, 1, 0, 2]); // sizes 3, 2, 4
  const scores = Float64Array.from({ length: group.length * gc }, () => rng.next());
  const sizes = [3, 2, 4];
  const sums = sizes.map((_, g) => {
    const v = new Array(gc).fill(0);
    group.forEach((x, r) => {
      if (x === g) { for (let c = 0; c < gc; c++) v[c] += scores[r * gc + c]; }
    });
    return v.sort((a, b) => a - b);
  });
  const cost = (g: number, p: number) => sums[g].slice(0, p).reduce((a, b) => a + b, 0);
  for (const k of [0, 7, 20, 31, 45]) {
    let best = Infinity;
    for (let a = 0; a <= gc; a++) {
      for (let b = 0; b <= gc; b++) {
        for (let c = 0; c <= gc; c++) {
          if (3 * a + 2 * b + 4 * c === k) best = Math.min(best, cost(0, a) + cost(1, b) + cost(2, c));
        }
      }
    }
    const { pruned, exact } = allocateBudgets(scores, group, 3, gc, Math.round(k / 9), k);
    assert.ok(exact, `k=${k}`);
    assert.equal(3 * pruned[0] + 2 * pruned[1] + 4 * pruned[2], k);
    const got = cost(0, pruned[0]) + cost(1, pruned[1]) + cost(2, pruned[2]);
    assert.ok(Math.abs(got - best) < 1e-9, `k=${k}: ${got} vs ${best}`);
  }
  // One group of 4 rows cannot prune 7 blocks: the nearest count, flagged.
  const one = allocateBudgets(scores.subarray(0, 4 * gc), new Int32Array(4), 1, gc, 2, 7);
  assert.equal(one.exact, false);
  assert.ok([4, 8].includes(4 * one.pruned[0]));
});

// ---------------------------------------------------------------------------------------------
// Through the pass manager.

function tinyBert(): { m: Module; store: WeightStore } {
  const c = bertConfig("bert-tiny", {
    seq: 12,
    layers: 2,
    hidden: 64,
    heads: 2,
    intermediate: 128,
    vocab: 400,
  });
  const m = buildBertModule(c, "w.safetensors");
  return { m, store: seededWeights(m, 2) };
}

function run(m: Module, store: WeightStore, pipeline: string, logs: string[] = []): PipelineResult {
  return runPipeline(m, parsePipeline(pipeline, createPassRegistry()), {
    weights: store,
    log: (l) => logs.push(l),
  });
}

const LINE =
  /^prune-reconstruct: @(\S+) \[(\d+)x(\d+)\] block (\d+)x(\d+): pruned (\d+)\/(\d+) blocks .*rel\. error magnitude ([\d.]+) -> reconstructed ([\d.]+) \(\d+ rows\); (\d+) groups \(block rows [\d ]+; block columns pruned [\d ]+\), (\d+) distinct block-row patterns(?:, block count not reachable exactly by these groups)?; rel\. error of the grouped mask without update ([\d.]+)$/;

Deno.test("prune-reconstruct{patterns}: a synthetic BERT, lowered to BSR: at most K indices lists per weight", () => {
  const { m, store } = tinyBert();
  for (const [block, K] of [["1x8", 4], ["4x4", 8], ["1x32", 2]] as const) {
    const what = `${block} K=${K}`;
    const logs: string[] = [];
    const r = run(
      m,
      store,
      `prune-reconstruct{sparsity=0.8 block=${block} patterns=${K} calibration=24 calibration-data=random ` +
        `correct=false},` +
        `bsr-lower{block=${block} sparsity-threshold=0.3},dedup-patterns`,
      logs,
    );
    const lines = logs.map((l) => LINE.exec(l)).filter((x) => x !== null);
    assert.equal(lines.length, 12, `${what}\n${logs.join("\n")}`);
    const [R, C] = block.split("x").map(Number);
    for (const x of lines) {
      const [name, out, inn, , , pruned, total, , after, groups, patterns, maskOnly] = [
        x[1],
        ...x.slice(2).map(Number),
      ] as [string, ...number[]];
      assert.equal(pruned, Math.round(0.8 * total), `${what} ${name}: exact block count`);
      assert.ok(groups <= K && patterns <= groups, `${what} ${name}`);
      // Plain OBS (correct=false) against the same grouped mask without update, on the calibration data.
      assert.ok(after <= maskOnly, `${what} ${name}: reconstruction ${after} vs mask only ${maskOnly}`);
      if (C <= 8) assert.ok(after < maskOnly, `${what} ${name}: reconstruction should help`);
      // The BSR weight: every block row's indices list is one of at most K, and nnz is exact.
      const w = r.module.weights.get(name)!;
      assert.deepEqual(w.type.sparse?.block, [R, C], `${what} ${name} lowered`);
      const t = r.changedWeights.get(name) as BsrTensor;
      assert.equal(t.indices.length, total - pruned, `${what} ${name}: stored blocks`);
      const lists = new Set<string>();
      for (let br = 0; br + 1 < t.indptr.length; br++) {
        lists.add(t.indices.subarray(t.indptr[br], t.indptr[br + 1]).join(","));
      }
      assert.ok(lists.size <= K, `${what} ${name}: ${lists.size} distinct indices lists`);
      assert.equal(lists.size, patterns, `${what} ${name}: as the log says`);
      assert.equal(out * inn, t.sparseType.shape[0] * t.sparseType.shape[1]);
    }
    // dedup-patterns reports the same block-row patterns.
    const table = logs.filter((l) => l.startsWith("dedup-patterns: @bert.encoder"));
    assert.equal(table.length, 12, logs.join("\n"));
    for (const l of table) {
      const rowPat = Number(l.split(/\s+/)[7]);
      assert.ok(rowPat <= K, `${what}: ${l}`);
    }
  }
});

Deno.test("prune-reconstruct{patterns}: deterministic under a seed; the seed changes the result", () => {
  const { m, store } = tinyBert();
  const p = (seed: number) =>
    `prune-reconstruct{sparsity=0.8 block=1x8 patterns=4 calibration=16 calibration-data=random seed=${seed}}`;
  const a = run(m, store, p(0)), b = run(m, store, p(0)), c = run(m, store, p(5));
  const name = "bert.encoder.layer.1.output.dense.weight";
  assert.deepEqual([...a.changedWeights.get(name)!.data], [...b.changedWeights.get(name)!.data]);
  assert.notDeepEqual([...a.changedWeights.get(name)!.data], [...c.changedWeights.get(name)!.data]);
});

Deno.test("prune-reconstruct{patterns}: bad values are errors naming the option", () => {
  const registry = createPassRegistry();
  assert.throws(() => parsePipeline("prune-reconstruct{patterns=-1}", registry), /'patterns'/);
  assert.throws(() => parsePipeline("prune-reconstruct{patterns=2.5}", registry), /'patterns'/);
  assert.throws(() => parsePipeline("prune-reconstruct{patterns=x}", registry), /'patterns'/);
  // A pass given options programmatically still checks them.
  const { m, store } = tinyBert();
  const pipeline = {
    entries: [{
      pass: registry.get("prune-reconstruct")!,
      written: new Map<string, number | string>([["calibration-data", "random"], ["calibration", 4], [
        "patterns",
        -3,
      ]]),
    }],
  };
  assert.throws(
    () => runPipeline(m, pipeline, { weights: store, log: () => {} }),
    (e: unknown) =>
      e instanceof PassError && /option 'patterns' must be an integer >= 0, got -3/.test(e.message),
  );
});

Deno.test("prune{patterns}: magnitude pruning with pattern groups, lowered to BSR", () => {
  const { m, store } = tinyBert();
  for (const [block, K, score] of [["1x8", 4, "l2"], ["4x4", 8, "l1"], ["2x8", 3, "l2"]] as const) {
    const what = `${block} K=${K} ${score}`;
    const logs: string[] = [];
    const r = run(
      m,
      store,
      `prune{sparsity=0.8 block=${block} patterns=${K} score=${score}},bsr-lower{block=${block} sparsity-threshold=0.3}`,
      logs,
    );
    const lines = logs.filter((l) => l.startsWith("prune: @"));
    assert.equal(lines.length, 12, logs.join("\n"));
    for (const l of lines) {
      const x =
        /^prune: @(\S+) .*: pruned (\d+)\/(\d+) blocks .*; (\d+) groups .*, (\d+) distinct block-row patterns$/
          .exec(l);
      assert.ok(x, l);
      const [name, pruned, total, groups, patterns] = [x[1], ...x.slice(2).map(Number)] as [
        string,
        ...number[],
      ];
      assert.equal(pruned, Math.round(0.8 * total), `${what} ${name}: exact`);
      assert.ok(patterns <= groups && groups <= K, `${what} ${name}`);
      const t = r.changedWeights.get(name) as BsrTensor;
      assert.equal(t.indices.length, total - pruned, `${what} ${name}: every kept block stored`);
      const lists = new Set<string>();
      for (let br = 0; br + 1 < t.indptr.length; br++) {
        lists.add(t.indices.subarray(t.indptr[br], t.indptr[br + 1]).join(","));
      }
      assert.equal(lists.size, patterns, `${what} ${name}`);
    }
  }
  // Deterministic for a seed.
  const p = (seed: number) => `prune{sparsity=0.8 block=1x8 patterns=4 seed=${seed}}`;
  const name = "bert.encoder.layer.0.intermediate.dense.weight";
  const a = run(m, store, p(1)).changedWeights.get(name)!.data;
  const b = run(m, store, p(1)).changedWeights.get(name)!.data;
  assert.deepEqual([...a], [...b]);
});

Deno.test("prune{patterns}: bad values are errors naming the option", () => {
  const registry = createPassRegistry();
  assert.throws(() => parsePipeline("prune{patterns=-2}", registry), /'patterns'/);
  assert.throws(() => parsePipeline("prune{seed=-1}", registry), /'seed'/);
  const { m, store } = tinyBert();
  assert.throws(
    () => run(m, store, "prune{patterns=4 scope=global}"),
    (e: unknown) =>
      e instanceof PassError && /pass 'prune'.*option 'patterns' needs scope=per-matrix/.test(e.message),
  );
});

Deno.test("prune{rules}: a rule's patterns groups its weights alone, also under global scope", () => {
  const { m, store } = tinyBert();
  const dir = Deno.makeTempDirSync();
  try {
    const rules = `${dir}/rules.json`;
    Deno.writeTextFileSync(
      rules,
      JSON.stringify([{ match: "intermediate\\.dense\\.weight$", sparsity: 0.8, block: "1x8", patterns: 3 }]),
    );
    for (const scope of ["per-matrix", "global"]) {
      const logs: string[] = [];
      const r = run(
        m,
        store,
        `prune{sparsity=0.5 block=1x8 scope=${scope} rules=${rules}},bsr-lower{block=1x8}`,
        logs,
      );
      for (const l of logs.filter((l) => l.startsWith("prune: @"))) {
        const grouped = l.includes("intermediate.dense.weight");
        assert.equal(/distinct block-row patterns/.test(l), grouped, `${scope}: ${l}`);
        if (!grouped) continue;
        const name = /^prune: @(\S+) /.exec(l)![1];
        const t = r.changedWeights.get(name) as BsrTensor;
        const lists = new Set<string>();
        for (let br = 0; br + 1 < t.indptr.length; br++) {
          lists.add(t.indices.subarray(t.indptr[br], t.indptr[br + 1]).join(","));
        }
        assert.ok(lists.size <= 3, `${scope} ${name}: ${lists.size} patterns`);
      }
    }
    for (const bad of [-1, 1.5, "4"]) {
      Deno.writeTextFileSync(rules, JSON.stringify([{ match: ".", patterns: bad }]));
      assert.throws(
        () => run(m, store, `prune{rules=${rules}}`),
        (e: unknown) =>
          e instanceof PassError && /entry 0: 'patterns' must be an integer >= 0/.test(e.message),
      );
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
