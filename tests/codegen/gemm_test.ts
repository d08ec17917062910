/**
 * GEMM kernel names and the packed weight layout (codegen/pack.ts). The kernels' outputs are
 * checked by the case table in cases/gemm.ts (kernels_test.ts).
 */

import assert from "node:assert/strict";
import { packB, packedLength } from "../../codegen/pack.ts";
import { gemmKernel, type GemmSpec } from "../../codegen/wasm/gemm.ts";
import { rng } from "./kernel_runner.ts";

const randomArray = (n: number, rand: () => number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);

Deno.test("gemm kernel names encode the specialization", () => {
  const spec: GemmSpec = {
    batch: 1,
    M: 128,
    N: 768,
    K: 768,
    lda: 768,
    aBatchStride: 0,
    b: { layout: "packed" },
    ldc: 768,
    cBatchStride: 0,
    bias: true,
    activation: "gelu",
  };
  const k = gemmKernel(spec, { relaxedSimd: true });
  assert.equal(k.name, "gemm_b1_m128_n768_k768_lda768_packed_ldc768_bias_gelu_fma");
  assert.deepEqual(k.params, ["a", "b", "bias", "c"]);
  // GELU is inline (math.ts's snippet, 4 outputs interleaved), with FMA on relaxed SIMD: no helper call
  assert.deepEqual(k.uses, []);
  assert.doesNotMatch(k.wat, /\(call /);
  assert.match(k.wat, /relaxed_madd/);
  const other = gemmKernel({ ...spec, alpha: 0.1, bias: false, activation: "none" }, { relaxedSimd: false });
  assert.equal(other.name, "gemm_b1_m128_n768_k768_lda768_packed_ldc768_alpha0.1");
  assert.deepEqual(other.params, ["a", "b", "c"]);
  assert.deepEqual(other.uses, []);
  // Batch items stacked like rows of one matrix are that matrix: the same kernel.
  const stacked = { ...spec, batch: 4, M: 32, aBatchStride: 32 * 768, cBatchStride: 32 * 768 };
  assert.equal(gemmKernel(stacked, { relaxedSimd: true }).name, k.name);
  assert.throws(() => gemmKernel({ ...spec, lda: 700 }, { relaxedSimd: true }), /row stride/);
  assert.throws(() => gemmKernel({ ...spec, batch: 0 }, { relaxedSimd: true }), /bad batch/);
});

Deno.test("packB lays out panels of 8 columns, zero-padded", () => {
  const rand = rng(3);
  for (const [K, N] of [[1, 1], [3, 8], [5, 13], [7, 17]]) {
    const w = randomArray(K * N, rand);
    assert.equal(packedLength(K, N), K * Math.ceil(N / 8) * 8);
    for (const transposed of [false, true]) {
      const p = packB(w, K, N, transposed);
      assert.equal(p.length, packedLength(K, N));
      for (let k = 0; k < K; k++) {
        for (let n = 0; n < Math.ceil(N / 8) * 8; n++) {
          const want = n >= N ? 0 : transposed ? w[n * K + k] : w[k * N + n];
          assert.equal(p[Math.floor(n / 8) * K * 8 + k * 8 + (n % 8)], want, `K=${K} N=${N} (${k}, ${n})`);
        }
      }
    }
  }
});
