import { softmax } from "../../ir/ops/softmax.ts";
import { assertInferError, assertTensor, int, run, t, ty } from "./helpers.ts";

Deno.test("softmax along the last axis", () => {
  const out = run(softmax, [t([1, 3], [1, 2, 3])]);
  assertTensor(out, [1, 3], [0.09003057, 0.24472847, 0.66524096]);
});

Deno.test("softmax is stable for large inputs", () => {
  assertTensor(run(softmax, [t([2], [1000, 1000])]), [2], [0.5, 0.5]);
});

Deno.test("softmax with an additive mask of -10000", () => {
  const out = run(softmax, [t([3], [1, 2, 3]), t([3], [0, 0, -10000])]);
  assertTensor(out, [3], [0.26894142, 0.73105858, 0]);
});

Deno.test("softmax with a mask broadcast over rows", () => {
  // Row 0: softmax(1, -9998, 3) = [1/(1+e²), 0, e²/(1+e²)]; row 1: softmax(0, -10000, 0).
  const out = run(softmax, [t([2, 3], [1, 2, 3, 0, 0, 0]), t([3], [0, -10000, 0])]);
  assertTensor(out, [2, 3], [0.11920292, 0, 0.88079708, 0.5, 0, 0.5]);
});

Deno.test("softmax along axis 0 and -2", () => {
  // Columns [0, 0] and [1, 3].
  for (const axis of [0, -2]) {
    const out = run(softmax, [t([2, 2], [0, 1, 0, 3])], { axis: int(axis) });
    assertTensor(out, [2, 2], [0.5, 0.11920292, 0.5, 0.88079708]);
  }
});

Deno.test("softmax rejects bad masks, axes and dtypes", () => {
  assertInferError(softmax, [ty([2, 2]), ty([3])], "shapes [2, 2] and [3] do not broadcast");
  assertInferError(
    softmax,
    [ty([2]), ty([2, 2])],
    "operand 'mask' must broadcast to x's shape, got tensor<2x2xf32> for tensor<2xf32>",
  );
  assertInferError(softmax, [ty([2]), ty([2], "f16")], "dtypes differ: f32 and f16");
  assertInferError(softmax, [ty([2, 2])], "axis 2 is out of range for rank 2", { axis: int(2) });
  assertInferError(softmax, [ty([2], "i32")], "operand 'x' must be a float tensor");
});
