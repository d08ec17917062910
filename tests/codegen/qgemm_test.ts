/**
 * The int8 kernels (codegen/wasm/quantize_rows.ts, qgemm.ts, qbsr.ts; weights packed by
 * codegen/qpack.ts) on both targets (with relaxed SIMD, each dot form of qtile.ts, forced, and the
 * probed default) and 1-3 threads against the reference interpreter's `qdense` (per-row scales,
 * round half to even, clamping, integer sums and the f32 epilogue, ir/ops/qdense.ts). Every result
 * must be bit-identical; ragged M, N and K, zero rows and static scales included. Memory around y
 * stays untouched.
 */

import assert from "node:assert/strict";
import { KernelHarness } from "./wasm_harness.ts";
import { oracle, rng } from "./kernel_runner.ts";
import { t } from "../ops/helpers.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { qbsrKernel, qbsrPanel } from "../../codegen/wasm/qbsr.ts";
import { qgemmKernel } from "../../codegen/wasm/qgemm.ts";
import { quantizeRowsKernel } from "../../codegen/wasm/quantize_rows.ts";
import type { DotForm } from "../../codegen/wasm/qtile.ts";
import { packQBsr, packQWeight, roundUp4 } from "../../codegen/qpack.ts";

/** The oracle: the `qdense` op of the reference interpreter. */
function reference(
  x: Float32Array,
  [M, N, K]: number[],
  wq: Int8Array,
  ws: Float32Array,
  bias: Float32Array | undefined,
  actMax: number,
  actScale: number,
): Float32Array {
  const inputs = [
    t([M, K], [...x]),
    t([N, K], [...wq], "i8"),
    t([N], [...ws]),
    ...(bias ? [t([N], [...bias])] : []),
  ];
  const y = oracle("qdense", inputs, {
    act_max: { kind: "int", value: actMax },
    act_scale: { kind: "float", value: actScale },
  });
  return y.data as Float32Array;
}

/** Targets and dot forms (qtile.ts): with relaxed SIMD each form, forced, and the probed default. */
const VARIANTS: [boolean, DotForm][] = [[true, "probe"], [true, "fused"], [true, "split"], [false, "probe"]];

const CASES: { M: number; N: number; K: number; bias: boolean; actMax?: number; actScale?: number }[] = [
  { M: 1, N: 4, K: 4, bias: true },
  { M: 5, N: 10, K: 7, bias: true },
  { M: 33, N: 20, K: 64, bias: false },
  { M: 8, N: 256, K: 256, bias: true },
  { M: 3, N: 3, K: 130, bias: true, actMax: 31 },
  { M: 6, N: 9, K: 33, bias: true, actScale: 0.02 },
  { M: 64, N: 64, K: 48, bias: true },
];

for (const c of CASES) {
  for (const [relaxedSimd, dot] of VARIANTS) {
    const actMax = c.actMax ?? 63, actScale = c.actScale ?? 0;
    Deno.test(`qgemm ${c.M}x${c.N}x${c.K}${c.bias ? " bias" : ""} act_max ${actMax}${actScale ? ` static ${actScale}` : ""} (${relaxedSimd ? `relaxed SIMD, ${dot} dot` : "plain SIMD"})`, async () => {
      const { M, N, K } = c;
      const next = rng(M * 1000 + N * 10 + K);
      const x = Float32Array.from({ length: M * K }, () => (next() * 4 - 2) * (next() < 0.1 ? 20 : 1));
      if (M > 2) x.fill(0, 2 * K, 3 * K); // a zero row
      // Exact halves: ties that round to even.
      if (M > 1) { for (let k = 0; k < K; k += 3) x[K + k] = (k % 2 ? 0.5 : 1.5) * (k % 4 ? 1 : -1); }
      const wq = Int8Array.from({ length: N * K }, () => Math.round(next() * 254 - 127));
      const ws = Float32Array.from({ length: N }, () => next() * 0.01);
      const bias = c.bias ? Float32Array.from({ length: N }, () => next() - 0.5) : undefined;
      const packed = packQWeight(wq, N, K);
      const { Np, Kp } = packed;
      assert.equal(Kp, roundUp4(K));
      const target = { relaxedSimd };
      const qk = quantizeRowsKernel({ M, K, Kp, actMax, actScale }, target);
      const gk = qgemmKernel({ M, N, Np, Kp, ldc: N + 3, bias: c.bias, activation: "none", dot }, target);
      const h = await KernelHarness.create([qk, gk], WASM_HELPERS);
      const epilogue = new Int32Array(3 * Np);
      epilogue.set(packed.correction);
      new Float32Array(epilogue.buffer, Np * 4, Np).set(ws);
      if (bias) new Float32Array(epilogue.buffer, 2 * Np * 4, Np).set(bias);
      const want = reference(x, [M, N, K], wq, ws, bias, actMax, actScale);
      for (const nt of [1, 2, 3]) {
        h.reset();
        const ax = h.put(x), axq = h.alloc(Math.ceil((M * Kp) / 4)), scales = h.alloc(M);
        const aw = h.put(packed.data), ae = h.put(epilogue), ay = h.alloc(M * (N + 3));
        h.run(qk.name, [ax, axq, scales], nt);
        h.run(gk.name, [axq, scales, aw, ae, ay], nt);
        const got = h.read(ay, M * (N + 3));
        for (let r = 0; r < M; r++) {
          for (let n = 0; n < N + 3; n++) {
            const g = got[r * (N + 3) + n];
            if (n >= N) assert.ok(Number.isNaN(g), `row ${r}: column ${n} past N was written`);
            else assert.equal(g, want[r * N + n], `row ${r}, channel ${n}, ${nt} threads`);
          }
        }
      }
    });
  }
}

/** Int8 BSR cases: block shapes, densities (empty block rows included), ragged N, bias, threads. */
const BSR_CASES: {
  M: number;
  N: number;
  K: number;
  block: [number, number];
  density: number;
  bias: boolean;
}[] = [
  { M: 1, N: 8, K: 8, block: [4, 4], density: 1, bias: true },
  { M: 9, N: 30, K: 40, block: [4, 4], density: 0.3, bias: true },
  { M: 17, N: 64, K: 64, block: [8, 8], density: 0.2, bias: false },
  { M: 5, N: 36, K: 48, block: [16, 16], density: 0.5, bias: true },
  { M: 3, N: 32, K: 64, block: [4, 32], density: 0.4, bias: true },
  { M: 33, N: 6, K: 12, block: [4, 4], density: 0, bias: true },
  { M: 19, N: 44, K: 36, block: [8, 4], density: 0.5, bias: true },
  { M: 11, N: 28, K: 56, block: [4, 8], density: 0.3, bias: false },
  { M: 130, N: 48, K: 64, block: [4, 4], density: 0.2, bias: true },
];

for (const c of BSR_CASES) {
  for (const [relaxedSimd, dot] of VARIANTS) {
    const [R, C] = c.block;
    Deno.test(`qbsr ${c.M}x${c.N}x${c.K} ${R}x${C} blocks at density ${c.density} (${relaxedSimd ? `relaxed SIMD, ${dot} dot` : "plain SIMD"})`, async () => {
      const { M, N, K } = c;
      const next = rng(M * 7 + N * 3 + K + R);
      const blockRows = Math.ceil(N / R), blockCols = Math.ceil(K / C);
      const indptr = [0], indices: number[] = [];
      for (let br = 0; br < blockRows; br++) {
        for (let bc = 0; bc < blockCols; bc++) if (br % 3 !== 1 && next() < c.density) indices.push(bc);
        indptr.push(indices.length);
      }
      const blocks = Int8Array.from({ length: indices.length * R * C }, () => Math.round(next() * 254 - 127));
      // The dense int8 weight the blocks stand for: the oracle's operand.
      const dense = new Int8Array(N * K);
      for (let br = 0; br < blockRows; br++) {
        for (let b = indptr[br]; b < indptr[br + 1]; b++) {
          for (let n = 0; n < R; n++) {
            for (let k = 0; k < C; k++) {
              const ch = br * R + n, inp = indices[b] * C + k;
              if (ch < N && inp < K) dense[ch * K + inp] = blocks[(b * R + n) * C + k];
            }
          }
        }
      }
      const x = Float32Array.from({ length: M * K }, () => next() * 4 - 2);
      const ws = Float32Array.from({ length: N }, () => next() * 0.01);
      const bias = c.bias ? Float32Array.from({ length: N }, () => next() - 0.5) : undefined;
      const want = reference(x, [M, N, K], dense, ws, bias, 63, 0);
      const packed = packQBsr(blocks, Int32Array.from(indptr), Int32Array.from(indices), [N, K], [R, C]);
      const ldq = blockCols * C, Kp = roundUp4(K);
      const target = { relaxedSimd };
      // Blocks of 4 rows want the activations in panels (whole ones: the kernel reads past M).
      const panel = qbsrPanel([R, C]), rows = panel ? Math.ceil(M / panel) * panel : M;
      const qk = quantizeRowsKernel({ M, K, Kp, ldq, panel, actMax: 63, actScale: 0 }, target);
      const bk = qbsrKernel({
        M,
        N,
        ldq,
        block: [R, C],
        blockRows,
        ldc: N + 1,
        bias: c.bias,
        activation: "none",
        dot,
      }, target);
      const h = await KernelHarness.create([qk, bk], WASM_HELPERS);
      const { Np } = packed;
      const epilogue = new Int32Array(3 * Np);
      epilogue.set(packed.correction);
      new Float32Array(epilogue.buffer, Np * 4, N).set(ws);
      if (bias) new Float32Array(epilogue.buffer, 2 * Np * 4, N).set(bias);
      for (const nt of [1, 2, 3]) {
        h.reset();
        const ax = h.put(x), scales = h.alloc(M), axq = h.alloc(Math.ceil((rows * ldq) / 4) + 1);
        const aw = h.put(packed.data.length ? packed.data : new Int32Array(1)), ai = h.put(packed.index);
        const ae = h.put(epilogue), ay = h.alloc(M * (N + 1));
        h.run(qk.name, [ax, axq, scales], nt);
        h.run(bk.name, [axq, scales, aw, ai, ae, ay], nt);
        const got = h.read(ay, M * (N + 1));
        for (let r = 0; r < M; r++) {
          for (let n = 0; n <= N; n++) {
            const g = got[r * (N + 1) + n];
            if (n === N) assert.ok(Number.isNaN(g), `row ${r}: column N was written`);
            else assert.equal(g, want[r * N + n], `row ${r}, channel ${n}, ${nt} threads`);
          }
        }
      }
    });
  }
}
