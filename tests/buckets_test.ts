/**
 * Sequence-length and batch buckets in one artifact: one weights region, one arena the size of
 * the largest bucket's, every bucket giving the logits of the single-shape artifact, and
 * `classify` batching sentences into the smallest bucket that fits (or truncating, or refusing,
 * a sentence longer than every bucket).
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { existsSync } from "node:fs";
import { ArtifactError, compile, InputError, loadCompiled, writeArtifact } from "../mod.ts";
import { parsePlan } from "../runtime/plan.ts";

const MINI = fileURLToPath(new URL("../../shared/models/sst2-bert-mini", import.meta.url));
const DEV = fileURLToPath(new URL("../../shared/data/sst2/dev.tsv", import.meta.url));

/** The first `n` dev sentences. */
async function devSentences(n: number): Promise<string[]> {
  const lines = (await Deno.readTextFile(DEV)).trim().split("\n").slice(1, n + 1);
  return lines.map((l) => l.split("\t")[0]);
}

Deno.test({
  name: "buckets share the weights, and each gives the single-shape artifact's probabilities",
  ignore: !existsSync(join(MINI, "tokenizer.json")),
}, async () => {
  const bucketed = await compile(MINI, { seq: [16, 32, 64], batch: [1, 4] });
  const single = await compile(MINI, { seq: 64 });
  const plan = bucketed.artifact!.plan;
  assert.deepEqual(
    plan.buckets.map((b) => `${b.batch}x${b.seq}`),
    ["1x16", "1x32", "1x64", "4x16", "4x32", "4x64"],
  );
  // One weights region: the single artifact's, plus the position rows each shorter length folds.
  const extra = plan.memory.weights.size - single.artifact!.plan.memory.weights.size;
  assert.ok(extra >= 0 && extra <= 2 * (16 + 32) * 256 * 4 + 4096, `extra weights bytes ${extra}`);
  // One arena, the largest bucket's.
  assert.equal(plan.memory.arena.size, Math.max(...plan.buckets.map((b) => b.arenaBytes)));
  assert.equal(plan.buckets.find((b) => b.batch === 4 && b.seq === 64)!.arenaBytes, plan.memory.arena.size);

  const sentences = await devSentences(40);
  sentences.push("a".repeat(1) + " wonderful".repeat(100)); // longer than every bucket
  const dir = await Deno.makeTempDir({ prefix: "sparrow-buckets-" });
  try {
    await writeArtifact(bucketed, join(dir, "a"));
    const models = [
      await loadCompiled(join(dir, "a"), { threads: 2 }),
      await loadCompiled(bucketed.artifact!, { threads: 1 }),
    ];
    const reference = await loadCompiled(single.artifact!, { threads: 1 });
    try {
      const want = reference.classify(sentences);
      assert.ok(want.at(-1)!.truncated);
      for (const m of models) {
        for (const batch of [undefined, 1, 3]) {
          const got = m.classify(sentences, { batch });
          got.forEach((g, i) => {
            assert.equal(g.truncated, want[i].truncated, `row ${i}`);
            assert.equal(g.index, want[i].index, `row ${i}`);
            g.probabilities.forEach((p, k) =>
              assert.ok(Math.abs(p - want[i].probabilities[k]) < 1e-5, `row ${i}`)
            );
          });
        }
        assert.throws(
          () => m.classify(sentences, { long: "refuse" }),
          (e: Error) => e instanceof InputError && /tokens is longer than the model's 64/.test(e.message),
        );
      }
      // run() with several buckets needs the shape unless the input sizes say it.
      const m = models[1];
      const ids = new Array(4 * 32).fill(1);
      const byCount = m.run({ input_ids: ids, token_type_ids: ids.map(() => 0), attention_mask: ids });
      assert.equal(byCount.logits.length, 8);
      const ambiguous = ids.slice(0, 64); // 1x64 or 4x16
      assert.throws(
        () => m.run({ input_ids: ambiguous, token_type_ids: ambiguous, attention_mask: ambiguous }),
        (e: Error) => e instanceof InputError && /several buckets fit these inputs/.test(e.message),
      );
      assert.throws(
        () => m.run({ input_ids: [1], token_type_ids: [0], attention_mask: [1] }),
        (e: Error) => e instanceof InputError && /no bucket fits these inputs/.test(e.message),
      );
      assert.throws(
        () => m.run({}, { bucket: { batch: 2, seq: 16 } }),
        /no bucket of batch 2, seq 16; the model has 1x16, 1x32, 1x64, 4x16, 4x32, 4x64/,
      );
    } finally {
      for (const m of [...models, reference]) m.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a plan's buckets are checked: shapes, duplicates, arena", () => {
  const plan = (buckets: unknown) =>
    JSON.stringify({
      format: "sparrow-plan",
      version: 3,
      model: "m",
      memory: {
        pages: 1,
        control: 4096,
        arena: { offset: 4096, size: 1024 },
        weights: { offset: 8192, size: 0, file: "weights.bin" },
      },
      wasm: { relaxed: "k.relaxed.wasm", simd: "k.simd.wasm" },
      buckets,
    });
  const tensor = (shape: number[], offset = 4096) => ({ name: "input_ids", dtype: "i32", shape, offset });
  const bucket = (batch: number, seq: number, arenaBytes = 512) => ({
    batch,
    seq,
    arenaBytes,
    inputs: [tensor([batch, seq])],
    outputs: [],
    steps: [],
  });
  assert.equal(parsePlan("plan.json", plan([bucket(1, 8), bucket(2, 8)])).buckets.length, 2);
  const cases: [unknown, RegExp][] = [
    [[], /'buckets' must be a list of 1 to 64 buckets/],
    [[bucket(1, 8), bucket(1, 8)], /buckets\[1\]: a second bucket of batch 1, seq 8/],
    [[bucket(1, 8, 4096)], /buckets\[0\]\.arenaBytes/],
    [[{ ...bucket(1, 8), inputs: [tensor([1, 9])] }], /buckets\[0\]: its inputs must be \[1, 8\]/],
    [[{ ...bucket(1, 8), seq: undefined }], /buckets\[0\]: batch and seq go together/],
    [[{ ...bucket(1, 8), batch: 0 }], /buckets\[0\]\.batch/],
    [[null], /buckets\[0\] must be an object/],
  ];
  for (const [buckets, pattern] of cases) {
    assert.throws(
      () => parsePlan("plan.json", plan(buckets)),
      (e: Error) =>
        e instanceof ArtifactError && /^plan\.json: bad plan: /.test(e.message) && pattern.test(e.message),
      JSON.stringify(buckets),
    );
  }
  assert.throws(
    () => parsePlan("plan.json", plan([bucket(1, 8)]).replace('"version":3', '"version":2')),
    /compile the model again/,
  );
});
