/**
 * GEMM kernel throughput (codegen/wasm/gemm.ts) on the BERT-base shapes (S = 128), on one thread
 * and on two (this thread and a Worker sharing the memory and the compiled module, in step
 * through Atomics for every call). Prints the median GFLOP/s of repeated timings.
 * Run: `deno run -A bench/gemm_bench.ts [--plain]` (--plain: mul + add instead of relaxed FMA).
 */

import { packB, packedLength } from "../codegen/pack.ts";
import { assembleWat } from "../codegen/wasm/assemble.ts";
import { gemmKernel, type GemmSpec } from "../codegen/wasm/gemm.ts";
import { WASM_HELPERS } from "../codegen/wasm/math.ts";
import { kernelModuleWat } from "../codegen/wasm/module.ts";

type Kernel = (...args: number[]) => void;

const dense = (M: number, K: number, N: number, activation: GemmSpec["activation"] = "none"): GemmSpec => ({
  batch: 1,
  M,
  N,
  K,
  lda: K,
  aBatchStride: 0,
  b: { layout: "packed" },
  ldc: N,
  cBatchStride: 0,
  bias: true,
  activation,
});
const attention = (M: number, K: number, N: number): GemmSpec => ({
  batch: 12,
  M,
  N,
  K,
  lda: K,
  aBatchStride: M * K,
  b: { layout: "rows", ldb: N, batchStride: K * N },
  ldc: N,
  cBatchStride: M * N,
  bias: false,
  activation: "none",
});
const SHAPES: [string, GemmSpec][] = [
  ["dense 128x768 . 768x768", dense(128, 768, 768)],
  ["dense 128x768 . 768x3072", dense(128, 768, 3072)],
  ["  + bias + gelu", dense(128, 768, 3072, "gelu")],
  ["dense 128x3072 . 3072x768", dense(128, 3072, 768)],
  ["dense 1x768 . 768x768", dense(1, 768, 768)],
  ["scores 12 x 128x64 . 64x128", attention(128, 64, 128)],
  ["context 12 x 128x128 . 128x64", attention(128, 128, 64)],
];

/** The worker: instantiates the module on the shared memory, then runs tid 1 of 2 on each signal. */
const WORKER = `
self.onmessage = ({ data: { module, memory, names, ctrl } }) => {
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const fns = names.map((n) => exports[n]);
  for (let seen = 0;;) {
    for (let spin = 0; Atomics.load(ctrl, 0) === seen; spin++) if (spin > 1e6) Atomics.wait(ctrl, 0, seen, 100);
    seen = Atomics.load(ctrl, 0);
    if (ctrl[1] < 0) break;
    fns[ctrl[1]](...ctrl.subarray(3, 3 + ctrl[2]), 1, 2);
    Atomics.store(ctrl, 0x10, seen);
  }
  self.close();
};`;

/** Control words: [0] call counter, [1] kernel index (-1 = quit), [2] arg count, [3..] args, [16] done counter. */
const ctrl = new Int32Array(new SharedArrayBuffer(128));

/** Calls kernel `index` on tid 0 here and tid 1 in the worker, returning when both are done. */
function runBoth(f: Kernel, index: number, args: number[]): void {
  ctrl[1] = index;
  ctrl[2] = args.length;
  ctrl.set(args, 3);
  const gen = Atomics.add(ctrl, 0, 1) + 1;
  Atomics.notify(ctrl, 0);
  f(...args, 0, 2);
  while (Atomics.load(ctrl, 0x10) !== gen) { /* spin */ }
}

/** Median seconds per call of `call`, over timings of batches about 20 ms long, after a warm-up. */
function time(call: () => void): number {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 300) call(), n++; // warm-up: lets V8 tier up to optimized code
  const per = Math.max(1, Math.round((20 * n) / (performance.now() - t0)));
  const samples: number[] = [];
  for (let s = 0; s < 15; s++) {
    const t = performance.now();
    for (let i = 0; i < per; i++) call();
    samples.push((performance.now() - t) / 1000 / per);
  }
  return samples.sort((a, b) => a - b)[samples.length >> 1];
}

const target = { relaxedSimd: !Deno.args.includes("--plain") };
const kernels = SHAPES.map(([, spec]) => gemmKernel(spec, target));
const pages = 4096; // 256 MiB
const wasm = await assembleWat("gemm_bench.wat", kernelModuleWat(kernels, WASM_HELPERS, pages));
const module = await WebAssembly.compile(wasm as BufferSource);
const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, Kernel>;
const worker = new Worker(URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" })), {
  type: "module",
});
worker.postMessage({ module, memory, names: kernels.map((k) => k.name), ctrl });

let next = 64;
/** A fresh 64-byte-aligned array of `n` random f32 in memory; its byte address. */
function put(n: number, data?: Float32Array): number {
  const addr = next;
  next = Math.ceil((addr + 4 * n) / 64) * 64 + 64;
  const view = new Float32Array(memory.buffer, addr, n);
  if (data) view.set(data);
  else for (let i = 0; i < n; i++) view[i] = Math.random() - 0.5;
  return addr;
}

console.log(`gemm kernels, ${target.relaxedSimd ? "relaxed-SIMD FMA" : "mul + add"}: GFLOP/s (median)`);
console.log(`${"shape".padEnd(32)}${"1 thread".padStart(10)}${"2 threads".padStart(11)}`);
SHAPES.forEach(([label, s], index) => {
  next = 64;
  const b = s.b.layout === "packed"
    ? put(
      packedLength(s.K, s.N),
      packB(new Float32Array(s.K * s.N).map(() => Math.random() - 0.5), s.K, s.N, true),
    )
    : put(s.batch * s.K * s.N);
  const args = [put(s.batch * s.M * s.K), b, ...(s.bias ? [put(s.N)] : []), put(s.batch * s.M * s.N)];
  const f = exports[kernels[index].name];
  const flops = 2 * s.batch * s.M * s.N * s.K;
  const one = flops / time(() => f(...args, 0, 1)) / 1e9;
  const two = flops / time(() => runBoth(f, index, args)) / 1e9;
  console.log(`${label.padEnd(32)}${one.toFixed(1).padStart(10)}${two.toFixed(1).padStart(11)}`);
});
ctrl[1] = -1;
Atomics.add(ctrl, 0, 1);
Atomics.notify(ctrl, 0);
