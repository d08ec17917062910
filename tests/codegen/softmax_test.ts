/** Softmax kernel names; the kernels' outputs are checked by cases/softmax.ts (kernels_test.ts). */

import assert from "node:assert/strict";
import { softmaxKernel } from "../../codegen/wasm/softmax.ts";

Deno.test("softmax names encode the specialization", () => {
  const target = { relaxedSimd: false };
  assert.equal(softmaxKernel({ shape: [1, 12, 128, 128] }, target).name, "softmax_1x12x128x128");
  assert.equal(
    softmaxKernel({ shape: [1, 12, 128, 128], scale: 0.125, maskShape: [1, 1, 1, 128] }, {
      relaxedSimd: true,
    }).name,
    "softmax_1x12x128x128_s0p125_mask1x1x1x128_fma",
  );
  assert.throws(() => softmaxKernel({ shape: [2, 4], maskShape: [3] }, target), /broadcast/);
});
