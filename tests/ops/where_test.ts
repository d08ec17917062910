import { where } from "../../ir/ops/where.ts";
import { assertInferError, assertTensor, run, t, ty } from "./helpers.ts";

Deno.test("where picks x for non-zero cond, broadcasting all three", () => {
  const out = run(where, [t([2, 1], [1, 0], "bool"), t([2, 2], [1, 2, 3, 4]), t([], [-1])]);
  assertTensor(out, [2, 2], [1, 2, -1, -1]);
});

Deno.test("where with a u8 cond broadcast over rows", () => {
  const out = run(where, [t([2], [1, 0], "u8"), t([2, 2], [1, 2, 3, 4]), t([2, 2], [5, 6, 7, 8])]);
  assertTensor(out, [2, 2], [1, 6, 3, 8]);
});

Deno.test("where rejects bad cond, dtypes and shapes", () => {
  assertInferError(
    where,
    [ty([2]), ty([2]), ty([2])],
    "operand 'cond' must be bool or u8, got tensor<2xf32>",
  );
  assertInferError(where, [ty([2], "bool"), ty([2]), ty([2], "i32")], "dtypes differ: f32 and i32");
  assertInferError(where, [ty([2], "bool"), ty([2]), ty([3])], "shapes [2] and [3] do not broadcast");
});
