/**
 * GEMM kernels (codegen/wasm/gemm.ts) and the packed weight layout (codegen/pack.ts) against an
 * f64 reference, on seeded random shapes with ragged edges, broadcasts, strides and 1-4 threads.
 */

import assert from "node:assert/strict";
import { packB, packedLength } from "../../codegen/pack.ts";
import { gemmKernel, type GemmSpec } from "../../codegen/wasm/gemm.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { KernelHarness, TARGETS } from "./wasm_harness.ts";

/** A deterministic generator of floats in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomArray(n: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => rand() * 2 - 1);
}

/** erf in f64, far below f32 precision: its Taylor series below 2.5, a continued fraction for erfc above. */
function erf(x: number): number {
  const ax = Math.abs(x);
  let r: number;
  if (ax < 2.5) {
    let term = ax, sum = ax;
    for (let n = 1; n < 60; n++) {
      term *= -ax * ax / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = 0;
    for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  }
  return x < 0 ? -r : r;
}

const ACTIVATIONS: Record<GemmSpec["activation"], (x: number) => number> = {
  none: (x) => x,
  gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
  gelu_tanh: (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))),
  tanh: Math.tanh,
};

/** One test product: the spec and, for a packed B, whether its weight is given transposed. */
interface Case {
  spec: GemmSpec;
  transposed: boolean;
}

/** Elements from the first to one past the last of `count` matrices of `rows` x `cols` at these strides. */
function extent(count: number, batchStride: number, rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (count - 1) * batchStride + (rows - 1) * ld + cols;
}

/** Copies `data` flush against the end of `h`'s memory, where reading past it traps; its address. */
function putAtEnd(h: KernelHarness, data: Float32Array): number {
  const addr = h.memory.buffer.byteLength - 4 * data.length;
  new Float32Array(h.memory.buffer, addr, data.length).set(data);
  return addr;
}

/**
 * Runs `c` on `threads` threads in `h` and checks C, and that nothing around C's region changed.
 * Operand `last` (0 = A, 1 = B, 2 = bias) ends where the memory ends, so reading past it traps.
 */
function check(
  h: KernelHarness,
  name: string,
  c: Case,
  threads: number,
  last: number,
  rand: () => number,
): void {
  const s = c.spec;
  const { batch, M, N, K } = s;
  const rowsB = s.b.layout === "rows" ? s.b : undefined;
  const a = randomArray(Math.max(extent(batch, s.aBatchStride, M, K, s.lda), 1), rand);
  // B as a function of (batch item, k, n), and its memory.
  let bAt: (i: number, k: number, n: number) => number;
  let bMem: Float32Array;
  if (rowsB) {
    bMem = randomArray(Math.max(extent(batch, rowsB.batchStride, K, N, rowsB.ldb), 1), rand);
    bAt = (i, k, n) => bMem[i * rowsB.batchStride + k * rowsB.ldb + n];
  } else {
    const w = randomArray(K * N, rand);
    bMem = packB(w, K, N, c.transposed);
    bAt = c.transposed ? (_, k, n) => w[n * K + k] : (_, k, n) => w[k * N + n];
  }
  const bias = randomArray(N, rand);
  const margin = 16;
  const cLen = extent(batch, s.cBatchStride, M, N, s.ldc);
  const cBase = h.alloc(cLen + 2 * margin);
  const operands = s.bias ? [a, bMem, bias] : [a, bMem];
  const args = operands.map((x, i) => i === last ? putAtEnd(h, x) : h.put(x));
  args.push(cBase + 4 * margin);
  const where = `${name} on ${threads} thread(s)`;
  try {
    h.run(name, args, threads);
  } catch (e) {
    throw new Error(`${where}: ${e}`);
  }

  const out = h.read(cBase, cLen + 2 * margin);
  const written = new Set<number>();
  const act = ACTIVATIONS[s.activation];
  for (let i = 0; i < batch; i++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += a[i * s.aBatchStride + m * s.lda + k] * bAt(i, k, n);
        const want = act((s.alpha ?? 1) * sum + (s.bias ? bias[n] : 0));
        const at = margin + i * s.cBatchStride + m * s.ldc + n;
        written.add(at);
        const got = out[at];
        if (!(Math.abs(got - want) <= 1e-4 * Math.max(1, Math.abs(want)))) {
          throw new Error(`${where}: C[${i}][${m}][${n}] = ${got}, want ${want}`);
        }
      }
    }
  }
  for (let j = 0; j < out.length; j++) {
    if (!written.has(j) && !Number.isNaN(out[j])) {
      throw new Error(`${where} wrote outside C, at ${j - margin}`);
    }
  }
}

/** A random spec: sizes around the tile edges, sometimes strided, broadcast, scaled or biased. */
function randomCase(rand: () => number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const size = () => pick([1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 31, 33, 40]);
  const batch = pick([1, 1, 2, 3]);
  const [M, N, K] = [size(), size(), size()];
  const pad = () => pick([0, 0, 1, 5]);
  const lda = K + pad(), ldc = N + pad();
  const b: GemmSpec["b"] = rand() < 0.5
    ? { layout: "packed" }
    : { layout: "rows", ldb: N + pad(), batchStride: pick([0, (K + 1) * (N + 7)]) };
  return {
    spec: {
      batch,
      M,
      N,
      K,
      lda,
      aBatchStride: pick([0, M * lda, M * lda + 3]),
      b,
      ldc,
      cBatchStride: pick([M * ldc, M * ldc + 11]),
      bias: rand() < 0.5,
      alpha: rand() < 0.3 ? 0.125 : undefined,
      activation: pick(["none", "none", "gelu", "gelu_tanh", "tanh"] as const),
    },
    transposed: rand() < 0.5,
  };
}

/** Hand-picked edges, then BERT-like shapes, then random ones. */
function cases(): Case[] {
  const base = {
    batch: 1,
    aBatchStride: 0,
    cBatchStride: 0,
    bias: false,
    activation: "none",
    b: { layout: "packed" },
  } as const;
  const dense = (M: number, N: number, K: number, extra: Partial<GemmSpec> = {}): Case => ({
    spec: { ...base, M, N, K, lda: K, ldc: N, ...extra },
    transposed: true,
  });
  const rand = rng(7);
  return [
    dense(1, 2, 3),
    dense(7, 13, 5),
    dense(1, 1, 1),
    dense(3, 5, 0, { bias: true }),
    dense(1, 100, 64, { bias: true, activation: "gelu" }),
    dense(2, 37, 19, { activation: "tanh" }),
    dense(37, 70, 67, { bias: true, alpha: 0.5, activation: "gelu_tanh" }),
    dense(128, 20, 9, { bias: true }),
    dense(5, 9, 11, { lda: 20, ldc: 30, bias: true }),
    // Batch items stacked like rows of one matrix (folded into M), and broadcast A.
    dense(6, 24, 16, { batch: 3, aBatchStride: 6 * 16, cBatchStride: 6 * 24 }),
    dense(6, 24, 16, { batch: 3, aBatchStride: 0, cBatchStride: 6 * 24 + 5 }),
    // Attention-like "rows" products: per-item B, and B broadcast.
    dense(9, 20, 8, {
      batch: 3,
      aBatchStride: 9 * 8,
      cBatchStride: 9 * 20,
      b: { layout: "rows", ldb: 20, batchStride: 8 * 20 },
      alpha: 0.125,
    }),
    dense(9, 11, 8, {
      batch: 2,
      lda: 10,
      aBatchStride: 100,
      ldc: 12,
      cBatchStride: 120,
      b: { layout: "rows", ldb: 15, batchStride: 0 },
    }),
    // Long K.
    dense(13, 10, 2310, { bias: true, alpha: 0.25, activation: "gelu" }),
    dense(5, 7, 1603, {
      batch: 2,
      aBatchStride: 5 * 1603,
      cBatchStride: 40,
      b: { layout: "rows", ldb: 9, batchStride: 1603 * 9 },
    }),
    ...Array.from({ length: 60 }, () => randomCase(rand)),
  ];
}

for (const target of TARGETS) {
  Deno.test(`gemm matches an f64 reference (relaxedSimd ${target.relaxedSimd})`, async () => {
    const all = cases();
    const kernels = all.map((c) => gemmKernel(c.spec, target));
    const h = await KernelHarness.create(kernels, WASM_HELPERS, 256 << 20);
    const rand = rng(11);
    all.forEach((c, i) => {
      for (let threads = 1; threads <= 4; threads++) check(h, kernels[i].name, c, threads, threads % 3, rand);
    });
  });
}

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
  assert.deepEqual(k.uses, ["gelu_f32x4"]);
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
