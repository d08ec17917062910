/**
 * Block-sparse dense kernels (codegen/wasm/bsr.ts) and their weight packing (codegen/bsr_pack.ts)
 * against an f64 reference of y = act(x · Wᵀ + bias), on seeded random patterns of every
 * supported block shape, ragged edges, empty block rows and empty matrices, every variant from
 * bsrVariants, both targets and 1-3 threads.
 */

import assert from "node:assert/strict";
import { packBsrData, packBsrIndex, unpackBsrData } from "../../codegen/bsr_pack.ts";
import {
  bsrKernel,
  type BsrSpec,
  type BsrVariant,
  bsrVariants,
  defaultBsrVariant,
  SPECIALIZE_BUDGET_BYTES,
  variantKey,
} from "../../codegen/wasm/bsr.ts";
import type { WasmKernel } from "../../codegen/wasm/kernel.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { erfFn } from "../../ir/ops/erf_fn.ts";
import { KernelHarness, TARGETS } from "./wasm_harness.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Case {
  spec: BsrSpec;
  data: Float32Array;
  x: Float32Array;
  bias: Float32Array;
}

/**
 * A random BSR weight over [N, K] in R x C blocks; every third block row is empty. Padding outside
 * W is NaN. `skewed`: the first quarter of the block rows is full, the rest at `density`.
 */
function makeCase(
  seed: number,
  M: number,
  N: number,
  K: number,
  block: [number, number],
  density: number,
  bias: boolean,
  activation: BsrSpec["activation"],
  skewed = false,
): Case {
  const rand = rng(seed);
  const [R, C] = block;
  const nbr = Math.ceil(N / R), nbc = Math.ceil(K / C);
  const indptr = new Int32Array(nbr + 1);
  const indices: number[] = [];
  for (let br = 0; br < nbr; br++) {
    if (br % 3 !== 1 || nbr === 1) {
      const d = skewed && br < nbr / 4 ? 1 : density;
      for (let bc = 0; bc < nbc; bc++) if (rand() < d) indices.push(bc);
    }
    indptr[br + 1] = indices.length;
  }
  const data = new Float32Array(indices.length * R * C);
  for (let br = 0; br < nbr; br++) {
    for (let b = indptr[br]; b < indptr[br + 1]; b++) {
      for (let r = 0; r < R; r++) {
        for (let c = 0; c < C; c++) {
          const inside = br * R + r < N && indices[b] * C + c < K;
          data[(b * R + r) * C + c] = inside ? rand() * 2 - 1 : NaN;
        }
      }
    }
  }
  return {
    spec: { M, N, K, block, indptr, indices: Int32Array.from(indices), bias, activation },
    data,
    x: Float32Array.from({ length: M * K }, () => rand() * 2 - 1),
    bias: Float32Array.from({ length: N }, () => rand() * 2 - 1),
  };
}

/** f64 reference, and the per-output magnitude sum for the tolerance. */
function reference(c: Case): { y: Float64Array; scale: Float64Array } {
  const { M, N, K, block: [R, C], indptr, indices, activation } = c.spec;
  const y = new Float64Array(M * N), scale = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let br = 0; br + 1 < indptr.length; br++) {
      for (let b = indptr[br]; b < indptr[br + 1]; b++) {
        for (let r = 0; r < R && br * R + r < N; r++) {
          for (let j = 0; j < C && indices[b] * C + j < K; j++) {
            const p = c.data[(b * R + r) * C + j] * c.x[m * K + indices[b] * C + j];
            y[m * N + br * R + r] += p;
            scale[m * N + br * R + r] += Math.abs(p);
          }
        }
      }
    }
    for (let n = 0; n < N; n++) {
      let v = y[m * N + n] + (c.spec.bias ? c.bias[n] : 0);
      if (activation === "gelu") v = 0.5 * v * (1 + erfFn(v / Math.SQRT2));
      else if (activation === "gelu_tanh") {
        v = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
      } else if (activation === "tanh") v = Math.tanh(v);
      y[m * N + n] = v;
      scale[m * N + n] += 1 + Math.abs(c.spec.bias ? c.bias[n] : 0);
    }
  }
  return { y, scale };
}

/** Every case with every variant on both targets and 1-3 threads, one module per target. */
async function runCases(cases: Case[], label: string): Promise<void> {
  for (const target of TARGETS) {
    const runs: { c: Case; v: BsrVariant; k: ReturnType<typeof bsrKernel> }[] = [];
    for (const c of cases) {
      const variants = bsrVariants(c.spec);
      const def = defaultBsrVariant(c.spec).variant;
      assert.ok(
        variants.some((v) => variantKey(v) === variantKey(def)),
        `default ${variantKey(def)} not a candidate`,
      );
      for (const v of variants) runs.push({ c, v, k: bsrKernel(c.spec, v, target) });
    }
    const kernels: WasmKernel[] = runs.flatMap((
      r,
    ) => (r.k.prepare ? [r.k.prepare, r.k.kernel] : [r.k.kernel]));
    const h = await KernelHarness.create(kernels, WASM_HELPERS, 256 << 20);
    for (const { c, v, k } of runs) {
      const { M, N } = c.spec;
      const ref = reference(c);
      const xAddr = h.put(c.x);
      const packed = packBsrData(c.spec, v, c.data);
      const dAddr = h.put(packed.length ? packed : new Float32Array(1));
      const index = packBsrIndex(c.spec, v);
      assert.equal(index === undefined, v.specialized);
      const iAddr = index ? h.put(index) : 0;
      const bAddr = h.put(c.bias);
      const guard = h.alloc(M * N + 16);
      const yAddr = guard + 32;
      for (let nt = 1; nt <= 3; nt++) {
        const scratch = h.alloc(k.scratchBytes / 4);
        new Float32Array(h.memory.buffer, yAddr, M * N).fill(NaN);
        if (k.prepare) h.run(k.prepare.name, [xAddr, scratch], nt);
        const args = [
          xAddr,
          dAddr,
          ...(index ? [iAddr] : []),
          ...(c.spec.bias ? [bAddr] : []),
          yAddr,
          scratch,
        ];
        h.run(k.kernel.name, args, nt);
        const y = h.read(yAddr, M * N);
        const what = `${label} ${c.spec.block.join("x")} M${M} N${N} K${c.spec.K} ${
          variantKey(v)
        } nt${nt} fma=${target.relaxedSimd}`;
        for (let i = 0; i < M * N; i++) {
          const err = Math.abs(y[i] - ref.y[i]);
          if (!(err <= 1e-4 * ref.scale[i])) {
            assert.fail(`${what}: y[${Math.floor(i / N)}, ${i % N}] = ${y[i]}, expected ${ref.y[i]}`);
          }
        }
        for (const g of [...h.read(guard, 8), ...h.read(yAddr + 4 * M * N, 8)]) {
          assert.ok(Number.isNaN(g), `${what}: wrote outside y`);
        }
      }
    }
  }
}

const SHAPES: [number, number][] = [
  [1, 1],
  [1, 2],
  [1, 4],
  [1, 8],
  [1, 16],
  [1, 32],
  [1, 64],
  [1, 128],
  [1, 384],
  [32, 1],
  [2, 2],
  [3, 5],
  [4, 4],
  [8, 8],
  [16, 16],
  [32, 32],
  [64, 64],
];

Deno.test("bsr: every block shape, ragged edges, every variant, both targets, 1-3 threads", async () => {
  const cases: Case[] = [];
  let seed = 1;
  for (const [R, C] of SHAPES) {
    const big = R * C >= 256 || C >= 128;
    // Ragged N and K (not multiples of R, C) and a whole-block shape.
    const N1 = big ? 2 * R + Math.max(1, R >> 1) : 3 * R + 1 + (R > 1 ? 1 : 0);
    const K1 = big ? 2 * C + Math.max(1, C >> 2) : 5 * C + (C > 1 ? 1 : 0) + 2;
    cases.push(makeCase(seed++, 13, N1, K1, [R, C], 0.5, true, "none"));
    cases.push(makeCase(seed++, 7, big ? 2 * R : 4 * R, big ? 2 * C : 4 * C, [R, C], 0.4, false, "gelu"));
  }
  await runCases(cases, "shapes");
});

Deno.test("bsr: M = 1, 4, 33, empty matrix, activations", async () => {
  const cases: Case[] = [
    makeCase(101, 1, 37, 50, [1, 4], 0.3, true, "tanh"),
    makeCase(102, 4, 40, 24, [4, 4], 0.5, true, "gelu_tanh"),
    makeCase(103, 33, 45, 70, [1, 1], 0.2, true, "gelu"),
    makeCase(104, 33, 48, 64, [8, 8], 0.3, false, "none"),
    makeCase(105, 9, 20, 30, [4, 4], 0, true, "gelu"),
    makeCase(106, 9, 20, 30, [1, 1], 0, false, "none"),
  ];
  assert.equal(cases[4].spec.indices.length, 0);
  await runCases(cases, "misc");
});

Deno.test("bsr: skewed patterns (most blocks in the first block rows), 1-3 threads", async () => {
  await runCases([
    makeCase(201, 13, 64, 96, [1, 8], 0.1, true, "none", true),
    makeCase(202, 21, 67, 50, [4, 4], 0.05, false, "gelu", true),
    makeCase(203, 8, 5, 64, [1, 32], 0, true, "none", true),
    makeCase(204, 8, 48, 48, [16, 16], 0.2, false, "none", true),
  ], "skewed");
});

Deno.test("bsr: packBsrData round-trips, index layout, names, budget", () => {
  const c = makeCase(7, 5, 19, 23, [4, 3], 0.5, true, "none");
  for (const v of bsrVariants(c.spec)) {
    const back = unpackBsrData(c.spec, v, packBsrData(c.spec, v, c.data));
    const expected = c.data.map((x) => (Number.isNaN(x) ? 0 : x));
    assert.deepEqual(back, expected, variantKey(v));
    const index = packBsrIndex(c.spec, v);
    if (index) {
      const nbr = c.spec.indptr.length - 1;
      assert.deepEqual(index.subarray(0, nbr + 1), c.spec.indptr);
      assert.equal(index.length, nbr + 1 + c.spec.indices.length);
    }
  }
  // Same pattern, same specialized kernel; another pattern, another name; generic shared.
  const v: BsrVariant = { xT: true, vecs: 2, rows: 4, specialized: true };
  const g: BsrVariant = { ...v, specialized: false };
  const d = makeCase(8, 5, 19, 23, [4, 3], 0.5, true, "none");
  const t = TARGETS[0];
  assert.equal(bsrKernel(c.spec, v, t).kernel.name, bsrKernel({ ...c.spec }, v, t).kernel.name);
  assert.notEqual(bsrKernel(c.spec, v, t).kernel.name, bsrKernel(d.spec, v, t).kernel.name);
  assert.equal(bsrKernel(c.spec, g, t).kernel.name, bsrKernel(d.spec, g, t).kernel.name);
  // A BERT-size pattern is over budget: generic by default, and its kernel is small.
  const big = makeCase(9, 128, 768, 768, [1, 1], 0.2, true, "none");
  const def = defaultBsrVariant(big.spec);
  assert.equal(def.variant.specialized, false);
  assert.ok(def.why.length > 20);
  assert.ok(bsrKernel(big.spec, def.variant, t).kernel.wat.length < SPECIALIZE_BUDGET_BYTES);
});
