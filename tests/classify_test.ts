/**
 * Text in: an artifact compiled from a checkpoint carries its tokenizer and label names, and
 * `classify` turns sentences into labels and probabilities. On sst2-bert-mini at S=64 the ids it
 * feeds equal the goldens' on all 872 SST-2 dev rows and so do its predictions; from a folder and
 * from memory alike. Long sentences are cut and say so, or refused; bad label files are refused.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ArtifactError,
  bertConfig,
  compile,
  type CompiledModel,
  InputError,
  loadCompiled,
  writeArtifact,
  writeSyntheticBert,
} from "../mod.ts";
import { textModel } from "../runtime/classify.ts";
import { CAN_RUN, runTask } from "./compile_cli.ts";

const MINI = fileURLToPath(new URL("../../shared/models/sst2-bert-mini", import.meta.url));
const SEQ = 64;
const DEV = fileURLToPath(new URL("../../shared/data/sst2/dev.tsv", import.meta.url));

interface GoldenRow {
  input_ids: number[];
  pred: number;
  sentence: string;
}

Deno.test({
  name:
    "classify: sst2-bert-mini's artifact tokenizes like the goldens and predicts like them on all 872 dev rows",
  ignore: !existsSync(join(MINI, "golden_dev.jsonl")),
  async fn() {
    const rows = (await Deno.readTextFile(join(MINI, "golden_dev.jsonl"))).trim().split("\n")
      .map((l) => JSON.parse(l) as GoldenRow);
    assert.equal(rows.length, 872);
    const result = await compile(MINI, { seq: SEQ });
    const text = result.artifact!.text!;
    assert.equal(text.labels, JSON.stringify(["negative", "positive"]));
    const model = textModel(text, result.artifact!.plan, (f) => f);
    for (const [i, row] of rows.entries()) {
      const ids = model.tokenizer.encode(row.sentence);
      assert.deepEqual(ids, row.input_ids, `row ${i}`);
    }
    const dir = await Deno.makeTempDir({ prefix: "sparrow-classify-" });
    try {
      await writeArtifact(result, join(dir, "a"));
      const fromDisk = await loadCompiled(join(dir, "a"), { threads: 2 });
      const fromMemory = await loadCompiled(result.artifact!, { threads: 1 });
      try {
        for (const m of [fromDisk, fromMemory]) {
          assert.deepEqual(m.labels, ["negative", "positive"]);
          const got = m.classify(rows.map((r) => r.sentence));
          const wrong = got.flatMap((c, i) => c.index === rows[i].pred ? [] : [i]);
          assert.deepEqual(wrong, [], "rows predicted unlike the goldens");
          assert.ok(
            got.every((c) => !c.truncated && Math.abs(c.probabilities[0] + c.probabilities[1] - 1) < 1e-9),
          );
          assert.equal(got[0].label, "positive");
        }
        // Longer than the model: cut (and said), or refused by option.
        const long = "a gripping , funny film ".repeat(40);
        assert.equal(fromMemory.classify([long])[0].truncated, true);
        assert.throws(() => fromMemory.classify([long], { long: "refuse" }), InputError);
      } finally {
        fromDisk.close();
        fromMemory.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("classify: an artifact without a tokenizer says so; malformed label files are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-classify-" });
  let model: CompiledModel | undefined;
  try {
    const path = join(dir, "tiny.sir");
    await writeSyntheticBert(bertConfig("bert-tiny", { seq: 8, layers: 1 }), path);
    const result = await compile(path);
    assert.equal(result.artifact!.text, undefined);
    model = await loadCompiled(result.artifact!, { threads: 1 });
    assert.equal(model.labels, undefined);
    assert.throws(() => model!.classify(["hello"]), /carries no tokenizer\.json/);
    if (existsSync(join(MINI, "tokenizer.json"))) {
      const tokenizer = await Deno.readTextFile(join(MINI, "tokenizer.json"));
      const bad = (labels: string) => () => textModel({ tokenizer, labels }, result.artifact!.plan, (f) => f);
      assert.throws(
        bad(`["only one"]`),
        (e) => e instanceof ArtifactError && /list of 2 label names/.test(e.message),
      );
      assert.throws(bad(`{"0": "a"}`), /labels\.json: must be a list/);
      assert.throws(bad(`[1, 2]`), /labels\.json: must be a list/);
      assert.throws(bad(`not json`), /labels\.json: not JSON/);
    }
  } finally {
    model?.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "classify CLI: run --text prints labels, eval needs no --tokenizer, --inputs fills nothing in",
  ignore: !CAN_RUN || !existsSync(join(MINI, "tokenizer.json")),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-classify-cli-" });
    try {
      const artifact = join(dir, "mini");
      const compiled = await runTask("compile", MINI, "--seq", "32", "-o", artifact);
      assert.equal(compiled.code, 0, compiled.stderr);
      const ran = await runTask(
        "run",
        artifact,
        "--text",
        "a gripping , funny film",
        "--text",
        "a dull , lifeless mess",
      );
      assert.equal(ran.code, 0, ran.stderr);
      const lines = ran.stdout.trim().split("\n");
      assert.match(
        lines[0],
        /^positive {2}\(negative 0\.\d{4}, positive 0\.\d{4}; [\d.]+ ms\) {2}"a gripping , funny film"$/,
      );
      assert.match(lines[1], /^negative /);
      const evaluated = await runTask("eval", artifact, "--task", "sst2", "--data", DEV, "--limit", "40");
      assert.equal(evaluated.code, 0, evaluated.stderr);
      assert.match(evaluated.stdout, /accuracy \d+\.\d+% \(\d+ of 40\)/);
      // --inputs gives every input or none: a missing one is an error naming it, never seeded.
      await Deno.writeTextFile(join(dir, "in.json"), JSON.stringify({ input_ids: Array(32).fill(1) }));
      const partial = await runTask("run", artifact, "--inputs", join(dir, "in.json"));
      assert.equal(partial.code, 2);
      assert.match(
        partial.stderr,
        /^error: --inputs .*in\.json: no input 'token_type_ids' \(the model takes input_ids, token_type_ids, attention_mask\)\n$/,
      );
      await Deno.writeTextFile(
        join(dir, "in.json"),
        JSON.stringify({ input_ids: [1], token_type_ids: [0], attention_mask: [1] }),
      );
      const short = await runTask("run", artifact, "--inputs", join(dir, "in.json"));
      assert.equal(short.code, 2);
      assert.match(short.stderr, /'input_ids' has 1 values; shape 1x32 takes 32/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
