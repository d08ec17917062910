import assert from "node:assert/strict";
import { seededInputs, seededWeights } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import { addLayerNorm } from "../../ir/ops/add_layer_norm.ts";
import { layerNorm } from "../../ir/ops/layer_norm.ts";
import { parse } from "../../ir/parse.ts";
import type { DType } from "../../ir/types.ts";
import { verify } from "../../ir/verifier.ts";
import { assertInferError, assertTensor, float, int, run, t, ty } from "./helpers.ts";

// x = [[1, 2], [3, 3]], residual = [[0, 2], [-1, -1]]: the sum is [[1, 4], [2, 2]].
// Row [1, 4]: mean 2.5, variance 2.25, std 1.5 -> [-1, 1]; row [2, 2]: variance 0 -> [0, 0].
const X = [1, 2, 3, 3];
const RESIDUAL = [0, 2, -1, -1];

Deno.test("add_layer_norm normalizes x + residual, then scales and shifts", () => {
  const out = run(addLayerNorm, [t([2, 2], X), t([2, 2], RESIDUAL), t([2], [2, 1]), t([2], [0.5, 0])]);
  assertTensor(out, [2, 2], [-1.5, 1, 0.5, 0]);
});

Deno.test("add_layer_norm without beta", () => {
  const out = run(addLayerNorm, [t([2, 2], X), t([2, 2], RESIDUAL), t([2], [2, 1])]);
  assertTensor(out, [2, 2], [-2, 1, 0, 0]);
});

Deno.test("add_layer_norm over the last two dims", () => {
  // [1, 2, 3, 4] + [1, 1, -1, -1] = [2, 3, 2, 3]: mean 2.5, variance 0.25, std 0.5 -> [-1, 1, -1, 1].
  const x = t([1, 2, 2], [1, 2, 3, 4]);
  const residual = t([1, 2, 2], [1, 1, -1, -1]);
  const gamma = t([2, 2], [1, 2, 3, 4]);
  for (const axis of [1, -2]) {
    const out = run(addLayerNorm, [x, residual, gamma], { axis: int(axis) });
    assertTensor(out, [1, 2, 2], [-1, 2, -3, 4]);
  }
});

Deno.test("add_layer_norm adds epsilon to the variance", () => {
  // [0, 4] + [1, -1] = [1, 3]: variance 1 + epsilon 3 = 4, std 2.
  const out = run(addLayerNorm, [t([2], [0, 4]), t([2], [1, -1]), t([2], [1, 1])], { epsilon: float(3) });
  assertTensor(out, [2], [-0.5, 0.5]);
});

Deno.test("add_layer_norm has layer_norm's attributes and defaults", () => {
  assert.deepEqual(Object.keys(addLayerNorm.attrs), Object.keys(layerNorm.attrs));
  for (const [name, spec] of Object.entries(addLayerNorm.attrs)) {
    assert.equal(spec.type, layerNorm.attrs[name].type, name);
    assert.equal(spec.default, layerNorm.attrs[name].default, name);
  }
  assert.deepEqual(addLayerNorm.operands.map((o) => [o.name, !!o.optional]), [
    ["x", false],
    ["residual", false],
    ["gamma", false],
    ["beta", true],
  ]);
});

Deno.test("add_layer_norm wants x and residual of one type, and layer_norm's gamma and beta", () => {
  assertInferError(
    addLayerNorm,
    [ty([2, 3]), ty([3]), ty([3])],
    "operands 'x' and 'residual' must have the same type, got tensor<2x3xf32> and tensor<3xf32>",
  );
  assertInferError(
    addLayerNorm,
    [ty([2, 3]), ty([2, 3], "f64"), ty([3])],
    "operands 'x' and 'residual' must have the same type, got tensor<2x3xf32> and tensor<2x3xf64>",
  );
  assertInferError(
    addLayerNorm,
    [ty([2, 3]), ty([2, 3]), ty([4])],
    "operand 'gamma' must have shape [3], got tensor<4xf32>",
  );
  assertInferError(
    addLayerNorm,
    [ty([1, 2, 2]), ty([1, 2, 2]), ty([2])],
    "operand 'gamma' must have shape [2, 2], got tensor<2xf32>",
    { axis: int(-2) },
  );
  assertInferError(
    addLayerNorm,
    [ty([2, 3]), ty([2, 3]), ty([3]), ty([2])],
    "operand 'beta' must have shape [3], got tensor<2xf32>",
  );
  assertInferError(addLayerNorm, [ty([2, 3]), ty([2, 3]), ty([3], "f16")], "dtypes differ: f32 and f16");
  assertInferError(addLayerNorm, [ty([2, 3]), ty([2, 3]), ty([3])], "axis 2 is out of range for rank 2", {
    axis: int(2),
  });
  assertInferError(addLayerNorm, [ty([3]), ty([3]), ty([3])], "attribute 'epsilon' must be >= 0", {
    epsilon: float(-1),
  });
  assertInferError(
    addLayerNorm,
    [ty([3], "i32"), ty([3], "i32"), ty([3], "i32")],
    "operand 'x' must be a float tensor, got tensor<3xi32>",
  );
});

/** A module with residual blocks fused (`@fused`) and as add then layer_norm (`@unfused`). */
function addNormChains(dtype: DType): string {
  const ty = (shape: string) => `tensor<${shape}x${dtype}>`;
  const params = `%x: ${ty("2x3x8")}, %r: ${ty("2x3x8")}`;
  const results = `(${ty("2x3x8")}, ${ty("2x3x8")}, ${ty("2x3x8")})`;
  return `module @chains {
  weights {
    @g : ${ty("8")}
    @b : ${ty("8")}
    @g2 : ${ty("3x8")}
  }

  func @fused(${params}) -> ${results} {
    %n = add_layer_norm %x, %r, @g, @b : ${ty("2x3x8")}
    %e = add_layer_norm %r, %x, @g {epsilon = 1e-5} : ${ty("2x3x8")}
    %a = add_layer_norm %x, %r, @g2, @g2 {axis = 1, epsilon = 0.5} : ${ty("2x3x8")}
    return %n, %e, %a
  }

  func @unfused(${params}) -> ${results} {
    %s = add %x, %r : ${ty("2x3x8")}
    %n = layer_norm %s, @g, @b : ${ty("2x3x8")}
    %s2 = add %r, %x : ${ty("2x3x8")}
    %e = layer_norm %s2, @g {epsilon = 1e-5} : ${ty("2x3x8")}
    %a = layer_norm %s, @g2, @g2 {axis = 1, epsilon = 0.5} : ${ty("2x3x8")}
    return %n, %e, %a
  }
}
`;
}

Deno.test("add_layer_norm equals add then layer_norm, bit for bit", () => {
  for (const dtype of ["f32", "f64", "f16", "bf16"] as const) {
    const { module: m, diagnostics } = parse(addNormChains(dtype), { file: `chains_${dtype}.sir` });
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(verify(m!), []);
    const weights = seededWeights(m!, 7);
    for (const seed of [1, 2, 3]) {
      const inputs = seededInputs(m!.func("fused")!, seed);
      const fused = interpret(m!, inputs, weights, { func: "fused" });
      const unfused = interpret(m!, inputs, weights, { func: "unfused" });
      fused.forEach((f, i) => assert.deepStrictEqual(f.data, unfused[i].data, `${dtype} result ${i}`));
    }
  }
});
