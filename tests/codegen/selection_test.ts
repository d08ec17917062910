/**
 * `gather` by compile-time indices into a run-time tensor (the pooler's `hidden[:, 0]` as ONNX
 * exporters write it) compiles like `slice`: a view when it picks a contiguous run (no step),
 * a strided copy when the picked elements have constant strides (a reversal too), a compile
 * error otherwise. Each compiled module runs and matches the interpreter exactly.
 */

import assert from "node:assert/strict";
import { compileModule } from "../../codegen/compile.ts";
import { interpret, loadCompiled, memoryStore, parse, Tensor } from "../../mod.ts";

/** A module returning `gather %x, <indices> {axis}` (plus 1, so the result is not the input itself). */
function gatherModule(shape: number[], indices: string, indexType: string, axis: number, out: number[]) {
  const t = (s: number[]) => `tensor<${s.join("x")}xf32>`;
  const text = `module @m {
  func @main(%x: ${t(shape)}) -> (${t(out)}) {
    %i = constant {value = dense<${indices}>} : tensor<${indexType}>
    %g = gather %x, %i {axis = ${axis}} : ${t(out)}
    %one = constant {value = dense<1.0>} : tensor<f32>
    %y = add %g, %one : ${t(out)}
    return %y
  }
}
`;
  const parsed = parse(text, { file: "g.sir" });
  assert.deepEqual(parsed.diagnostics, []);
  return parsed.module!;
}

/** Compiles and runs the module on 0, 1, 2, ... and checks it against the interpreter; returns the plan's step values. */
async function check(m: ReturnType<typeof gatherModule>, shape: number[]): Promise<string[]> {
  const compiled = await compileModule(m, memoryStore(new Map()));
  const x = Tensor.from(shape, "f32", Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i));
  const [want] = interpret(m, [x], memoryStore(new Map()));
  const model = await loadCompiled(compiled, { threads: 2 });
  try {
    const got = model.run({ x: x.data as Float32Array });
    assert.deepEqual(Array.from(Object.values(got)[0]), Array.from(want.data));
  } finally {
    model.close();
  }
  return compiled.plan.buckets[0].steps.map((s) => s.value);
}

Deno.test("gather of the first token at batch 1 is a view: no step computes it", async () => {
  const m = gatherModule([1, 5, 4], "0", "i64", 1, [1, 4]);
  assert.deepEqual(await check(m, [1, 5, 4]), ["%y"]);
  const last = gatherModule([1, 5, 4], "-1", "i32", 1, [1, 4]);
  assert.deepEqual(await check(last, [1, 5, 4]), ["%y"]);
});

Deno.test("gather of one token at batch 3, of every other token, or in reverse, is a strided copy", async () => {
  const m = gatherModule([3, 5, 4], "2", "i64", 1, [3, 4]);
  assert.deepEqual(await check(m, [3, 5, 4]), ["%g", "%y"]);
  const everyOther = gatherModule([2, 5, 4], "[0, 2, 4]", "3xi64", 1, [2, 3, 4]);
  assert.deepEqual(await check(everyOther, [2, 5, 4]), ["%g", "%y"]);
  const tokensReversed = gatherModule([2, 3, 4], "[2, 1, 0]", "3xi64", 1, [2, 3, 4]);
  assert.deepEqual(await check(tokensReversed, [2, 3, 4]), ["%g", "%y"]);
  const featuresReversed = gatherModule([2, 3, 4], "[3, 2, 1, 0]", "4xi64", 2, [2, 3, 4]);
  assert.deepEqual(await check(featuresReversed, [2, 3, 4]), ["%g", "%y"]);
});

Deno.test("gather picking elements in no strided pattern is a compile error naming it", async () => {
  const m = gatherModule([1, 5, 4], "[0, 2, 3]", "3xi64", 1, [1, 3, 4]);
  await assert.rejects(
    () => compileModule(m, memoryStore(new Map())),
    /g\.sir:4:5: error: gather \(%g\) picks elements in no strided pattern/,
  );
});
