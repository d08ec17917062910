/**
 * `deno task train`, spawned as deno.json runs it: bad input is one line and exit 2 (before
 * anything loads); a real one-step masked fine-tuning of the shared 1x32-pruned mini model writes
 * a checkpoint that imports, keeps every pruned zero, and says how it was made in training.json.
 * Ignored without `--allow-run` (and the second without ../shared).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { readHfBert } from "../../frontend/hf.ts";
import { readSafetensors } from "../../ir/safetensors.ts";
import { assertOneLineError, CAN_RUN, runTask } from "../compile_cli.ts";

const PRUNED = "../shared/models/sst2-bert-mini-pruned-1x32-80";
const present = (() => {
  try {
    return Deno.statSync(join(PRUNED, "model.safetensors")).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "train: bad input is one line and exit 2",
  ignore: !CAN_RUN,
  async fn() {
    const base = ["m", "--task", "sst2", "--data", "t.tsv", "-o", "out/x"];
    assertOneLineError(await runTask("train", "m", "--task", "sst2"), 2, /--data is required/);
    assertOneLineError(
      await runTask("train", ...base, "--block", "4by4"),
      2,
      /--block: a block shape is RxC/,
    );
    assertOneLineError(await runTask("train", ...base, "--objective", "gmp"), 2, /gmp needs --sparsity/);
    assertOneLineError(
      await runTask("train", ...base, "--objective", "recipe", "--group-lasso", "1", "--sparsity", "1"),
      2,
      /--sparsity must be a number in \[0, 1\)/,
    );
    assertOneLineError(await runTask("train", ...base, "--sparsity", "0.5"), 2, /--sparsity does not apply/);
    assertOneLineError(await runTask("train", ...base, "--bogus"), 2, /unknown option '--bogus'/);
    assertOneLineError(
      await runTask("train", ...base, "--distill-hidden", "10"),
      2,
      /--distill-hidden needs --distill/,
    );
    assertOneLineError(
      await runTask("train", ...base, "--distill", "--distill-hidden", "lots"),
      2,
      /--distill-hidden must be a number >= 0/,
    );
    assertOneLineError(await runTask("train", ...base, "--teacher", "t"), 2, /--teacher needs --distill/);
    assertOneLineError(
      await runTask("train", ...base, "--distill", "--distill-hidden", "1", "--teacher", "t"),
      2,
      /--distill-hidden needs the checkpoint itself as the teacher/,
    );
  },
});

const SMALL = "../shared/models/sst2-bert-small";

Deno.test({
  name:
    "train: --teacher distils from another checkpoint (bert-small into the pruned mini), recorded in training.json",
  ignore: !CAN_RUN || !present,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-train-" });
    try {
      const train = join(dir, "train.tsv"), out = join(dir, "ft");
      await Deno.writeTextFile(
        train,
        "sentence\tlabel\na charming , often affecting journey . \t1\nunflinchingly bleak and desperate \t0\n",
      );
      const args = ["--task", "sst2", "--data", train, "--dev", train, "-o", out, "--objective", "masked"];
      const r = await runTask(
        "train",
        PRUNED,
        ...args,
        ...["--steps", "1", "--batch", "2", "--seq", "16", "--distill", "--teacher", SMALL],
      );
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(await Deno.readTextFile(join(out, "training.json")));
      assert.equal(report.distill.teacher, SMALL);
      assert.ok(Number.isFinite(report.loss.first), `loss ${report.loss.first}`);
      const bad = await runTask("train", PRUNED, ...args, "--distill", "--teacher", dir);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /\nerror: [^\n]*config\.json: not found[^\n]*\n$/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "train: one masked step on the 1x32-pruned mini model keeps its zeros and imports",
  ignore: !CAN_RUN || !present,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-train-" });
    try {
      const train = join(dir, "train.tsv"), dev = join(dir, "dev.tsv"), out = join(dir, "ft");
      await Deno.writeTextFile(
        train,
        "sentence\tlabel\na charming , often affecting journey . \t1\nunflinchingly bleak and desperate \t0\n" +
          "it 's slow -- very , very slow . \t0\nthe acting , costumes , music , cinematography and sound are all astounding \t1\n",
      );
      await Deno.writeTextFile(dev, "sentence\tlabel\nit 's a charming and often affecting journey . \t1\n");
      assertOneLineError(
        await runTask("train", PRUNED, "--task", "sst2", "--data", train, "-o", PRUNED),
        2,
        /is the input checkpoint's folder/,
      );
      const r = await runTask(
        "train",
        PRUNED,
        "--task",
        "sst2",
        "--data",
        train,
        "--dev",
        dev,
        "-o",
        out,
        "--objective",
        "masked",
        "--steps",
        "1",
        "--batch",
        "2",
        "--seq",
        "16",
        "--lr",
        "1e-3",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /1 steps, masked/);
      assert.match(r.stdout, /dev accuracy \d+\.\d\d% on 1 rows/);
      const report = JSON.parse(await Deno.readTextFile(join(out, "training.json")));
      assert.deepEqual([report.stepsTaken, report.batch, report.objective.kind], [1, 2, "masked"]);
      const before = await readSafetensors(join(PRUNED, "model.safetensors"));
      const after = await readSafetensors(join(out, "model.safetensors"));
      let moved = 0;
      for (const name of before.tensors.keys()) {
        const a = before.float32(name), b = after.float32(name);
        const prunable = /encoder\.layer\.\d+\..*(query|key|value|dense)\.weight$/.test(name);
        for (let i = 0; i < a.length; i++) {
          if (prunable && a[i] === 0) assert.equal(b[i], 0, `${name}[${i}] left zero`);
          if (a[i] !== b[i]) moved++;
        }
      }
      assert.ok(moved > 1_000_000, `${moved} weights moved`);
      const imported = await readHfBert(out, { seq: 16 });
      assert.equal(imported.architecture, "BertForSequenceClassification");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
