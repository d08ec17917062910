import { layerNorm } from "../../ir/ops/layer_norm.ts";
import { assertInferError, assertTensor, float, int, run, t, ty } from "./helpers.ts";

Deno.test("layer_norm over the last axis with gamma and beta", () => {
  // Row [1, 3]: mean 2, variance 1 -> [-1, 1]; row [2, 2]: variance 0 -> [0, 0].
  const out = run(layerNorm, [t([2, 2], [1, 3, 2, 2]), t([2], [2, 1]), t([2], [0.5, 0])]);
  assertTensor(out, [2, 2], [-1.5, 1, 0.5, 0]);
});

Deno.test("layer_norm without beta", () => {
  assertTensor(run(layerNorm, [t([2, 2], [1, 3, 2, 2]), t([2], [2, 1])]), [2, 2], [-2, 1, 0, 0]);
});

Deno.test("layer_norm over the last two dims", () => {
  // [1, 2, 3, 4]: mean 2.5, variance 1.25, std 1.1180340.
  const x = t([1, 2, 2], [1, 2, 3, 4]);
  const gamma = t([2, 2], [1, 2, 1, 2]);
  for (const axis of [1, -2]) {
    const out = run(layerNorm, [x, gamma], { axis: int(axis) });
    assertTensor(out, [1, 2, 2], [-1.3416408, -0.8944272, 0.4472136, 2.6832816]);
  }
});

Deno.test("layer_norm adds epsilon to the variance", () => {
  // Variance 1 + epsilon 3 = 4.
  const out = run(layerNorm, [t([2], [1, 3]), t([2], [1, 1])], { epsilon: float(3) });
  assertTensor(out, [2], [-0.5, 0.5]);
});

Deno.test("layer_norm rejects bad gamma, beta, axis and dtypes", () => {
  assertInferError(
    layerNorm,
    [ty([1, 2, 2]), ty([2])],
    "operand 'gamma' must have shape [2, 2], got tensor<2xf32>",
    { axis: int(-2) },
  );
  assertInferError(
    layerNorm,
    [ty([2, 3]), ty([3]), ty([2])],
    "operand 'beta' must have shape [3], got tensor<2xf32>",
  );
  assertInferError(layerNorm, [ty([2, 3]), ty([3]), ty([3], "f64")], "dtypes differ: f32 and f64");
  assertInferError(layerNorm, [ty([2, 3]), ty([3])], "axis -3 is out of range for rank 2", { axis: int(-3) });
  assertInferError(layerNorm, [ty([3], "i32"), ty([3], "i32")], "operand 'x' must be a float tensor");
  assertInferError(layerNorm, [ty([3]), ty([3])], "attribute 'epsilon' must be >= 0", { epsilon: float(-1) });
});
