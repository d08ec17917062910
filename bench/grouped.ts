/**
 * Row-grouped BSR kernels (codegen/wasm/grouped_bsr.ts) against the index-driven BSR kernels and
 * the dense GEMM, one thread, relaxed SIMD (`--plain` for plain SIMD).
 *
 * 1. Kernels: M = 128 tokens, BERT-base shapes (N, K) = (768, 768), (3072, 768), (768, 3072),
 *    80% block sparsity as `--groups` (default 16) seeded column patterns per matrix, each block
 *    row assigned one at random; dense GEMM vs the cost model's index-driven default (prepare
 *    included) vs row-grouped, and the dense GEMM over K' = 0.2 K (the kept multiply-adds at the
 *    dense rate: what the row-grouped kernel would take without gather or padding). Medians of
 *    interleaved rounds.
 * 2. Model: synthetic BERT-base, S = 128, batch 1: dense; pruned to 80% in `--block` (1x32) blocks and
 *    BSR-lowered, then each weight's pattern replaced by `--groups` shared patterns (same
 *    density, seeded; values random), compiled once with the index-driven kernels (forced
 *    through a tuning log) and once with the cost model's choice (row-grouped). Medians of
 *    interleaved runs; the two sparse artifacts' logits are compared.
 *
 * Run: `deno run -A bench/grouped.ts [--groups=16] [--block=1x32] [--plain] [--rounds=9] [--no-kernels] [--no-model] [--dry] [--prune-patterns] [--profile] [--force-grouped] [--act=gelu] [--kernel-blocks=1x32,1x1,4x4]`. Figures
 * from a shared machine move from run to run.
 */

import { packBsrData, packBsrIndex } from "../codegen/bsr_pack.ts";
import { packB } from "../codegen/pack.ts";
import { cpuModel, emptyLog, tuningKey } from "../codegen/tuning_log.ts";
import { assembleWat } from "../codegen/wasm/assemble.ts";
import { bsrKernel, type BsrSpec, GROUPED_VARIANT, variantKey } from "../codegen/wasm/bsr.ts";
import { indexedBsrVariant } from "../codegen/wasm/bsr_cost.ts";
import { gemmKernel } from "../codegen/wasm/gemm.ts";
import { WASM_HELPERS } from "../codegen/wasm/math.ts";
import { kernelModuleWat } from "../codegen/wasm/module.ts";
import { groupedSummary } from "../codegen/report.ts";
import { compile, loadCompiled } from "../mod.ts";
import { BsrTensor, type Tensor } from "../ir/tensor.ts";
import { memoryStore } from "../ir/weights.ts";
import { syntheticWorkload } from "./peers.ts";

type Kernel = (...args: number[]) => void;

const arg = (name: string) => Deno.args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1];
const target = { relaxedSimd: !Deno.args.includes("--plain") };
const GROUPS = Number(arg("groups") ?? 16);
const ROUNDS = Number(arg("rounds") ?? 9);
/** The model's block shape (`--block=RxC`). */
const BLOCK = arg("block") ?? "1x32";
const DENSITY = 0.2;
/** `--dry`: build, compile and check everything, time nothing. */
const DRY = Deno.args.includes("--dry");
/** `--profile`: print each artifact's time by op after the timed rounds. */
const PROFILE = Deno.args.includes("--profile");
/** `--force-grouped`: the row-grouped artifact runs the row-grouped kernel wherever it is a candidate. */
/** `--act=gelu` (or tanh, gelu_tanh): the single kernels' activation (default none). */
const ACTIVATION = (arg("act") ?? "none") as BsrSpec["activation"];
/** `--kernel-blocks=1x32,1x1,4x4`: the single kernels' block shapes. */
const KERNEL_BLOCKS = (arg("kernel-blocks") ?? "1x32,1x1,4x4").split(",").map((b) =>
  b.split("x").map(Number) as [number, number]
);
const FORCE_GROUPED = Deno.args.includes("--force-grouped");
const M = 128;

/** mulberry32 in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `groups` patterns keeping a DENSITY share of the block columns each, block rows assigned at random. */
function groupedPattern(seed: number, nbr: number, nbc: number, groups: number) {
  const rand = rng(seed);
  const patterns = Array.from({ length: groups }, () => {
    const cols = Array.from({ length: nbc }, (_, c) => c).sort(() => rand() - 0.5)
      .slice(0, Math.max(1, Math.round(DENSITY * nbc)));
    return cols.sort((a, b) => a - b);
  });
  const indptr = new Int32Array(nbr + 1);
  const indices: number[] = [];
  for (let r = 0; r < nbr; r++) {
    indices.push(...patterns[r < groups ? r : Math.floor(rand() * groups)]);
    indptr[r + 1] = indices.length;
  }
  return { indptr, indices: Int32Array.from(indices) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Seconds per call of each contender: interleaved rounds of ~20 ms batches, the median per contender. */
function timeInterleaved(calls: (() => void)[]): number[] {
  if (DRY) return calls.map(() => NaN);
  const per = calls.map((call) => {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < 60) call(), n++;
    return Math.max(1, Math.round((20 * n) / (performance.now() - t0)));
  });
  const samples: number[][] = calls.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    calls.forEach((call, i) => {
      const t = performance.now();
      for (let k = 0; k < per[i]; k++) call();
      samples[i].push((performance.now() - t) / 1000 / per[i]);
    });
  }
  return samples.map(median);
}

async function kernels(): Promise<void> {
  const pages = 4096;
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  let next = 64;
  const put = (data: Float32Array | Int32Array | number) => {
    const n = typeof data === "number" ? data : data.length;
    const addr = next;
    next = Math.ceil((addr + 4 * n) / 64) * 64 + 64;
    if (typeof data !== "number") {
      new (data.constructor as Float32ArrayConstructor)(memory.buffer, addr, n).set(data as Float32Array);
    }
    return addr;
  };
  console.log(
    `kernels: M = ${M}, ${GROUPS} row patterns, density ${DENSITY}, 1 thread, ${
      target.relaxedSimd ? "relaxed SIMD" : "SIMD"
    }`,
  );
  console.log(
    "shape       block  dense ms  dense K' ms  indexed ms (variant)         grouped ms  indexed/dense  grouped/dense  grouped/dense K'",
  );
  for (const [N, K] of [[768, 768], [3072, 768], [768, 3072]]) {
    for (const [R, C] of KERNEL_BLOCKS) {
      next = 64;
      const { indptr, indices } = groupedPattern(
        N + K + R * 7 + C,
        Math.ceil(N / R),
        Math.ceil(K / C),
        GROUPS,
      );
      const spec: BsrSpec = { M, N, K, block: [R, C], indptr, indices, bias: true, activation: ACTIVATION };
      const data = Float32Array.from({ length: indices.length * R * C }, rng(3));
      const indexed = defaultIndexed(spec);
      const ik = bsrKernel(spec, indexed, target);
      const gk = bsrKernel(spec, GROUPED_VARIANT, target);
      // The dense GEMM over all of K, and over the kept share of it (K'): the same multiply-adds as
      // the sparse kernels, at the dense GEMM's rate.
      const Kk = Math.round(DENSITY * K);
      const gemm = (k: number) =>
        gemmKernel({
          batch: 1,
          M,
          N,
          K: k,
          lda: k,
          aBatchStride: 0,
          b: { layout: "packed" },
          ldc: N,
          cBatchStride: 0,
          bias: true,
          activation: ACTIVATION,
        }, target);
      const dk = gemm(K), sk = gemm(Kk);
      const wasm = await assembleWat(
        "grouped.wat",
        kernelModuleWat(
          [...(ik.prepare ? [ik.prepare] : []), ik.kernel, gk.kernel, dk, sk],
          WASM_HELPERS,
          pages,
        ),
      );
      const ex = new WebAssembly.Instance(await WebAssembly.compile(wasm as BufferSource), {
        env: { memory },
      })
        .exports as Record<string, Kernel>;
      const x = put(Float32Array.from({ length: M * K }, rng(5))),
        bias = put(Float32Array.from({ length: N }, rng(6)));
      const y = put(M * N), y2 = put(M * N), y3 = put(M * N);
      const dense = put(packB(Float32Array.from({ length: N * K }, rng(7)), K, N, true));
      const kept = put(packB(Float32Array.from({ length: N * Kk }, rng(7)), Kk, N, true));
      const iData = put(packBsrData(spec, indexed, data)), iIndex = put(packBsrIndex(spec, indexed)!);
      const iScratch = put(ik.scratchBytes / 4);
      const gData = put(packBsrData(spec, GROUPED_VARIANT, data));
      const gIndex = put(packBsrIndex(spec, GROUPED_VARIANT)!), gScratch = put(gk.scratchBytes / 4);
      const calls = [
        () => ex[dk.name](x, dense, bias, y, 0, 1),
        () => {
          if (ik.prepare) ex[ik.prepare.name](x, iScratch, 0, 1);
          ex[ik.kernel.name](x, iData, iIndex, bias, y2, iScratch, 0, 1);
        },
        () => ex[gk.kernel.name](x, gData, gIndex, bias, y3, gScratch, 0, 1),
        () => ex[sk.name](x, kept, bias, y, 0, 1),
      ];
      calls.forEach((c) => c());
      const f32 = new Float32Array(memory.buffer);
      let diff = 0;
      for (let i = 0; i < M * N; i++) diff = Math.max(diff, Math.abs(f32[y2 / 4 + i] - f32[y3 / 4 + i]));
      if (diff > 1e-3) throw new Error(`${N}x${K} ${R}x${C}: grouped and indexed differ by ${diff}`);
      const [td, ti, tg, ts] = timeInterleaved(calls);
      console.log(
        `${`${N}x${K}`.padEnd(11)} ${`${R}x${C}`.padEnd(5)} ${(td * 1e3).toFixed(3).padStart(9)} ${
          (ts * 1e3).toFixed(3).padStart(12)
        } ${(ti * 1e3).toFixed(3).padStart(11)} ${`(${variantKey(indexed)})`.padEnd(18)} ${
          (tg * 1e3).toFixed(3).padStart(11)
        } ${(ti / td).toFixed(3).padStart(14)} ${(tg / td).toFixed(3).padStart(14)} ${
          (tg / ts).toFixed(3).padStart(17)
        }`,
      );
    }
  }
}

/** GFLOP/s of a wasm loop of f32x4 multiply-adds into 12 independent accumulators: the FMA peak one thread reaches. */
async function fmaPeakGflops(): Promise<number> {
  const acc = Array.from({ length: 12 }, (_, i) => `$c${i}`);
  const step = acc.map((c) =>
    `(local.set ${c} (f32x4.relaxed_madd (local.get $a) (local.get $b) (local.get ${c})))`
  )
    .join(" ");
  const sum = acc.map((c) => `(local.get ${c})`).reduce((x, y) => `(f32x4.add ${x} ${y})`);
  const wat = `(module (memory 1) (func (export "f") (param $n i32) (local $a v128) (local $b v128) ${
    acc.map((c) => `(local ${c} v128)`).join(" ")
  }
    (local.set $a (f32x4.splat (f32.const 1.0001))) (local.set $b (f32x4.splat (f32.const 0.9999)))
    (loop $l ${step} ${step} ${step} ${step}
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $l (local.get $n)))
    (v128.store (i32.const 0) ${sum})))`;
  const wasm = await assembleWat("fma_peak.wat", wat);
  const f = (new WebAssembly.Instance(await WebAssembly.compile(wasm as BufferSource)).exports as {
    f: (n: number) => void;
  }).f;
  const n = 1_000_000, flops = n * 4 * acc.length * 8;
  const [s] = timeInterleaved([() => f(n)]);
  return flops / s / 1e9;
}

/**
 * Ms per call of each dense GEMM kernel's epilogue (bias, activation, stores), timed as the same
 * kernel with K = 4: what a product costs per output whatever its number of multiply-adds.
 */
async function epilogueMs(kernelNames: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const name of kernelNames) {
    const m = /^gemm_b1_m(\d+)_n(\d+)_k\d+_lda\d+_packed_ldc\d+(_bias)?(?:_(gelu_tanh|gelu|tanh))?(_fma)?$/
      .exec(name);
    if (!m) throw new Error(`epilogue: cannot read the GEMM kernel name ${name}`);
    const [M, N] = [Number(m[1]), Number(m[2])], bias = !!m[3];
    const activation = (m[4] ?? "none") as "none" | "gelu" | "gelu_tanh" | "tanh";
    const k = gemmKernel({
      batch: 1,
      M,
      N,
      K: 4,
      lda: 4,
      aBatchStride: 0,
      b: { layout: "packed" },
      ldc: N,
      cBatchStride: 0,
      bias,
      activation,
    }, target);
    const pages = Math.ceil((4 * (M * 4 + 4 * N + N + M * N) + 4096) / 65536) + 1;
    const wasm = await assembleWat("epilogue.wat", kernelModuleWat([k], WASM_HELPERS, pages));
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    const ex = new WebAssembly.Instance(await WebAssembly.compile(wasm as BufferSource), { env: { memory } })
      .exports as Record<string, Kernel>;
    const a = 64, b = a + 16 * M, bi = b + 16 * N, c = bi + 4 * N;
    const f32 = new Float32Array(memory.buffer);
    f32.fill(0.25, a / 4, c / 4);
    const call = bias ? () => ex[k.name](a, b, bi, c, 0, 1) : () => ex[k.name](a, b, c, 0, 1);
    out.set(name, timeInterleaved([call])[0] * 1e3);
  }
  return out;
}

/** `--profile`: each artifact's time by op over `ROUNDS` more profiled runs, ms per run. */
async function printProfiles(
  models: Awaited<ReturnType<typeof loadCompiled>>[],
  given: Record<string, unknown>,
  kept: number,
) {
  const byOp = models.map(() => new Map<string, number>());
  for (let round = 0; round < ROUNDS; round++) {
    models.forEach((mm) => mm.run(given as Parameters<typeof mm.run>[0], { profile: true }));
  }
  models.forEach((mm, i) => {
    for (const s of mm.profile()) byOp[i].set(s.op, (byOp[i].get(s.op) ?? 0) + s.ms);
  });
  // The products by weight shape (N x K, from the kernel names), each artifact's ms per run.
  const byShape = models.map(() => new Map<string, number>());
  models.forEach((mm, i) => {
    for (const s of mm.profile()) {
      const shape = /_n(\d+)_k(\d+)_/.exec(s.kernel);
      if (!shape || !/^(dense|bsr_dense)/.test(s.op)) continue;
      const key = `${shape[1]}x${shape[2]}`;
      byShape[i].set(key, (byShape[i].get(key) ?? 0) + s.ms);
    }
  });
  const ops = [...new Set(byOp.flatMap((m) => [...m.keys()]))];
  ops.sort((a, b) => (byOp[0].get(b) ?? 0) - (byOp[0].get(a) ?? 0));
  console.log(`  profile (ms per run, mean of ${ROUNDS}): ${"op".padEnd(28)} dense   indexed  grouped`);
  for (const op of ops) {
    const cells = byOp.map((m) => (m.get(op) ?? 0).toFixed(1).padStart(8)).join(" ");
    console.log(`    ${op.padEnd(58)}${cells}`);
  }
  for (const shape of byShape[0].keys()) {
    const cells = byShape.map((m) => (m.get(shape) ?? 0).toFixed(1).padStart(8)).join(" ");
    const ratio = (i: number) => ((byShape[i].get(shape) ?? 0) / byShape[0].get(shape)!).toFixed(3);
    console.log(`    products ${shape.padEnd(49)}${cells}  (${ratio(1)}x, ${ratio(2)}x)`);
  }
  // The floor: the dense model's other ops (the pooler and classifier among them) and its
  // encoder products' epilogues as they are, the rest of those products (the multiply-adds) cut
  // to the kept share at the dense GEMM's rate.
  const steps = models[0].profile().filter((s) => s.op === "dense" && s.kernel.includes(`_m${M}_`));
  const calls = new Map<string, number>();
  for (const s of steps) calls.set(s.kernel, (calls.get(s.kernel) ?? 0) + 1);
  const perCall = await epilogueMs([...calls.keys()]);
  const epilogues = [...calls].reduce((sum, [k, n]) => sum + n * perCall.get(k)!, 0);
  const products = steps.reduce((sum, s) => sum + s.ms, 0);
  const total = [...byOp[0].values()].reduce((a, b) => a + b, 0);
  const other = total - products;
  const floor = other + epilogues + kept * (products - epilogues);
  const flops = steps.reduce((sum, s) => sum + s.flops, 0);
  const rate = flops / (products - epilogues) / 1e6, peak = await fmaPeakGflops();
  const atPeak = other + epilogues + kept * (products - epilogues) * rate / peak;
  console.log(
    `  floor (dense profile): other ops ${other.toFixed(1)} ms + product epilogues ${
      epilogues.toFixed(1)
    } ms + ${kept.toFixed(3)} x multiply-adds ${(products - epilogues).toFixed(1)} ms = ${
      floor.toFixed(1)
    } ms, ${(floor / total).toFixed(3)}x the dense profile's ${total.toFixed(1)} ms (grouped profile: ${
      ([...byOp[2].values()].reduce((a, b) => a + b, 0) / total).toFixed(3)
    }x)`,
  );
  console.log(
    `  the dense GEMMs' multiply-adds ran at ${rate.toFixed(1)} GFLOP/s, ${
      (100 * rate / peak).toFixed(0)
    }% of a loop of f32x4 FMAs (${peak.toFixed(1)} GFLOP/s); at that peak the floor is ${
      atPeak.toFixed(1)
    } ms, ${(atPeak / total).toFixed(3)}x`,
  );
}

/** The index-driven variant the cost model picks when the grouped one is not a candidate. */
function defaultIndexed(spec: BsrSpec) {
  return indexedBsrVariant(spec).variant;
}

async function model(): Promise<void> {
  const seq = M;
  const { m, weights, inputs } = syntheticWorkload("bert-base", seq);
  const f = m.funcs[0];
  const given = Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data]));
  const log = () => {};
  const t0 = performance.now();
  // `--prune-patterns`: the prune pass groups block rows itself (prune{patterns=K}); else
  // magnitude pruning, then each weight's pattern replaced by GROUPS synthetic shared ones.
  const real = Deno.args.includes("--prune-patterns");
  const pruned = await compile({ module: m, weights }, {
    pipeline: `prune{sparsity=0.8 block=${BLOCK}${
      real ? ` patterns=${GROUPS}` : ""
    }},bsr-lower{block=${BLOCK}}`,
    codegen: false,
    log,
  });
  const tensors = new Map<string, Tensor>();
  let seed = 11;
  for (const w of pruned.module.weights.values()) {
    const t = pruned.weights.get(w);
    if (!w.type.sparse || real) {
      tensors.set(w.name, t);
      continue;
    }
    const [N, K] = w.type.shape, [R, C] = w.type.sparse.block;
    const { indptr, indices } = groupedPattern(seed++, Math.ceil(N / R), Math.ceil(K / C), GROUPS);
    w.type = { ...w.type, sparse: { ...w.type.sparse, nnzBlocks: indices.length } };
    const r = rng(seed);
    const data = Float32Array.from({ length: indices.length * R * C }, () => (r() - 0.5) * 0.08);
    tensors.set(w.name, new BsrTensor(w.type, data, indices, indptr));
  }
  const sparseWeights = memoryStore(tensors);
  // The kept share of the pruned products' weights (the multiply-adds left).
  let keptWeights = 0, prunedWeights = 0;
  for (const w of pruned.module.weights.values()) {
    if (!w.type.sparse) continue;
    const t = tensors.get(w.name) as BsrTensor, [R, C] = w.type.sparse.block;
    keptWeights += t.indices.length * R * C;
    prunedWeights += w.type.shape[0] * w.type.shape[1];
  }
  const kept = keptWeights / prunedWeights;
  const pipeline = "canonicalize,cse,fuse,dce";
  const dense = await compile({ module: m, weights }, { log });
  let grouped = await compile({ module: pruned.module, weights: sparseWeights }, { pipeline, log });
  // Force the index-driven kernels through a tuning log naming the cost model's index-driven pick
  // (`--force-grouped`: and the row-grouped artifact's through one naming the row-grouped kernel).
  const forced = emptyLog(), forcedGrouped = emptyLog();
  for (const op of grouped.module.funcs[0].body) {
    if (op.name !== "bsr_dense") continue;
    const w = sparseWeights.get(grouped.module.weights.get(op.operands[1].name)!) as BsrTensor;
    const [N, K] = w.sparseType.shape, block = w.sparseType.sparse!.block as [number, number];
    const spec: BsrSpec = {
      M: seq,
      N,
      K,
      block,
      indptr: w.indptr,
      indices: w.indices,
      bias: true,
      activation: "none",
    };
    const density = (w.indices.length * block[0] * block[1]) / (N * K);
    const key = tuningKey({ ...spec, density }, target.relaxedSimd, cpuModel());
    const date = new Date().toISOString();
    forced.entries[key] = { best: variantKey(defaultIndexed(spec)), timings: {}, date };
    forcedGrouped.entries[key] = { best: variantKey(GROUPED_VARIANT), timings: {}, date };
  }
  if (FORCE_GROUPED) {
    grouped = await compile({ module: pruned.module, weights: sparseWeights }, {
      pipeline,
      log,
      tuning: { log: forcedGrouped },
    });
  }
  const indexed = await compile({ module: pruned.module, weights: sparseWeights }, {
    pipeline,
    log,
    tuning: { log: forced },
  });
  console.log(
    `\nmodel: synthetic BERT-base S=${seq} batch 1, 80% in ${BLOCK} blocks, ${GROUPS} row patterns per matrix (${
      real ? "prune{patterns}" : "synthetic"
    }; built in ${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
  const g = grouped.artifact!.report, ix = indexed.artifact!.report;
  const variants = (r: typeof g) => [...new Set(r.schedules.map((s) => s.variant))].join(", ");
  console.log(`  grouped artifact: ${variants(g)}; ${groupedSummary(g) ?? "no row-grouped kernels"}`);
  console.log(`  indexed artifact: ${variants(ix)}`);
  console.log(
    `  wasm: dense ${(dense.artifact!.report.wasmBytes.relaxed / 1024).toFixed(0)} KiB, indexed ${
      (ix.wasmBytes.relaxed / 1024).toFixed(0)
    } KiB, grouped ${(g.wasmBytes.relaxed / 1024).toFixed(0)} KiB`,
  );
  const models = await Promise.all(
    [dense, indexed, grouped].map((c) =>
      loadCompiled(c.artifact!, { threads: 1, noRelaxedSimd: !target.relaxedSimd })
    ),
  );
  try {
    const outs = models.map((mm) => mm.run(given));
    const name = f.returns[0].name;
    let diff = 0;
    outs[1][name].forEach((v, i) => (diff = Math.max(diff, Math.abs(v - outs[2][name][i]))));
    const show = (o: Float32Array) => [...o.slice(0, 4)].map((v) => v.toPrecision(6)).join(", ");
    console.log(
      `  logits: indexed [${show(outs[1][name])}], grouped [${show(outs[2][name])}]: max abs diff ${
        diff.toExponential(2)
      }`,
    );
    const samples: number[][] = models.map(() => []);
    for (let round = 0; round < (DRY ? 0 : ROUNDS); round++) {
      models.forEach((mm, i) => {
        const t = performance.now();
        mm.run(given);
        samples[i].push(performance.now() - t);
      });
    }
    const [d, i, gr] = samples.map((xs) => (xs.length ? median(xs) : NaN));
    if (PROFILE) await printProfiles(models, given, kept);
    console.log(
      `  median of ${ROUNDS} interleaved runs, 1 thread: dense ${d.toFixed(1)} ms, indexed ${
        i.toFixed(1)
      } ms (${(i / d).toFixed(3)}x), grouped ${gr.toFixed(1)} ms (${(gr / d).toFixed(3)}x)`,
    );
  } finally {
    for (const mm of models) mm.close();
  }
}

if (!Deno.args.includes("--no-kernels")) await kernels();
if (!Deno.args.includes("--no-model")) await model();
