/**
 * Element-wise kernel names, params and helper use; the kernels' outputs are checked by
 * cases/elementwise.ts (kernels_test.ts).
 */

import assert from "node:assert/strict";
import { type ElementwiseExpr, elementwiseKernel } from "../../codegen/wasm/elementwise.ts";

const x = (input: number): ElementwiseExpr => ({ input });
const c = (constant: number): ElementwiseExpr => ({ constant });
const op = (name: string, ...args: ElementwiseExpr[]) => ({ op: name, args }) as ElementwiseExpr;

Deno.test("elementwise names encode the specialization", () => {
  const t = { relaxedSimd: false };
  const spec = {
    shape: [1, 128, 768],
    inputs: [{ shape: [1, 128, 768] }, { shape: [768] }],
    expr: op("add", x(0), x(1)),
  };
  const k = elementwiseKernel(spec, t);
  assert.match(k.name, /^eltwise_add_1x128x768_[0-9a-f]{8}$/);
  assert.deepEqual(k.params, ["in0", "in1", "out"]);
  assert.equal(elementwiseKernel(structuredClone(spec), { relaxedSimd: true }).wat, k.wat);
  const other = [
    { ...spec, inputs: [{ shape: [1, 128, 768] }, { shape: [1, 128, 768] }] },
    { ...spec, expr: op("add", x(1), x(0)) },
    { ...spec, expr: op("sub", x(0), x(1)) },
    { ...spec, expr: op("add", x(0), c(1)) },
  ];
  for (const o of other) assert.notEqual(elementwiseKernel(o, t).name, k.name);
  const gelu = { ...spec, expr: op("gelu", op("add", x(0), x(1))) };
  assert.deepEqual(elementwiseKernel(gelu, t).uses, []); // inlined
  assert.match(
    elementwiseKernel(gelu, { relaxedSimd: true }).name,
    /^eltwise_gelu_add_1x128x768_[0-9a-f]{8}_fma$/,
  );
  assert.deepEqual(elementwiseKernel({ ...spec, expr: op("pow", x(0), x(1)) }, t).uses, ["pow_f32x4"]);
  assert.throws(() => elementwiseKernel({ ...spec, expr: x(2) }, t), /input 2/);
  assert.throws(
    () => elementwiseKernel({ ...spec, inputs: [{ shape: [128, 768] }, { shape: [3] }] }, t),
    /broadcast/,
  );
});
