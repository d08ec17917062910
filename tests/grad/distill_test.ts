/**
 * `withDistillationLoss` (ir/loss.ts): the loss it builds equals the formula computed here in
 * f64, its gradient (through `grad`) matches central finite differences on a bert-tiny in f64, it
 * prints and parses back, and it refuses bad options and clashing names. The same for its
 * hidden-state term (`options.hidden`): the formula on a small function, finite differences on a
 * bert-tiny pulled toward other hidden states at its embeddings' and encoder layers' outputs
 * (`bertHiddenStates`). The same losses compiled to wasm are checked in
 * tests/codegen/grad_model_test.ts.
 */

import assert from "node:assert/strict";
import { grad, runGrad } from "../../ir/autodiff.ts";
import { interpret } from "../../ir/interpreter.ts";
import { withDistillationLoss } from "../../ir/loss.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { Random } from "../../ir/random.ts";
import { Tensor } from "../../ir/tensor.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";
import { bertConfig, buildBertModule, syntheticBertWeights } from "../../frontend/synthetic_bert.ts";
import { bertHiddenStates, withHiddenOutputs } from "../../train/bert.ts";
import { assertRoundTrip, compareGrads, nudged, sampleIndices } from "./helpers.ts";

/** The loss by its formula, in f64. */
function expected(logits: number[][], labels: number[], p: number[][], T: number, alpha: number): number {
  let ce = 0, kd = 0;
  logits.forEach((z, b) => {
    const lse = (s: number) => Math.log(z.reduce((a, x) => a + Math.exp(x / s), 0));
    ce += lse(1) - z[labels[b]];
    z.forEach((x, c) => kd -= p[b][c] * (x / T - lse(T)));
  });
  const B = logits.length;
  return alpha * ce / B + (1 - alpha) * T * T * kd / B;
}

function module(text: string): Module {
  const r = parse(text, { file: "t.sir" });
  assert.ok(r.module, r.diagnostics.map((d) => d.message).join("\n"));
  return r.module;
}

/** Central finite differences of `lossFn` at 5 sampled entries of each weight in `names`, against `grads`; returns the entries checked. */
function checkWeightGrads(
  m: Module,
  inputs: Record<string, Tensor>,
  weights: WeightStore,
  lossFn: string,
  grads: Map<string, Tensor>,
  names: string[],
  rng: Random,
): number {
  let checked = 0;
  for (const name of names) {
    const w = m.weights.get(name)!;
    const loss = (i: number, d: number) => {
      const store: WeightStore = {
        entries: () => weights.entries(),
        get: (x) => x === w ? nudged(weights.get(w), i, d) : weights.get(x),
      };
      return interpret(m, inputs, store, { func: lossFn })[0].data[0];
    };
    const ad = grads.get(name)!;
    checked += compareGrads(name, ad, sampleIndices(ad.data.length, 5, rng), loss, 1e-4, 1e-5).checked;
  }
  return checked;
}

Deno.test("withDistillationLoss: the loss is alpha CE + (1 - alpha) T^2 soft CE, and prints back", () => {
  const m = module(`module @d {
  func @main(%x: tensor<3x4xf64>) -> (tensor<3x4xf64>) {
    %z = tanh %x : tensor<3x4xf64>
    return %z
  }
}
`);
  assert.equal(withDistillationLoss(m, "main", { temperature: 3, alpha: 0.25 }), "main_loss");
  const text = assertRoundTrip(m);
  assert.match(
    text,
    /func @main_loss\(%x: tensor<3x4xf64>, %labels: tensor<3xi64>, %soft_targets: tensor<3x4xf64>\)/,
  );
  const rng = new Random(3);
  const x = Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => 4 * rng.next() - 2));
  const p = x.map((row) => {
    const e = row.map(() => rng.next());
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
  const labels = [2, 0, 3];
  const [loss] = interpret(
    m,
    {
      x: Tensor.from([3, 4], "f64", x.flat()),
      labels: Tensor.from([3], "i64", labels),
      soft_targets: Tensor.from([3, 4], "f64", p.flat()),
    },
    memoryStore(new Map()),
    { func: "main_loss" },
  );
  const want = expected(x.map((r) => r.map(Math.tanh)), labels, p, 3, 0.25);
  assert.ok(Math.abs(loss.data[0] - want) < 1e-12, `${loss.data[0]} vs ${want}`);

  assert.throws(
    () => withDistillationLoss(m, "main", { name: "a", temperature: 0 }),
    /temperature must be > 0/,
  );
  assert.throws(() => withDistillationLoss(m, "main", { name: "b", alpha: 1.5 }), /alpha in \[0, 1\]/);
  assert.throws(
    () => withDistillationLoss(m, "main", { name: "c", softTargets: "x" }),
    /already has a value '%x'/,
  );
  assert.throws(() => withDistillationLoss(m, "main"), /already has a function '@main_loss'/);
});

/** bert-tiny (seq 8, vocab 40) in f64, with its synthetic weights: for finite differences. */
function f64TinyBert() {
  const config = bertConfig("bert-tiny", { seq: 8, vocab: 40, maxPositions: 16 });
  const text = print(buildBertModule(config, "tiny.safetensors")).replaceAll(/xf32>/g, "xf64>")
    .replaceAll("tensor<f32>", "tensor<f64>");
  const weights = memoryStore(
    new Map(
      syntheticBertWeights(config).map((w) => [w.name, Tensor.from(w.shape, "f64", w.data as Float32Array)]),
    ),
  );
  return { config, m: module(text), weights };
}

Deno.test("withDistillationLoss: bert-tiny f64 gradients match central finite differences", () => {
  const { config, m, weights } = f64TinyBert();
  const lossFn = withDistillationLoss(m, "main", { temperature: 2, alpha: 0.3 });
  const info = grad(m, lossFn);
  const S = config.seq;
  const ids = Array.from({ length: S }, (_, i) => i === 0 ? 1 : (i * 7 + 3) % config.vocab);
  const inputs = {
    input_ids: Tensor.from([1, S], "i64", ids),
    token_type_ids: Tensor.from([1, S], "i64", new Array(S).fill(0)),
    attention_mask: Tensor.from([1, S], "i64", ids.map((_, i) => i >= S - 1 ? 0 : 1)),
    labels: Tensor.from([1], "i64", [1]),
    soft_targets: Tensor.from([1, 2], "f64", [0.8, 0.2]),
  };
  const result = runGrad(m, info, inputs, weights);
  const rng = new Random(9);
  const checked = checkWeightGrads(m, inputs, weights, lossFn, result.grads, [
    "classifier.weight",
    "bert.pooler.dense.weight",
    "bert.encoder.layer.1.output.dense.weight",
  ], rng);
  assert.ok(checked >= 15);
});

Deno.test("withDistillationLoss with hidden states: adds beta sum_i sum w (h_i - t_i)^2, and prints back", () => {
  const m = module(`module @d {
  func @main(%x: tensor<2x3x4xf64>) -> (tensor<2x3xf64>) {
    %h = tanh %x : tensor<2x3x4xf64>
    %g = mul %h, %x : tensor<2x3x4xf64>
    %z = reduce_sum %g {axes = [2], keepdims = false} : tensor<2x3xf64>
    return %z
  }
}
`);
  const hidden = { values: ["h", "g"], beta: 2.5 };
  assert.equal(withDistillationLoss(m, "main", { temperature: 2, alpha: 0.5, hidden }), "main_loss");
  const text = assertRoundTrip(m);
  assert.match(
    text,
    /%soft_targets: tensor<2x3xf64>, %teacher_hidden_0: tensor<2x3x4xf64>, %teacher_hidden_1: tensor<2x3x4xf64>, %hidden_weights: tensor<2x3x1xf64>\)/,
  );
  const rng = new Random(5);
  const draw = (n: number) => Array.from({ length: n }, () => 2 * rng.next() - 1);
  const x = draw(24), t0 = draw(24), t1 = draw(24), w = draw(6).map(Math.abs);
  const p = [[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]];
  const labels = [1, 2];
  const [loss] = interpret(
    m,
    {
      x: Tensor.from([2, 3, 4], "f64", x),
      labels: Tensor.from([2], "i64", labels),
      soft_targets: Tensor.from([2, 3], "f64", p.flat()),
      teacher_hidden_0: Tensor.from([2, 3, 4], "f64", t0),
      teacher_hidden_1: Tensor.from([2, 3, 4], "f64", t1),
      hidden_weights: Tensor.from([2, 3, 1], "f64", w),
    },
    memoryStore(new Map()),
    { func: "main_loss" },
  );
  const h = x.map(Math.tanh), g = h.map((v, i) => v * x[i]);
  const z = [0, 1].map((b) =>
    [0, 1, 2].map((c) => [0, 1, 2, 3].reduce((a, k) => a + g[b * 12 + c * 4 + k], 0))
  );
  let term = 0;
  for (let i = 0; i < 24; i++) {
    term += w[Math.floor(i / 4)] * ((h[i] - t0[i]) ** 2 + (g[i] - t1[i]) ** 2);
  }
  const want = expected(z, labels, p, 2, 0.5) + 2.5 * term;
  assert.ok(Math.abs(loss.data[0] - want) < 1e-12, `${loss.data[0]} vs ${want}`);

  const bad = (name: string, h: { values: string[]; beta: number }) =>
    withDistillationLoss(m, "main", { name, hidden: h });
  assert.throws(() => bad("a", { values: ["h"], beta: -1 }), /beta must be >= 0/);
  assert.throws(() => bad("b", { values: [], beta: 1 }), /at least one value/);
  assert.throws(() => bad("c", { values: ["nope"], beta: 1 }), /no op result '%nope'/);
  assert.throws(() => bad("d", { values: ["h", "z"], beta: 1 }), /must share one type/);
  assert.equal(m.func("a"), undefined, "a refused loss adds nothing");
});

Deno.test("withDistillationLoss with hidden states: bert-tiny f64 gradients match central finite differences", () => {
  const { config, m, weights } = f64TinyBert();
  const layers = bertHiddenStates(m, { embeddings: true });
  assert.equal(layers.length, config.layers + 1);
  assert.deepEqual(bertHiddenStates(m), layers.slice(1), "without the embeddings: the encoder layers");
  const lossFn = withDistillationLoss(m, "main", {
    temperature: 2,
    alpha: 0.3,
    hidden: { values: layers, beta: 4 },
  });
  const plainFn = withDistillationLoss(m, "main", { name: "plain_loss", temperature: 2, alpha: 0.3 });
  const info = grad(m, lossFn);
  const S = config.seq, H = config.hidden;
  const ids = Array.from({ length: S }, (_, i) => i === 0 ? 1 : (i * 7 + 3) % config.vocab);
  const mask = ids.map((_, i) => i >= S - 2 ? 0 : 1);
  const rng = new Random(11);
  const inputs: Record<string, Tensor> = {
    input_ids: Tensor.from([1, S], "i64", ids),
    token_type_ids: Tensor.from([1, S], "i64", new Array(S).fill(0)),
    attention_mask: Tensor.from([1, S], "i64", mask),
    labels: Tensor.from([1], "i64", [1]),
    soft_targets: Tensor.from([1, 2], "f64", [0.8, 0.2]),
    hidden_weights: Tensor.from([1, S, 1], "f64", mask.map((v) => v / ((S - 2) * H))),
  };
  // the teacher's states: the student's own, moved by up to 0.3 (a loss term of about beta / 10)
  const own = interpret(withHiddenOutputs(m, layers), inputs, weights).slice(1);
  own.forEach((h, i) => {
    inputs[`teacher_hidden_${i}`] = Tensor.from(
      [1, S, H],
      "f64",
      h.data.map((v) => v + 0.6 * rng.next() - 0.3),
    );
  });
  const result = runGrad(m, info, inputs, weights);
  const plain = interpret(m, inputs, weights, { func: plainFn })[0].data[0];
  assert.ok(result.loss - plain > 0.1, `the hidden term adds to the loss: ${result.loss} vs ${plain}`);
  const checked = checkWeightGrads(m, inputs, weights, lossFn, result.grads, [
    "bert.embeddings.LayerNorm.weight",
    "bert.embeddings.position_embeddings.weight",
    "bert.encoder.layer.0.attention.self.query.weight",
    "bert.encoder.layer.1.output.dense.weight",
    "bert.encoder.layer.1.output.LayerNorm.bias",
  ], rng);
  assert.ok(checked >= 25);
});
