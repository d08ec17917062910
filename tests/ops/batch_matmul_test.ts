import { batchMatmul } from "../../ir/ops/batch_matmul.ts";
import { assertInferError, assertTensor, bool, run, t, ty } from "./helpers.ts";

Deno.test("batch_matmul broadcasts a rank-2 b over a's batch", () => {
  // [[1, 2], [3, 4]] · [[1, 1], [0, 2]] = [[1, 5], [3, 11]]; [[0, 1], [1, 0]] · ... = [[0, 2], [1, 1]].
  const out = run(batchMatmul, [t([2, 2, 2], [1, 2, 3, 4, 0, 1, 1, 0]), t([2, 2], [1, 1, 0, 2])]);
  assertTensor(out, [2, 2, 2], [1, 5, 3, 11, 0, 2, 1, 1]);
});

Deno.test("batch_matmul broadcasts batch dims of both operands", () => {
  // a: rows [1, 2] and [3, 4]; b: columns [1, 0], [0, 1], [1, 1]; result[i, j] = a_i · b_j.
  const out = run(batchMatmul, [t([2, 1, 1, 2], [1, 2, 3, 4]), t([1, 3, 2, 1], [1, 0, 0, 1, 1, 1])]);
  assertTensor(out, [2, 3, 1, 1], [1, 2, 3, 3, 4, 7]);
});

Deno.test("batch_matmul with transpose_b (attention scores q · kᵀ)", () => {
  const a = t([1, 2, 3], [1, 2, 3, 4, 5, 6]);
  const b = t([1, 2, 3], [1, 0, 1, 0, 1, 0]);
  assertTensor(run(batchMatmul, [a, b], { transpose_b: bool(true) }), [1, 2, 2], [4, 2, 10, 5]);
});

Deno.test("batch_matmul with transpose_a", () => {
  const a = t([1, 3, 2], [1, 4, 2, 5, 3, 6]); // [[1, 2, 3], [4, 5, 6]] stored as [K, M]
  const out = run(batchMatmul, [a, t([3, 1], [1, 1, 1])], { transpose_a: bool(true) });
  assertTensor(out, [1, 2, 1], [6, 15]);
});

Deno.test("batch_matmul rejects bad ranks, dims and dtypes", () => {
  assertInferError(batchMatmul, [ty([3]), ty([3, 2])], "operand 'a' must be rank >= 2, got tensor<3xf32>");
  assertInferError(batchMatmul, [ty([2, 3]), ty([2])], "operand 'b' must be rank >= 2");
  assertInferError(batchMatmul, [ty([2, 3]), ty([2, 3])], "contraction dims differ: a has K = 3");
  assertInferError(batchMatmul, [ty([2, 2, 2]), ty([3, 2, 2])], "shapes [2] and [3] do not broadcast");
  assertInferError(batchMatmul, [ty([2, 2]), ty([2, 2], "f64")], "dtypes differ: f32 and f64");
  assertInferError(batchMatmul, [ty([2, 2], "i32"), ty([2, 2], "i32")], "operand 'a' must be a float tensor");
});
