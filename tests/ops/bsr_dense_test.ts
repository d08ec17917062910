import { bsrDense } from "../../ir/ops/bsr_dense.ts";
import { BsrTensor } from "../../ir/tensor.ts";
import type { TensorType } from "../../ir/types.ts";
import { assertInferError, assertTensor, run, t, ty } from "./helpers.ts";

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
