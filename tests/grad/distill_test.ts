/**
 * `withDistillationLoss` (ir/loss.ts): the loss it builds equals the formula computed here in
 * f64, its gradient (through `grad`) matches central finite differences on a bert-tiny in f64, it
 * prints and parses back, and it refuses bad options and clashing names. The same loss compiled
 * to wasm is checked in tests/codegen/grad_model_test.ts.
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

Deno.test("withDistillationLoss: bert-tiny f64 gradients match central finite differences", () => {
  const config = bertConfig("bert-tiny", { seq: 8, vocab: 40, maxPositions: 16 });
  const text = print(buildBertModule(config, "tiny.safetensors")).replaceAll(/xf32>/g, "xf64>")
    .replaceAll("tensor<f32>", "tensor<f64>");
  const m = module(text);
  const weights = memoryStore(
    new Map(
      syntheticBertWeights(config).map((w) => [w.name, Tensor.from(w.shape, "f64", w.data as Float32Array)]),
    ),
  );
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
  let checked = 0;
  for (
    const name of [
      "classifier.weight",
      "bert.pooler.dense.weight",
      "bert.encoder.layer.1.output.dense.weight",
    ]
  ) {
    const w = m.weights.get(name)!;
    const loss = (i: number, d: number) => {
      const store: WeightStore = {
        entries: () => weights.entries(),
        get: (x) => x === w ? nudged(weights.get(w), i, d) : weights.get(x),
      };
      return interpret(m, inputs, store, { func: lossFn })[0].data[0];
    };
    const ad = result.grads.get(name)!;
    checked += compareGrads(name, ad, sampleIndices(ad.data.length, 5, rng), loss, 1e-4, 1e-5).checked;
  }
  assert.ok(checked >= 15);
});
