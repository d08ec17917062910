/**
 * The int8 kernels (codegen/wasm/quantize_rows.ts, qgemm.ts, qbsr.ts) on what
 * tests/codegen/qgemm_test.ts leaves out: the epilogue's activations, which must give bit for
 * bit what math.ts's helper (its FMA variant on relaxed SIMD) gives on the kernel's own result
 * without them, and rows that are not finite, which must come out as the interpreter's `qdense`
 * has them (a NaN, or with dynamic scales an infinity, makes the whole row NaN; with a static
 * scale an infinity clamps to ±act_max). Both targets, 1-3 threads, dense and block-sparse.
 */

import assert from "node:assert/strict";
import { KernelHarness } from "./wasm_harness.ts";
import { oracle, rng } from "./kernel_runner.ts";
import { t } from "../ops/helpers.ts";
import { helperFor, WASM_HELPERS } from "../../codegen/wasm/math.ts";
import {
  forRange,
  kernel,
  type KernelTarget,
  threadRange,
  type WasmKernel,
} from "../../codegen/wasm/kernel.ts";
import { call, i32, local, v128 } from "../../codegen/wasm/wat.ts";
import { qbsrKernel, qbsrPanel } from "../../codegen/wasm/qbsr.ts";
import { qgemmKernel } from "../../codegen/wasm/qgemm.ts";
import type { QActivation } from "../../codegen/wasm/qtile.ts";
import { quantizeRowsKernel } from "../../codegen/wasm/quantize_rows.ts";
import { packQBsr, packQWeight, roundUp4 } from "../../codegen/qpack.ts";

/** A problem: shapes, the int8 weight (dense values, and BSR blocks when `block` is set), scales, bias. */
interface Problem {
  M: number;
  N: number;
  K: number;
  block?: [number, number];
  wq: Int8Array;
  ws: Float32Array;
  bias: Float32Array;
  bsr?: { blocks: Int8Array; indptr: Int32Array; indices: Int32Array };
}

/** A random problem; with `block`, a BSR weight at density 0.4 (its dense values in `wq`). */
function problem(M: number, N: number, K: number, block?: [number, number]): Problem {
  const next = rng(M * 31 + N * 7 + K + (block?.[0] ?? 0));
  const ws = Float32Array.from({ length: N }, () => next() * 0.01);
  const bias = Float32Array.from({ length: N }, () => next() - 0.5);
  if (!block) {
    const wq = Int8Array.from({ length: N * K }, () => Math.round(next() * 254 - 127));
    return { M, N, K, wq, ws, bias };
  }
  const [R, C] = block;
  const indptr = [0], indices: number[] = [];
  for (let br = 0; br < Math.ceil(N / R); br++) {
    for (let bc = 0; bc < Math.ceil(K / C); bc++) if (next() < 0.4) indices.push(bc);
    indptr.push(indices.length);
  }
  const blocks = Int8Array.from({ length: indices.length * R * C }, () => Math.round(next() * 254 - 127));
  const wq = new Int8Array(N * K);
  for (let br = 0; br + 1 < indptr.length; br++) {
    for (let b = indptr[br]; b < indptr[br + 1]; b++) {
      for (let n = 0; n < R; n++) {
        for (let k = 0; k < C; k++) {
          const ch = br * R + n, inp = indices[b] * C + k;
          if (ch < N && inp < K) wq[ch * K + inp] = blocks[(b * R + n) * C + k];
        }
      }
    }
  }
  const bsr = { blocks, indptr: Int32Array.from(indptr), indices: Int32Array.from(indices) };
  return { M, N, K, block, wq, ws, bias, bsr };
}

/** The quantizer and the product of `p` on `target`, run on x with `nt` threads: y `[M, N]`. */
async function runKernels(
  p: Problem,
  x: Float32Array,
  options: { activation: QActivation; actScale: number; target: KernelTarget; nt: number },
): Promise<Float32Array> {
  const { M, N, K } = p, { activation, actScale, target, nt } = options;
  const Kp = roundUp4(K);
  let product: WasmKernel,
    weight: Int32Array,
    index: Int32Array | undefined,
    correction: Int32Array,
    Np: number;
  let ldq = Kp;
  if (p.block && p.bsr) {
    const packed = packQBsr(p.bsr.blocks, p.bsr.indptr, p.bsr.indices, [N, K], p.block);
    ldq = Math.ceil(K / p.block[1]) * p.block[1];
    ({ Np, correction, index } = packed);
    weight = packed.data.length ? packed.data : new Int32Array(1);
    product = qbsrKernel({
      M,
      N,
      ldq,
      block: p.block,
      blockRows: packed.blockRows,
      ldc: N,
      bias: true,
      activation,
    }, target);
  } else {
    const packed = packQWeight(p.wq, N, K);
    ({ Np, correction } = packed);
    weight = packed.data;
    product = qgemmKernel({ M, N, Np, Kp, ldc: N, bias: true, activation }, target);
  }
  const panel = p.block && qbsrPanel(p.block), rows = panel ? Math.ceil(M / panel) * panel : M;
  const quantizer = quantizeRowsKernel({ M, K, Kp, ldq, panel, actMax: 63, actScale }, target);
  const h = await KernelHarness.create([quantizer, product], WASM_HELPERS);
  const epilogue = new Int32Array(3 * Np);
  epilogue.set(correction);
  new Float32Array(epilogue.buffer, Np * 4, N).set(p.ws);
  new Float32Array(epilogue.buffer, 2 * Np * 4, N).set(p.bias);
  const ax = h.put(x), scales = h.alloc(M), axq = h.alloc(Math.ceil((rows * ldq) / 4) + 1);
  const aw = h.put(weight), ae = h.put(epilogue), ay = h.alloc(M * N);
  h.run(quantizer.name, [ax, axq, scales], nt);
  const ai = index ? [h.put(index)] : [];
  h.run(product.name, [axq, scales, aw, ...ai, ae, ay], nt);
  return h.read(ay, M * N);
}

/** math.ts's helper `name` applied to every value of `y` (padded to whole vectors with zeros). */
async function applyHelper(name: string, y: Float32Array): Promise<Float32Array> {
  const vectors = Math.ceil(y.length / 4);
  const [P, start, end, i] = ["p", "start", "end", "i"].map(local.i32);
  const at = i32.add(local.get(P), i32.shl(local.get(i), i32.const(4)));
  const k = kernel({
    name: "apply",
    params: [P],
    locals: [start, end, i],
    body: [
      threadRange(vectors, start, end),
      forRange(i, start, end, "v", v128.store(at, call("v128", name, v128.load(at)))),
    ],
    uses: [name],
  });
  const h = await KernelHarness.create([k], WASM_HELPERS);
  const padded = new Float32Array(vectors * 4);
  padded.set(y);
  const a = h.put(padded);
  h.run("apply", [a], 1);
  return h.read(a, y.length);
}

const HELPER_OF = { gelu: "gelu_f32x4", gelu_tanh: "gelu_tanh_f32x4", tanh: "tanh_f32x4" } as const;

const SHAPES: { M: number; N: number; K: number; block?: [number, number] }[] = [
  { M: 9, N: 10, K: 37 },
  { M: 9, N: 30, K: 40, block: [4, 4] },
  { M: 5, N: 36, K: 48, block: [16, 16] },
];

for (const shape of SHAPES) {
  for (const relaxedSimd of [true, false]) {
    const what = `${
      shape.block ? `qbsr ${shape.block.join("x")}` : "qgemm"
    } ${shape.M}x${shape.N}x${shape.K}`;
    const target = { relaxedSimd }, simd = relaxedSimd ? "relaxed" : "plain";
    Deno.test(`${what}: activations are math.ts's helpers on the plain result (${simd} SIMD)`, async () => {
      const p = problem(shape.M, shape.N, shape.K, shape.block);
      const next = rng(shape.K);
      const x = Float32Array.from({ length: shape.M * shape.K }, () => next() * 40 - 20);
      const plain = await runKernels(p, x, { activation: "none", actScale: 0, target, nt: 1 });
      for (const activation of ["gelu", "gelu_tanh", "tanh"] as const) {
        const want = await applyHelper(helperFor(HELPER_OF[activation], target), plain);
        for (const nt of [1, 2, 3]) {
          const got = await runKernels(p, x, { activation, actScale: 0, target, nt });
          for (let i = 0; i < want.length; i++) {
            assert.equal(got[i], want[i], `${activation}, ${nt} threads, element ${i}`);
          }
        }
      }
    });
    Deno.test(`${what}: rows with NaN and infinities as the interpreter has them (${simd} SIMD)`, async () => {
      const { M, N, K } = shape;
      const p = problem(M, N, K, shape.block);
      const next = rng(M + K);
      const x = Float32Array.from({ length: M * K }, () => next() * 4 - 2);
      x[1 * K + 3] = NaN;
      x[2 * K + K - 1] = Infinity;
      x[3 * K] = -Infinity;
      for (const actScale of [0, 0.03]) {
        const want = oracle("qdense", [
          t([M, K], [...x]),
          t([N, K], [...p.wq], "i8"),
          t([N], [...p.ws]),
          t([N], [...p.bias]),
        ], {
          act_max: { kind: "int", value: 63 },
          act_scale: { kind: "float", value: actScale },
        }).data;
        for (const nt of [1, 2, 3]) {
          const got = await runKernels(p, x, { activation: "none", actScale, target, nt });
          for (let i = 0; i < want.length; i++) {
            assert.equal(got[i], want[i], `act_scale ${actScale}, ${nt} threads, row ${Math.floor(i / N)}`);
          }
        }
        // The rows the test is about: NaN throughout with dynamic scales; with a static scale
        // only the NaN row.
        for (const row of [1, 2, 3]) {
          const nan = row === 1 || actScale === 0;
          assert.equal(want.slice(row * N, row * N + N).every(Number.isNaN), nan, `row ${row}`);
        }
      }
    });
  }
}
