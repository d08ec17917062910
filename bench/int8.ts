/**
 * `deno task bench int8`: INT8 on top of sparsity. BERT-base (synthetic, seeded), S=128, batch 1:
 * Sparrow f32 dense, int8 dense, f32 at 80% 4x4 BSR and int8 at 80% 4x4 BSR, against
 * onnxruntime-node on the f32 model and on the same model quantized by Sparrow's `quantize` pass
 * and exported with its ONNX exporter (dynamic int8 quantization of every encoder MatMul:
 * MatMulInteger), at 1 and 2 threads, in one run. Outputs are checked first: the f32 artifacts
 * against onnxruntime-node on the same model (1e-3), the int8 ones against the reference
 * interpreter (within 5% of the largest logit: see below).
 * Rounds are interleaved; medians.
 * Also: the int8 GEMM's GOP/s per core beside the f32 GEMM's GFLOP/s (the profile of one thread),
 * and the weights each artifact holds.
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { exportOnnx } from "../frontend/onnx/export.ts";
import type { BertPresetName } from "../frontend/synthetic_bert.ts";
import {
  compile,
  type CompileResult,
  interpret,
  loadCompiled,
  type Module,
  type WeightStore,
  writeArtifact,
} from "../mod.ts";
import { type Contender, type Feeds, ortNode, sparrow, syntheticWorkload } from "./peers.ts";
import { maxAbsDiff, summarize } from "./stats.ts";
import { machineInfo } from "./table1/machine.ts";

/** The four Sparrow builds: pipeline and the peer model (f32 or int8, dense or pruned) it is checked against. */
const PRUNE = "prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4}";
const BUILDS = [
  { name: "sparrow f32 dense", pipeline: "canonicalize,cse,fuse,dce" },
  { name: "sparrow int8 dense", pipeline: "canonicalize,cse,fuse,quantize,dce" },
  { name: "sparrow f32 80% 4x4", pipeline: `canonicalize,cse,${PRUNE},fuse,dce` },
  { name: "sparrow int8 80% 4x4", pipeline: `canonicalize,cse,${PRUNE},fuse,quantize,dce` },
] as const;

/** Mean GFLOP/s (or GOP/s) of the steps of op `op` over `runs` profiled runs of the artifact in `dir`, one thread. */
async function opRate(dir: string, feeds: Feeds, op: RegExp, runs: number): Promise<number> {
  const model = await loadCompiled(dir, { threads: 1 });
  try {
    model.run(feeds);
    for (let i = 0; i < runs; i++) model.run(feeds, { profile: true });
    const steps = model.profile().filter((s) => op.test(s.op));
    const ms = steps.reduce((a, s) => a + s.ms, 0), flops = steps.reduce((a, s) => a + s.flops, 0);
    return flops / (ms * 1e6);
  } finally {
    model.close();
  }
}

/** Runs the benchmark with command-line `args`. */
export async function int8Bench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string", default: "bert-base" },
      seq: { type: "string", default: "128" },
      repeat: { type: "string", default: "6" },
      threads: { type: "string", default: "1,2" },
      out: { type: "string", default: "out/bench/int8" },
    },
  });
  const seq = Number(values.seq), repeat = Number(values.repeat);
  const threadCounts = values.threads.split(",").map(Number);
  if (threadCounts.some((t) => !Number.isInteger(t) || t < 1 || t > 16) || !(repeat >= 1)) {
    throw new Error("--threads must list integers from 1 to 16 and --repeat be a positive integer");
  }
  const { m, weights, inputs, feeds } = syntheticWorkload(values.model as BertPresetName, seq);
  await Deno.mkdir(values.out, { recursive: true });

  // Build every artifact, and the ONNX model each is checked against: the module the passes left
  // (int8 ops exported as MatMulInteger; BSR weights exported densified).
  const built: { name: string; dir: string; result: CompileResult; onnx: Uint8Array }[] = [];
  for (const b of BUILDS) {
    const t0 = performance.now();
    const result = await compile({ module: m, weights }, { pipeline: b.pipeline, log: () => {} });
    const dir = join(values.out, b.name.replace(/[^a-z0-9]+/g, "-"));
    await writeArtifact(result, dir);
    const onnx = exportOnnx(result.module as Module, result.weights as WeightStore).bytes;
    console.error(`built ${b.name} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${b.pipeline}`);
    built.push({ name: b.name, dir, result, onnx });
  }

  // Outputs first. f32: each artifact against onnxruntime-node on the same model, within 1e-3. int8:
  // against the reference interpreter on the same module (onnxruntime computes the f32 ops around the
  // int8 ones differently by ulps, which moves rounding steps of the quantizer over 12 layers: its
  // difference is printed, not checked).
  for (const b of built) {
    const peer = await ortNode(b.onnx, 1, feeds);
    const fromOrt = await peer.run();
    await peer.close();
    const mine = await sparrow(b.name, b.dir, 2, feeds);
    const got = await mine.run();
    await mine.close();
    const dOrt = maxAbsDiff(got, fromOrt);
    let d = dOrt, against = "onnxruntime-node on its model";
    if (b.name.includes("int8")) {
      const [want] = interpret(b.result.module, inputs, b.result.weights);
      d = maxAbsDiff(got, want.data);
      against = `the interpreter on its module (onnxruntime-node: ${dOrt.toExponential(2)})`;
    }
    // int8: the artifact's f32 ops (FMA, other summation orders) differ from the interpreter's by ulps,
    // and a quantizer that sees a value an ulp away may round it one step the other way; over 12
    // layers such flips add up (the kernels themselves match the interpreter bit for bit on equal
    // inputs: tests/codegen/qgemm_test.ts). So int8 is checked within 5% of the largest logit.
    const limit = b.name.includes("int8") ? 0.05 * Math.max(...Array.from(got, Math.abs)) : 1e-3;
    console.error(
      `  ${b.name}: max abs diff against ${against} ${d.toExponential(2)} (limit ${limit.toExponential(2)})`,
    );
    if (!(d <= limit)) throw new Error(`${b.name} differs from ${against} by ${d}`);
  }

  const contenders: Contender[] = [];
  for (const t of threadCounts) {
    for (const b of built) contenders.push(await sparrow(b.name, b.dir, t, feeds));
    contenders.push({ ...(await ortNode(built[0].onnx, t, feeds)), name: "onnxruntime-node f32 dense" });
    contenders.push({ ...(await ortNode(built[1].onnx, t, feeds)), name: "onnxruntime-node int8 dense" });
  }
  const times = contenders.map(() => [] as number[]);
  for (const k of contenders) await k.run(); // warm-up
  for (let r = 0; r < repeat; r++) {
    for (const [i, k] of contenders.entries()) {
      await new Promise((ok) => setTimeout(ok, 20)); // let other runtimes' spinning threads settle
      const t = performance.now();
      await k.run();
      times[i].push(performance.now() - t);
    }
    console.error(`  round ${r + 1}/${repeat}`);
  }
  for (const k of contenders) await k.close();

  const rows = contenders.map((k, i) => ({ name: k.name, threads: k.threads, ms: summarize(times[i]) }));
  const ms = (name: string, t: number) => rows.find((r) => r.name === name && r.threads === t)?.ms.median;
  const names = [...new Set(rows.map((r) => r.name))];
  const lines = [
    `| contender | ${threadCounts.map((t) => `${t} thread${t > 1 ? "s" : ""}, ms`).join(" | ")} |`,
    `|---|${threadCounts.map(() => "---:").join("|")}|`,
    ...names.map((n) => `| ${n} | ${threadCounts.map((t) => ms(n, t)?.toFixed(1) ?? "-").join(" | ")} |`),
  ];
  const facts = threadCounts.map((t) => {
    const f32 = ms("sparrow f32 dense", t)!,
      i8 = ms("sparrow int8 dense", t)!,
      sp = ms("sparrow int8 80% 4x4", t)!;
    const ortF = ms("onnxruntime-node f32 dense", t)!, ortI = ms("onnxruntime-node int8 dense", t)!;
    return `${t} thread(s): int8 dense is ${(f32 / i8).toFixed(2)}x faster than f32 dense; ` +
      `int8 80% 4x4 takes ${(sp / ortF).toFixed(2)}x onnxruntime-node's f32 dense time and ` +
      `${(sp / ortI).toFixed(2)}x its int8 dense time`;
  });
  const gemm = await opRate(built[0].dir, feeds, /^dense/, 3);
  const qgemm = await opRate(built[1].dir, feeds, /^qdense$/, 3);
  facts.push(
    `one thread: the int8 GEMM (qdense) runs at ${qgemm.toFixed(1)} GOP/s, the f32 GEMM (dense) at ${
      gemm.toFixed(1)
    } GFLOP/s`,
  );
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const bytes = built.map((b) => ({ name: b.name, weights: b.result.artifact!.plan.memory.weights.size }));
  facts.push(`weights: ${bytes.map((b) => `${b.name} ${mib(b.weights)} MiB`).join(", ")}`);
  const machine = await machineInfo();
  console.log(`${m.name}, S=${seq}, batch 1; medians over ${repeat} interleaved rounds; ${machine.cpu}\n`);
  console.log(lines.join("\n"));
  console.log(`\n${facts.join("\n")}`);
  await Deno.writeTextFile(
    join(values.out, `int8-${m.name}-s${seq}.json`),
    JSON.stringify({ machine, seq, repeat, rows, gemm, qgemm, bytes }, null, 1) + "\n",
  );
}
