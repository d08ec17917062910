/**
 * The compile session (driver/): every kind of input compiles to the same model, the result is
 * written and loaded back the same way from disk and from memory, and failures are CompileErrors
 * that name their stage and place.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  bertConfig,
  compile,
  CompileError,
  type CompileResult,
  definePass,
  exportOnnx,
  formatReport,
  type InputData,
  loadCompiled,
  loadInput,
  loadModule,
  readSafetensors,
  writeArtifact,
  writeModule,
  writeSyntheticBert,
} from "../mod.ts";
import { seededInputs } from "../ir/inputs.ts";

const MINI = fileURLToPath(new URL("../../shared/models/sst2-bert-mini", import.meta.url));
const ROOT_DIR = fileURLToPath(new URL("../", import.meta.url));

/** Runs `dir` in a fresh temp folder, removed afterwards. */
async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-driver-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A synthetic bert-tiny (seq 16) written to `dir`; returns its path. */
async function tiny(dir: string): Promise<string> {
  const path = join(dir, "tiny.sir");
  await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16, layers: 1 }), path);
  return path;
}

/** The first output of `result`'s artifact, loaded from memory, on seeded inputs. */
async function logits(result: CompileResult): Promise<Float32Array> {
  const f = result.module.func("main")!;
  const inputs = seededInputs(f, 5);
  const feeds: Record<string, InputData> = Object.fromEntries(
    f.params.map((p, i) => [p.name, inputs[i].data]),
  );
  const model = await loadCompiled(result.artifact!, { threads: 1 });
  try {
    return model.run(feeds)[f.returns[0].name];
  } finally {
    model.close();
  }
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

Deno.test("compile: an IR file, the same module in memory and its ONNX export give the same model", async () => {
  await inTemp(async (dir) => {
    const path = await tiny(dir);
    const fromFile = await compile(path);
    assert.equal(fromFile.inputKind, "sir");
    const loaded = await loadInput(path);
    const fromMemory = await compile({ module: loaded.module, weights: loaded.weights });
    assert.equal(fromMemory.inputKind, "memory");
    assert.deepEqual(await logits(fromMemory), await logits(fromFile));

    const onnx = join(dir, "tiny.onnx");
    await Deno.writeFile(onnx, exportOnnx(loaded.module, loaded.weights).bytes);
    const fromOnnx = await compile(onnx);
    assert.equal(fromOnnx.inputKind, "onnx");
    assert.ok(maxDiff(await logits(fromOnnx), await logits(fromFile)) < 1e-4);
    // The input module is never changed.
    assert.equal(loaded.module.func("main")!.body.some((op) => op.name === "add_layer_norm"), false);
  });
});

Deno.test({
  name: "compile: a Hugging Face folder and its imported IR give the same model",
  ignore: !existsSync(join(MINI, "config.json")),
  async fn() {
    await inTemp(async (dir) => {
      const fromFolder = await compile(MINI, { seq: 16 });
      assert.equal(fromFolder.inputKind, "hf");
      assert.ok(fromFolder.inputWeights?.endsWith("model.safetensors"));
      const ir = join(dir, "mini.sir");
      await writeModule(await compile(MINI, { seq: 16, pipeline: "", codegen: false }), ir);
      const fromIr = await compile(ir);
      assert.deepEqual(await logits(fromIr), await logits(fromFolder));
    });
  },
});

Deno.test("compile: the result writes and loads back the same from disk and from memory", async () => {
  await inTemp(async (dir) => {
    const path = await tiny(dir);
    const pruned = await compile(path, {
      pipeline: "prune{sparsity=0.8 block=4x4},canonicalize,cse,fuse,bsr-lower{block=4x4},dce",
      log: () => {},
    });
    assert.ok(pruned.changedWeights.size > 0);
    assert.ok(pruned.module.func("main")!.body.some((op) => op.name === "bsr_dense"));
    // The compile report lists what bsr-lower left dense, and why: the unpruned pooler and classifier.
    assert.deepEqual(
      pruned.artifact!.report.bsrSkips?.map((s) => [s.weight, s.reason]),
      [["@bert.pooler.dense.weight", "too-dense"], ["@classifier.weight", "too-dense"]],
    );
    assert.match(
      formatReport(pruned.artifact!.report),
      /left dense by bsr-lower \(2\):\n {4}@bert\.pooler\.dense\.weight \(too-dense\)/,
    );
    // The artifact folder holds the changed weights; loaded from disk it runs like from memory.
    await writeArtifact(pruned, join(dir, "a"), { files: { "note.txt": "hello" } });
    assert.equal(await Deno.readTextFile(join(dir, "a", "note.txt")), "hello");
    const fromDisk = await loadCompiled(join(dir, "a"), { threads: 2 });
    const f = pruned.module.func("main")!;
    const inputs = seededInputs(f, 5);
    const feeds = Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data]));
    try {
      assert.deepEqual(fromDisk.run(feeds)[f.returns[0].name], await logits(pruned));
    } finally {
      fromDisk.close();
    }
    // The IR written with the changed weights beside it loads and compiles to the same model.
    const written = await writeModule(pruned, join(dir, "pruned.sir"));
    assert.equal(written, join(dir, "pruned.safetensors"));
    const names = [...(await readSafetensors(written!)).tensors.keys()];
    assert.ok(names.some((n) => n.endsWith(".indptr")), "BSR weights are written with their index arrays");
    const again = await compile(join(dir, "pruned.sir"));
    assert.deepEqual(await logits(again), await logits(pruned));
    // Never over the input: the IR file itself, or (when weights changed) its weights file.
    const before = await Deno.readFile(join(dir, "tiny.safetensors"));
    await assert.rejects(() => writeModule(pruned, path), /tiny\.sir would overwrite the input/);
    await assert.rejects(
      () => writeModule(pruned, join(dir, "tiny")),
      /tiny\.safetensors would overwrite the input/,
    );
    assert.deepEqual(await Deno.readFile(join(dir, "tiny.safetensors")), before);
    // Unchanged weights are not copied: the IR names the input's file.
    assert.equal(
      await writeModule(await compile(path, { codegen: false }), join(dir, "sub", "same.sir")),
      undefined,
    );
    const same = await loadModule(join(dir, "sub", "same.sir"));
    assert.equal(same.module?.weightsFile, "../tiny.safetensors");
  });
});

Deno.test("compile: passes as objects, plugins as objects, timing and stats", async () => {
  await inTemp(async (dir) => {
    const path = await tiny(dir);
    let seen = 0;
    const counter = definePass({
      name: "count-ops",
      description: "Counts ops.",
      statistics: { ops: "ops seen" },
      runOnModule(m, ctx) {
        seen = m.funcs[0].body.length;
        ctx.stat("ops", seen);
        return "unchanged";
      },
    });
    const byObject = await compile(path, { pipeline: [counter], codegen: false });
    assert.equal(byObject.artifact, undefined);
    assert.deepEqual(byObject.stats.map((s) => [s.pass, s.name, s.value]), [["count-ops", "ops", seen]]);
    const byName = await compile(path, { pipeline: "dce,count-ops", plugins: [counter], codegen: false });
    assert.deepEqual(byName.runs.map((r) => r.pass.name), ["dce", "count-ops"]);
    assert.equal(byName.timing.length, 2);
    assert.match(byName.timingTable, /count-ops/);
  });
});

Deno.test("compile: failures are CompileErrors naming the stage and the place", async () => {
  await inTemp(async (dir) => {
    const path = await tiny(dir);
    const fails = async (p: Promise<unknown>, stage: string, message: RegExp) => {
      const e = await p.then(() => undefined, (e) => e);
      assert.ok(e instanceof CompileError, `expected a CompileError, got ${e}`);
      assert.equal(e.stage, stage);
      assert.match(e.message, message);
    };
    await fails(
      compile(path, { pipeline: "dcee" }),
      "pipeline",
      /^pipeline:1: unknown pass 'dcee' \(did you mean 'dce'\?\)/,
    );
    await fails(compile(join(dir, "missing.sir")), "input", /missing\.sir/);
    await Deno.writeTextFile(join(dir, "bad.sir"), "module @m {\n  func @main( {\n}\n");
    const e = await compile(join(dir, "bad.sir")).catch((e) => e) as CompileError;
    assert.ok(
      e.diagnostics.length > 0 && e.source.includes("func @main"),
      "IR diagnostics with their source",
    );
    await Deno.mkdir(join(dir, "hf"));
    await Deno.writeTextFile(join(dir, "hf", "config.json"), `{"hidden_size": "x"}`);
    await fails(compile(join(dir, "hf")), "input", /config\.json: hidden_size must be a positive integer/);
    // seq on an ONNX model whose sequence length is fixed would be silently ignored: refused.
    const fixed = join(ROOT_DIR, "tests/fixtures/onnx/bert_op11_fold_static_dense.onnx");
    await fails(compile(fixed, { seq: 8 }), "input", /fixed sequence length \(16\); seq 8 applies only/);
    assert.equal((await compile(fixed, { seq: 16, codegen: false })).inputKind, "onnx");
    await Deno.writeFile(join(dir, "bad.onnx"), new Uint8Array([7, 7, 7]));
    await fails(compile(join(dir, "bad.onnx")), "input", /bad\.onnx: not an ONNX model/);
    await fails(
      compile(path, { pipeline: 'prune-reconstruct{calibration-data="/nonexistent.tsv"}' }),
      "input",
      /option 'calibration-data'.*nonexistent\.tsv/,
    );
    const broken = definePass({
      name: "broken",
      description: "Fails.",
      runOnModule: (_m, ctx) => {
        throw ctx.error(undefined, "on purpose");
      },
    });
    await fails(compile(path, { pipeline: [broken] }), "pass", /pass 'broken' failed: on purpose/);
  });
});
