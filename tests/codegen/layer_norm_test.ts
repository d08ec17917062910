/** Layer-norm kernel names and params; the kernels' outputs are checked by cases/layer_norm.ts (kernels_test.ts). */

import assert from "node:assert/strict";
import { layerNormKernel } from "../../codegen/wasm/layer_norm.ts";

Deno.test("layer_norm names encode the specialization", () => {
  const fma = { relaxedSimd: true };
  assert.equal(
    layerNormKernel({ rows: 128, cols: 768, epsilon: 1e-12, residual: true }, fma).name,
    "add_layer_norm_128x768_eps1em12_fma",
  );
  const plain = layerNormKernel({ rows: 2, cols: 8, epsilon: 1e-5, residual: false, beta: false }, {
    relaxedSimd: false,
  });
  assert.equal(plain.name, "layer_norm_2x8_eps0p00001_nobeta");
  assert.deepEqual(plain.params, ["x", "gamma", "y"]);
  assert.deepEqual(layerNormKernel({ rows: 2, cols: 8, epsilon: 1e-5, residual: true }, fma).params, [
    "x",
    "residual",
    "gamma",
    "beta",
    "y",
  ]);
});
