import assert from "node:assert/strict";
import { gather } from "../../ir/ops/gather.ts";
import { assertInferError, assertTensor, int, run, t, ty } from "./helpers.ts";

const TABLE = t([3, 2], [1, 2, 3, 4, 5, 6]);

Deno.test("gather rows, with a negative index", () => {
  assertTensor(run(gather, [TABLE, t([2], [0, -1], "i32")]), [2, 2], [1, 2, 5, 6]);
});

Deno.test("gather with rank-2 i64 indices", () => {
  assertTensor(run(gather, [TABLE, t([2, 1], [1, 2], "i64")]), [2, 1, 2], [3, 4, 5, 6]);
});

Deno.test("gather with a scalar index", () => {
  assertTensor(run(gather, [TABLE, t([], [1], "i32")]), [2], [3, 4]);
});

Deno.test("gather along axis 1 and -1", () => {
  const table = t([2, 3], [1, 2, 3, 4, 5, 6]);
  for (const axis of [1, -1]) {
    assertTensor(run(gather, [table, t([2], [2, 0], "i32")], { axis: int(axis) }), [2, 2], [3, 1, 6, 4]);
  }
});

Deno.test("gather throws a RangeError for an out-of-range index", () => {
  assert.throws(() => run(gather, [TABLE, t([2], [0, 3], "i32")]), (e: unknown) => {
    assert.ok(e instanceof RangeError);
    assert.match(e.message, /index 3 .*out of range/);
    return true;
  });
  assert.throws(() => run(gather, [TABLE, t([1], [-4], "i64")]), /index -4 /);
});

Deno.test("gather rejects bad indices and axes", () => {
  assertInferError(gather, [ty([3, 2]), ty([2])], "operand 'indices' must be i32 or i64, got tensor<2xf32>");
  assertInferError(gather, [ty([3, 2]), ty([2], "i32")], "axis 2 is out of range for rank 2", {
    axis: int(2),
  });
  assertInferError(gather, [ty([]), ty([2], "i32")], "operand 'table' must be rank >= 1");
});
