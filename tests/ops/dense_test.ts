import assert from "node:assert/strict";
import { seededInputs, seededWeights } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import { dense } from "../../ir/ops/dense.ts";
import { parse } from "../../ir/parse.ts";
import type { DType } from "../../ir/types.ts";
import { verify } from "../../ir/verifier.ts";
import { assertInferError, assertTensor, bool, enumValue, run, t, ty } from "./helpers.ts";

// x = [[1, 2, 3], [4, 5, 6]], w = [[1, 0], [0, 1], [1, 1]]: x · w = [[4, 5], [10, 11]].
const X = [1, 2, 3, 4, 5, 6];
const W = [1, 0, 0, 1, 1, 1];
const W_T = [1, 0, 1, 0, 1, 1]; // w transposed, [N, K] = [2, 3]

Deno.test("dense with bias", () => {
  const out = run(dense, [t([2, 3], X), t([3, 2], W), t([2], [10, 20])]);
  assertTensor(out, [2, 2], [14, 25, 20, 31]);
});

Deno.test("dense with transpose_b ([out, in] weights)", () => {
  const out = run(dense, [t([2, 3], X), t([2, 3], W_T), t([2], [10, 20])], { transpose_b: bool(true) });
  assertTensor(out, [2, 2], [14, 25, 20, 31]);
});

Deno.test("dense on a rank-1 x gives a vector", () => {
  assertTensor(run(dense, [t([3], [1, 2, 3]), t([3, 2], W)]), [2], [4, 5]);
});

Deno.test("dense on a rank-3 x keeps the batch dims", () => {
  assertTensor(run(dense, [t([2, 1, 3], X), t([3, 2], W)]), [2, 1, 2], [4, 5, 10, 11]);
});

Deno.test("dense with transpose_a reads x's last two dims as [K, M]", () => {
  const xT = [1, 4, 2, 5, 3, 6]; // [K, M] = [3, 2]
  const out = run(dense, [t([1, 3, 2], xT), t([2, 3], W_T)], {
    transpose_a: bool(true),
    transpose_b: bool(true),
  });
  assertTensor(out, [1, 2, 2], [4, 5, 10, 11]);
});

Deno.test("dense rejects bad ranks, dims and dtypes", () => {
  assertInferError(dense, [ty([2, 3]), ty([3])], "operand 'w' must be rank 2, got tensor<3xf32>");
  assertInferError(dense, [ty([]), ty([3, 2])], "operand 'x' must be rank >= 1, got tensor<f32>");
  assertInferError(dense, [ty([2, 4]), ty([3, 2])], "contraction dims differ: x has K = 4");
  assertInferError(dense, [ty([2, 3]), ty([3, 2])], "contraction dims differ", { transpose_b: bool(true) });
  assertInferError(dense, [ty([2, 3]), ty([3, 2]), ty([3])], "operand 'bias' must be [2], got tensor<3xf32>");
  assertInferError(dense, [ty([2, 3], "i32"), ty([3, 2], "i32")], "operand 'x' must be a float tensor");
  assertInferError(dense, [ty([2, 3]), ty([3, 2], "f64")], "dtypes differ: f32 and f64");
  assertInferError(dense, [ty([2, 3]), ty([3, 2]), ty([2], "f16")], "dtypes differ: f32 and f16");
});

// The activation tests: x = [1, -1], w = [[2, 1, 3, 0.5], [1, 1, 1, -1.5]], bias = [0, -1, -2, 0].
// x · w = [1, 0, 2, 2]; + bias = [1, -1, 0, 2]: the bias moves the second and third entries, so
// an activation applied before the bias would give other values.
const ACT_X = [1, -1];
const ACT_W = [2, 1, 3, 0.5, 1, 1, 1, -1.5];
const ACT_BIAS = [0, -1, -2, 0];
const actInputs = () => [t([2], ACT_X), t([2, 4], ACT_W), t([4], ACT_BIAS)];

Deno.test("dense activation none is the default and leaves the result alone", () => {
  assertTensor(run(dense, actInputs()), [4], [1, -1, 0, 2]);
  assertTensor(run(dense, actInputs(), { activation: enumValue("none") }), [4], [1, -1, 0, 2]);
});

Deno.test("dense activation gelu: exact GELU of x · w + bias", () => {
  // gelu(v) = v · Φ(v): Φ(1) = 0.8413447461, Φ(-1) = 0.1586552539, Φ(2) = 0.9772498681.
  const out = run(dense, actInputs(), { activation: enumValue("gelu") });
  assertTensor(out, [4], [0.8413447461, -0.1586552539, 0, 1.9544997361]);
});

Deno.test("dense activation gelu_tanh: tanh-approximated GELU of x · w + bias", () => {
  // 0.5 v (1 + tanh(√(2/π)(v + 0.044715 v³))): v = 1 -> 0.5 (1 + tanh(0.8335459)) = 0.8411919906.
  const out = run(dense, actInputs(), { activation: enumValue("gelu_tanh") });
  assertTensor(out, [4], [0.8411919906, -0.1588080094, 0, 1.9545976941]);
});

Deno.test("dense activation tanh", () => {
  const out = run(dense, actInputs(), { activation: enumValue("tanh") });
  assertTensor(out, [4], [0.7615941560, -0.7615941560, 0, 0.9640275801]);
});

Deno.test("dense activation works with transpose_b and batch dims", () => {
  // w as [N, K] = [4, 2]; x [2, 1, 2] holds [1, -1] and [-1, 1] (whose pre-activation is
  // -x · w + bias = [-1, -1, -4, -2]).
  const wT = [2, 1, 1, 1, 3, 1, 0.5, -1.5];
  const out = run(dense, [t([2, 1, 2], [1, -1, -1, 1]), t([4, 2], wT), t([4], ACT_BIAS)], {
    transpose_b: bool(true),
    activation: enumValue("tanh"),
  });
  assertTensor(out, [2, 1, 4], [
    0.7615941560,
    -0.7615941560,
    0,
    0.9640275801,
    -0.7615941560,
    -0.7615941560,
    -0.9993292997,
    -0.9640275801,
  ]);
});

/** A module with the same dense layer fused (`@fused`) and as dense then activation (`@unfused`). */
function denseChains(dtype: DType): string {
  const ty = (shape: string) => `tensor<${shape}x${dtype}>`;
  const results = `(${ty("2x3x8")}, ${ty("2x3x8")}, ${ty("2x3x8")})`;
  return `module @chains {
  weights {
    @w : ${ty("8x16")}
    @b : ${ty("8")}
  }

  func @fused(%x: ${ty("2x3x16")}) -> ${results} {
    %g = dense %x, @w, @b {transpose_b = true, activation = gelu} : ${ty("2x3x8")}
    %t = dense %x, @w, @b {transpose_b = true, activation = gelu_tanh} : ${ty("2x3x8")}
    %h = dense %x, @w, @b {transpose_b = true, activation = tanh} : ${ty("2x3x8")}
    return %g, %t, %h
  }

  func @unfused(%x: ${ty("2x3x16")}) -> ${results} {
    %y = dense %x, @w, @b {transpose_b = true} : ${ty("2x3x8")}
    %g = gelu %y : ${ty("2x3x8")}
    %t = gelu %y {approximation = tanh} : ${ty("2x3x8")}
    %h = tanh %y : ${ty("2x3x8")}
    return %g, %t, %h
  }
}
`;
}

Deno.test("dense with an activation equals dense then the activation op, bit for bit", () => {
  for (const dtype of ["f32", "f64", "f16", "bf16"] as const) {
    const { module: m, diagnostics } = parse(denseChains(dtype), { file: `chains_${dtype}.sir` });
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(verify(m!), []);
    const weights = seededWeights(m!, 7);
    for (const seed of [1, 2, 3]) {
      const inputs = seededInputs(m!.func("fused")!, seed);
      const fused = interpret(m!, inputs, weights, { func: "fused" });
      const unfused = interpret(m!, inputs, weights, { func: "unfused" });
      fused.forEach((f, i) => assert.deepStrictEqual(f.data, unfused[i].data, `${dtype} result ${i}`));
    }
  }
});
