/**
 * The `quantize` pass: per-channel int8 weights on hand-computed rows, which dense ops it
 * rewrites (and which it leaves in f32, by name, K and layout), the module verifying after it,
 * outputs close to f32 with dynamic and static (calibrated) activation scales, its option
 * errors, and the int8 weights through the compile CLI and safetensors.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bertConfig,
  buildBertModule,
  syntheticBertWeights,
  writeSyntheticBert,
} from "../../frontend/synthetic_bert.ts";
import { ModuleBuilder } from "../../ir/builder.ts";
import { seededInputs } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import { loadModule, loadWeights } from "../../ir/load.ts";
import type { Module } from "../../ir/module.ts";
import { BsrTensor, Tensor } from "../../ir/tensor.ts";
import { denseInt8 } from "../../ir/ops/qdense.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";
import { createPassRegistry } from "../../passes/index.ts";
import { type PipelineResult, runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { quantizeWeight } from "../../passes/quantize.ts";
import { CAN_RUN, runTask } from "../compile_cli.ts";

const registry = createPassRegistry();

/** The synthetic bert-tiny (seq 16) with its synthetic weights, in memory. */
function tiny(): { m: Module; store: WeightStore } {
  const c = bertConfig("bert-tiny", { seq: 16 });
  const m = buildBertModule(c, "tiny.safetensors");
  const tensors = new Map(
    syntheticBertWeights(c).map((t) => [
      t.name,
      new Tensor({ shape: t.shape, dtype: "f32" }, t.data as Float32Array),
    ]),
  );
  return { m, store: memoryStore(tensors) };
}

function quantize(m: Module, store: WeightStore, options = "", logs: string[] = []): PipelineResult {
  const text = options ? `quantize{${options}}` : "quantize";
  return runPipeline(m, parsePipeline(text, registry), { weights: store, log: (l) => logs.push(l) });
}

const count = (m: Module, name: string) => m.funcs[0].body.filter((op) => op.name === name).length;

/** max |a - b| relative to max |a|. */
function relDiff(a: Tensor, b: Tensor): number {
  let d = 0, s = 0;
  for (let i = 0; i < a.data.length; i++) {
    d = Math.max(d, Math.abs(a.data[i] - b.data[i]));
    s = Math.max(s, Math.abs(a.data[i]));
  }
  return d / s;
}

Deno.test("quantize: symmetric per-row int8 weights, ties to even, rows of zeros", () => {
  // Row 0: max 1.27, scale fround(0.01); 0.005 / 0.01 rounds (a tie, up to f32 rounding) to 0 or 1.
  // Row 1: max 127 -> scale 1: 2.5 -> 2 and -0.5 -> 0 (ties to even), 126.6 -> 127.
  // Row 2: zeros -> scale 1, q = 0.
  const w = [0.5, -1.27, 0, 0.3, 127, 2.5, -0.5, 126.6, 0, 0, 0, 0];
  const q = quantizeWeight(Float32Array.from(w), 3, 4)!;
  assert.deepEqual([...q.scale], [Math.fround(1.27 / 127), 1, 1].map(Math.fround));
  assert.deepEqual([...q.wq.slice(0, 3)], [50, -127, 0]);
  assert.equal(q.wq[3], 30);
  assert.deepEqual([...q.wq.slice(4)], [127, 2, 0, 127, 0, 0, 0, 0]);
  assert.equal(quantizeWeight([1, NaN], 1, 2), undefined);
  assert.equal(quantizeWeight([1, Infinity], 1, 2), undefined);
});

Deno.test("quantize: bert-tiny's encoder dense ops become qdense, head stays f32, close to f32", () => {
  const { m, store } = tiny();
  const logs: string[] = [];
  const r = quantize(m, store, "", logs);
  assert.deepEqual(verify(r.module, { weights: r.weights.entries() }), []);
  assert.equal(count(r.module, "qdense"), 12);
  assert.equal(count(r.module, "dense"), 2); // pooler and classifier
  const stat = (name: string) => r.stats.find((s) => s.pass === "quantize" && s.name === name)?.value;
  // 12 encoder weights and 2 embedding tables (word, token type; the positions are sliced, not gathered).
  assert.deepEqual([stat("weights"), stat("ops"), stat("skipped"), stat("tables")], [14, 12, 2, 2]);
  assert.equal(count(r.module, "qgather"), 2);
  assert.equal(count(r.module, "gather"), 0);
  const emb = "bert.embeddings.word_embeddings.weight";
  assert.equal(r.module.weights.has(emb), false);
  assert.deepEqual(r.module.weights.get(`${emb}.q`)!.type, { shape: [30522, 128], dtype: "i8" });
  assert.deepEqual(
    r.weights.get(r.module.weights.get(`${emb}.scale`)!).data,
    quantizeWeight(store.get(m.weights.get(emb)!).data, 30522, 128)!.scale,
  );
  const name = "bert.encoder.layer.0.attention.self.query.weight";
  assert.equal(r.module.weights.has(name), false, "the f32 weight is dropped");
  assert.deepEqual(r.module.weights.get(`${name}.q`)!.type, { shape: [128, 128], dtype: "i8" });
  assert.deepEqual(r.module.weights.get(`${name}.scale`)!.type, { shape: [128], dtype: "f32" });
  const names = [...r.module.weights.keys()];
  assert.equal(names.indexOf(`${name}.scale`), names.indexOf(`${name}.q`) + 1);
  const want = quantizeWeight(store.get(m.weights.get(name)!).data, 128, 128)!;
  assert.deepEqual(r.weights.get(r.module.weights.get(`${name}.q`)!).data, want.wq);
  const op = r.module.funcs[0].body.find((o) => o.result.name === "l0.q")!;
  assert.equal(op.name, "qdense");
  assert.deepEqual(op.attrs.get("act_max"), { kind: "int", value: 63 });
  assert.deepEqual(op.attrs.get("act_scale"), { kind: "float", value: 0 });
  assert.equal(logs.filter((l) => l.includes("-> int8")).length, 14);
  for (const seed of [1, 2]) {
    const inputs = seededInputs(m.func("main")!, seed);
    const rel = relDiff(interpret(m, inputs, store)[0], interpret(r.module, inputs, r.weights)[0]);
    assert.ok(rel < 0.05, `seed ${seed}: logits differ by ${rel} of their size`);
  }
});

Deno.test("quantize: static scales from calibration (random ids) are one per op, > 0, close to f32", () => {
  const { m, store } = tiny();
  const logs: string[] = [];
  const r = quantize(m, store, "activations=static calibration-data=random calibration=8 act-max=127", logs);
  assert.deepEqual(verify(r.module, { weights: r.weights.entries() }), []);
  const qs = r.module.funcs[0].body.filter((op) => op.name === "qdense");
  assert.equal(qs.length, 12);
  for (const op of qs) {
    const s = op.attrs.get("act_scale")!.value as number;
    assert.ok(s > 0 && Number.isFinite(s), `${op.result.ref}: act_scale ${s}`);
    assert.equal(op.attrs.get("act_max")!.value, 127);
  }
  // Q, K and V share their input, hence their scale.
  const scale = (n: string) => qs.find((op) => op.result.name === n)!.attrs.get("act_scale")!.value;
  assert.equal(scale("l0.q"), scale("l0.k"));
  assert.notEqual(scale("l0.q"), scale("l0.inter"));
  assert.ok(logs.some((l) => l.includes("calibration: 8 sentences")));
  const inputs = seededInputs(m.func("main")!, 1);
  const rel = relDiff(interpret(m, inputs, store)[0], interpret(r.module, inputs, r.weights)[0]);
  assert.ok(rel < 0.1, `logits differ by ${rel} of their size`);
});

Deno.test("quantize: bsr_dense becomes qdense over an i8 BSR weight, the same as quantizing before bsr-lower", () => {
  const { m, store } = tiny();
  const run = (p: string) => runPipeline(m, parsePipeline(p, registry), { weights: store, log: () => {} });
  const dense = run("prune{sparsity=0.8 block=4x4},quantize");
  const sparse = run("prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4},quantize");
  assert.deepEqual(verify(sparse.module, { weights: sparse.weights.entries() }), []);
  assert.equal(count(sparse.module, "qdense"), 12);
  assert.equal(count(sparse.module, "bsr_dense"), 0);
  const name = "bert.encoder.layer.0.intermediate.dense.weight.q";
  const w = sparse.module.weights.get(name)!;
  assert.deepEqual(w.type.sparse?.block, [4, 4]);
  assert.equal(w.type.dtype, "i8");
  assert.ok(sparse.weights.get(w) instanceof BsrTensor);
  assert.deepEqual(
    Array.from(denseInt8(sparse.weights.get(w))),
    Array.from(dense.weights.get(dense.module.weights.get(name)!).data),
  );
  for (const seed of [1, 2]) {
    const inputs = seededInputs(m.func("main")!, seed);
    const a = interpret(dense.module, inputs, dense.weights)[0];
    const b = interpret(sparse.module, inputs, sparse.weights)[0];
    assert.deepEqual(b.data, a.data, `seed ${seed}`);
  }
});

Deno.test("quantize: weights, min-in and layouts choose the ops", () => {
  const { m, store } = tiny();
  assert.equal(count(quantize(m, store, "weights=query").module, "qdense"), 2);
  assert.equal(count(quantize(m, store, `weights=. min-in=0`).module, "qdense"), 14);
  // K = 512 only in the output dense ops.
  assert.equal(count(quantize(m, store, "min-in=200").module, "qdense"), 2);
  assert.equal(quantize(m, store, "min-in=600 embeddings=false").runs[0].changed, false);
  const tablesOnly = quantize(m, store, "min-in=600").module;
  assert.deepEqual([count(tablesOnly, "qdense"), count(tablesOnly, "qgather")], [0, 2]);
  assert.deepEqual([count(quantize(m, store, "embeddings=false").module, "qgather")], [0]);

  const b = new ModuleBuilder("layouts");
  const w1 = b.weight("a.weight", { shape: [64, 64], dtype: "f32" });
  const w2 = b.weight("b.weight", { shape: [64, 64], dtype: "f32" });
  const f = b.func("main", [["x", { shape: [2, 64], dtype: "f32" }]]);
  const y1 = f.op("dense", [f.params[0], w1], { transpose_b: true, activation: "tanh" });
  const y2 = f.op("dense", [y1, w2]); // [in, out]: left alone
  const y3 = f.op("dense", [y2, w1], { transpose_b: true }); // shares a.weight
  f.ret(y3);
  const tensors = new Map([w1, w2].map((w, i) => [
    w.name,
    Tensor.from([64, 64], "f32", Array.from({ length: 4096 }, (_, j) => Math.sin(j * (i + 1)))),
  ]));
  const r = quantize(b.module, memoryStore(tensors), "weights=.");
  assert.deepEqual(r.module.funcs[0].body.map((op) => op.name), ["qdense", "dense", "qdense"]);
  assert.deepEqual([...r.module.weights.keys()], ["a.weight.q", "a.weight.scale", "b.weight"]);
  assert.deepEqual(r.module.funcs[0].body[0].attrs.get("activation"), { kind: "enum", value: "tanh" });
});

Deno.test("quantize: bad options are errors naming the option", () => {
  const { m, store } = tiny();
  assert.throws(() => parsePipeline("quantize{act-max=128}", registry), /act-max/);
  assert.throws(() => parsePipeline("quantize{act-max=0}", registry), /act-max/);
  assert.throws(() => parsePipeline("quantize{activations=both}", registry), /activations/);
  assert.throws(() => quantize(m, store, `weights="(a"`), /option 'weights' is not a valid regex/);
  assert.throws(
    () => quantize(m, store, "activations=static"),
    /calibration sentences were not prepared/,
  );
});

Deno.test({
  name: "quantize: int8 weights go through the compile CLI and safetensors, and the output runs",
  ignore: !CAN_RUN,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const c = bertConfig("bert-tiny", { seq: 16 });
      const src = join(dir, "tiny.sir"), out = join(dir, "tiny-q.sir");
      await writeSyntheticBert(c, src);
      const run = await runTask("compile", src, "--passes", "quantize", "--stats", "-o", out);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /quantize: weights quantized: 14/);
      const loaded = await loadModule(out);
      assert.deepEqual(loaded.diagnostics, []);
      const q = loaded.module!;
      const qStore = await loadWeights(q, out);
      const name = "bert.encoder.layer.1.output.dense.weight.q";
      const t = qStore.get(q.weights.get(name)!);
      assert.ok(t.data instanceof Int8Array && t.data.length === 128 * 512, name);
      const f32 = (await loadModule(src)).module!;
      const f32Store = await loadWeights(f32, src);
      const want = quantizeWeight(f32Store.get(f32.weights.get(name.slice(0, -2))!).data, 128, 512)!;
      assert.deepEqual(t.data, want.wq);
      const inputs = seededInputs(f32.func("main")!, 4);
      const rel = relDiff(interpret(f32, inputs, f32Store)[0], interpret(q, inputs, qStore)[0]);
      assert.ok(rel < 0.05, `logits differ by ${rel} of their size`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
