/**
 * The `recognize` pass: its golden files (`tests/ir/pass_recognize*.sir`, run here with a registry
 * that has the pass, the way the golden runner does once it is registered), its options,
 * statistics, scalars held in weights, and the synthetic BERT left alone.
 */

import assert from "node:assert/strict";
import { bertConfig, buildBertModule } from "../../frontend/synthetic_bert.ts";
import { seededInputs, seededWeights } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { Tensor } from "../../ir/tensor.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";
import { builtinPasses } from "../../passes/index.ts";
import { type PipelineResult, runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { recognize } from "../../passes/recognize.ts";
import { PassRegistry } from "../../passes/registry.ts";
import { moduleData, parseDirectives, runChecks, stripDirectives } from "../filecheck.ts";

const registry = () => new PassRegistry([...builtinPasses.filter((p) => p.name !== "recognize"), recognize]);

function load(text: string): Module {
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!), []);
  return module!;
}

function run(m: Module, pipeline = "recognize", weights?: WeightStore): PipelineResult {
  return runPipeline(m, parsePipeline(pipeline, registry()), { weights });
}

function stat(r: PipelineResult, name: string): number | undefined {
  return r.stats.find((s) => s.pass === "recognize" && s.name === name)?.value;
}

/** Outputs agree within `tol` relative. */
function assertClose(got: Tensor[], want: Tensor[], tol: number): void {
  assert.equal(got.length, want.length);
  want.forEach((w, i) => {
    assert.deepEqual(got[i].shape, w.shape);
    w.data.forEach((x, j) => {
      const y = got[i].data[j];
      if (!(Math.abs(x - y) <= tol * (1 + Math.abs(x)))) assert.fail(`result ${i}[${j}]: ${y}, want ${x}`);
    });
  });
}

const DIR = new URL("../ir/", import.meta.url);
const goldens = [...Deno.readDirSync(DIR)]
  .map((e) => e.name)
  .filter((n) => n.startsWith("pass_recognize") && n.endsWith(".sir"))
  .sort();

Deno.test("recognize: golden files exist", () => {
  assert.ok(goldens.length >= 3, `golden files: ${goldens.join(", ")}`);
});

for (const name of goldens) {
  Deno.test(`recognize: golden ${name}`, async () => {
    const text = await Deno.readTextFile(new URL(name, DIR));
    const { run: pipeline, checks, problems } = parseDirectives(text);
    assert.deepEqual(problems, []);
    assert.ok(pipeline && checks.length > 0, "a RUN line and CHECK lines");
    const m = load(text);
    const weights = seededWeights(m, 1);
    const out = run(m, pipeline, weights).module;
    const printed = print(out);
    const failures = runChecks(stripDirectives(printed), checks);
    if (failures.length > 0) assert.fail(`${failures.join("\n")}\n\nprinted:\n${printed}`);
    const again = load(printed);
    assert.deepStrictEqual(moduleData(again), moduleData(out));
    for (const f of m.funcs) {
      const inputs = seededInputs(f, 2);
      assertClose(interpret(out, inputs, weights), interpret(m, inputs, weights), 1e-5);
    }
  });
}

const CHAINS = `module @m {
  weights {
    @gamma : tensor<4xf32>
    @beta : tensor<4xf32>
    @w : tensor<4x4xf32>
    @bias : tensor<4xf32>
    @half : tensor<1xf32>
  }

  func @main(%x: tensor<3x4xf32>, %mask: tensor<1x4xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
    %two = constant {value = dense<2.0>} : tensor<f32>
    %eps = constant {value = dense<1e-12>} : tensor<f32>
    %mean = reduce_mean %x {axes = [-1]} : tensor<3x1xf32>
    %d = sub %x, %mean : tensor<3x4xf32>
    %sq = pow %d, %two : tensor<3x4xf32>
    %var = reduce_mean %sq {axes = [-1]} : tensor<3x1xf32>
    %ve = add %var, %eps : tensor<3x1xf32>
    %std = sqrt %ve : tensor<3x1xf32>
    %n = div %d, %std : tensor<3x4xf32>
    %g = mul %n, @gamma : tensor<3x4xf32>
    %ln = add %g, @beta : tensor<3x4xf32>
    %mm = dense %ln, @w : tensor<3x4xf32>
    %h = add %mm, @bias : tensor<3x4xf32>
    %sqrt2 = constant {value = dense<1.4142135>} : tensor<f32>
    %one = constant {value = dense<1.0>} : tensor<f32>
    %z = div %h, %sqrt2 : tensor<3x4xf32>
    %e = erf %z : tensor<3x4xf32>
    %p = add %e, %one : tensor<3x4xf32>
    %xp = mul %h, %p : tensor<3x4xf32>
    %act = mul %xp, @half : tensor<3x4xf32>
    %s = add %act, %mask : tensor<3x4xf32>
    %probs = softmax %s : tensor<3x4xf32>
    return %probs, %ln
  }
}
`;

function chainWeights(half: number): WeightStore {
  const t = (shape: number[], f: (i: number) => number) =>
    Tensor.from(shape, "f32", Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => f(i)));
  return memoryStore(
    new Map([
      ["gamma", t([4], (i) => 1 + i / 10)],
      ["beta", t([4], (i) => i / 20)],
      ["w", t([4, 4], (i) => Math.sin(i))],
      ["bias", t([4], (i) => i / 7)],
      ["half", t([1], () => half)],
    ]),
  );
}

Deno.test("recognize: all four rewrites, with a scalar held in a weight, and the statistics", () => {
  const m = load(CHAINS);
  const weights = chainWeights(0.5);
  const r = run(m, "recognize", weights);
  const text = print(r.module);
  assert.match(text, /%ln = layer_norm %x, @gamma, @beta \{axis = -1, epsilon = 1e-12\}/);
  assert.match(text, /%h = dense %ln, @w, @bias : tensor<3x4xf32>/);
  assert.match(text, /%act = gelu %h \{approximation = erf\}/);
  assert.match(text, /%probs = softmax %act, %mask : tensor<3x4xf32>/);
  assert.doesNotMatch(text, /reduce_mean|erf %|constant/);
  assert.deepEqual(
    ["layer-norms", "gelus", "dense-biases", "softmax-masks"].map((s) => stat(r, s)),
    [1, 1, 1, 1],
  );
  const inputs = seededInputs(m.funcs[0], 3);
  assertClose(interpret(r.module, inputs, weights), interpret(m, inputs, weights), 1e-5);
});

Deno.test("recognize: a weight that does not hold 0.5 is no GELU", () => {
  const r = run(load(CHAINS), "recognize", chainWeights(0.25));
  assert.match(print(r.module), /%e = erf %z/);
  assert.equal(stat(r, "gelus"), undefined);
});

Deno.test("recognize: each rewrite can be turned off", () => {
  const m = load(CHAINS);
  const weights = chainWeights(0.5);
  const text = print(
    run(m, "recognize{layer-norm=false gelu=false dense-bias=false softmax-mask=false}", weights).module,
  );
  assert.equal(text, print(m));
  const some = print(run(m, "recognize{gelu=false softmax-mask=false}", weights).module);
  assert.match(some, /layer_norm/);
  assert.match(some, /erf %z/);
  assert.match(some, /softmax %s :/);
});

Deno.test("recognize: the synthetic BERT has nothing to recognize", () => {
  const m = buildBertModule(bertConfig("bert-tiny", { seq: 8 }), "w.safetensors");
  const r = run(m);
  assert.deepEqual(r.runs.map((x) => x.changed), [false]);
  assert.equal(print(r.module), print(m));
});

Deno.test("recognize: recognized ops fuse afterwards", () => {
  const r = run(load(CHAINS), "recognize,fuse", chainWeights(0.5));
  assert.match(print(r.module), /%act = dense %ln, @w, @bias \{activation = gelu\}/);
});
