/**
 * The `canonicalize` pass: statistics by kind, "unchanged" when nothing applies, its option,
 * folds it must not do, locations, and what it does to the synthetic BERT.
 */

import assert from "node:assert/strict";
import { bertConfig, buildBertModule } from "../../frontend/synthetic_bert.ts";
import { seededInputs, seededWeights } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { verify } from "../../ir/verifier.ts";
import { canonicalizationPatterns, canonicalize } from "../../passes/canonicalize.ts";
import { builtinPasses, createPassRegistry } from "../../passes/index.ts";
import { type PipelineResult, runPipeline } from "../../passes/manager.ts";
import { parsePipeline, PipelineError } from "../../passes/pipeline.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import { rewrite } from "../../passes/rewrite.ts";
import type { PassContext } from "../../passes/pass.ts";

function load(text: string): Module {
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!), []);
  return module!;
}

function run(m: Module, pipeline = "canonicalize"): PipelineResult {
  return runPipeline(m, parsePipeline(pipeline, createPassRegistry()));
}

function stats(r: PipelineResult): Record<string, number> {
  return Object.fromEntries(r.stats.map((s) => [`${s.pass}.${s.name}`, s.value]));
}

const EVERYTHING = `module @m {
  func @main(%x: tensor<2x3xf32>) -> (tensor<3x2xf32>, tensor<6xf32>, tensor<f32>, tensor<2x3xf32>) {
    %two = constant {value = dense<2.0>} : tensor<f32>
    %one = constant {value = dense<1.0>} : tensor<f32>
    %four = mul %two, %two : tensor<f32>
    %t = transpose %x {perm = [1, 0]} : tensor<3x2xf32>
    %tt = transpose %t {perm = [1, 0]} : tensor<2x3xf32>
    %t3 = transpose %tt {perm = [1, 0]} : tensor<3x2xf32>
    %r = reshape %x : tensor<3x2xf32>
    %rr = reshape %r : tensor<6xf32>
    %same = reshape %x : tensor<2x3xf32>
    %m = mul %same, %one : tensor<2x3xf32>
    %s = slice %m {starts = [0], ends = [2]} : tensor<2x3xf32>
    return %t3, %rr, %four, %s
  }
}
`;

Deno.test("canonicalize is registered and declares its option and statistics", () => {
  assert.ok(builtinPasses.includes(canonicalize));
  assert.equal(createPassRegistry().get("canonicalize"), canonicalize);
  assert.equal(canonicalize.options!["max-fold-elements"].default, 4096);
  assert.deepEqual(Object.keys(canonicalize.statistics!).sort(), [
    "folded",
    "identities",
    "no-ops",
    "reshape-chains",
    "transpose-chains",
  ]);
});

Deno.test("canonicalize counts each kind of rewrite", () => {
  const r = run(load(EVERYTHING));
  assert.deepEqual(stats(r), {
    "canonicalize.folded": 1, // %four
    "canonicalize.transpose-chains": 1, // %tt is %x, so %t3 is then transpose %x as written
    "canonicalize.reshape-chains": 1, // %rr
    "canonicalize.no-ops": 2, // %same, %s
    "canonicalize.identities": 1, // %m
  });
  assert.equal(r.runs[0].changed, true);
  const text = print(r.module);
  assert.match(text, /%four = constant \{value = dense<4\.0>\} : tensor<f32>/);
  assert.match(text, /%t3 = transpose %x \{perm = \[1, 0\]\} : tensor<3x2xf32>/);
  assert.match(text, /%rr = reshape %x : tensor<6xf32>/);
  assert.match(text, /return %t3, %rr, %four, %x/);
});

Deno.test("canonicalize returns unchanged, with no statistics, at a fixed point", () => {
  const once = run(load(EVERYTHING)).module;
  const again = run(once);
  assert.equal(again.runs[0].changed, false);
  assert.deepEqual(again.stats, []);
  assert.equal(print(again.module), print(once));
});

Deno.test("folded and rewritten ops keep the location of the op they replace", () => {
  const m = load(EVERYTHING);
  const r = run(m);
  const at = (mod: Module, name: string) => {
    const op = mod.funcs[0].body.find((o) => o.result.name === name)!;
    return [op.name, op.loc?.file, op.loc?.line, op.loc?.col];
  };
  assert.deepEqual(at(r.module, "four"), ["constant", "t.sir", 5, 5]);
  assert.deepEqual(at(r.module, "t3"), ["transpose", "t.sir", 8, 5]);
  assert.deepEqual(at(r.module, "rr"), ["reshape", "t.sir", 10, 5]);
});

Deno.test("max-fold-elements: bad values are refused by the pipeline parser and the pass", () => {
  const registry = createPassRegistry();
  assert.throws(
    () => parsePipeline("canonicalize{max-fold-elements=x}", registry),
    (e) =>
      e instanceof PipelineError && e.col === 14 &&
      e.message === "option 'max-fold-elements' of 'canonicalize' must be an integer, got 'x'",
  );
  assert.throws(
    () => parsePipeline("canonicalize{max-fold-elements=1.5}", registry),
    /must be an integer, got '1\.5'/,
  );
  assert.throws(
    () => parsePipeline("canonicalize{max-fold-elements}", registry),
    /option 'max-fold-elements' of 'canonicalize' needs a value/,
  );
  assert.throws(
    () => parsePipeline("canonicalize{max-fold=4}", registry),
    /unknown option 'max-fold' of pass 'canonicalize'.*its options: max-fold-elements/,
  );
  assert.throws(
    () => parsePipeline("canonicalize{max-fold-elements=-1}", registry),
    (e) =>
      e instanceof PipelineError && e.col === 14 &&
      e.message === "option 'max-fold-elements' of 'canonicalize' must be at least 0, got '-1'",
  );
  // 0 turns folding off; the other patterns still apply.
  const r = run(load(EVERYTHING), "canonicalize{max-fold-elements=0}");
  assert.equal(stats(r)["canonicalize.folded"], undefined);
  assert.equal(stats(r)["canonicalize.identities"], 1);
});

Deno.test("an op whose evaluation fails is not folded: the error is left for run time", () => {
  const m = load(`module @m {
  func @main() -> (tensor<1x2xf32>) {
    %table = constant {value = dense<[[1.0, 2.0]]>} : tensor<1x2xf32>
    %bad = constant {value = dense<[5]>} : tensor<1xi32>
    %g = gather %table, %bad : tensor<1x2xf32>
    return %g
  }
}
`);
  const r = run(m);
  assert.equal(r.runs[0].changed, false);
  assert.equal(print(r.module), print(m));
});

Deno.test("folding rounds to the dtype as the interpreter does, and keeps NaN and -0.0", () => {
  const m = load(`module @m {
  func @main() -> (tensor<2xbf16>, tensor<3xf32>, tensor<f64>) {
    %a = constant {value = dense<[1.001, 3.14159]>} : tensor<2xbf16>
    %b = add %a, %a : tensor<2xbf16>
    %z = constant {value = dense<[0.0, -1.0, 1.0]>} : tensor<3xf32>
    %zero = constant {value = dense<0.0>} : tensor<3xf32>
    %q = div %zero, %z : tensor<3xf32>
    %c = constant {value = dense<0.1>} : tensor<f64>
    %d = mul %c, %c : tensor<f64>
    return %b, %q, %d
  }
}
`);
  const r = run(m, "canonicalize,dce");
  const text = print(r.module);
  assert.match(text, /%b = constant \{value = dense<\[2\.0, 6\.28125\]>\} : tensor<2xbf16>/);
  assert.match(text, /%q = constant \{value = dense<\[nan, -0\.0, 0\.0\]>\} : tensor<3xf32>/);
  assert.match(text, /%d = constant \{value = dense<0\.010000000000000002>\} : tensor<f64>/);
  const weights = seededWeights(m, 1);
  const want = interpret(m, seededInputs(m.funcs[0], 1), weights);
  const got = interpret(r.module, seededInputs(r.module.funcs[0], 1), weights);
  want.forEach((w, i) => assert.deepEqual(Array.from(got[i].data), Array.from(w.data)));
});

Deno.test("the patterns can be reused by other passes through rewrite()", () => {
  const m = load(EVERYTHING);
  const counted: string[] = [];
  const ctx = { registry: builtinRegistry, stat: () => {} } as unknown as PassContext;
  const result = rewrite(
    m.funcs[0],
    ctx,
    canonicalizationPatterns(builtinRegistry, 0, (s) => counted.push(s)),
  );
  assert.equal(result, "changed");
  assert.deepEqual(counted.sort(), [
    "identities",
    "no-ops",
    "no-ops",
    "reshape-chains",
    "transpose-chains",
  ]);
});

Deno.test("canonicalize leaves the synthetic BERT alone, except a position slice that takes the whole table", () => {
  for (const head of [true, false]) {
    const m = buildBertModule(bertConfig("bert-tiny", { seq: 8, head }), "w.safetensors");
    const r = run(m, "canonicalize,cse,dce");
    assert.deepEqual(r.runs.map((x) => x.changed), [false, false, false]);
    assert.deepEqual(r.stats, []);
    assert.equal(print(r.module), print(m));
  }
  // At seq = max positions, the slice of the position table keeps all of it.
  const full = buildBertModule(bertConfig("bert-tiny", { seq: 512 }), "w.safetensors");
  const r = run(full);
  assert.deepEqual(stats(r), { "canonicalize.no-ops": 1 });
  assert.ok(!r.module.funcs[0].body.some((op) => op.result.name === "emb.pos"));
  assert.match(print(r.module), /%emb.sum = add %emb.word_type, @bert.embeddings.position_embeddings.weight/);
});
