/**
 * train/bert.ts on the real sst2-bert-mini (ignored without ../shared): evaluation at length
 * buckets gives the golden logits of golden_dev.jsonl (Hugging Face's, batch 1, unpadded) and
 * their predictions; the trainable weights are copies, and the prunable ones are the 24 encoder
 * dense weights. Evaluation on compiled artifacts (`compiledPredict`) gives the interpreter's logits,
 * and follows the weights it is given (one artifact per length bucket serves new weights).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bucketLength, loadBert, predict } from "../../train/bert.ts";
import { compiledPredict } from "../../train/compiled.ts";
import { readExamples } from "../../train/data.ts";

const MODEL = "../shared/models/sst2-bert-mini";
const present = (() => {
  try {
    return Deno.statSync(join(MODEL, "model.safetensors")).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "evaluation at length buckets reproduces the golden logits",
  ignore: !present,
  async fn() {
    const model = await loadBert(MODEL, { seq: 64 });
    assert.equal(model.prunable.length, 24);
    assert.equal(model.weights.size, model.module.weights.size);
    const golden = Deno.readTextFileSync(join(MODEL, "golden_dev.jsonl")).trim().split("\n").slice(0, 12)
      .map((l) => JSON.parse(l));
    const dev = (await readExamples("../shared/data/sst2/dev.tsv", model.tokenizer, 64)).slice(0, 12);
    dev.forEach((e, r) => assert.deepEqual([...e.ids.subarray(0, e.length)], golden[r].input_ids));
    const logits = predict(model, model.weights, dev);
    let worst = 0;
    logits.forEach((l, r) => l.forEach((x, j) => worst = Math.max(worst, Math.abs(x - golden[r].logits[j]))));
    assert.ok(worst < 1e-4, `max |logit - golden| ${worst}`);
    assert.deepEqual(
      [bucketLength(3, 64), bucketLength(16, 64), bucketLength(17, 64), bucketLength(70, 64)],
      [
        16,
        16,
        32,
        64,
      ],
    );
  },
});

Deno.test({
  name: "compiled evaluation gives the interpreter's logits and follows new weights",
  ignore: !present,
  async fn() {
    const model = await loadBert(MODEL, { seq: 64 });
    const dev = (await readExamples("../shared/data/sst2/dev.tsv", model.tokenizer, 64)).slice(0, 10);
    const run = compiledPredict(model, { threads: 2 });
    try {
      for (const scale of [1, 0.9]) {
        const weights = new Map([...model.weights].map(([n, w]) => [n, w.map((x) => x * scale)]));
        const want = predict(model, weights, dev);
        const got = await run(weights, dev);
        let worst = 0, spread = 0;
        got.forEach((l, r) =>
          l.forEach((x, j) => {
            worst = Math.max(worst, Math.abs(x - want[r][j]));
            spread = Math.max(spread, Math.abs(want[r][j] - want[0][j]));
          })
        );
        assert.ok(spread > 0.1, `rows differ: ${spread}`);
        assert.ok(worst < 1e-4, `scale ${scale}: max |compiled - interpreter| ${worst}`);
      }
    } finally {
      run.close();
    }
  },
});
