/**
 * `evaluateOp`, the one op evaluation of the compiler: rounding to the result dtype, its two kinds
 * of failure, and the same numbers from every site that evaluates ops — the interpreter,
 * `canonicalize`'s folding, the ONNX importer's `foldOp` and codegen's compile-time folding.
 */

import assert from "node:assert/strict";
import { lowerFunction } from "../codegen/lower/lower.ts";
import type { DenseLiteral } from "../ir/attrs.ts";
import { foldOp } from "../frontend/onnx/fold_shapes.ts";
import { EvaluateError, evaluateOp } from "../ir/evaluate.ts";
import { interpret } from "../ir/interpreter.ts";
import type { Module } from "../ir/module.ts";
import { builtinRegistry } from "../ir/ops/index.ts";
import { parse } from "../ir/parse.ts";
import type { OpDef } from "../ir/registry.ts";
import { roundToDType, Tensor } from "../ir/tensor.ts";
import { verify } from "../ir/verifier.ts";
import { memoryStore } from "../ir/weights.ts";
import { createPassRegistry } from "../passes/index.ts";
import { PassError, runPipeline } from "../passes/manager.ts";
import { parsePipeline } from "../passes/pipeline.ts";

function load(text: string, registry = builtinRegistry): Module {
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!, { registry }), []);
  return module!;
}

/** The op defining `%name` in @main. */
function opOf(m: Module, name: string) {
  return m.func("main")!.body.find((op) => op.result.name === name)!;
}

const EMPTY = memoryStore(new Map());

Deno.test("evaluateOp rounds results to their dtype: f16, bf16, integer wrap and truncation", () => {
  const m = load(`module @t {
  func @main(%h: tensor<2xf16>, %b: tensor<2xbf16>, %i: tensor<2xi32>, %l: tensor<2xi64>) -> (tensor<2xf16>, tensor<2xbf16>, tensor<2xi32>, tensor<2xi64>) {
    %hs = mul %h, %h : tensor<2xf16>
    %bs = mul %b, %b : tensor<2xbf16>
    %is = add %i, %i : tensor<2xi32>
    %ld = div %l, %l : tensor<2xi64>
    return %hs, %bs, %is, %ld
  }
}
`);
  const hv = [1 + 2 ** -10, Math.f16round(0.1)];
  const h = Tensor.from([2], "f16", hv);
  const hs = evaluateOp(opOf(m, "hs"), [h, h], builtinRegistry);
  assert.deepEqual([...hs.data], hv.map((v) => Math.f16round(v * v)));
  assert.notEqual(hs.data[0], Math.fround(hv[0] * hv[0]));
  const b = Tensor.from([2], "bf16", [1.5, 3]);
  const bs = evaluateOp(opOf(m, "bs"), [b, Tensor.from([2], "bf16", [1.00390625, 1])], builtinRegistry);
  // 1.5 × 1.00390625 = 1.505859375 needs 9 mantissa bits; bf16 keeps 7: 1.5078125 (ties to even).
  assert.deepEqual([...bs.data], [1.5078125, 3]);
  const i = Tensor.from([2], "i32", [2 ** 30 + 1, -3]);
  assert.deepEqual([...evaluateOp(opOf(m, "is"), [i, i], builtinRegistry).data], [-(2 ** 31) + 2, -6]);
  const ld = evaluateOp(
    opOf(m, "ld"),
    [Tensor.from([2], "i64", [7, -7]), Tensor.from([2], "i64", [2, 2])],
    builtinRegistry,
  );
  assert.deepEqual([...ld.data], [3, -3]);
});

Deno.test("evaluateOp: semantics that reject the operands fail; a broken op definition is malformed", () => {
  const m = load(`module @t {
  weights {
    @table : tensor<3x2xf32>
  }

  func @main(%ids: tensor<1xi64>) -> (tensor<1x2xf32>) {
    %e = gather @table, %ids : tensor<1x2xf32>
    return %e
  }
}
`);
  const op = opOf(m, "e");
  const table = Tensor.from([3, 2], "f32", [0, 1, 2, 3, 4, 5]);
  assert.deepEqual([...evaluateOp(op, [table, Tensor.from([1], "i64", [1])], builtinRegistry).data], [2, 3]);
  assert.throws(
    () => evaluateOp(op, [table, Tensor.from([1], "i64", [9])], builtinRegistry),
    (e: unknown) =>
      e instanceof EvaluateError && e.kind === "failed" && e.op === op && !e.message.includes("t.sir"),
  );
  // An op definition whose semantics give the wrong shape, or the wrong storage for the dtype.
  const bad = { ...op, name: "bad" } as typeof op;
  const run = (interpret: OpDef["interpret"]) => () => {
    const r = builtinRegistry.clone();
    r.register({ ...builtinRegistry.get("gather")!, name: "bad", interpret });
    return evaluateOp(bad, [table, Tensor.from([1], "i64", [1])], r);
  };
  assert.throws(
    run(() => Tensor.from([2], "f32", [1, 2])),
    (e: unknown) =>
      e instanceof EvaluateError && e.kind === "malformed" &&
      /gave tensor<2xf32> in a Float32Array, but its result is tensor<1x2xf32>/.test(e.message),
  );
  assert.throws(
    run(() => new Tensor({ shape: [1, 2], dtype: "f32" }, new Float64Array([1, 2]))),
    /in a Float64Array, but its result is tensor<1x2xf32>/,
  );
  assert.throws(
    () => evaluateOp({ ...op, name: "nope" } as typeof op, [], builtinRegistry),
    (e: unknown) => e instanceof EvaluateError && e.kind === "malformed" && e.message === "unknown op 'nope'",
  );
});

Deno.test("the interpreter, canonicalize, the ONNX folder and codegen fold to the same rounded values", () => {
  const m = load(`module @t {
  func @main(%x: tensor<3xf32>) -> (tensor<3xf32>) {
    %c = constant {value = dense<[0.1, 0.3, 1000.7]>} : tensor<3xf32>
    %h = cast %c : tensor<3xf16>
    %hh = mul %h, %h : tensor<3xf16>
    %b = cast %hh : tensor<3xbf16>
    %bb = add %b, %b : tensor<3xbf16>
    %back = cast %bb : tensor<3xf32>
    %y = add %x, %back : tensor<3xf32>
    return %y
  }
}
`);
  const x = Tensor.from([3], "f32", [0, 0, 0]);
  const [viaInterpreter] = interpret(m, [x], EMPTY);
  // Rounded at every step: to f16 twice, then to bf16 (doubling and widening to f32 are exact).
  const bf16 = (v: number) => {
    const t = Tensor.from([1], "bf16", [v]);
    roundToDType(t);
    return t.data[0];
  };
  const expected = [0.1, 0.3, 1000.7].map((v) => 2 * bf16(Math.f16round(Math.f16round(v) ** 2)));
  assert.deepEqual([...viaInterpreter.data], expected);
  assert.notDeepEqual(expected, [0.1, 0.3, 1000.7].map((v) => Math.fround(2 * Math.fround(v) ** 2)));

  const folded =
    runPipeline(m, parsePipeline("canonicalize", createPassRegistry()), { weights: EMPTY }).module;
  const back = folded.func("main")!.body.find((op) => op.name === "add")!.operands[1].definingOp!;
  assert.equal(back.name, "constant");
  const literal = back.attrs.get("value")!.value as DenseLiteral;
  assert.deepEqual(literal.values, [...viaInterpreter.data]);

  const f16 = foldOp("cast", [Tensor.from([3], "f32", [0.1, 0.3, 1000.7])], {}, { shape: [3], dtype: "f16" });
  const hh = foldOp("mul", [f16, f16], {});
  const bf = foldOp("cast", [hh], {}, { shape: [3], dtype: "bf16" });
  const viaOnnx = foldOp("cast", [foldOp("add", [bf, bf], {})], {}, { shape: [3], dtype: "f32" });
  assert.deepEqual([...viaOnnx.data], [...viaInterpreter.data]);

  const ctx = lowerFunction(m, m.func("main")!, EMPTY);
  assert.deepEqual([...ctx.known.get(opOf(m, "back").result)!.data], [...viaInterpreter.data]);
});

Deno.test("canonicalize leaves an op its semantics reject alone, and reports a broken op definition at the op", () => {
  const r = builtinRegistry.clone();
  r.register({
    ...builtinRegistry.get("tanh")!,
    name: "bad_tanh",
    interpret: () => Tensor.from([1], "f32", [0]),
  });
  const text = `module @t {
  func @main() -> (tensor<2xf32>, tensor<1x2xf32>) {
    %c = constant {value = dense<[1.0, 2.0]>} : tensor<2xf32>
    %t = bad_tanh %c : tensor<2xf32>
    %ids = constant {value = dense<[7]>} : tensor<1xi64>
    %table = constant {value = dense<[[1.0, 2.0]]>} : tensor<1x2xf32>
    %e = gather %table, %ids : tensor<1x2xf32>
    return %t, %e
  }
}
`;
  const m = load(text, r);
  const canon = parsePipeline("canonicalize", createPassRegistry());
  assert.throws(
    () => runPipeline(m, canon, { registry: r, weights: EMPTY }),
    (e: unknown) =>
      e instanceof PassError &&
      /t\.sir:4:5: error: pass 'canonicalize' failed: while rewriting '%t': the reference semantics of 'bad_tanh' gave tensor<1xf32>/
        .test(e.message),
  );
  // Without the broken op, the out-of-range gather stays as it is.
  const ok = load(text.replace("bad_tanh", "tanh"));
  const out = runPipeline(ok, canon, { weights: EMPTY }).module;
  assert.ok(out.func("main")!.body.some((op) => op.name === "gather"));
  assert.ok(!out.func("main")!.body.some((op) => op.name === "tanh"));
});
