import { concat } from "../../ir/ops/concat.ts";
import { assertInferError, assertTensor, int, run, t, ty } from "./helpers.ts";

Deno.test("concat along the last axis", () => {
  const out = run(concat, [t([2, 1], [1, 2]), t([2, 2], [3, 4, 5, 6])], { axis: int(1) });
  assertTensor(out, [2, 3], [1, 3, 4, 2, 5, 6]);
});

Deno.test("concat along a negative axis", () => {
  const out = run(concat, [t([1, 2], [1, 2]), t([2, 2], [3, 4, 5, 6])], { axis: int(-2) });
  assertTensor(out, [3, 2], [1, 2, 3, 4, 5, 6]);
});

Deno.test("concat of three inputs", () => {
  const out = run(concat, [t([1], [1]), t([2], [2, 3]), t([1], [4])], { axis: int(0) });
  assertTensor(out, [4], [1, 2, 3, 4]);
});

Deno.test("concat rejects mismatched ranks, dims and dtypes", () => {
  const axis1 = { axis: int(1) };
  assertInferError(
    concat,
    [ty([2, 1]), ty([3, 1])],
    "operand 'inputs' #1 must match #0 in all dims but 1, got tensor<3x1xf32> and tensor<2x1xf32>",
    axis1,
  );
  assertInferError(concat, [ty([2, 1]), ty([2, 1]), ty([2])], "operand 'inputs' #2 must match #0", axis1);
  assertInferError(concat, [ty([2, 1]), ty([2, 1], "i32")], "dtypes differ: f32 and i32", axis1);
  assertInferError(concat, [ty([2, 1])], "axis 2 is out of range for rank 2", { axis: int(2) });
});
