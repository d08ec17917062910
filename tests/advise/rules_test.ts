/**
 * The advisor's plan as a `rules` file: through `prune{rules=...}` every weight ends with exactly
 * its planned block shape and sparsity, and at most its planned number of block-row patterns (one
 * planned dense stays untouched); and `applyPlanPass`, prune-reconstruct with a block and sparsity
 * (and pattern groups) per weight, prunes exactly as planned.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type AppliedWeight,
  applyPlanPass,
  bertConfig,
  type Candidate,
  compile,
  loadEvalModel,
  planMap,
  planRules,
  type WeightOptions,
  writeSyntheticBert,
} from "../../mod.ts";
import type { Tensor } from "../../ir/tensor.ts";

/** Blocks of `t` (`[out, in]`) that are entirely zero, and elements that are zero outside them. */
function zeroBlocks(
  t: Tensor,
  block: readonly [number, number],
): { zero: number; total: number; stray: number } {
  const [out, inn] = t.shape, [R, C] = block;
  let zero = 0, total = 0, stray = 0;
  for (let r0 = 0; r0 < out; r0 += R) {
    for (let c0 = 0; c0 < inn; c0 += C) {
      total++;
      let zeros = 0, n = 0;
      for (let r = r0; r < Math.min(out, r0 + R); r++) {
        for (let c = c0; c < Math.min(inn, c0 + C); c++, n++) if (t.data[r * inn + c] === 0) zeros++;
      }
      if (zeros === n) zero++;
      else stray += zeros;
    }
  }
  return { zero, total, stray };
}

/** Distinct sets of zero blocks among the block rows of `t` (`[out, in]`). */
function zeroRowPatterns(t: Tensor, block: readonly [number, number]): number {
  const [out, inn] = t.shape, [R, C] = block;
  const rows = new Set<string>();
  for (let r0 = 0; r0 < out; r0 += R) {
    const zero: number[] = [];
    for (let c0 = 0; c0 < inn; c0 += C) {
      let all = true;
      for (let r = r0; r < Math.min(out, r0 + R); r++) {
        for (let c = c0; c < Math.min(inn, c0 + C); c++) all &&= t.data[r * inn + c] === 0;
      }
      if (all) zero.push(c0);
    }
    rows.add(zero.join(","));
  }
  return rows.size;
}

/** A weight planned with pattern groups has at most that many block-row patterns. */
function checkPatterns(t: Tensor, c: Candidate, name: string) {
  if (!c.patterns) return;
  const n = zeroRowPatterns(t, c.block);
  assert.ok(n <= c.patterns, `${name}: ${n} block-row patterns, planned at most ${c.patterns}`);
}

/** A synthetic bert-tiny, its prunable weights, and a plan mixing shapes, sparsities and dense. */
async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "advise-rules-" });
  const ir = join(dir, "tiny.sir");
  await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16, vocab: 300, maxPositions: 32 }), ir);
  const model = await loadEvalModel(ir);
  const names = [...model.module.weights.values()].map((w) => w.name)
    .filter((n) => /encoder\.layer\.\d+\..*(query|key|value|dense)\.weight$/.test(n));
  const menu: Candidate[] = [
    { block: [1, 1], sparsity: 0 },
    { block: [4, 4], sparsity: 0.8 },
    { block: [1, 32], sparsity: 0.5 },
    { block: [1, 1], sparsity: 0.9 },
    { block: [8, 8], sparsity: 0.7 },
    { block: [1, 4], sparsity: 0.8, patterns: 3 },
  ];
  const table: WeightOptions[] = names.map((name) => {
    const [out, inn] = model.module.weights.get(name)!.type.shape;
    return { name, out, in: inn, options: menu.map((candidate) => ({ candidate, error: 0, ms: 1 })) };
  });
  const plan = { choice: names.map((_, i) => i % menu.length), latency: 0, damage: 0 };
  return { dir, ir, model, table, plan };
}

Deno.test("advise: the rules file round-trips through prune: each weight has its planned block and sparsity", async () => {
  const { dir, ir, model, table, plan } = await setup();
  try {
    const rules = planRules(table, plan);
    assert.equal(rules.length, table.length);
    const file = join(dir, "rules.json");
    await Deno.writeTextFile(file, JSON.stringify(rules));
    const r = await compile(ir, {
      pipeline: `prune{rules=${JSON.stringify(file)}}`,
      codegen: false,
      log: () => {},
    });
    for (const [i, w] of table.entries()) {
      const c = w.options[plan.choice[i]].candidate;
      const t = r.weights.get(r.module.weights.get(w.name)!);
      if (c.sparsity === 0) {
        assert.deepEqual(t.data, model.weights.get(model.module.weights.get(w.name)!).data, w.name);
        continue;
      }
      const z = zeroBlocks(t, c.block);
      assert.equal(z.zero, Math.round(c.sparsity * z.total), `${w.name}: ${c.block} at ${c.sparsity}`);
      assert.equal(z.stray, 0, `${w.name}: zeros outside the pruned blocks`);
      checkPatterns(t, c, w.name);
    }
    assert.ok(rules.some((r) => r.patterns === 3), "a rule carries its patterns");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("advise: applyPlanPass prunes and reconstructs each weight with its own block and sparsity", async () => {
  const { dir, ir, model, table, plan } = await setup();
  try {
    const applied: AppliedWeight[] = [];
    const opts = { calibration: 4, seed: 0, calibrationData: "random" };
    const r = await compile(ir, {
      pipeline: [applyPlanPass(planMap(table, plan), opts, applied)],
      codegen: false,
      log: () => {},
    });
    const pruned = table.filter((_, i) => table[i].options[plan.choice[i]].candidate.sparsity > 0);
    assert.deepEqual(applied.map((a) => a.name).sort(), pruned.map((w) => w.name).sort());
    for (const [i, w] of table.entries()) {
      const c = w.options[plan.choice[i]].candidate;
      const t = r.weights.get(r.module.weights.get(w.name)!);
      const before = model.weights.get(model.module.weights.get(w.name)!);
      if (c.sparsity === 0) {
        assert.deepEqual(t.data, before.data, w.name);
        continue;
      }
      const z = zeroBlocks(t, c.block);
      assert.equal(z.zero, Math.round(c.sparsity * z.total), `${w.name}: ${c.block} at ${c.sparsity}`);
      assert.notDeepEqual(t.data, before.data);
      const a = applied.find((x) => x.name === w.name)!;
      assert.equal(a.pruned, z.zero);
      assert.equal(a.patterns, c.patterns ?? 0);
      checkPatterns(t, c, w.name);
      assert.ok(a.error > 0 && a.error < 1, `${w.name}: error ${a.error}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
