import { reduceMean } from "../../ir/ops/reduce_mean.ts";
import { assertInferError, assertTensor, bool, ints, run, t, ty } from "./helpers.ts";

const X = t([2, 3], [1, 2, 3, 4, 5, 9]);

Deno.test("reduce_mean over the last axis keeps dims by default", () => {
  assertTensor(run(reduceMean, [X], { axes: ints([1]) }), [2, 1], [2, 6]);
});

Deno.test("reduce_mean with a negative axis and keepdims = false", () => {
  assertTensor(run(reduceMean, [X], { axes: ints([-1]), keepdims: bool(false) }), [2], [2, 6]);
});

Deno.test("reduce_mean over axis 0 and over all axes", () => {
  assertTensor(run(reduceMean, [X], { axes: ints([0]) }), [1, 3], [2.5, 3.5, 6]);
  assertTensor(run(reduceMean, [X], { axes: ints([0, 1]), keepdims: bool(false) }), [], [4]);
});

Deno.test("reduce_mean over non-adjacent axes", () => {
  // x[a, b, c] = 4a + 2b + c; b = 0: mean(0, 1, 4, 5) = 2.5; b = 1: mean(2, 3, 6, 7) = 4.5.
  const x = t([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]);
  assertTensor(run(reduceMean, [x], { axes: ints([0, 2]) }), [1, 2, 1], [2.5, 4.5]);
});

Deno.test("reduce_mean rejects bad axes and dtypes", () => {
  const x = [ty([2, 3])];
  assertInferError(reduceMean, x, "attribute 'axes' must not be empty", { axes: ints([]) });
  assertInferError(reduceMean, x, "attribute 'axes' must be distinct, got [1, -1]", { axes: ints([1, -1]) });
  assertInferError(reduceMean, x, "attribute 'axes' entry 2 is out of range for rank 2", { axes: ints([2]) });
  assertInferError(reduceMean, [ty([2], "i32")], "operand 'x' must be a float tensor", { axes: ints([0]) });
});
