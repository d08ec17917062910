import assert from "node:assert/strict";
import { erf } from "../../ir/ops/erf.ts";
import { erfFn } from "../../ir/ops/erf_fn.ts";
import { sqrt } from "../../ir/ops/sqrt.ts";
import { tanh } from "../../ir/ops/tanh.ts";
import { assertInferError, assertTensor, reader, run, t, ty } from "./helpers.ts";

Deno.test("tanh", () => {
  assertTensor(run(tanh, [t([3], [0, 0.5, -1])]), [3], [0, 0.4621172, -0.7615942]);
});

Deno.test("sqrt", () => {
  assertTensor(run(sqrt, [t([3], [4, 2, 0])]), [3], [2, 1.4142136, 0]);
});

Deno.test("erf", () => {
  assertTensor(run(erf, [t([3], [0.5, -1, 0])]), [3], [0.5204999, -0.8427008, 0]);
});

Deno.test("erf_fn matches table values to double precision", () => {
  const table: [number, number][] = [
    [0, 0],
    [0.1, 0.1124629160182849],
    [-0.3, -0.3286267594591274],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [2, 0.9953222650189527],
    [3, 0.9999779095030014],
    [4.5, 0.9999999998033839],
    [-30, -1],
  ];
  for (const [x, e] of table) {
    assert.ok(Math.abs(erfFn(x) - e) < 1e-14, `erf(${x}) = ${erfFn(x)}, expected ${e}`);
  }
  assert.ok(Number.isNaN(erfFn(NaN)));
});

Deno.test("unary ops need float dtypes", () => {
  assertInferError(tanh, [ty([2], "i32")], "operand 'x' must be a float tensor, got tensor<2xi32>");
  assert.deepEqual(sqrt.infer([ty([2, 3], "f16")], reader(sqrt), undefined), ty([2, 3], "f16"));
});
