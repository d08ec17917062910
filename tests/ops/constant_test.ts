import { constant } from "../../ir/ops/constant.ts";
import { assertInferError, assertTensor, dense, run, ty } from "./helpers.ts";

Deno.test("constant from a literal", () => {
  const value = dense({ shape: [2, 2], values: [1, 2, 3, 4], float: true });
  assertTensor(run(constant, [], { value }, ty([2, 2])), [2, 2], [1, 2, 3, 4]);
});

Deno.test("constant from a splat", () => {
  const value = dense({ shape: [], values: [0.5], float: true });
  assertTensor(run(constant, [], { value }, ty([2, 3])), [2, 3], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
});

Deno.test("constant of an integer dtype", () => {
  const value = dense({ shape: [3], values: [1, -2, 3], float: false });
  const out = run(constant, [], { value }, ty([3], "i32"));
  assertTensor(out, [3], [1, -2, 3], 0);
});

Deno.test("constant checks the literal against the declared type", () => {
  const value = dense({ shape: [3], values: [1, 2, 3], float: true });
  assertInferError(constant, [], "needs a result type", { value });
  assertInferError(
    constant,
    [],
    "attribute 'value' has shape [3], result type is tensor<2x2xf32>",
    { value },
    ty([2, 2]),
  );
  const short = dense({ shape: [2], values: [1], float: true });
  assertInferError(constant, [], "attribute 'value' must have 2 values, got 1", { value: short }, ty([2]));
  const fractional = dense({ shape: [2], values: [1, 1.5], float: true });
  assertInferError(
    constant,
    [],
    "attribute 'value' must hold integers",
    { value: fractional },
    ty([2], "i64"),
  );
  const sparse = { shape: [3], dtype: "f32", sparse: { kind: "bsr", block: [1, 1], nnzBlocks: 1 } } as const;
  assertInferError(constant, [], "result type must be dense", { value }, sparse);
});
