import assert from "node:assert/strict";
import { seededInputs, seededWeights } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import { bsrDense } from "../../ir/ops/bsr_dense.ts";
import { parse } from "../../ir/parse.ts";
import { BsrTensor } from "../../ir/tensor.ts";
import type { DType, TensorType } from "../../ir/types.ts";
import { verify } from "../../ir/verifier.ts";
import { assertInferError, assertTensor, enumValue, run, t, ty } from "./helpers.ts";

// W, logical [N, K] = [3, 5], cut into 2x2 blocks (a 2x3 block grid, edges padded):
//   [[1, 2, 0, 0, 3],
//    [4, 5, 0, 0, 6],
//    [0, 0, 7, 8, 9]]
// Stored blocks (block row, block col): (0, 0), (0, 2), (1, 1), (1, 2); block (0, 1) is zero.
// Padding slots hold 99, which must never be read.
const W_TYPE: TensorType = {
  shape: [3, 5],
  dtype: "f32",
  sparse: { kind: "bsr", block: [2, 2], nnzBlocks: 4 },
};
const W = new BsrTensor(
  W_TYPE,
  new Float32Array([1, 2, 4, 5, 3, 99, 6, 99, 7, 8, 99, 99, 9, 99, 99, 99]),
  new Int32Array([0, 2, 1, 2]),
  new Int32Array([0, 2, 4]),
);
const X = [1, 1, 1, 1, 1, 1, 2, 3, 4, 5];

Deno.test("bsr_dense equals x · Wᵀ + bias of the dense W", () => {
  // Row [1, 1, 1, 1, 1]: row sums of W = [6, 15, 24]; row [1, 2, 3, 4, 5]: [20, 44, 98].
  const out = run(bsrDense, [t([2, 5], X), W, t([3], [0.5, 0, -1])]);
  assertTensor(out, [2, 3], [6.5, 15, 23, 20.5, 44, 97]);
});

Deno.test("bsr_dense without bias, on a rank-3 x", () => {
  assertTensor(run(bsrDense, [t([1, 2, 5], X), W]), [1, 2, 3], [6, 15, 24, 20, 44, 98]);
});

Deno.test("bsr_dense on a rank-1 x", () => {
  assertTensor(run(bsrDense, [t([5], [0, 0, 1, 0, 0]), W]), [3], [0, 0, 7]);
});

Deno.test("bsr_dense rejects a dense w, mismatched dims and dtypes", () => {
  assertInferError(
    bsrDense,
    [ty([2, 5]), ty([3, 5])],
    "operand 'w' must be a bsr tensor, got tensor<3x5xf32>",
  );
  assertInferError(bsrDense, [ty([2, 4]), W_TYPE], "contraction dims differ: x has K = 4");
  assertInferError(bsrDense, [ty([2, 5]), W_TYPE, ty([5])], "operand 'bias' must be [3], got tensor<5xf32>");
  assertInferError(bsrDense, [ty([2, 5], "f64"), W_TYPE], "dtypes differ: f64 and f32");
  assertInferError(bsrDense, [ty([2, 5], "i32"), W_TYPE], "operand 'x' must be a float tensor");
  const tooMany: TensorType = { ...W_TYPE, sparse: { kind: "bsr", block: [2, 2], nnzBlocks: 7 } };
  assertInferError(bsrDense, [ty([2, 5]), tooMany], "stores 7 blocks, more than its 2x3 block grid");
});

// Rows [0, 0, 1, 0, 0] and [1, 0, 0, 0, 0] pick W's columns 2 and 0, [0, 0, 7] and [1, 4, 0];
// with bias [1, -1, -5] the pre-activation rows are [1, -1, 2] and [2, 3, -5].
const ACT_X = [0, 0, 1, 0, 0, 1, 0, 0, 0, 0];
const ACT_BIAS = [1, -1, -5];

Deno.test("bsr_dense activation none is the default", () => {
  const pre = [1, -1, 2, 2, 3, -5];
  assertTensor(run(bsrDense, [t([2, 5], ACT_X), W, t([3], ACT_BIAS)]), [2, 3], pre);
  const out = run(bsrDense, [t([2, 5], ACT_X), W, t([3], ACT_BIAS)], { activation: enumValue("none") });
  assertTensor(out, [2, 3], pre);
});

Deno.test("bsr_dense applies its activation after the bias", () => {
  const inputs = () => [t([2, 5], ACT_X), W, t([3], ACT_BIAS)];
  // gelu(v) = v · Φ(v): Φ(1) = 0.8413447461, Φ(2) = 0.9772498681, Φ(3) = 0.9986501020,
  // Φ(-5) = 2.8665157e-7.
  assertTensor(run(bsrDense, inputs(), { activation: enumValue("gelu") }), [2, 3], [
    0.8413447461,
    -0.1586552539,
    1.9544997361,
    1.9544997361,
    2.9959503059,
    -1.4332579e-6,
  ]);
  assertTensor(run(bsrDense, inputs(), { activation: enumValue("gelu_tanh") }), [2, 3], [
    0.8411919906,
    -0.1588080094,
    1.9545976941,
    1.9545976941,
    2.9963626079,
    -2.291796e-7,
  ]);
  assertTensor(run(bsrDense, inputs(), { activation: enumValue("tanh") }), [2, 3], [
    0.7615941560,
    -0.7615941560,
    0.9640275801,
    0.9640275801,
    0.9950547537,
    -0.9999092043,
  ]);
});

/** A module with one block-sparse layer fused (`@fused`) and as bsr_dense then activation (`@unfused`). */
function bsrChains(dtype: DType): string {
  const ty = (shape: string) => `tensor<${shape}x${dtype}>`;
  const results = `(${ty("3x8")}, ${ty("3x8")}, ${ty("3x8")})`;
  return `module @chains {
  weights {
    @w : tensor<8x16x${dtype}, bsr<2x4, nnz = 9>>
    @b : ${ty("8")}
  }

  func @fused(%x: ${ty("3x16")}) -> ${results} {
    %g = bsr_dense %x, @w, @b {activation = gelu} : ${ty("3x8")}
    %t = bsr_dense %x, @w, @b {activation = gelu_tanh} : ${ty("3x8")}
    %h = bsr_dense %x, @w, @b {activation = tanh} : ${ty("3x8")}
    return %g, %t, %h
  }

  func @unfused(%x: ${ty("3x16")}) -> ${results} {
    %y = bsr_dense %x, @w, @b : ${ty("3x8")}
    %g = gelu %y : ${ty("3x8")}
    %t = gelu %y {approximation = tanh} : ${ty("3x8")}
    %h = tanh %y : ${ty("3x8")}
    return %g, %t, %h
  }
}
`;
}

Deno.test("bsr_dense with an activation equals bsr_dense then the activation op, bit for bit", () => {
  for (const dtype of ["f32", "f16", "bf16"] as const) {
    const { module: m, diagnostics } = parse(bsrChains(dtype), { file: `chains_${dtype}.sir` });
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
