import { dense } from "../../ir/ops/dense.ts";
import { assertInferError, assertTensor, bool, run, t, ty } from "./helpers.ts";

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
