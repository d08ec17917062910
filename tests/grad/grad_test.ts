/**
 * The `grad` transformation's behaviour beyond the numbers: what it differentiates and skips
 * (dead paths, integer paths, wrt), how it accumulates, its errors (an op without a rule named at
 * its place, bad losses and options) leaving the module unchanged, `withCrossEntropyLoss`, and
 * the `grad` pass run by the pass manager.
 */

import assert from "node:assert/strict";
import { grad, GradError, runGrad } from "../../ir/autodiff.ts";
import { withCrossEntropyLoss } from "../../ir/loss.ts";
import type { Module } from "../../ir/module.ts";
import { builtinOps, builtinRegistry } from "../../ir/ops/index.ts";
import { tanh } from "../../ir/ops/tanh.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { Tensor } from "../../ir/tensor.ts";
import { memoryStore } from "../../ir/weights.ts";
import { bertConfig, buildBertModule, syntheticBertWeights } from "../../frontend/synthetic_bert.ts";
import { gradPass } from "../../passes/grad.ts";
import { printIrInstrument } from "../../passes/instruments.ts";
import { PassError, runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { PassRegistry } from "../../passes/registry.ts";
import { assertRoundTrip } from "./helpers.ts";

/** Parses `text` (as file `t.sir`), which must be valid. */
function module(text: string): Module {
  const r = parse(text, { file: "t.sir" });
  assert.ok(r.module, r.diagnostics.map((d) => d.message).join("\n"));
  return r.module;
}

const TWO_OUTPUTS = `module @two {
  weights "two.safetensors" {
    @w : tensor<3x3xf64>
    @u : tensor<3xf64>
    @g : tensor<3xf64>
  }

  func @main(%x: tensor<2x3xf64>, %ids: tensor<2xi64>) -> (tensor<f64>, tensor<2x3xf64>) {
    %h = dense %x, @w {transpose_b = true} : tensor<2x3xf64>
    %t = tanh %h : tensor<2x3xf64>
    %s = mul %t, %h : tensor<2x3xf64>
    %idsf = cast %ids : tensor<2xf64>
    %k = reshape %idsf : tensor<2x1xf64>
    %sk = mul %s, %k : tensor<2x3xf64>
    %loss = reduce_mean %sk {axes = [0, 1], keepdims = false} : tensor<f64>
    %other = add %t, @u : tensor<2x3xf64>
    %unused = gelu %x {approximation = erf} : tensor<2x3xf64>
    return %loss, %other
  }
}
`;

Deno.test("grad: differentiates the weights the loss uses, skips dead and integer paths, adds up cotangents", () => {
  const m = module(TWO_OUTPUTS);
  const info = grad(m, "main");
  assert.equal(info.func, "main_grad");
  assert.deepEqual(info.grads.map((g) => g.name), ["w"]); // @u feeds only %other, @g nothing
  const text = assertRoundTrip(m);
  assert.match(
    text,
    /\n\n {2}\/\/ Reverse-mode gradient of @main \(grad, ir\/autodiff.ts\)\.\n {2}func @main_grad\(/,
  );
  const backward = text.slice(text.indexOf("func @main_grad"));
  assert.doesNotMatch(backward, /@u|@g|gelu|%other|%unused/); // dead ops are not even recomputed
  assert.doesNotMatch(backward, /%d\.idsf|%d\.k\b|%d\.ids/); // the integer path gets no cotangents
  // %h is used by tanh and mul: its cotangents are summed.
  assert.match(backward, /%d\.h(\.\d+)? = add %d\.\S+, %d\.\S+ : tensor<2x3xf64>/);
  assert.match(backward, /return %loss, %grad\.w\n/);
  // The numbers: d/dW of mean(tanh(h)·h·k) with h = x·Wᵀ.
  const x = Tensor.from([2, 3], "f64", [0.1, -0.2, 0.3, 0.5, 0.4, -0.6]);
  const ids = Tensor.from([2], "i64", [2, 3]);
  const W = [0.3, -0.1, 0.2, 0.05, 0.4, -0.3, 0.1, 0.2, 0.25];
  const store = memoryStore(
    new Map([
      ["w", Tensor.from([3, 3], "f64", W)],
      ["u", Tensor.from([3], "f64", [0, 0, 0])],
      ["g", Tensor.from([3], "f64", [0, 0, 0])],
    ]),
  );
  const { loss, grads } = runGrad(m, info, { x, ids }, store);
  const expected = new Float64Array(9);
  let want = 0;
  for (let r = 0; r < 2; r++) {
    for (let n = 0; n < 3; n++) {
      let h = 0;
      for (let k = 0; k < 3; k++) h += x.data[r * 3 + k] * W[n * 3 + k];
      const t = Math.tanh(h), kr = ids.data[r];
      want += t * h * kr / 6;
      const dh = kr / 6 * ((1 - t * t) * h + t);
      for (let k = 0; k < 3; k++) expected[n * 3 + k] += dh * x.data[r * 3 + k];
    }
  }
  assert.ok(Math.abs(loss - want) < 1e-15);
  grads.get("w")!.data.forEach((v, i) =>
    assert.ok(Math.abs(v - expected[i]) < 1e-15, `${i}: ${v} ${expected[i]}`)
  );
});

Deno.test("grad: wrt and args choose what is differentiated; an argument off the path gets zeros", () => {
  const m = module(TWO_OUTPUTS);
  const info = grad(m, "main", { wrt: [], args: ["x"], name: "dx" });
  assert.deepEqual(info.grads, [{ name: "x", kind: "arg", type: { shape: [2, 3], dtype: "f64" } }]);
  assertRoundTrip(m);
  const m2 = module(`module @m {
  func @main(%x: tensor<3xf64>, %y: tensor<3xf64>) -> (tensor<f64>) {
    %l = reduce_sum %x {axes = [0], keepdims = false} : tensor<f64>
    return %l
  }
}
`);
  const both = grad(m2, "main", { args: ["x", "y"] });
  const { grads } = runGrad(m2, both, [
    Tensor.from([3], "f64", [1, 2, 3]),
    Tensor.from([3], "f64", [4, 5, 6]),
  ], {
    entries: () => new Map(),
    get: () => {
      throw new Error("no weights");
    },
  });
  assert.deepEqual([...grads.get("x")!.data], [1, 1, 1]);
  assert.deepEqual([...grads.get("y")!.data], [0, 0, 0]);
});

Deno.test("grad: an op without a gradient rule on the path is an error naming the op and its place", () => {
  const registry = builtinRegistry.clone();
  const { grad: _, ...noRule } = tanh;
  registry.register({ ...noRule, name: "my_tanh" });
  const text = TWO_OUTPUTS.replace("%t = tanh %h", "%t = my_tanh %h");
  const m = module(text);
  const before = print(m);
  assert.throws(
    () => grad(m, "main", { registry }),
    (e: unknown) => {
      assert.ok(e instanceof GradError);
      assert.equal(
        e.message,
        "grad: t.sir:10:5: 'my_tanh' (%t) has no gradient rule, and it is on the path from @w to the loss of '@main'",
      );
      return true;
    },
  );
  assert.equal(print(m), before, "the module is unchanged");
  // Off the path to the loss, the same op is no problem.
  const off = module(TWO_OUTPUTS.replace("%other = add %t, @u", "%other = my_tanh %t"));
  assert.deepEqual(grad(off, "main", { registry }).grads.map((g) => g.name), ["w"]);
  // qdense has no rule (an int8 weight is not differentiable).
  assert.equal(builtinRegistry.get("qdense")!.grad, undefined);
  const withRules = builtinOps.filter((d) => d.grad).map((d) => d.name);
  assert.ok(
    withRules.includes("bsr_dense") && withRules.includes("cross_entropy") && withRules.includes("gather"),
  );
});

Deno.test("grad: a bad loss or bad options are errors that leave the module unchanged", () => {
  const m = module(TWO_OUTPUTS);
  const before = print(m);
  const cases: [() => unknown, string][] = [
    [() => grad(m, "nope"), "grad: the module has no function '@nope'"],
    [
      () => grad(m, "main", { output: 1 }),
      "grad: the loss (result 1 of '@main', %other) must be a float scalar, got tensor<2x3xf64>",
    ],
    [() => grad(m, "main", { output: 2 }), "grad: '@main' has no result 2"],
    [() => grad(m, "main", { wrt: ["v"] }), "grad: '@v' is not a weight of the module"],
    [() => grad(m, "main", { wrt: ["u"] }), "grad: the loss of '@main' does not depend on '@u'"],
    [() => grad(m, "main", { args: ["ids"] }), "grad: argument '%ids' is not a float tensor"],
    [() => grad(m, "main", { args: ["z"] }), "grad: '@main' has no argument '%z'"],
    [() => grad(m, "main", { name: "main" }), "grad: the module already has a function '@main'"],
  ];
  for (const [run, message] of cases) {
    assert.throws(run, (e: unknown) => e instanceof GradError && e.message === message);
  }
  assert.equal(print(m), before);
});

Deno.test("withCrossEntropyLoss: adds (loss, logits) with a labels argument, and checks the logits", () => {
  const m = module(`module @c {
  func @main(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<3xf32>) {
    %z = tanh %x : tensor<2x3xf32>
    %v = reduce_mean %x {axes = [0], keepdims = false} : tensor<3xf32>
    return %z, %v
  }
}
`);
  assert.equal(withCrossEntropyLoss(m, "main", { labelsDtype: "i32" }), "main_loss");
  const text = print(m);
  assert.match(
    text,
    /func @main_loss\(%x: tensor<2x3xf32>, %labels: tensor<2xi32>\) -> \(tensor<f32>, tensor<2x3xf32>\) \{\n(.*\n)+ {4}%loss = cross_entropy %z, %labels : tensor<f32>\n {4}return %loss, %z\n/,
  );
  assertRoundTrip(m);
  assert.throws(() => withCrossEntropyLoss(m, "main"), /already has a function '@main_loss'/);
  assert.throws(
    () => withCrossEntropyLoss(m, "main", { output: 1, name: "other" }),
    /result 1 of '@main' must be float logits \[B, C\], got tensor<3xf32>/,
  );
  assert.throws(
    () => withCrossEntropyLoss(m, "main", { labels: "x", name: "other" }),
    /already has a value '%x'/,
  );
});

/** The synthetic bert-tiny at sequence length 8, f32, with its weights. */
function tiny() {
  const c = bertConfig("bert-tiny", { seq: 8, vocab: 40, maxPositions: 16 });
  const data = new Map(
    syntheticBertWeights(c).map((w) => [w.name, Tensor.from(w.shape, "f32", w.data as Float32Array)]),
  );
  return { m: buildBertModule(c, "tiny.safetensors"), weights: memoryStore(data) };
}

Deno.test("pass grad: adds the loss and backward functions of a classifier; options fn, wrt, name, loss", () => {
  const registry = new PassRegistry([gradPass]);
  const { m, weights } = tiny();
  const printed: string[] = [];
  const r = runPipeline(m, parsePipeline("grad", registry), {
    weights,
    log: () => {},
    instruments: [printIrInstrument({ after: ["grad"], write: (t) => printed.push(t) })],
  });
  assert.deepEqual(r.module.funcs.map((f) => f.name), ["main", "main_loss", "main_loss_grad"]);
  assert.equal(m.funcs.length, 1, "the input is untouched");
  const stat = (name: string) => r.stats.find((s) => s.name === name)?.value;
  assert.equal(stat("gradients"), r.module.weights.size);
  assert.equal(stat("ops"), r.module.func("main_loss_grad")!.body.length);
  assert.equal(printed.length, 1);
  assert.match(printed[0], /func @main_loss_grad\(/);

  const picked = runPipeline(m, parsePipeline("grad{wrt=^classifier name=back}", registry), {
    log: () => {},
  });
  const back = picked.module.func("back")!;
  assert.deepEqual(back.returns.map((v) => v.name), [
    "loss",
    "grad.classifier.weight",
    "grad.classifier.bias",
  ]);
  // Only the head is differentiated: nothing flows back into the encoder.
  assert.ok(!back.body.some((op) => op.name === "layer_norm_grad"));

  assert.throws(
    () => runPipeline(m, parsePipeline("grad{fn=nope}", registry)),
    (e: unknown) =>
      e instanceof PassError && /the module has no function '@nope' \(option 'fn'\)/.test(e.message),
  );
  assert.throws(
    () => runPipeline(m, parsePipeline("grad{loss=output}", registry)),
    (e: unknown) =>
      e instanceof PassError &&
      /the loss \(result 0 of '@main', %logits\) must be a float scalar/.test(e.message),
  );
  assert.throws(
    () => runPipeline(m, parsePipeline("grad{wrt=nothing}", registry)),
    (e: unknown) =>
      e instanceof PassError && /option 'wrt' \(\/nothing\/\) matches no weight/.test(e.message),
  );
});

Deno.test("pass grad: the backward function of bert-tiny runs and its classifier gradient is softmax - onehot", () => {
  const registry = new PassRegistry([gradPass]);
  const { m, weights } = tiny();
  const r = runPipeline(m, parsePipeline("grad{wrt=^classifier.bias$}", registry), {
    weights,
    log: () => {},
  });
  const ids = Tensor.from([1, 8], "i64", [1, 5, 9, 13, 17, 21, 0, 0]);
  const mask = Tensor.from([1, 8], "i64", [1, 1, 1, 1, 1, 1, 0, 0]);
  const types = Tensor.from([1, 8], "i64", new Array(8).fill(0));
  const labels = Tensor.from([1], "i64", [0]);
  const info = {
    func: "main_loss_grad",
    forward: "main_loss",
    grads: [{
      name: "classifier.bias",
      kind: "weight" as const,
      type: { shape: [2], dtype: "f32" as const },
    }],
  };
  const { loss, grads } = runGrad(r.module, info, [ids, types, mask, labels], r.weights);
  const p0 = Math.exp(-loss); // loss = -log p0 for label 0
  const [g0, g1] = grads.get("classifier.bias")!.data;
  assert.ok(Math.abs(g0 - (p0 - 1)) < 1e-6 && Math.abs(g1 - (1 - p0)) < 1e-6, `${g0} ${g1} ${p0}`);
});
