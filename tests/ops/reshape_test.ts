import assert from "node:assert/strict";
import { reshape } from "../../ir/ops/reshape.ts";
import { assertInferError, assertTensor, reader, run, t, ty } from "./helpers.ts";

Deno.test("reshape keeps the row-major order", () => {
  const out = run(reshape, [t([2, 3], [1, 2, 3, 4, 5, 6])], {}, ty([3, 1, 2]));
  assertTensor(out, [3, 1, 2], [1, 2, 3, 4, 5, 6]);
});

Deno.test("reshape returns the declared type", () => {
  const declared = ty([6], "i32");
  assert.equal(reshape.infer([ty([2, 3], "i32")], reader(reshape), declared), declared);
});

Deno.test("reshape needs a declared dense type of the same size and dtype", () => {
  assertInferError(reshape, [ty([2, 3])], "needs a result type");
  assertInferError(
    reshape,
    [ty([2, 3])],
    "element counts differ: tensor<2x3xf32> has 6, tensor<4xf32> has 4",
    {},
    ty([4]),
  );
  assertInferError(reshape, [ty([2, 3])], "dtypes differ: f32 and i32", {}, ty([6], "i32"));
  const sparse = {
    shape: [2, 3],
    dtype: "f32",
    sparse: { kind: "bsr", block: [1, 1], nnzBlocks: 6 },
  } as const;
  assertInferError(reshape, [ty([2, 3])], "result type must be dense", {}, sparse);
});
