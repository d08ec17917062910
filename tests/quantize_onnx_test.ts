/**
 * ONNX export of `qdense` (frontend/onnx/export_quant.ts) run in onnxruntime-node against the
 * reference interpreter: single ops on data with ties, rows of zeros, static scales and every
 * activation, then a synthetic bert-tiny after the `quantize` pass (dynamic and static scales).
 */

import assert from "node:assert/strict";
import { scoreVariant } from "../bench/int8_accuracy.ts";
import { ulpNoiseSpread } from "../bench/ulp_noise.ts";
import { exportOnnx } from "../frontend/onnx/export.ts";
import { bertConfig, buildBertModule, syntheticBertWeights } from "../frontend/synthetic_bert.ts";
import { seededInputs } from "../ir/inputs.ts";
import { interpret } from "../ir/interpreter.ts";
import { ModuleBuilder } from "../ir/builder.ts";
import type { Module } from "../ir/module.ts";
import { Random } from "../ir/random.ts";
import { Tensor } from "../ir/tensor.ts";
import { memoryStore, type WeightStore } from "../ir/weights.ts";
import { createPassRegistry } from "../passes/index.ts";
import { runPipeline } from "../passes/manager.ts";
import { parsePipeline } from "../passes/pipeline.ts";

const CAN_ORT = Deno.permissions.querySync({ name: "ffi" }).state === "granted";

/** Runs `@main` of `m` in onnxruntime on `inputs` (f32 and i64 only); returns the outputs. */
async function runOrt(m: Module, weights: WeightStore, inputs: Tensor[]): Promise<Tensor[]> {
  const ort = await import("onnxruntime-node");
  const { bytes } = exportOnnx(m, weights);
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const f = m.func("main")!;
  const feeds = Object.fromEntries(f.params.map((p, i) => {
    const t = inputs[i];
    const tensor = t.dtype === "i64"
      ? new ort.Tensor("int64", BigInt64Array.from(t.data, (v) => BigInt(v)), [...t.shape])
      : new ort.Tensor("float32", Float32Array.from(t.data), [...t.shape]);
    return [p.name, tensor];
  }));
  const out = await session.run(feeds);
  const result = session.outputNames.map((n) =>
    Tensor.from([...out[n].dims], "f32", Array.from(out[n].data as Float32Array))
  );
  await session.release();
  return result;
}

/** The largest |a - b| over two tensors of one shape. */
function maxDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  let d = 0;
  for (let i = 0; i < a.data.length; i++) d = Math.max(d, Math.abs(a.data[i] - b.data[i]));
  return d;
}

interface OpCase {
  readonly label: string;
  readonly attrs: Record<string, number | string>;
  readonly bias: boolean;
}

const OP_CASES: OpCase[] = [
  { label: "dynamic, act_max 63, bias", attrs: {}, bias: true },
  { label: "dynamic, act_max 127, no bias", attrs: { act_max: 127 }, bias: false },
  { label: "static act_scale 0.02 (clamps), bias", attrs: { act_scale: 0.02 }, bias: true },
  {
    label: "static act_scale 0.03 (clamps), bias, gelu",
    attrs: { act_scale: 0.03, activation: "gelu" },
    bias: true,
  },
  { label: "dynamic, act_max 5, gelu_tanh", attrs: { act_max: 5, activation: "gelu_tanh" }, bias: true },
  { label: "dynamic, tanh", attrs: { activation: "tanh" }, bias: true },
];

/** A qdense module over x [2, 5, 40] with random int8 weights, and its x: rows of ties and of zeros. */
function opCase(c: OpCase, seed: number): { m: Module; store: WeightStore; x: Tensor } {
  const [N, K] = [24, 40];
  const b = new ModuleBuilder("q");
  const wq = b.weight("wq", { shape: [N, K], dtype: "i8" });
  const ws = b.weight("ws", { shape: [N], dtype: "f32" });
  const bias = b.weight("b", { shape: [N], dtype: "f32" });
  const f = b.func("main", [["x", { shape: [2, 5, K], dtype: "f32" }]]);
  f.ret(f.op("qdense", c.bias ? [f.params[0], wq, ws, bias] : [f.params[0], wq, ws], c.attrs));
  const rng = new Random(seed);
  const store = memoryStore(
    new Map([
      ["wq", Tensor.from([N, K], "i8", Array.from({ length: N * K }, () => rng.int(255) - 127))],
      ["ws", Tensor.from([N], "f32", Array.from({ length: N }, () => 0.001 + rng.next() * 0.01))],
      ["b", Tensor.from([N], "f32", Array.from({ length: N }, () => rng.normal()))],
    ]),
  );
  const x = Tensor.from([2, 5, K], "f32", Array.from({ length: 10 * K }, () => rng.normal()));
  x.data.fill(0, 0, K); // a row of zeros
  // A row whose max is 63 (s = 1 at act_max 63) and half-integers: ties round to even.
  for (let k = 0; k < K; k++) x.data[K + k] = k === 0 ? 63 : (k % 7) - 3.5;
  return { m: b.module, store, x };
}

Deno.test({
  name:
    "onnx: qdense exported to ONNX gives the interpreter's results in onnxruntime (exactly before the activation)",
  ignore: !CAN_ORT,
  async fn() {
    for (const [i, c] of OP_CASES.entries()) {
      const { m, store, x } = opCase(c, 20 + i);
      const [want] = interpret(m, [x], store);
      const [got] = await runOrt(m, store, [x]);
      // Exact up to the activation, whose erf and tanh onnxruntime computes its own way.
      const tol = c.attrs.activation ? 1e-6 * Math.max(1, ...Array.from(want.data, Math.abs)) : 0;
      const d = maxDiff(want, got);
      assert.ok(d <= tol, `${c.label}: max |difference| ${d} > ${tol}`);
    }
  },
});

Deno.test({
  name: "onnx: qgather exported to ONNX gives the interpreter's results in onnxruntime exactly",
  ignore: !CAN_ORT,
  async fn() {
    const b = new ModuleBuilder("qgather");
    const table = b.weight("emb.q", { shape: [50, 24], dtype: "i8" });
    const scale = b.weight("emb.scale", { shape: [50], dtype: "f32" });
    const f = b.func("main", [["ids", { shape: [2, 7], dtype: "i64" }]]);
    f.ret(f.op("qgather", [table, scale, f.params[0]]));
    const rnd = new Random(5);
    const store = memoryStore(
      new Map([
        ["emb.q", new Tensor(table.type, Int8Array.from({ length: 50 * 24 }, () => rnd.int(255) - 127))],
        [
          "emb.scale",
          new Tensor(scale.type, Float32Array.from({ length: 50 }, () => (rnd.int(1000) + 1) / 1e5)),
        ],
      ]),
    );
    const ids = new Tensor(
      { shape: [2, 7], dtype: "i64" },
      Float64Array.from({ length: 14 }, (_, i) => (i * 7) % 50),
    );
    const [want] = interpret(b.module, [ids], store);
    const [got] = await runOrt(b.module, store, [ids]);
    assert.equal(maxDiff(want, got), 0);
  },
});

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

Deno.test({
  name:
    "onnx: a quantized bert-tiny (dense, static, BSR) matches the interpreter in onnxruntime, close to f32",
  ignore: !CAN_ORT,
  async fn() {
    const { m, store } = tiny();
    const registry = createPassRegistry();
    // Each pipeline, and the f32 pipeline it should stay close to.
    const pipelines: [string, string][] = [
      ["quantize", ""],
      ["quantize{activations=static calibration-data=random calibration=8}", ""],
      ["prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4},quantize", "prune{sparsity=0.8 block=4x4}"],
    ];
    const run = (p: string) =>
      p
        ? runPipeline(m, parsePipeline(p, registry), { weights: store, log: () => {} })
        : { module: m, weights: store };
    for (const [pipeline, reference] of pipelines) {
      const r = run(pipeline), ref = run(reference);
      assert.equal(r.module.funcs[0].body.filter((op) => op.name === "qdense").length, 12, pipeline);
      for (const seed of [1, 2, 3]) {
        const inputs = seededInputs(m.func("main")!, seed);
        const [f32] = interpret(ref.module, inputs, ref.weights);
        const [q] = interpret(r.module, inputs, r.weights);
        const [ort] = await runOrt(r.module, r.weights, inputs);
        const spread = Math.max(...Array.from(f32.data, Math.abs));
        // onnxruntime's f32 ops round their own way: a quantizer may then round a value one step the
        // other way. Within 1e-5 of the logits, or else within twice what the interpreter itself
        // moves under ±2-ulp noise (bench/ulp_noise.ts).
        const d = maxDiff(q, ort);
        const bound = d <= 1e-5 * spread
          ? 1e-5 * spread
          : 2 * ulpNoiseSpread(r.module, inputs, r.weights).spread;
        assert.ok(d <= bound, `${pipeline} seed ${seed}: interpreter vs onnxruntime ${d} > ${bound}`);
        assert.ok(
          maxDiff(q, f32) <= 0.05 * spread,
          `${pipeline} seed ${seed}: int8 vs f32 ${maxDiff(q, f32)}`,
        );
      }
    }
  },
});

Deno.test({
  name:
    "bench/int8_accuracy.ts: scoreVariant counts right predictions and checks onnxruntime against the interpreter",
  ignore: !CAN_ORT,
  async fn() {
    const { m, store } = tiny();
    const r = runPipeline(m, parsePipeline("quantize", createPassRegistry()), {
      weights: store,
      log: () => {},
    });
    const f = m.func("main")!;
    const rows = [1, 2, 3, 4, 5].map((seed) => {
      const ts = seededInputs(f, seed);
      return Object.fromEntries(f.params.map((p, i) => [p.name, Array.from(ts[i].data)]));
    });
    const preds = rows.map((values) => {
      const l = interpret(
        r.module,
        f.params.map((p) => Tensor.from(p.type.shape, p.type.dtype, values[p.name])),
        r.weights,
      )[0].data;
      return l[1] > l[0] ? 1 : 0;
    });
    // Labels: right on rows 0, 2 and 4, wrong on 1 and 3.
    const labels = preds.map((p, i) => i % 2 === 0 ? p : 1 - p);
    const ort = await import("onnxruntime-node");
    const res = await scoreVariant(ort, r.module, r.weights, rows, labels, 3, "quantize");
    assert.deepEqual([res.rows, res.correct, res.checked, res.checkPredDiffers], [5, 3, 3, 0]);
    assert.equal(res.accuracy, 0.6);
    assert.ok(res.checkMaxDiff < 1e-4, `max logit difference ${res.checkMaxDiff}`);
  },
});
