import { cast } from "../../ir/ops/cast.ts";
import { assertInferError, assertTensor, run, t, ty } from "./helpers.ts";

Deno.test("cast float to integers truncates toward zero", () => {
  const x = t([4], [1.7, -1.7, 2.5, -0.5]);
  assertTensor(run(cast, [x], {}, ty([4], "i32")), [4], [1, -1, 2, 0], 0);
  assertTensor(run(cast, [x], {}, ty([4], "i64")), [4], [1, -1, 2, 0], 0);
  assertTensor(run(cast, [x], {}, ty([4], "i8")), [4], [1, -1, 2, 0], 0);
});

Deno.test("cast to bool gives 1 for non-zero; to u8 wraps as ONNX Cast does", () => {
  assertTensor(run(cast, [t([4], [0, 0.5, -2, 0])], {}, ty([4], "bool")), [4], [0, 1, 1, 0], 0);
  // 300 mod 256 = 44, -1 mod 256 = 255.
  assertTensor(run(cast, [t([4], [0, 200, 300, -1], "i32")], {}, ty([4], "u8")), [4], [0, 200, 44, 255], 0);
});

Deno.test("cast integers to float", () => {
  assertTensor(run(cast, [t([2], [1, -2], "i32")], {}, ty([2], "f32")), [2], [1, -2], 0);
});

Deno.test("cast needs a declared type of the same shape", () => {
  assertInferError(cast, [ty([2])], "needs a result type");
  assertInferError(cast, [ty([2])], "shapes differ: tensor<2xf32> cast to tensor<3xi32>", {}, ty([3], "i32"));
});
