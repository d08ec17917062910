/**
 * The real checkpoint, compiled: sst2-bert-mini imported from its Hugging Face folder, compiled
 * at S=64 (the longest dev sentence has 55 tokens) and run at 2 threads on every one of the 872
 * dev rows of `golden_dev.jsonl`, padded and masked, reproduces the original framework's
 * logits within 1e-4 and its prediction on every row.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compile, loadCompiled, writeArtifact } from "../../mod.ts";
import { runTask } from "../compile_cli.ts";

const MODEL = fileURLToPath(new URL("../../../shared/models/sst2-bert-mini/", import.meta.url));
const SEQ = 64;

interface GoldenRow {
  input_ids: number[];
  logits: number[];
  pred: number;
}

Deno.test({
  name: "compiled sst2-bert-mini reproduces the golden logits (1e-4) and predictions on all 872 dev rows",
  ignore: !existsSync(join(MODEL, "golden_dev.jsonl")),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-golden-" });
    try {
      await writeArtifact(await compile(MODEL, { seq: SEQ }), join(dir, "a"));
      const model = await loadCompiled(join(dir, "a"), { threads: 2 });
      try {
        const rows = (await Deno.readTextFile(join(MODEL, "golden_dev.jsonl"))).trim().split("\n")
          .map((l) => JSON.parse(l) as GoldenRow);
        assert.equal(rows.length, 872);
        let worst = 0;
        for (const [i, row] of rows.entries()) {
          const pad = SEQ - row.input_ids.length;
          const logits = model.run({
            input_ids: [...row.input_ids, ...new Array(pad).fill(0)],
            token_type_ids: new Array(SEQ).fill(0),
            attention_mask: [...row.input_ids.map(() => 1), ...new Array(pad).fill(0)],
          }).logits;
          const d = Math.max(...row.logits.map((v, k) => Math.abs(v - logits[k])));
          worst = Math.max(worst, d);
          assert.ok(d <= 1e-4, `row ${i}: max abs diff ${d}`);
          assert.equal(logits[1] > logits[0] ? 1 : 0, row.pred, `row ${i}: prediction`);
        }
        console.log(`872 rows: max abs diff against the golden logits ${worst.toExponential(2)}`);
      } finally {
        model.close();
      }
      // deno task eval on the artifact: the same predictions, so the golden accuracy on these rows.
      const data = join(MODEL, "../../data/sst2/dev.tsv");
      const r = await runTask(
        "eval",
        join(dir, "a"),
        "--task",
        "sst2",
        "--data",
        data,
        "--limit",
        "100",
        "--tokenizer",
        MODEL,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /100 of 872 rows, seq 64/);
      assert.match(r.stdout, /accuracy 75\.00% \(75 of 100\)/);
      // The artifact carries the checkpoint's tokenizer: without --tokenizer, the same result.
      const carried = await runTask(
        "eval",
        join(dir, "a"),
        "--task",
        "sst2",
        "--data",
        data,
        "--limit",
        "100",
      );
      assert.equal(carried.code, 0, carried.stderr);
      assert.match(carried.stdout, /accuracy 75\.00% \(75 of 100\)/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
