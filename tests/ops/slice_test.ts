import { slice } from "../../ir/ops/slice.ts";
import { assertInferError, assertTensor, ints, run, t, ty } from "./helpers.ts";

const RANGE5 = t([5], [0, 1, 2, 3, 4]);
// 3x4 matrix with x[r, c] = 4r + c.
const M34 = t([3, 4], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);

Deno.test("slice the [CLS] row", () => {
  const h = t([1, 3, 2], [0, 1, 2, 3, 4, 5]);
  const out = run(slice, [h], { starts: ints([0]), ends: ints([1]), axes: ints([1]) });
  assertTensor(out, [1, 1, 2], [0, 1]);
});

Deno.test("slice with negative bounds", () => {
  assertTensor(run(slice, [RANGE5], { starts: ints([-3]), ends: ints([-1]) }), [2], [2, 3]);
});

Deno.test("slice clamps bounds to the dim", () => {
  assertTensor(run(slice, [RANGE5], { starts: ints([-10]), ends: ints([100]) }), [5], [0, 1, 2, 3, 4]);
  const stepped = run(slice, [RANGE5], { starts: ints([-10]), ends: ints([100]), steps: ints([2]) });
  assertTensor(stepped, [3], [0, 2, 4]);
  assertTensor(run(slice, [RANGE5], { starts: ints([4]), ends: ints([2]) }), [0], []);
});

Deno.test("slice defaults axes to 0..len(starts)-1", () => {
  assertTensor(run(slice, [M34], { starts: ints([1]), ends: ints([2]) }), [1, 4], [4, 5, 6, 7]);
});

Deno.test("slice along listed axes in any order, with steps", () => {
  const box = run(slice, [M34], { starts: ints([1, 0]), ends: ints([3, 2]), axes: ints([1, 0]) });
  assertTensor(box, [2, 2], [1, 2, 5, 6]);
  const stepped = run(slice, [M34], {
    starts: ints([0, 1]),
    ends: ints([4, 3]),
    axes: ints([1, 0]),
    steps: ints([2, 1]),
  });
  assertTensor(stepped, [2, 2], [4, 6, 8, 10]);
});

Deno.test("slice with a negative axis", () => {
  const out = run(slice, [M34], { starts: ints([-1]), ends: ints([4]), axes: ints([-1]) });
  assertTensor(out, [3, 1], [3, 7, 11]);
});

Deno.test("slice rejects bad attribute lists", () => {
  const x = [ty([3, 4])];
  assertInferError(
    slice,
    x,
    "attribute 'ends' must have as many entries as 'starts' (2), got [1]",
    { starts: ints([0, 0]), ends: ints([1]) },
  );
  assertInferError(slice, x, "attribute 'axes' must have as many entries", {
    starts: ints([0]),
    ends: ints([1]),
    axes: ints([]),
  });
  assertInferError(slice, x, "attribute 'axes' must be distinct, got [1, -1]", {
    starts: ints([0, 0]),
    ends: ints([1, 1]),
    axes: ints([1, -1]),
  });
  assertInferError(slice, x, "attribute 'steps' must be positive, got [0]", {
    starts: ints([0]),
    ends: ints([1]),
    steps: ints([0]),
  });
  assertInferError(slice, x, "attribute 'axes' entry 2 is out of range for rank 2", {
    starts: ints([0]),
    ends: ints([1]),
    axes: ints([2]),
  });
});
