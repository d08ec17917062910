/**
 * `bsr-lower` on BERTs pruned in PyTorch (every encoder Linear weight, 80% of its 4x4 or 1x32
 * blocks over W[out, in] zeroed) and exported by torch.onnx (tests/fixtures/onnx/generate.py):
 * with constant folding the MatMul weights arrive pre-transposed `[in, out]` (dense with
 * transpose_b = false), without it `[out, in]` behind a Transpose (transpose_b = true). Either way
 * `block = auto` must find the block PyTorch pruned with, every encoder product must become
 * `bsr_dense`, the dense head must be skipped as too dense (counted and listed), and the compiled
 * model must give torch's logits with a fraction of the dense model's FLOPs.
 */

import assert from "node:assert/strict";
import { compile, loadCompiled } from "../../mod.ts";
import { formatReport } from "../../codegen/report.ts";
import { bsrLowerSkips } from "../../passes/bsr_lower.ts";

const DIR = new URL("../fixtures/onnx/", import.meta.url).pathname;

interface Fixture {
  readonly file: string;
  readonly pruned: string | null;
  readonly constantFolding: boolean;
  readonly seq: number;
  readonly cases: readonly {
    input_ids: number[];
    token_type_ids: number[];
    attention_mask: number[];
    logits: number[];
  }[];
}

const fixtures: Fixture[] = (() => {
  try {
    return JSON.parse(Deno.readTextFileSync(`${DIR}manifest.json`)).fixtures;
  } catch {
    return [];
  }
})();

const PIPELINE = "bsr-lower,canonicalize,cse,fuse,dce";

for (const fx of fixtures.filter((f) => f.pruned)) {
  Deno.test(`bsr-lower: torch-pruned ${fx.pruned} ONNX ${fx.file}: auto finds ${fx.pruned}, logits match`, async () => {
    const logs: string[] = [];
    const r = await compile(`${DIR}${fx.file}`, {
      seq: fx.seq,
      pipeline: PIPELINE,
      log: (l) => logs.push(l),
    });
    const stat = (name: string) => r.stats.find((s) => s.pass === "bsr-lower" && s.name === name)?.value;
    const lowered = logs.filter((l) => / zeros align to /.test(l));
    assert.equal(stat("weights"), 12, logs.join("\n")); // 2 layers x (Q, K, V, attention out, FFN in, FFN out)
    assert.equal(lowered.length, 12);
    for (const l of lowered) {
      assert.ok(l.includes(`zeros align to ${fx.pruned} blocks`), l);
      assert.equal(l.endsWith("transposed from [in, out]"), fx.constantFolding, l);
    }
    // The pooler and the classifier are not pruned: skipped as too dense, counted and listed.
    assert.equal(stat("skipped-too-dense"), 2);
    const skips = bsrLowerSkips(r.module, r.weights, r.pipeline)!;
    assert.deepEqual(skips.map((s) => s.reason), ["too-dense", "too-dense"]);
    assert.deepEqual(skips.map((s) => s.weight), ["@bert.pooler.dense.weight", "@classifier.weight"]);
    assert.deepEqual(r.artifact!.report.bsrSkips, skips);
    const report = formatReport(r.artifact!.report).split("\n");
    assert.deepEqual(report.slice(-3), [
      "  left dense by bsr-lower (2):",
      "    @bert.pooler.dense.weight (too-dense): 0.0% zero, below the threshold 50.0%",
      "    @classifier.weight (too-dense): 0.0% zero, below the threshold 50.0%",
    ]);
    const ops = r.artifact!.report.irOps;
    assert.equal(ops.bsr_dense, 12);
    assert.equal(ops.dense ?? 0, 2);

    const model = await loadCompiled(r.artifact!, { threads: 1 });
    try {
      for (const c of fx.cases) {
        const { logits } = model.run({
          input_ids: c.input_ids,
          token_type_ids: c.token_type_ids,
          attention_mask: c.attention_mask,
        });
        c.logits.forEach((v, i) => assert.ok(Math.abs(logits[i] - v) <= 1e-4, `${logits} vs ${c.logits}`));
      }
    } finally {
      model.close();
    }
    // The speedup's source: the encoder products do about a fifth of the dense FLOPs.
    const dense = await compile(`${DIR}${fx.file}`, { seq: fx.seq, pipeline: "canonicalize,cse,fuse,dce" });
    assert.ok(r.artifact!.report.flops < 0.6 * dense.artifact!.report.flops);
  });
}

Deno.test("prune finds the encoder weights of torch's constant-folded exports by name, and bsr-lower lowers them", async () => {
  // With constant folding torch stores each Linear's weight pre-transposed under an anonymous name
  // (onnx::MatMul_NNN); the importer names it after its MatMul node, so prune's default target matches.
  const dense = fixtures.filter((f) => !f.pruned && f.constantFolding);
  assert.ok(dense.length > 0);
  for (const fx of dense) {
    const r = await compile(`${DIR}${fx.file}`, {
      seq: fx.seq,
      pipeline: "prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4},canonicalize,cse,fuse,dce",
      log: () => {},
    });
    const stat = (pass: string, name: string) =>
      r.stats.find((s) => s.pass === pass && s.name === name)?.value;
    assert.equal(stat("prune", "weights"), 12, fx.file);
    assert.equal(r.artifact!.report.irOps.bsr_dense, 12, fx.file);
    assert.ok(r.module.weights.has("bert.encoder.layer.0.attention.self.query.weight"), fx.file);
  }
});
