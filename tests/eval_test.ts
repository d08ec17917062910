/**
 * SST-2 evaluation (`frontend/sst2.ts`, `deno task eval`): on sst2-bert-mini, the first 40 dev rows
 * give the golden predictions, the accuracy they imply and the golden logits within 1e-4 (ignored
 * when `../shared` is absent); padding and truncation; one-line errors. The CLI is spawned as
 * deno.json's eval task runs it (needs `--allow-run`, else ignored).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { importHfBert } from "../frontend/hf.ts";
import { EvalError, fitToLength, parseSst2Tsv } from "../frontend/sst2.ts";
import { assertOneLineError, CAN_RUN, runTask } from "./compile_cli.ts";

const SHARED = fileURLToPath(new URL("../../shared/", import.meta.url));
const MODEL = join(SHARED, "models/sst2-bert-mini");
const DEV = join(SHARED, "data/sst2/dev.tsv");

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const HAVE =
  ["config.json", "model.safetensors", "tokenizer.json", "golden_dev.jsonl"].every((f) =>
    exists(join(MODEL, f))
  ) && exists(DEV);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-eval-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

interface Golden {
  input_ids: number[];
  logits: number[];
  pred: number;
  label: number;
}

Deno.test("eval: padding to the static length and truncation keeping [SEP]", () => {
  assert.deepEqual(fitToLength([101, 7, 8, 102], 6, 102, 0), {
    ids: [101, 7, 8, 102, 0, 0],
    mask: [1, 1, 1, 1, 0, 0],
    truncated: false,
  });
  assert.deepEqual(fitToLength([101, 7, 8, 102], 4, 102, 0).truncated, false);
  assert.deepEqual(fitToLength([101, 7, 8, 9, 102], 4, 102, 0), {
    ids: [101, 7, 8, 102],
    mask: [1, 1, 1, 1],
    truncated: true,
  });
});

Deno.test("eval: TSV parsing and its one-line errors", () => {
  assert.deepEqual(parseSst2Tsv("sentence\tlabel\na b \t1\nc\t0\n"), [
    { sentence: "a b ", label: 1 },
    { sentence: "c", label: 0 },
  ]);
  assert.deepEqual(parseSst2Tsv("label\ttext\r\n0\tx\r\n"), [{ sentence: "x", label: 0 }]);
  const fails = (text: string, pattern: RegExp) =>
    assert.throws(
      () => parseSst2Tsv(text, "d.tsv"),
      (e) => e instanceof EvalError && pattern.test(e.message),
    );
  fails("", /^d\.tsv: empty/);
  fails("a\tb\nx\t1\n", /^d\.tsv:1: the header must name/);
  fails("sentence\tlabel\nx\n", /^d\.tsv:2: expected 2 tab-separated cells, got 1/);
  fails("sentence\tlabel\nx\t1\ny\tpos\n", /^d\.tsv:3: label must be an integer >= 0, got 'pos'/);
});

Deno.test({
  name: "eval CLI: sst2-bert-mini on 40 dev rows gives the golden predictions, accuracy and logits",
  ignore: !HAVE || !CAN_RUN,
  fn: () =>
    withTempDir(async (dir) => {
      const gold: Golden[] = (await Deno.readTextFile(join(MODEL, "golden_dev.jsonl"))).split("\n")
        .filter((l) => l.trim() !== "").slice(0, 40).map((l) => JSON.parse(l));
      const seq = 64;
      assert.ok(gold.every((g) => g.input_ids.length <= seq));
      const json = join(dir, "eval.json");
      const r = await runTask(
        "eval",
        MODEL,
        "--task",
        "sst2",
        "--data",
        DEV,
        "--limit",
        "40",
        "--seq",
        `${seq}`,
        "--json",
        json,
      );
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(await Deno.readTextFile(json));
      assert.equal(report.rows, 40);
      assert.equal(report.totalRows, 872);
      assert.equal(report.seq, seq);
      assert.equal(report.truncated, 0);
      assert.deepEqual(report.preds, gold.map((g) => g.pred));
      const correct = gold.filter((g) => g.pred === g.label).length;
      assert.equal(report.correct, correct);
      assert.equal(report.accuracy, correct / 40);
      const confusion = [[0, 0], [0, 0]];
      for (const g of gold) confusion[g.label][g.pred]++;
      assert.deepEqual(report.confusion, confusion);
      let worst = 0;
      gold.forEach((g, i) =>
        g.logits.forEach((v, k) => worst = Math.max(worst, Math.abs(report.logits[i][k] - v)))
      );
      assert.ok(worst < 1e-4, `max logit difference ${worst}`);
      assert.ok(report.rowsPerSecond > 0);
      // The printed summary.
      assert.match(
        r.stdout,
        new RegExp(`accuracy ${(100 * correct / 40).toFixed(2)}% \\(${correct} of 40\\)`),
      );
      assert.match(r.stdout, /rows = label, columns = prediction/);
      assert.match(r.stdout, /truncated 0 rows longer than 64 tokens/);
      assert.match(r.stdout, /rows\/s/);
    }),
});

Deno.test({
  name: "eval CLI: an IR file with --tokenizer, truncation counted, and one-line errors",
  ignore: !HAVE || !CAN_RUN,
  fn: () =>
    withTempDir(async (dir) => {
      const ir = join(dir, "mini.sir");
      await importHfBert(MODEL, ir, { seq: 8 });
      // No tokenizer beside the IR file.
      assertOneLineError(
        await runTask("eval", ir, "--task", "sst2", "--data", DEV, "--limit", "2"),
        2,
        /no tokenizer\.json or vocab\.txt/,
      );
      const r = await runTask(
        "eval",
        ir,
        "--task",
        "sst2",
        "--data",
        DEV,
        "--limit",
        "3",
        "--tokenizer",
        MODEL,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /3 of 872 rows, seq 8/);
      assert.match(r.stdout, /truncated 3 rows longer than 8 tokens/);
      assertOneLineError(
        await runTask("eval", ir, "--task", "sst2", "--data", DEV, "--seq", "16", "--tokenizer", MODEL),
        2,
        /--seq 16 differs from the sequence length 8/,
      );
      assertOneLineError(
        await runTask("eval", MODEL, "--task", "mnli", "--data", DEV),
        2,
        /--task 'mnli' is not/,
      );
      assertOneLineError(await runTask("eval", MODEL, "--task", "sst2"), 2, /--data is required/);
      assertOneLineError(
        await runTask("eval", MODEL, "--task", "sst2", "--data", DEV, "--limit", "0"),
        2,
        /--limit/,
      );
      assertOneLineError(
        await runTask("eval", join(dir, "nope"), "--task", "sst2", "--data", DEV),
        2,
        /no such file/,
      );
      assertOneLineError(
        await runTask("eval", MODEL, "--task", "sst2", "--data", join(dir, "no.tsv")),
        1,
        /no\.tsv/,
      );
      assertOneLineError(
        await runTask("eval", MODEL, "--task", "sst2", "--data", DEV, "--seq", "600"),
        2,
        /seq 600/,
      );
    }),
});
