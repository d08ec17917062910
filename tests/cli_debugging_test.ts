/**
 * `deno task compile`, `run`, `eval` and `bench` as a debugging loop (issue 16): dumps that load
 * with the weights of their moment, the tuning log written under the sandbox, the report naming
 * the pipeline, option ranges refused at parse time, missing files said in words, `--help` and
 * `--quiet`, and crash reproducers that replay. Each spawns the task exactly as deno.json runs it,
 * on a synthetic bert-tiny in a temp folder.
 *
 * Spawning needs `--allow-run`; without it these tests are ignored.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bertConfig, writeSyntheticBert } from "../frontend/synthetic_bert.ts";
import { CAN_RUN, compile, runTask } from "./compile_cli.ts";

const PRUNE_BSR = "prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4}";

/** Runs `fn` with a synthetic bert-tiny (seq 16) at `<dir>/bert-tiny.sir` in a temp folder, removed afterwards. */
function withModel(fn: (dir: string, model: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-debug-" });
    try {
      const model = join(dir, "bert-tiny.sir");
      await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16 }), model);
      await fn(dir, model);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `debugging loop: ${name}`, ignore: !CAN_RUN, fn });

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

test(
  "--tune writes its tuning log in another folder, created when missing, and nothing beside it",
  withModel(async (dir, model) => {
    const log = join(dir, "logs", "new", "tuning.json");
    const r = await compile(
      model,
      "--passes",
      PRUNE_BSR,
      "--tune",
      "--tuning-log",
      log,
      "-o",
      join(dir, "art"),
    );
    assert.equal(r.code, 0, r.stderr);
    const written = JSON.parse(await Deno.readTextFile(log));
    assert.ok(Object.keys(written.entries).length > 0, "the log holds the measurements");
    assert.deepEqual([...Deno.readDirSync(join(dir, "logs", "new"))].map((e) => e.name), ["tuning.json"]);
    // A second run reads it and tunes nothing new.
    const again = await compile(
      model,
      "--passes",
      PRUNE_BSR,
      "--tune",
      "--tuning-log",
      log,
      "-o",
      join(dir, "art"),
    );
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /sparse schedules \(12 products\):/);
  }),
);

test(
  "a missing model or artifact folder, and -o model.onnx, are said in words",
  withModel(async (dir, model) => {
    const nope = join(dir, "nope.sir");
    const compiled = await compile(nope);
    assert.equal(compiled.code, 1, compiled.stderr);
    assert.equal(
      compiled.stderr,
      `error: ${nope}: no such file or folder (expected an IR file, a checkpoint folder or an ONNX file)\n`,
    );
    const folder = join(dir, "nope") + "/";
    const ran = await runTask("run", folder, "--repeat", "2");
    assert.equal(ran.code, 1, ran.stderr);
    assert.equal(
      ran.stderr,
      `error: ${folder}: no such file or folder (expected an IR file (.sir) or an artifact folder)\n`,
    );
    const onnx = join(dir, "m.onnx");
    const refused = await compile(model, "-o", onnx);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      /^error: -o .*m\.onnx: compile writes IR \(-o FILE\.sir\) or an artifact folder/,
    );
    assert.match(refused.stderr, /deno task export out\.sir -o .*m\.onnx\n$/);
    assert.equal(await exists(onnx), false, "no m.onnx folder");
  }),
);

test(
  "--dump-dir: each dump runs with the weights as they were after its pass",
  withModel(async (dir, model) => {
    const dumps = join(dir, "dumps");
    const out = join(dir, "out.sir");
    const r = await compile(
      model,
      "--passes",
      `${PRUNE_BSR.replace("},", "},dce,")}`,
      "--dump-dir",
      dumps,
      "-o",
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    // Weights files only for the passes that replaced weights; dce's dump names prune's.
    assert.deepEqual([...Deno.readDirSync(dumps)].map((e) => e.name).sort(), [
      "00-input.sir",
      "01-prune.safetensors",
      "01-prune.sir",
      "02-dce.sir",
      "03-bsr-lower.safetensors",
      "03-bsr-lower.sir",
    ]);
    assert.match(await Deno.readTextFile(join(dumps, "02-dce.sir")), /weights "01-prune\.safetensors"/);
    const outputs = async (path: string) => {
      const run = await runTask("run", path, "--json");
      assert.equal(run.code, 0, `${path}: ${run.stderr}`);
      return JSON.stringify(JSON.parse(run.stdout).outputs);
    };
    const input = await outputs(model);
    const pruned = await outputs(out);
    assert.notEqual(pruned, input, "pruning changes the output");
    assert.equal(await outputs(join(dumps, "00-input.sir")), input);
    for (const dump of ["01-prune.sir", "02-dce.sir", "03-bsr-lower.sir"]) {
      assert.equal(await outputs(join(dumps, dump)), pruned, dump);
    }
  }),
);

test(
  "-o DIR: the report starts with the pipeline that ran, with a note when the default clean-up did not",
  withModel(async (dir, model) => {
    const own = await compile(model, "--passes", "dce", "-o", join(dir, "own"));
    assert.equal(own.code, 0, own.stderr);
    const lines = own.stderr.split("\n");
    assert.equal(lines[0], "pipeline: dce");
    assert.equal(
      lines[1],
      "note: canonicalize, cse, fuse of the default clean-up (canonicalize,cse,fuse,dce) did not run: " +
        "--passes replaces the default pipeline; append ',canonicalize,cse,fuse,dce' to run it",
    );
    assert.match(lines[2], /^compiled @main of bert-tiny: /);
    const byDefault = await compile(model, "-o", join(dir, "default"));
    assert.equal(byDefault.code, 0, byDefault.stderr);
    assert.match(byDefault.stderr, /^pipeline: canonicalize,cse,fuse,dce\ncompiled @main of bert-tiny: /);
  }),
);

test("--help of run, eval and bench lists every option; compile's lists --quiet", async () => {
  const options = {
    run: ["--seed", "--func", "--json", "--save", "--seq", "--inputs", "--threads", "--repeat", "--profile"],
    eval: ["--task", "--data", "--limit", "--seq", "--tokenizer", "--threads", "--json"],
    compile: [
      "--quiet",
      "--dump-dir",
      "--tune",
      "--tuning-log",
      "--passes",
      "--reproducer",
      "--run-reproducer",
    ],
    // Every option the benchmarks parse (dense, table1, sweep, compare, table2).
    bench: [
      ...["--model", "--seq", "--repeat", "--warmup", "--threads", "--blocks", "--sparsity", "--sparsities"],
      ...["--quick", "--no-web", "--fresh", "--tune", "--tuning-log", "--reload", "--build-only", "--out"],
      ...["--block", "--pause", "--data", "--train", "--limit", "--calibration", "--cal-seq", "--seed"],
      ...["--workers", "--interpreter", "--results", "--no-results", "--from-json", "--methods"],
      "--reconstruct-options",
    ],
  };
  for (const [task, names] of Object.entries(options)) {
    const r = await runTask(task, "--help");
    assert.equal(r.code, 0, r.stderr);
    for (const name of [...names, "--help"]) {
      assert.match(r.stdout, new RegExp(`^ +(-\\w, )?${name}\\b`, "m"), `${task} ${name}`);
    }
  }
});

test(
  "compile --quiet prints nothing on success and still the error on failure",
  withModel(async (dir, model) => {
    const ok = await compile(model, "--passes", PRUNE_BSR, "-o", join(dir, "art"), "--quiet");
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr, "");
    assert.ok(await exists(join(dir, "art", "plan.json")));
    const failed = await compile(
      model,
      "--plugin",
      "tests/fixtures/plugins/run_throws.ts",
      "--passes",
      "prune,run-throws",
      "-o",
      join(dir, "x.sir"),
      "--quiet",
    );
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stderr, /error: pass 'run-throws' failed: /);
    assert.doesNotMatch(failed.stderr, /^prune: /m);
  }),
);

test("out-of-range pass options are refused at parse time, with a caret at the option, before the model is read", async () => {
  const cases: [string, number, string][] = [
    [
      "prune{block=4x4 sparsity=1.5},bsr-lower",
      17,
      "option 'sparsity' of 'prune' must be in [0, 1), got '1.5'",
    ],
    ["prune{block=1x99999}", 7, "option 'block' of 'prune' must have each side in [1, 16384], got '1x99999'"],
    [
      "prune-reconstruct{calibration=-3}",
      19,
      "option 'calibration' of 'prune-reconstruct' must be at least 1, got '-3'",
    ],
    [
      "bsr-lower{sparsity-threshold=2}",
      11,
      "option 'sparsity-threshold' of 'bsr-lower' must be in [0, 1], got '2'",
    ],
  ];
  for (const [passes, col, message] of cases) {
    // The model does not exist: the pipeline is refused first.
    const r = await compile("no/such/model.sir", "--passes", passes);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr, `error: --passes:${col}: ${message}\n  ${passes}\n  ${" ".repeat(col - 1)}^\n`);
  }
  const list = await compile("--list-passes");
  assert.match(list.stdout, /^ {4}sparsity=number \(default 0\.8, in \[0, 1\)\): /m);
});

test(
  "a failing pass leaves a crash reproducer beside -o (or at --reproducer) that replays the failure",
  withModel(async (dir, model) => {
    const plugin = "tests/fixtures/plugins/run_throws.ts";
    const passes = "prune{sparsity=0.8 block=4x4},run-throws{how=plain},dce";
    const out = join(dir, "out", "x.sir");
    const r = await compile(model, "--plugin", plugin, "--passes", passes, "-o", out);
    assert.equal(r.code, 1, r.stderr);
    const reproducer = join(dir, "out", "x.reproducer.sir");
    const lines = r.stderr.trimEnd().split("\n").filter((l) => !l.startsWith("prune: "));
    assert.match(lines[0], /^.*bert-tiny\.sir:\d+:\d+: error: pass 'run-throws' threw: plain failure$/);
    assert.deepEqual(lines.slice(1), [
      `the output was not written; pipeline: ${passes}`,
      `wrote the crash reproducer ${reproducer} (replay: deno task compile --run-reproducer ${reproducer})`,
    ]);
    assert.equal(await exists(out), false);
    // The module given to the failing pass, with prune's weights beside it and the rest of the pipeline.
    const text = await Deno.readTextFile(reproducer);
    assert.match(text, /^\/\/ sparrow-reproducer pipeline: run-throws\{how=plain\},dce$/m);
    assert.match(text, /weights "x\.reproducer\.safetensors"/);
    assert.doesNotMatch(text, /bsr/);
    const pruned = await runTask("run", reproducer, "--json");
    assert.equal(pruned.code, 0, pruned.stderr);
    // The replay fails the same way, at the same op of the reproducer.
    const replay = await compile("--run-reproducer", reproducer);
    assert.equal(replay.code, 1, replay.stderr);
    assert.match(
      replay.stderr,
      /^.*x\.reproducer\.sir:\d+:\d+: error: pass 'run-throws' threw: plain failure\n/,
    );
    assert.match(replay.stderr, /\nnothing was written; pipeline: run-throws\{how=plain\},dce\n$/);
    // --reproducer chooses the place; before any weight change it names the input's weights.
    const chosen = join(dir, "elsewhere", "crash.sir");
    const first = await compile(
      model,
      "--plugin",
      plugin,
      "--passes",
      "run-throws{how=plain}",
      "--reproducer",
      chosen,
    );
    assert.equal(first.code, 1, first.stderr);
    assert.match(await Deno.readTextFile(chosen), /weights "\.\.\/bert-tiny\.safetensors"/);
    assert.deepEqual([...Deno.readDirSync(join(dir, "elsewhere"))].map((e) => e.name), ["crash.sir"]);
    const notOne = await compile("--run-reproducer", model);
    assert.equal(notOne.code, 2, notOne.stderr);
    assert.match(notOne.stderr, /^error: .*bert-tiny\.sir: not a crash reproducer/);
  }),
);
