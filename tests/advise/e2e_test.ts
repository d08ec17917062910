/**
 * The advisor end to end on a synthetic bert-tiny with random calibration data: dev rows of random
 * ids labelled by the dense model itself (so the dense accuracy is 100% and pruning can only lose),
 * a plan searched within the budget (candidates with and without pattern groups), written as a rules
 * file, compiled, evaluated and timed.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  advise,
  bertConfig,
  candidateName,
  fitToLength,
  interpret,
  loadEvalModel,
  Random,
  Tensor,
  writeSyntheticBert,
} from "../../mod.ts";
import { parsePruneRules } from "../../passes/prune.ts";

Deno.test("advise: end to end on synthetic bert-tiny (random calibration), within budget, rules and artifact written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "advise-e2e-" });
  try {
    const ir = join(dir, "tiny.sir");
    await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16, vocab: 300, maxPositions: 32 }), ir);
    const model = await loadEvalModel(ir);
    const f = model.module.func("main")!;
    const rng = new Random(5);
    const sepId = 2, padId = 0;
    const rows = Array.from({ length: 30 }, () => {
      const ids = [1, ...Array.from({ length: 3 + rng.int(10) }, () => 3 + rng.int(290)), sepId];
      const fit = fitToLength(ids, 16, sepId, padId);
      const values: Record<string, number[]> = {
        input_ids: fit.ids,
        token_type_ids: fit.ids.map(() => 0),
        attention_mask: fit.mask,
      };
      const inputs = f.params.map((p) => Tensor.from(p.type.shape, p.type.dtype, values[p.name]));
      const logits = interpret(model.module, inputs, model.weights)[0].data;
      return { ids, label: logits[1] > logits[0] ? 1 : 0 };
    });
    const budget = 10;
    const lines: string[] = [];
    const r = await advise({
      model: ir,
      dev: { rows, sepId, padId },
      budget,
      blocks: [[4, 4]],
      sparsities: [0.5, 0.9],
      patterns: [2],
      calibration: 8,
      seed: 0,
      calibrationData: "random",
      tuningLog: join(dir, "tuning-log.json"),
      out: join(dir, "out"),
      maxEvals: 3,
      repeat: 5,
      log: (line) => lines.push(line),
    });
    assert.equal(r.dense.accuracy, 1); // labelled by the dense model
    assert.equal(r.table.length, 12); // 2 layers x 6 dense weights
    for (const w of r.table) {
      // dense, then 4x4 at 0.5 and 0.9, each also with at most 2 block-row patterns
      assert.deepEqual(w.options.map((o) => candidateName(o.candidate)), [
        "dense",
        "4x4@0.5",
        "4x4@0.5/p2",
        "4x4@0.9",
        "4x4@0.9/p2",
      ]);
      assert.equal(w.options[0].error, 0);
      for (const o of w.options) assert.ok(o.ms > 0 && Number.isFinite(o.ms));
      for (const o of w.options.slice(1)) assert.ok(o.error > 0 && o.error < 1.5);
    }
    assert.ok(r.probes.length >= 1 && r.probes.length <= 3);
    // The chosen plan was measured within budget, and no faster probe was.
    if (r.plan) {
      const chosen = r.probes.find((p) => r.path[p.index] === r.plan)!;
      assert.ok(chosen.loss <= budget);
      assert.equal(100 * (1 - r.advised.accuracy!), chosen.loss);
      for (const p of r.probes) if (p.index < chosen.index) assert.ok(p.loss > budget);
    } else {
      for (const p of r.probes) assert.ok(p.loss > budget);
    }
    // The rules file is prune's format and says what was applied.
    const text = await Deno.readTextFile(join(dir, "out", "rules.json"));
    const rules = parsePruneRules(text, "rules.json");
    assert.equal(rules.length, 12);
    const json = JSON.parse(text) as { sparsity: number; block: string; patterns?: number }[];
    for (const a of r.applied) {
      const i = r.table.findIndex((w) => w.name === a.name);
      assert.equal(json[i].block, `${a.block[0]}x${a.block[1]}`);
      assert.equal(json[i].sparsity, a.sparsity);
      assert.equal(json[i].patterns ?? 0, a.patterns);
      const k = Math.round(a.sparsity * a.blocks);
      // Pattern groups reach the block count only as their row counts allow (groups.ts): close to it.
      if (a.patterns) assert.ok(Math.abs(a.pruned - k) <= a.blocks / 100, `${a.name}: ${a.pruned} of ${k}`);
      else assert.equal(a.pruned, k);
    }
    assert.equal(r.applied.length, json.filter((x) => x.sparsity > 0).length);
    assert.ok((await Deno.stat(join(dir, "out", "artifact", "plan.json"))).isFile);
    assert.ok(r.dense.latencyMs! > 0 && r.advised.latencyMs! > 0);
    // A rerun times no kernel again: the tuning log has them all.
    assert.ok(r.timed > 0);
    const again = await advise({
      model: ir,
      dev: { rows: rows.slice(0, 5), sepId, padId },
      budget,
      blocks: [[4, 4]],
      sparsities: [0.5, 0.9],
      patterns: [2],
      calibration: 8,
      seed: 0,
      calibrationData: "random",
      tuningLog: join(dir, "tuning-log.json"),
      out: join(dir, "out2"),
      maxEvals: 1,
      repeat: 2,
      log: () => {},
    });
    assert.equal(again.timed, 0);
    assert.deepEqual(
      again.table.map((w) => w.options.map((o) => o.error)),
      r.table.map((w) => w.options.map((o) => o.error)),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
