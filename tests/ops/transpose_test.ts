import { transpose } from "../../ir/ops/transpose.ts";
import { assertInferError, assertTensor, ints, run, t, ty } from "./helpers.ts";

Deno.test("transpose a matrix", () => {
  const out = run(transpose, [t([2, 3], [1, 2, 3, 4, 5, 6])], { perm: ints([1, 0]) });
  assertTensor(out, [3, 2], [1, 4, 2, 5, 3, 6]);
});

Deno.test("transpose rank 3 with perm [2, 0, 1]", () => {
  // x[0, b, c] = 3b + c; out[i, 0, k] = x[0, k, i] = 3k + i.
  const out = run(transpose, [t([1, 2, 3], [0, 1, 2, 3, 4, 5])], { perm: ints([2, 0, 1]) });
  assertTensor(out, [3, 1, 2], [0, 3, 1, 4, 2, 5]);
});

Deno.test("transpose needs a permutation of the dims", () => {
  assertInferError(
    transpose,
    [ty([1, 2, 3, 4])],
    "attribute 'perm' must be a permutation of 0..3, got [0, 2, 2, 3]",
    { perm: ints([0, 2, 2, 3]) },
  );
  assertInferError(transpose, [ty([2, 3])], "attribute 'perm' must be a permutation of 0..1, got [0]", {
    perm: ints([0]),
  });
  assertInferError(transpose, [ty([2, 3])], "got [-1, 0]", { perm: ints([-1, 0]) });
});
