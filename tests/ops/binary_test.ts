import assert from "node:assert/strict";
import { add } from "../../ir/ops/add.ts";
import { div } from "../../ir/ops/div.ts";
import { mul } from "../../ir/ops/mul.ts";
import { pow } from "../../ir/ops/pow.ts";
import { sub } from "../../ir/ops/sub.ts";
import { assertInferError, assertTensor, reader, run, t, ty } from "./helpers.ts";

Deno.test("add broadcasts a row over a matrix", () => {
  const out = run(add, [t([2, 3], [1, 2, 3, 4, 5, 6]), t([3], [10, 20, 30])]);
  assertTensor(out, [2, 3], [11, 22, 33, 14, 25, 36]);
});

Deno.test("sub broadcasts a column against a row", () => {
  const out = run(sub, [t([2, 1], [10, 20]), t([3], [1, 2, 3])]);
  assertTensor(out, [2, 3], [9, 8, 7, 19, 18, 17]);
});

Deno.test("mul by a scalar", () => {
  assertTensor(run(mul, [t([2], [1.5, -2]), t([], [4])]), [2], [6, -8]);
});

Deno.test("div on floats", () => {
  assertTensor(run(div, [t([3], [1, -3, 7]), t([1], [2])]), [3], [0.5, -1.5, 3.5]);
});

Deno.test("div on integers truncates toward zero", () => {
  for (const dtype of ["i32", "i64"] as const) {
    const out = run(div, [t([4], [-7, 7, 8, -8], dtype), t([4], [2, -2, 3, 3], dtype)]);
    assert.equal(out.dtype, dtype);
    assertTensor(out, [4], [-3, -3, 2, -2], 0);
  }
});

Deno.test("pow on floats and integers", () => {
  assertTensor(run(pow, [t([3], [2, 4, 9]), t([], [0.5])]), [3], [1.4142136, 2, 3]);
  assertTensor(run(pow, [t([2], [2, 3], "i32"), t([2], [3, -1], "i32")]), [2], [8, 0], 0);
});

Deno.test("binary ops reject mixed dtypes, non-broadcasting shapes and bool", () => {
  assertInferError(add, [ty([2]), ty([2], "i32")], "dtypes differ: f32 and i32");
  assertInferError(mul, [ty([2, 3]), ty([2])], "shapes [2, 3] and [2] do not broadcast");
  assertInferError(
    sub,
    [ty([2], "bool"), ty([2], "bool")],
    "operand 'lhs' must be numeric, got tensor<2xbool>",
  );
});

Deno.test("binary ops infer the broadcast shape", () => {
  assert.deepEqual(pow.infer([ty([4, 1, 3]), ty([2, 1])], reader(pow), undefined), ty([4, 2, 3]));
});
