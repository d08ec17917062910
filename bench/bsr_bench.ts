/**
 * Block-sparse dense kernels (codegen/wasm/bsr.ts) against the dense GEMM (codegen/wasm/gemm.ts)
 * on BERT-base shapes: M = 128 tokens, (N, K) = (768, 768), (3072, 768) and (768, 3072), 80% block sparsity
 * (blocks of a random weight pruned by L2 norm), single thread. Times (median) the default
 * variant and every candidate variant, prepare (x transpose) included, and prints sparse/dense.
 * Run: `deno run -A bench/bsr_bench.ts [--plain] [--shape=768x768] [--block=1x32]`.
 */

import { packBsrData, packBsrIndex } from "../codegen/bsr_pack.ts";
import { packB } from "../codegen/pack.ts";
import { assembleWat } from "../codegen/wasm/assemble.ts";
import { bsrKernel, type BsrSpec, variantKey } from "../codegen/wasm/bsr.ts";
import { bsrVariants, defaultBsrVariant } from "../codegen/wasm/bsr_cost.ts";
import { gemmKernel } from "../codegen/wasm/gemm.ts";
import type { WasmKernel } from "../codegen/wasm/kernel.ts";
import { WASM_HELPERS } from "../codegen/wasm/math.ts";
import { kernelModuleWat } from "../codegen/wasm/module.ts";

type Kernel = (...args: number[]) => void;

const target = { relaxedSimd: !Deno.args.includes("--plain") };
const arg = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const M = 128;
const SPARSITY = 0.8;
const SHAPES: [number, number][] = [[768, 768], [3072, 768], [768, 3072]].filter(([N, K]) =>
  !arg("shape") || arg("shape") === `${N}x${K}`
) as [
  number,
  number,
][];
const BLOCKS: [number, number][] =
  ([[1, 1], [1, 4], [1, 16], [1, 32], [1, 64], [32, 1], [4, 4], [8, 8], [16, 16], [32, 32]] as [
    number,
    number,
  ][]).filter(([R, C]) => !arg("block") || arg("block") === `${R}x${C}`);

/** Median seconds per call, over batches of about 20 ms after a warm-up. */
function time(call: () => void): number {
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < 200) call(), n++;
  const per = Math.max(1, Math.round((20 * n) / (performance.now() - t0)));
  const samples: number[] = [];
  for (let s = 0; s < 11; s++) {
    const t = performance.now();
    for (let i = 0; i < per; i++) call();
    samples.push((performance.now() - t) / 1000 / per);
  }
  return samples.sort((a, b) => a - b)[samples.length >> 1];
}

/** Seeded uniform floats in [-0.5, 0.5). */
function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  });
}

/** The weight [N, K] pruned to the (1 - SPARSITY) fraction of R x C blocks with the largest L2 norm, as SciPy BSR. */
function prune(w: Float32Array, N: number, K: number, R: number, C: number) {
  const nbr = Math.ceil(N / R), nbc = Math.ceil(K / C);
  const norms = new Float64Array(nbr * nbc);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) norms[Math.floor(n / R) * nbc + Math.floor(k / C)] += w[n * K + k] ** 2;
  }
  const keep = Math.round(nbr * nbc * (1 - SPARSITY));
  const threshold = [...norms].sort((a, b) => b - a)[keep - 1];
  const indptr = new Int32Array(nbr + 1);
  const indices: number[] = [];
  for (let br = 0; br < nbr; br++) {
    for (let bc = 0; bc < nbc; bc++) {
      if (norms[br * nbc + bc] >= threshold && indices.length < keep) indices.push(bc);
    }
    indptr[br + 1] = indices.length;
  }
  const data = new Float32Array(indices.length * R * C);
  for (let br = 0; br < nbr; br++) {
    for (let b = indptr[br]; b < indptr[br + 1]; b++) {
      for (let r = 0; r < R && br * R + r < N; r++) {
        for (let c = 0; c < C && indices[b] * C + c < K; c++) {
          data[(b * R + r) * C + c] = w[(br * R + r) * K + indices[b] * C + c];
        }
      }
    }
  }
  return { indptr, indices: Int32Array.from(indices), data };
}

const pages = 2048; // 128 MiB
const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
let next = 64;
function put(data: Float32Array | Int32Array | number): number {
  const n = typeof data === "number" ? data : data.length;
  const addr = next;
  next = Math.ceil((addr + 4 * n) / 64) * 64 + 64;
  if (typeof data !== "number") {
    new (data.constructor as Float32ArrayConstructor)(memory.buffer, addr, n).set(data as Float32Array);
  }
  return addr;
}
async function instantiate(kernels: WasmKernel[]): Promise<Record<string, Kernel>> {
  const wasm = await assembleWat("bsr_bench.wat", kernelModuleWat(kernels, WASM_HELPERS, pages));
  const module = await WebAssembly.compile(wasm as BufferSource);
  return new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, Kernel>;
}

console.log(
  `bsr vs dense, M=${M}, ${SPARSITY * 100}% block sparsity, 1 thread, ${
    target.relaxedSimd ? "FMA" : "mul+add"
  }`,
);
for (const [N, K] of SHAPES) {
  next = 64;
  const w = random(N * K, N + K);
  const x = put(random(M * K, 7));
  const bias = put(random(N, 9));
  const y = put(M * N);
  const gspec = {
    batch: 1,
    M,
    N,
    K,
    lda: K,
    aBatchStride: 0,
    b: { layout: "packed" as const },
    ldc: N,
    cBatchStride: 0,
    bias: true,
    activation: "none" as const,
  };
  const gk = gemmKernel(gspec, target);
  const gx = await instantiate([gk]);
  const b = put(packB(w, K, N, true));
  const denseT = time(() => gx[gk.name](x, b, bias, y, 0, 1));
  console.log(
    `\nN=${N} K=${K}: dense ${(denseT * 1e3).toFixed(3)} ms (${
      (2 * M * N * K / denseT / 1e9).toFixed(1)
    } GFLOP/s)`,
  );
  const mark = next;
  for (const [R, C] of BLOCKS) {
    next = mark;
    const { indptr, indices, data } = prune(w, N, K, R, C);
    const spec: BsrSpec = { M, N, K, block: [R, C], indptr, indices, bias: true, activation: "none" };
    const def = defaultBsrVariant(spec);
    const variants = bsrVariants(spec);
    const built = variants.map((v) => ({ v, k: bsrKernel(spec, v, target) }));
    const ex = await instantiate(built.flatMap(({ k }) => (k.prepare ? [k.prepare, k.kernel] : [k.kernel])));
    const results: string[] = [];
    let defRatio = NaN, best = Infinity, bestKey = "";
    for (const { v, k } of built) {
      const d = put(packBsrData(spec, v, data));
      const index = packBsrIndex(spec, v);
      const i = index ? put(index) : 0;
      const scratch = put(k.scratchBytes / 4);
      const prep = k.prepare ? ex[k.prepare.name] : undefined;
      const f = ex[k.kernel.name];
      const args = [x, d, ...(index ? [i] : []), bias, y, scratch];
      const t = time(() => {
        prep?.(x, scratch, 0, 1);
        f(...args, 0, 1);
      });
      const ratio = t / denseT;
      if (variantKey(v) === variantKey(def.variant)) defRatio = ratio;
      if (ratio < best) best = ratio, bestKey = variantKey(v);
      results.push(`${variantKey(v)} ${ratio.toFixed(3)}`);
    }
    console.log(
      `  ${`${R}x${C}`.padEnd(6)} default ${variantKey(def.variant)} ${
        defRatio.toFixed(3)
      }x dense; best ${bestKey} ${best.toFixed(3)}x | ${results.join(", ")}`,
    );
  }
}
