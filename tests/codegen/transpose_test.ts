/** Transpose kernel names and refused perms; the kernels' outputs are checked by cases/transpose.ts (kernels_test.ts). */

import assert from "node:assert/strict";
import { transposeKernel } from "../../codegen/wasm/transpose.ts";

Deno.test("transpose names encode the specialization; bad perms are refused", () => {
  const target = { relaxedSimd: false };
  const k = transposeKernel({ shape: [1, 128, 12, 64], perm: [0, 2, 1, 3] }, target);
  assert.equal(k.name, "transpose_1x128x12x64_p0213");
  assert.deepEqual(k.params, ["x", "out"]);
  assert.equal(
    transposeKernel({ shape: [1, 128, 12, 64], perm: [0, 2, 1, 3] }, { relaxedSimd: true }).wat,
    k.wat,
  );
  assert.throws(() => transposeKernel({ shape: [2, 3], perm: [0, 0] }, target), /bad transpose/);
  assert.throws(() => transposeKernel({ shape: [2, 3], perm: [1] }, target), /bad transpose/);
});
