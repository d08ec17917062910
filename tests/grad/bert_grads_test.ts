/**
 * Autodiff of a whole BERT: the synthetic bert-tiny (frontend/synthetic_bert.ts, 2 layers, hidden
 * 128) at sequence length 8 with a small vocabulary, turned into f64, with its classifier and a
 * cross-entropy loss. Its gradients are checked against central finite differences on entries of
 * every kind of weight (embeddings, attention, feed-forward, LayerNorm, pooler and classifier),
 * and the backward function verifies and prints back to the same text.
 */

import assert from "node:assert/strict";
import { grad, type GradInfo, runGrad } from "../../ir/autodiff.ts";
import { interpret } from "../../ir/interpreter.ts";
import { withCrossEntropyLoss } from "../../ir/loss.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { Random } from "../../ir/random.ts";
import { Tensor } from "../../ir/tensor.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";
import { bertConfig, buildBertModule, syntheticBertWeights } from "../../frontend/synthetic_bert.ts";
import { assertRoundTrip, compareGrads, nudged, sampleIndices } from "./helpers.ts";

const CONFIG = bertConfig("bert-tiny", { seq: 8, vocab: 40, maxPositions: 16 });
const S = CONFIG.seq;

/** The synthetic bert-tiny in f64: every f32 type of the printed module becomes f64, weights too. */
function tinyF64(): { m: Module; weights: WeightStore } {
  const text = print(buildBertModule(CONFIG, "tiny.safetensors"))
    .replaceAll(/xf32>/g, "xf64>")
    .replaceAll("tensor<f32>", "tensor<f64>");
  const parsed = parse(text);
  assert.ok(parsed.module);
  const data = new Map(
    syntheticBertWeights(CONFIG).map((w) => [w.name, Tensor.from(w.shape, "f64", w.data as Float32Array)]),
  );
  return { m: parsed.module, weights: memoryStore(data) };
}

/** Two sentences' worth of inputs: ids, token types 0 then 1, the last two positions padding. */
function tinyInputs(label: number): Record<string, Tensor> {
  const rng = new Random(11);
  const ids = Array.from(
    { length: S },
    (_, i) => i === 0 ? 1 : i >= S - 2 ? 0 : 2 + rng.int(CONFIG.vocab - 2),
  );
  return {
    input_ids: Tensor.from([1, S], "i64", ids),
    token_type_ids: Tensor.from([1, S], "i64", ids.map((_, i) => i < S / 2 ? 0 : 1)),
    attention_mask: Tensor.from([1, S], "i64", ids.map((_, i) => i >= S - 2 ? 0 : 1)),
    labels: Tensor.from([1], "i64", [label]),
  };
}

/** Built once: the module with @main_loss and @main_loss_grad, and the gradients of one run. */
const { m, weights } = tinyF64();
const lossFn = withCrossEntropyLoss(m, "main");
const info: GradInfo = grad(m, lossFn);
const inputs = tinyInputs(1);
const result = runGrad(m, info, inputs, weights);

Deno.test("bert-tiny f64: the backward function returns the loss and every float weight's gradient", () => {
  assert.equal(lossFn, "main_loss");
  assert.equal(info.func, "main_loss_grad");
  assert.deepEqual(info.grads.map((g) => g.name), [...m.weights.keys()]);
  assert.ok(info.grads.every((g) => g.kind === "weight"));
  for (const g of info.grads) {
    assert.deepEqual(result.grads.get(g.name)!.shape, m.weights.get(g.name)!.type.shape);
  }
  // The loss is the forward's: the cross-entropy of the logits @main computes.
  const [logits] = interpret(m, inputs, weights);
  const [z0, z1] = logits.data;
  const expected = Math.log(Math.exp(z0) + Math.exp(z1)) - z1;
  assert.ok(Math.abs(result.loss - expected) < 1e-12, `${result.loss} vs ${expected}`);
  const [loss] = interpret(m, inputs, weights, { func: lossFn });
  assert.equal(loss.data[0], result.loss);
});

Deno.test("bert-tiny f64: the backward function verifies and round-trips through print and parse", () => {
  const text = assertRoundTrip(m);
  assert.match(
    text,
    /func @main_loss_grad\(%input_ids: tensor<1x8xi64>, .*%labels: tensor<1xi64>\) -> \(tensor<f64>, /,
  );
  assert.match(text, /%grad.classifier.weight = /);
  assert.match(text, /scatter_add /);
  assert.match(text, /layer_norm_grad /);
  assert.match(text, /softmax_grad /);
  assert.match(text, /gelu_grad /);
  assert.match(text, /cross_entropy_grad /);
});

/** Weight entries checked against finite differences, by kind. */
const SAMPLED = [
  "bert.embeddings.word_embeddings.weight",
  "bert.embeddings.position_embeddings.weight",
  "bert.embeddings.token_type_embeddings.weight",
  "bert.embeddings.LayerNorm.weight",
  "bert.embeddings.LayerNorm.bias",
  "bert.encoder.layer.0.attention.self.query.weight",
  "bert.encoder.layer.0.attention.self.query.bias",
  "bert.encoder.layer.0.attention.self.key.weight",
  "bert.encoder.layer.1.attention.self.value.weight",
  "bert.encoder.layer.0.attention.output.dense.weight",
  "bert.encoder.layer.1.attention.output.LayerNorm.weight",
  "bert.encoder.layer.0.intermediate.dense.weight",
  "bert.encoder.layer.1.intermediate.dense.bias",
  "bert.encoder.layer.0.output.dense.weight",
  "bert.encoder.layer.1.output.LayerNorm.bias",
  "bert.pooler.dense.weight",
  "bert.pooler.dense.bias",
  "classifier.weight",
  "classifier.bias",
];

Deno.test("bert-tiny f64: gradients of every kind of weight match central finite differences", () => {
  const rng = new Random(5);
  const loss = (name: string) => (i: number, d: number) => {
    const w = m.weights.get(name)!;
    const base = weights.get(w);
    const store: WeightStore = {
      entries: () => weights.entries(),
      get: (x) => x.name === name ? nudged(base, i, d) : weights.get(x),
    };
    return interpret(m, inputs, store, { func: lossFn })[0].data[0];
  };
  let checked = 0;
  for (const name of SAMPLED) {
    const ad = result.grads.get(name)!;
    let at = sampleIndices(ad.data.length, 4, rng);
    if (name === "bert.embeddings.word_embeddings.weight") {
      // Entries of the rows of the ids used, first and last column.
      const H = CONFIG.hidden;
      at = [...new Set(inputs.input_ids.data)].flatMap((id) => [id * H, id * H + H - 1]).slice(0, 6);
    }
    checked += compareGrads(name, ad, at, loss(name), 1e-4, 1e-5).checked;
  }
  assert.ok(checked >= SAMPLED.length * 4);
});

Deno.test("bert-tiny f64: only the rows of the ids attended to get embedding gradients (not padding's)", () => {
  const H = CONFIG.hidden;
  // The padding id 0 is only at the masked positions, whose softmax weights are exactly 0.
  const used = new Set(inputs.input_ids.data.filter((_, i) => inputs.attention_mask.data[i] === 1));
  assert.ok(!used.has(0) && inputs.input_ids.data.includes(0));
  const word = result.grads.get("bert.embeddings.word_embeddings.weight")!;
  for (let id = 0; id < CONFIG.vocab; id++) {
    const row = word.data.subarray(id * H, (id + 1) * H);
    assert.equal(row.some((v) => v !== 0), used.has(id), `row ${id}`);
  }
  const pos = result.grads.get("bert.embeddings.position_embeddings.weight")!;
  assert.ok(pos.data.subarray(S * H).every((v) => v === 0), "positions past the sequence");
});

Deno.test("bert-tiny f64: wrt picks weights; the other label flips the classifier bias gradient's sign", () => {
  const copy = tinyF64();
  const fn = withCrossEntropyLoss(copy.m, "main");
  const picked = grad(copy.m, fn, { wrt: ["classifier.bias", "bert.pooler.dense.weight"], name: "picked" });
  assert.deepEqual(picked.grads.map((g) => g.name), ["classifier.bias", "bert.pooler.dense.weight"]);
  const zero = runGrad(copy.m, picked, tinyInputs(0), copy.weights);
  const one = runGrad(copy.m, picked, tinyInputs(1), copy.weights);
  // d loss / d bias = softmax - onehot: for 2 classes, [p0 - 1, p1] with label 0 and [p0, p1 - 1] with 1.
  const [a0, a1] = zero.grads.get("classifier.bias")!.data;
  const [b0, b1] = one.grads.get("classifier.bias")!.data;
  assert.ok(Math.abs(a0 + a1) < 1e-12 && Math.abs(b0 + b1) < 1e-12);
  assert.ok(Math.abs(b0 - a0 - 1) < 1e-12, `${a0} ${b0}`);
  assert.deepEqual(one.grads.get("classifier.bias")!.data, result.grads.get("classifier.bias")!.data);
});
