import assert from "node:assert/strict";
import { transpose } from "../../ir/ops/transpose.ts";
import { transposeKernel, type TransposeSpec } from "../../codegen/wasm/transpose.ts";
import { ints, run, t } from "../ops/helpers.ts";
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

/** Runs the kernel with 1..3 threads; the output must equal the op's exactly, and nothing past it written. */
async function check(spec: TransposeSpec): Promise<void> {
  const n = numel(spec.shape);
  // distinct values (the element index), so any misplaced element shows
  const x = Float32Array.from({ length: n }, (_, i) => i + 0.5);
  const want = run(transpose, [t(spec.shape, Array.from(x))], { perm: ints(spec.perm) }).data;
  for (const target of TARGETS) {
    const kernel = transposeKernel(spec, target);
    const h = await KernelHarness.create([kernel], {}, 3 * 8 * (n + 64) + (1 << 16));
    for (const threads of [1, 2, 3]) {
      const xa = h.put(x);
      const out = h.alloc(n + 4);
      h.run(kernel.name, [xa, out], threads);
      const got = h.read(out, n + 4);
      for (let i = 0; i < n; i++) {
        assert.equal(
          got[i],
          want[i],
          `${kernel.name} threads ${threads}: out[${i}] = ${got[i]}, want ${want[i]}`,
        );
      }
      for (let i = n; i < n + 4; i++) {
        assert.ok(Number.isNaN(got[i]), `${kernel.name} wrote past the end at ${i}`);
      }
    }
  }
}

Deno.test("transpose: BERT's head split and merge, and K transposed", async () => {
  await check({ shape: [1, 128, 12, 64], perm: [0, 2, 1, 3] });
  await check({ shape: [1, 12, 128, 64], perm: [0, 2, 1, 3] });
  await check({ shape: [12, 128, 64], perm: [0, 2, 1] });
  await check({ shape: [1, 12, 128, 64], perm: [0, 1, 3, 2] });
});

Deno.test("transpose: 4×4 tiles with ragged edges", async () => {
  for (const [p, q] of [[4, 4], [5, 4], [4, 5], [7, 9], [13, 6], [8, 12], [6, 7]]) {
    await check({ shape: [q, p], perm: [1, 0] });
    await check({ shape: [3, q, p], perm: [0, 2, 1] });
  }
  await check({ shape: [2, 3, 5, 6], perm: [0, 2, 3, 1] }); // NCHW -> NHWC
  await check({ shape: [2, 5, 6, 3], perm: [0, 3, 1, 2] }); // NHWC -> NCHW
});

Deno.test("transpose: copies, runs and the element-by-element path", async () => {
  await check({ shape: [37], perm: [0] });
  await check({ shape: [2, 1, 3], perm: [1, 0, 2] }); // only a size-1 dim moves: a copy
  await check({ shape: [5, 1], perm: [1, 0] });
  await check({ shape: [3, 2, 300], perm: [1, 0, 2] }); // long runs: memory.copy
  await check({ shape: [3, 2, 16], perm: [1, 0, 2] }); // 64-byte runs: v128 copies
  await check({ shape: [3, 2, 7], perm: [1, 0, 2] });
  await check({ shape: [3, 2, 2], perm: [2, 1, 0] });
  await check({ shape: [2, 3], perm: [1, 0] }); // narrower than a tile
  await check({ shape: [3, 2, 5, 2], perm: [3, 1, 2, 0] });
});

Deno.test("transpose: random shapes and permutations of rank 1..6", async () => {
  const next = rng(42);
  for (let trial = 0; trial < 40; trial++) {
    const rank = 1 + Math.floor(next() * 6);
    const shape = Array.from({ length: rank }, () => 1 + Math.floor(next() * (rank > 4 ? 4 : 7)));
    const perm = [...Array(rank).keys()];
    for (let i = rank - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    await check({ shape, perm });
  }
});

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
