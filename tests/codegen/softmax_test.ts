import assert from "node:assert/strict";
import { softmax } from "../../ir/ops/softmax.ts";
import type { KernelTarget } from "../../codegen/wasm/kernel.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { softmaxKernel, type SoftmaxSpec } from "../../codegen/wasm/softmax.ts";
import { run, t } from "../ops/helpers.ts";
import { KernelHarness, TARGETS } from "./wasm_harness.ts";

/** A seeded uniform generator on [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let r = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Random data: values in [-4, 4). With `last`, a mask: some -10000 (masked) entries, never at
 * index 0 of a row of `last`, so no row is masked whole (f32 would lose z's precision there).
 */
function data(n: number, next: () => number, last = 0): Float32Array {
  return Float32Array.from(
    { length: n },
    (_, i) => last && i % last && next() < 0.3 ? -10000 : (next() - 0.5) * 8,
  );
}

/** The reference: the softmax op on scale·x (rounded to f32) and the mask. */
function reference(spec: SoftmaxSpec, x: Float32Array, mask?: Float32Array): Float32Array {
  const scaled = Array.from(x, (v) => v * (spec.scale ?? 1));
  const inputs = [t(spec.shape, scaled)];
  if (mask) inputs.push(t(spec.maskShape!, Array.from(mask)));
  return run(softmax, inputs).data as Float32Array;
}

/** Runs the kernel for `spec` on random data with 1..3 threads on `target`; checks y and the NaN guard. */
async function check(spec: SoftmaxSpec, target: KernelTarget, seed: number, inPlace = false): Promise<void> {
  const next = rng(seed);
  const kernel = softmaxKernel(spec, target);
  const n = numel(spec.shape);
  const x = data(n, next);
  const mask = spec.maskShape ? data(numel(spec.maskShape), next, spec.maskShape.at(-1) ?? 1) : undefined;
  const want = reference(spec, x, mask);
  const h = await KernelHarness.create([kernel], WASM_HELPERS, 8 << 20);
  for (const threads of [1, 2, 3]) {
    const xa = h.put(x);
    const ma = mask ? [h.put(mask)] : [];
    const ya = inPlace ? xa : h.alloc(n + 4);
    h.run(kernel.name, [xa, ...ma, ya], threads);
    const got = h.read(ya, n + 4);
    for (let i = 0; i < n; i++) {
      assert.ok(
        Math.abs(got[i] - want[i]) <= 1e-5,
        `${kernel.name} threads ${threads} y[${i}] = ${got[i]}, want ${want[i]}`,
      );
    }
    if (!inPlace) {
      for (let i = n; i < n + 4; i++) {
        assert.ok(Number.isNaN(got[i]), `${kernel.name} wrote past the end at ${i}`);
      }
    }
  }
}

const CASES: SoftmaxSpec[] = [
  { shape: [1] },
  { shape: [3] },
  { shape: [7] },
  { shape: [13], scale: 0.5 },
  { shape: [4, 16] },
  { shape: [5, 33], scale: -0.25 },
  { shape: [2, 3, 17], maskShape: [17] },
  { shape: [2, 3, 5], maskShape: [2, 1, 1] },
  { shape: [2, 3, 5], maskShape: [3, 1] },
  { shape: [2, 3, 6], maskShape: [] },
  { shape: [2, 3, 6], maskShape: [1, 1, 6] },
  { shape: [1, 4, 9, 9], maskShape: [1, 1, 1, 9], scale: 0.125 },
  { shape: [1, 4, 8, 8], maskShape: [1, 1, 8, 8] },
  { shape: [1, 4, 6, 10], maskShape: [1, 4, 1, 10], scale: 2 },
  { shape: [2, 3, 4, 5], maskShape: [2, 1, 4, 1] },
  { shape: [3, 64], maskShape: [3, 64] },
];

for (const target of TARGETS) {
  Deno.test(`softmax kernels match the op (relaxedSimd ${target.relaxedSimd})`, async () => {
    for (const [i, spec] of CASES.entries()) await check(spec, target, 100 + i);
  });

  Deno.test(`softmax on random shapes (relaxedSimd ${target.relaxedSimd})`, async () => {
    const next = rng(7);
    for (let i = 0; i < 12; i++) {
      const rank = 1 + Math.floor(next() * 4);
      const shape = Array.from(
        { length: rank },
        (_, d) => 1 + Math.floor(next() * (d === rank - 1 ? 40 : 4)),
      );
      const maskShape = next() < 0.3
        ? undefined
        : shape.slice(Math.floor(next() * rank)).map((n) => next() < 0.5 ? 1 : n);
      await check({ shape, maskShape, scale: next() < 0.5 ? undefined : 0.3 }, target, 200 + i);
    }
  });

  Deno.test(`softmax in place (relaxedSimd ${target.relaxedSimd})`, async () => {
    await check({ shape: [3, 13], maskShape: [13] }, target, 5, true);
    await check({ shape: [2, 32], scale: 0.125 }, target, 6, true);
  });
}

Deno.test("softmax at BERT-base size: [1,12,128,128] with a [1,1,1,128] mask", async () => {
  await check(
    { shape: [1, 12, 128, 128], maskShape: [1, 1, 1, 128], scale: 0.125 },
    { relaxedSimd: true },
    9,
  );
});

Deno.test("softmax of fully masked and huge rows stays finite", async () => {
  const spec = { shape: [3, 6], maskShape: [3, 6] };
  const kernel = softmaxKernel(spec, { relaxedSimd: false });
  const h = await KernelHarness.create([kernel], WASM_HELPERS, 1 << 20);
  const x = h.put(Float32Array.from([1, 2, 3, 4, 5, 6, 1e30, -1e30, 0, 0, 0, 0, 80, 90, 100, -100, 0, 1]));
  const mask = new Float32Array(18).fill(-10000);
  mask.fill(0, 0, 6);
  const y = h.alloc(18);
  h.run(kernel.name, [x, h.put(mask), y]);
  const got = h.read(y, 18);
  for (let i = 0; i < 6; i++) {
    assert.ok(Math.abs(got[i] - [0.0043, 0.0116, 0.0315, 0.0858, 0.2331, 0.6337][i]) < 1e-3);
  }
  assert.deepEqual(Array.from(got.slice(6, 12)), [1, 0, 0, 0, 0, 0]);
  assert.ok(Math.abs(got[14] - 1) < 1e-4 && got.every(Number.isFinite));
});

Deno.test("a mask constant along rows cancels exactly, -10000 included", async () => {
  const spec = { shape: [2, 3, 5], maskShape: [2, 3, 1] };
  const kernel = softmaxKernel(spec, { relaxedSimd: false });
  const h = await KernelHarness.create([kernel], WASM_HELPERS, 1 << 20);
  const next = rng(3);
  const x = data(30, next);
  const mask = Float32Array.from([-10000, 0, 5, -10000, 1e6, -3]);
  const y = h.alloc(30);
  h.run(kernel.name, [h.put(x), h.put(mask), y]);
  const got = h.read(y, 30);
  const want = reference(spec, x, mask);
  for (let i = 0; i < 30; i++) {
    assert.ok(Math.abs(got[i] - want[i]) < 1e-6, `y[${i}] = ${got[i]}, want ${want[i]}`);
  }
});

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
