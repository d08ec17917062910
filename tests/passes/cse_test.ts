/** The `cse` pass: what it merges and what it leaves, its statistic, its cost, and the synthetic BERT. */

import assert from "node:assert/strict";
import { bertConfig, buildBertModule } from "../../frontend/synthetic_bert.ts";
import { ModuleBuilder } from "../../ir/builder.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { tensorType } from "../../ir/types.ts";
import { verify } from "../../ir/verifier.ts";
import { cse } from "../../passes/cse.ts";
import { builtinPasses, createPassRegistry } from "../../passes/index.ts";
import { type PipelineResult, runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";

function load(text: string): Module {
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!), []);
  return module!;
}

function run(m: Module, pipeline = "cse"): PipelineResult {
  return runPipeline(m, parsePipeline(pipeline, createPassRegistry()));
}

function stat(r: PipelineResult, pass: string, name: string): number | undefined {
  return r.stats.find((s) => s.pass === pass && s.name === name)?.value;
}

const DUPLICATES = `module @m {
  func @main(%x: tensor<4xf32>) -> (tensor<4xf32>) {
    %a = tanh %x : tensor<4xf32>
    %b = tanh %x : tensor<4xf32>
    %c = tanh %x : tensor<4xf32>
    %s = add %a, %b : tensor<4xf32>
    %t = add %a, %c : tensor<4xf32>
    %u = add %s, %t : tensor<4xf32>
    return %u
  }

  func @other(%x: tensor<4xf32>) -> (tensor<4xf32>) {
    %a = tanh %x : tensor<4xf32>
    return %a
  }
}
`;

Deno.test("cse is registered, in name order, with its statistic declared", () => {
  assert.ok(builtinPasses.includes(cse));
  const names = builtinPasses.map((p) => p.name);
  assert.deepEqual(names, [...names].sort());
  assert.ok(createPassRegistry().get("cse"));
  assert.deepEqual(Object.keys(cse.statistics!), ["eliminated"]);
});

Deno.test("cse counts the ops it eliminates, following replaced operands", () => {
  const r = run(load(DUPLICATES));
  // %b and %c are %a; then %t is add %a, %a like %s.
  assert.equal(stat(r, "cse", "eliminated"), 3);
  assert.equal(r.runs[0].changed, true);
  const body = r.module.func("main")!.body.map((op) => op.result.name);
  assert.deepEqual(body, ["a", "s", "u"]);
  assert.match(print(r.module), /%u = add %s, %s : tensor<4xf32>/);
  // Functions are separate: @other keeps its own tanh.
  assert.equal(r.module.func("other")!.body.length, 1);
});

Deno.test("cse returns unchanged, and counts nothing, when no two ops are equal", () => {
  const once = run(load(DUPLICATES)).module;
  const again = run(once);
  assert.equal(again.runs[0].changed, false);
  assert.deepEqual(again.stats, []);
  assert.equal(print(again.module), print(once));
});

Deno.test("cse leaves the input module alone and keeps the first op's location", () => {
  const m = load(DUPLICATES);
  const before = print(m);
  const r = run(m);
  assert.equal(print(m), before);
  const a = r.module.func("main")!.body[0];
  assert.equal(a.result.name, "a");
  assert.deepEqual(a.loc && [a.loc.line, a.loc.col], [3, 5]);
});

Deno.test("cse tells constants apart by type and value, not by how the literal is written", () => {
  const r = run(load(`module @m {
  func @main() -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>, tensor<2xf64>, tensor<2xi32>, tensor<2xf32>, tensor<2xf32>) {
    %a = constant {value = dense<2.0>} : tensor<2xf32>
    %b = constant {value = dense<[2.0, 2.0]>} : tensor<2xf32>
    %c = constant {value = dense<2>} : tensor<2xf32>
    %d = constant {value = dense<2.0>} : tensor<2xf64>
    %e = constant {value = dense<2>} : tensor<2xi32>
    %f = constant {value = dense<[2.0, 3.0]>} : tensor<2xf32>
    %g = constant {value = dense<[nan, nan]>} : tensor<2xf32>
    return %a, %b, %c, %d, %e, %f, %g
  }
}
`));
  assert.equal(stat(r, "cse", "eliminated"), 2);
  assert.match(print(r.module), /return %a, %a, %a, %d, %e, %f, %g/);
});

Deno.test("cse is linear: 30000 ops with 10000 duplicates, no scan of the function per duplicate", () => {
  const b = new ModuleBuilder("big");
  const f = b.func("main", [["x", tensorType([2])]]);
  let v = f.params[0];
  for (let i = 0; i < 10000; i++) v = f.op("add", [f.op("tanh", [v]), f.op("tanh", [v])]);
  f.ret(v);
  const t0 = performance.now();
  const r = runPipeline(b.module, parsePipeline("cse", createPassRegistry()), { verifyEach: false });
  const ms = performance.now() - t0;
  assert.equal(stat(r, "cse", "eliminated"), 10000);
  assert.equal(r.module.funcs[0].body.length, 20000);
  // Replacing each duplicate by a scan of the function takes tens of seconds here.
  assert.ok(ms < 3000, `cse took ${ms.toFixed(0)} ms`);
});

Deno.test("cse changes nothing in the synthetic BERT, which already shares its constants", () => {
  for (const head of [true, false]) {
    const m = buildBertModule(bertConfig("bert-tiny", { seq: 8, head }), "w.safetensors");
    const r = run(m);
    assert.equal(r.runs[0].changed, false);
    assert.deepEqual(r.stats, []);
    assert.equal(print(r.module), print(m));
  }
});
