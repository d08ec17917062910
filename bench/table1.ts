/**
 * `deno task bench table1 [--seq 128|384] [--repeat N] [--threads 1,2] [--quick] [--no-web]
 * [--out DIR] [--fresh] [--tune [--tuning-log FILE]] [--reload] [--blocks 1x1,1x32] [--model bert-base]
 * [--sparsity 0.8] [--warmup 1] [--build-only]`: the paper's Table 1 and Figure 2 (Guo & Huang 2021) in one command.
 *
 * Synthetic BERT-base (seeded weights, no classifier head: the output, which the checks compare,
 * is the last hidden state), batch 1. Every encoder dense weight is pruned to 80%
 * block sparsity (`prune{sparsity=0.8 block=RxC}`, the same seed and scores for every method)
 * for each block shape of the paper, and compiled twice: with `bsr-lower` (block-sparse
 * kernels, the paper's TVM⁺) and without it (dense kernels over the pruned weights, the
 * paper's negative control, "unmodified compiler"). Peers run the dense model:
 * onnxruntime-node, onnxruntime-web, Sparrow dense (and PyTorch eager when `python3` has torch;
 * not implemented, the column is omitted with a note).
 *
 * Before anything is timed, every contender's output is checked (max abs ≤ 1e-3): the dense
 * contenders against onnxruntime-node on the dense model; the pruned ones (with and without
 * bsr-lower) against onnxruntime-node on the same pruned weights, and against each other. A
 * failing check aborts: a fast wrong kernel never reaches the table.
 *
 * Timing: per thread count, every contender runs once per round (rounds interleaved, so drift
 * hits all alike), after a warm-up run; mean and standard deviation over the rounds. When the
 * loaded artifacts would not fit in memory, each pruned artifact is loaded, warmed up, timed and
 * closed within its round instead.
 *
 * Compiled artifacts are cached under `--out/cache/<model>-s<seq>-<id>-<key>/`, the key hashing
 * the model config, the pipeline text, the seed (and `--tune`) and a fingerprint of the
 * compiler's sources (bench/fingerprint.ts); a re-run reuses them, a compiler change rebuilds
 * them, and `--fresh` rebuilds them anyway. Sparse schedules come from the cost model, or with `--tune` from timing each candidate (tuning log
 * `--out/cache/tuning-log.json` by default). `--reload` loads each pruned artifact in every
 * round (as when they do not fit in memory together). `--build-only` fills the cache and stops.
 *
 * Writes `--out/table1.{json,md,svg}` (default out/bench). `--quick`: bert-mini, three block
 * shapes, two repeats, no onnxruntime-web — a smoke test for CI.
 *
 * The shared machinery (workload, cached builds, checked and interleaved timing) is exported for
 * `bench/sweep.ts`.
 */

import { join } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { exportOnnx } from "../frontend/onnx/export.ts";
import {
  type BertConfig,
  bertConfig,
  type BertPresetName,
  buildBertModule,
  isBertPreset,
  syntheticBertWeights,
} from "../frontend/synthetic_bert.ts";
import { seededInputs } from "../ir/inputs.ts";
import { readTuningLog, type TuningLog } from "../codegen/tuning_log.ts";
import {
  compile,
  memoryStore,
  type Module,
  Tensor,
  tensorType,
  type WeightStore,
  writeArtifact,
} from "../mod.ts";
import { type Contender, type Feeds, ortNode, ortWeb, sparrow } from "./peers.ts";
import { type HLine, linePlot, PEER_COLORS, type Series, THREAD_COLORS, THREAD_DASHES } from "../cli/plot.ts";
import { compilerFingerprint } from "./fingerprint.ts";
import { maxAbsDiff, summarize, type Summary } from "./stats.ts";

/** The block shapes of the paper's Table 1 (plus 32x1, the column-block counterpart of 1x32). */
export const TABLE1_BLOCKS = [
  "1x1",
  "1x4",
  "1x8",
  "1x16",
  "1x32",
  "1x64",
  "1x128",
  "1x256",
  "1x384",
  "32x1",
  "4x4",
  "8x8",
  "16x16",
  "32x32",
  "64x64",
] as const;

/** The block shapes of `--quick`. */
export const QUICK_BLOCKS = ["1x1", "1x32", "16x16"] as const;

/** The tolerance of every output check (max abs difference). */
export const TOLERANCE = 1e-3;

/** The passes before pruning (as in `bench dense`, whose pipeline is PREFIX,fuse,dce). */
const PREFIX = "canonicalize,cse";

/** A failure the benchmark reports as one `error:` line. */
export class BenchError extends Error {}

// ---------------------------------------------------------------------------------------------
// The workload

/** The model, its weights, its inputs and its dense ONNX export. */
export interface Workload {
  config: BertConfig;
  name: string;
  module: Module;
  base: WeightStore;
  feeds: Feeds;
  /** The dense model as ONNX, and where it is written (onnxruntime-web reads the file). */
  onnx: Uint8Array;
  onnxPath: string;
  cacheRoot: string;
}

/** Builds the synthetic model `preset` at sequence length `seq`, caching its ONNX export under `out/cache`. */
export async function workload(preset: string, seq: number, out: string): Promise<Workload> {
  if (!isBertPreset(preset)) throw new BenchError(`unknown model '${preset}'`);
  if (!Number.isInteger(seq) || seq < 1 || seq > 512) {
    throw new BenchError(`--seq must be an integer from 1 to 512, got ${seq}`);
  }
  // Without the classifier head (BertModel): the output is the last hidden state [1, S, H], so
  // the checks see every token, not two logits that only see [CLS] (flipping the sign of 0.1%
  // of a BSR artifact's weights moved the logits by 1.4e-5, the hidden state by 1.8). The head
  // is under 0.1% of the FLOPs.
  const config = bertConfig(preset as BertPresetName, { seq, head: false });
  const module = buildBertModule(config, "w.safetensors");
  const tensors = syntheticBertWeights(config).map((t) =>
    [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)] as const
  );
  const base = memoryStore(new Map(tensors));
  const inputs = seededInputs(module.funcs[0], 0);
  const feeds: Feeds = Object.fromEntries(
    module.funcs[0].params.map((p, i) => [p.name, BigInt64Array.from(inputs[i].data, (v) => BigInt(v))]),
  );
  const cacheRoot = join(out, "cache");
  await Deno.mkdir(cacheRoot, { recursive: true });
  const onnxPath = join(
    cacheRoot,
    `${module.name}-s${seq}-${await cacheKey({ config, what: "dense onnx" })}.onnx`,
  );
  let onnx: Uint8Array;
  try {
    onnx = await Deno.readFile(onnxPath);
  } catch {
    onnx = exportOnnx(module, base).bytes;
    await writeAtomic(onnxPath, onnx);
  }
  return { config, name: module.name, module, base, feeds, onnx, onnxPath, cacheRoot };
}

/** A short hex SHA-256 of `value` as JSON. */
export async function cacheKey(value: unknown): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(value)));
  return [...new Uint8Array(digest)].slice(0, 8).map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Writes `data` to `path` through a temporary file and a rename. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.partial-${Deno.pid}`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data);
  else await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

// ---------------------------------------------------------------------------------------------
// Cached builds

/** A compiled artifact in the cache. */
export interface Artifact {
  id: string;
  dir: string;
  key: string;
  pipeline: string;
  /** Whether it was reused from the cache. */
  cached: boolean;
  /** Passes + codegen wall time when it was compiled, in ms. */
  compileMs: number;
  /** Pass statistics, `<pass>.<name>`. */
  stats: Record<string, number>;
  /** Bytes of its wasm memory (weights + arena). */
  memoryBytes: number;
}

/** Artifacts built from one pruning (or none): the pipeline is `PREFIX[,prune],tail`. */
export interface Family {
  /** The prune pass text, e.g. `prune{sparsity=0.8 block=1x32}`; absent for the dense model. */
  prune?: string;
  /** The artifacts to build: id → pipeline tail after pruning. */
  tails: Record<string, string>;
}

/** What building a family produced. */
export interface Built {
  artifacts: Record<string, Artifact>;
  /** onnxruntime-node's output on the pruned weights (families with `prune`). */
  reference?: Float32Array;
}

/** How `buildFamily` builds. */
export interface BuildOptions {
  /** Recompile even when the cache has the artifact. */
  fresh?: boolean;
  /** Time the sparse products' schedules (`compile`'s `tuning.tune`), reading and updating this log. */
  tune?: { log: TuningLog; path: string };
  /** Called once per artifact or reference done. */
  onStep?: (what: string) => void;
}

/** Reads the tuning log at `path` for `--tune` (a missing file is an empty log). */
export async function tuningOption(path: string): Promise<{ log: TuningLog; path: string }> {
  try {
    return { log: await readTuningLog(path), path };
  } catch (e) {
    throw new BenchError(`--tuning-log: ${(e as Error).message}`);
  }
}

/** The full pipeline text of a family's artifact. */
export function pipelineText(prune: string | undefined, tail: string): string {
  return [PREFIX, prune, tail].filter(Boolean).join(",");
}

/** The metadata written beside a cached artifact. */
interface Meta {
  pipeline: string;
  config: BertConfig;
  seed: number;
  compileMs: number;
  stats: Record<string, number>;
  log: string[];
}

function statsOf(
  r: { stats: readonly { pass: string; name: string; value: number }[] },
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of r.stats) out[`${s.pass}.${s.name}`] = (out[`${s.pass}.${s.name}`] ?? 0) + s.value;
  return out;
}

async function memoryBytesOf(dir: string): Promise<number> {
  const plan = JSON.parse(await Deno.readTextFile(join(dir, "plan.json")));
  return (plan.memory?.pages ?? 0) * 65536;
}

/**
 * Builds (or reuses from the cache) every artifact of `family`, and for a pruned family the
 * onnxruntime-node reference output on the pruned weights. `onStep` is called once per artifact
 * or reference done.
 */
export async function buildFamily(
  w: Workload,
  family: Family,
  options: BuildOptions = {},
): Promise<Built> {
  const seed = w.config.seed;
  const plans = await Promise.all(
    Object.entries(family.tails).map(async ([id, tail]) => {
      const pipeline = pipelineText(family.prune, tail);
      const key = await cacheKey({
        config: w.config,
        pipeline,
        seed,
        compiler: await compilerFingerprint(),
        ...(options.tune ? { tune: true } : {}),
      });
      const dir = join(w.cacheRoot, `${w.name}-s${w.config.seq}-${id}-${key}`);
      const cached = !options.fresh && await exists(join(dir, "plan.json")) &&
        await exists(join(dir, "bench.json"));
      return { id, tail, pipeline, key, dir, cached };
    }),
  );
  let refFile: string | undefined;
  let reference: Float32Array | undefined;
  if (family.prune) {
    const refKey = await cacheKey({
      config: w.config,
      pipeline: pipelineText(family.prune, ""),
      seed,
      what: "ort reference",
      compiler: await compilerFingerprint(),
    });
    refFile = join(w.cacheRoot, `reference-${w.name}-s${w.config.seq}-${refKey}.f32`);
    if (!options.fresh && await exists(refFile)) {
      const bytes = await Deno.readFile(refFile);
      reference = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      options.onStep?.(`reference ${family.prune} (cached)`);
    }
  }

  // Pruning, shared by the family's artifacts; run only when something is missing.
  let pruned:
    | { module: Module; store: WeightStore; stats: Record<string, number>; log: string[]; ms: number }
    | undefined;
  const prunedOnce = async () => {
    if (pruned) return pruned;
    const log: string[] = [];
    const t0 = performance.now();
    if (!family.prune) {
      pruned = { module: w.module, store: w.base, stats: {}, log, ms: 0 };
      return pruned;
    }
    const r = await compile({ module: w.module, weights: w.base }, {
      pipeline: pipelineText(family.prune, ""),
      codegen: false,
      log: (l: string) => log.push(l),
    });
    pruned = { module: r.module, store: r.weights, stats: statsOf(r), log, ms: performance.now() - t0 };
    return pruned;
  };

  if (family.prune && !reference) {
    const p = await prunedOnce();
    // The exporter takes the original IR: pruning changes only weight data, not the IR.
    const onnx = exportOnnx(w.module, p.store).bytes;
    const ort = await ortNode(onnx, 1, w.feeds);
    try {
      reference = await ort.run();
    } finally {
      await ort.close();
    }
    await writeAtomic(refFile!, new Uint8Array(reference.buffer, reference.byteOffset, reference.byteLength));
    options.onStep?.(`reference ${family.prune}`);
  }

  const artifacts: Record<string, Artifact> = {};
  for (const a of plans) {
    if (a.cached) {
      const meta = JSON.parse(await Deno.readTextFile(join(a.dir, "bench.json"))) as Meta;
      artifacts[a.id] = {
        id: a.id,
        dir: a.dir,
        key: a.key,
        pipeline: a.pipeline,
        cached: true,
        compileMs: meta.compileMs,
        stats: meta.stats,
        memoryBytes: await memoryBytesOf(a.dir),
      };
      options.onStep?.(`${a.id} (cached)`);
      continue;
    }
    const p = await prunedOnce();
    const log = [...p.log];
    const t0 = performance.now();
    let r;
    try {
      r = await compile({ module: p.module, weights: p.store }, {
        pipeline: a.tail,
        log: (l: string) => log.push(l),
        tuning: options.tune ? { tune: true, log: options.tune.log } : {},
      });
    } catch (e) {
      throw new BenchError(`cannot compile '${a.pipeline}': ${(e as Error).message}`);
    }
    const stats = { ...p.stats, ...statsOf(r) };
    if (/bsr-lower/.test(a.tail) && stats["bsr-lower.weights"] !== stats["prune.weights"]) {
      throw new BenchError(
        `${a.pipeline}: bsr-lower lowered ${stats["bsr-lower.weights"] ?? 0} of the ${
          stats["prune.weights"] ?? 0
        } pruned weights`,
      );
    }
    const compiled = r.artifact!;
    if (options.tune && compiled.report.tuned > 0) {
      await writeAtomic(options.tune.path, JSON.stringify(options.tune.log, null, 1) + "\n");
    }
    const compileMs = p.ms + performance.now() - t0;
    const meta: Meta = { pipeline: a.pipeline, config: w.config, seed, compileMs, stats, log };
    await writeArtifact(r, a.dir, { files: { "bench.json": JSON.stringify(meta, null, 1) + "\n" } });
    artifacts[a.id] = {
      id: a.id,
      dir: a.dir,
      key: a.key,
      pipeline: a.pipeline,
      cached: false,
      compileMs,
      stats,
      memoryBytes: compiled.plan.memory.pages * 65536,
    };
    options.onStep?.(a.id);
  }
  return { artifacts, reference };
}

// ---------------------------------------------------------------------------------------------
// Checked, interleaved timing

/** One contender to time, not yet loaded. */
export interface Slot {
  /** Unique id, e.g. `bsr 1x32 @2`. */
  id: string;
  threads: number;
  open(): Promise<Contender>;
  /** The output it must reproduce, and what that is. */
  reference: Float32Array;
  referenceName: string;
  /** Another slot (by id, timed earlier in the list) whose output it must also reproduce. */
  alsoMatches?: string;
  /** Estimated memory while loaded, in bytes. */
  bytes: number;
  /** Kept loaded across rounds when memory allows; else loaded in each round. */
  reloadable: boolean;
  /** Where it comes from, for errors (e.g. the artifact folder). */
  source?: string;
}

/** A Sparrow artifact as a slot. */
export function sparrowSlot(
  id: string,
  a: Artifact,
  threads: number,
  feeds: Feeds,
  reference: Float32Array,
  referenceName: string,
  alsoMatches?: string,
): Slot {
  return {
    id,
    threads,
    open: () => sparrow(id, a.dir, threads, feeds),
    reference,
    referenceName,
    alsoMatches,
    bytes: a.memoryBytes,
    reloadable: true,
    source: `${a.cached ? "cached " : ""}artifact ${a.dir}${a.cached ? "; --fresh recompiles" : ""}`,
  };
}

/** A progress bar with ETA on a terminal; silent otherwise. */
export interface Progress {
  start(total: number, stage: string): void;
  tick(detail: string): void;
  stop(): void;
}

/**
 * A cli-progress bar with ETA on stderr when it is a terminal; otherwise (CI logs) a line with
 * the count, elapsed time and ETA at most every 20 s.
 */
export function progressBar(): Progress {
  const tty = Deno.stderr.isTerminal();
  const bar = tty
    ? new cliProgress.SingleBar({
      format:
        "{stage} [{bar}] {value}/{total} | {duration_formatted} elapsed, ETA {eta_formatted} | {detail}",
      stream: process.stderr,
      etaBuffer: 20,
      hideCursor: true,
    })
    : undefined;
  let active = false;
  let stage = "", total = 0, done = 0, t0 = 0, last = 0;
  const secs = (ms: number) => `${Math.round(ms / 1000)} s`;
  return {
    start(n, name) {
      if (active) bar?.stop();
      stage = name, total = n, done = 0, t0 = last = performance.now();
      if (!bar) console.error(`${stage}: ${total} steps`);
      bar?.start(total, 0, { stage, detail: "" });
      active = true;
    },
    tick(detail) {
      done++;
      if (bar) return void bar.increment(1, { detail });
      const now = performance.now();
      if (now - last >= 20_000 && done < total) {
        last = now;
        const eta = ((now - t0) / done) * (total - done);
        console.error(`${stage}: ${done}/${total}, ${secs(now - t0)} elapsed, ETA ${secs(eta)} (${detail})`);
      }
    },
    stop() {
      if (active) bar?.stop();
      if (active && !bar) console.error(`${stage}: done in ${secs(performance.now() - t0)}`);
      active = false;
    },
  };
}

/** The outcome of checking a slot. */
export interface Check {
  id: string;
  reference: string;
  maxAbs: number;
  /** Max abs difference against `alsoMatches`, when there is one. */
  pairMaxAbs?: number;
}

/**
 * Nudges V8 into a garbage collection, so that the wasm memories of closed models are freed
 * before more are loaded: allocating large (untouched, so free) ArrayBuffers raises its external
 * memory pressure. Dropping 2 GB of closed memories did not free them; this did, at once.
 */
export async function releaseMemory(): Promise<void> {
  for (let i = 0; i < 16; i++) {
    new ArrayBuffer(256 * 2 ** 20);
    await new Promise((ok) => setTimeout(ok, 5));
  }
}

const settle = () => new Promise((ok) => setTimeout(ok, 20)); // let other runtimes' spinning threads settle

/**
 * Checks then times `slots` (all at one thread count, say): loads each, checks its output
 * (aborting with a BenchError on a mismatch), warms it up, then runs `repeat` interleaved
 * rounds. Returns per-slot times in ms, and the checks.
 */
export async function timeSlots(
  slots: Slot[],
  o: { repeat: number; warmup: number; progress: Progress; budgetBytes: number; reload?: boolean },
): Promise<{ times: Map<string, number[]>; checks: Check[]; resident: boolean }> {
  const total = slots.reduce((n, s) => n + s.bytes, 0);
  const resident = !o.reload && total <= o.budgetBytes;
  const loaded = new Map<string, Contender>();
  const outputs = new Map<string, Float32Array>();
  const checks: Check[] = [];
  const times = new Map(slots.map((s) => [s.id, [] as number[]]));
  try {
    for (const s of slots) {
      const k = await s.open();
      loaded.set(s.id, k);
      const y = await k.run();
      const d = maxAbsDiff(y, s.reference);
      const from = s.source ? ` [${s.source}]` : "";
      const check: Check = { id: s.id, reference: s.referenceName, maxAbs: d };
      if (!(d <= TOLERANCE)) {
        throw new BenchError(
          `${s.id}: output differs from ${s.referenceName} by ${d} (max abs; tolerance ${TOLERANCE}); ` +
            `not timing a wrong kernel${from}`,
        );
      }
      if (s.alsoMatches) {
        const other = outputs.get(s.alsoMatches);
        if (!other) throw new Error(`internal: ${s.id} checks against ${s.alsoMatches}, which has not run`);
        const e = maxAbsDiff(y, other);
        check.pairMaxAbs = e;
        if (!(e <= TOLERANCE)) {
          throw new BenchError(
            `${s.id}: output differs from ${s.alsoMatches} (same pruned weights) by ${e} (max abs; ` +
              `tolerance ${TOLERANCE})${from}`,
          );
        }
      }
      outputs.set(s.id, y);
      checks.push(check);
      for (let i = 0; i < o.warmup; i++) await k.run();
      if (!resident && s.reloadable) {
        await k.close();
        loaded.delete(s.id);
      }
      o.progress.tick(`checked ${s.id} (${d.toExponential(1)})`);
    }
    for (let r = 0; r < o.repeat; r++) {
      for (const s of slots) {
        let k = loaded.get(s.id);
        const reload = !k;
        if (!k) {
          k = await s.open();
          for (let i = 0; i < Math.max(1, o.warmup); i++) await k.run();
        }
        await settle();
        const t = performance.now();
        await k.run();
        times.get(s.id)!.push(performance.now() - t);
        if (reload) await k.close();
        o.progress.tick(`round ${r + 1}/${o.repeat}: ${s.id}`);
      }
      if (!resident) await releaseMemory();
    }
  } finally {
    for (const k of loaded.values()) await k.close();
    await releaseMemory();
  }
  return { times, checks, resident };
}

/** The peers on the dense model at `threads` threads, as slots. */
export function peerSlots(
  w: Workload,
  dense: Artifact,
  reference: Float32Array,
  threads: number,
  web: boolean,
): Slot[] {
  const onnxBytes = w.onnx.byteLength;
  const ref = "onnxruntime-node (dense, 1 thread)";
  const slots: Slot[] = [
    {
      id: `onnxruntime-node @${threads}`,
      threads,
      open: () => ortNode(w.onnx, threads, w.feeds),
      reference,
      referenceName: ref,
      bytes: 2 * onnxBytes,
      reloadable: false,
    },
  ];
  if (web) {
    slots.push({
      id: `onnxruntime-web @${threads}`,
      threads,
      open: () => ortWeb(w.onnxPath, threads, w.feeds),
      reference,
      referenceName: ref,
      bytes: 2 * onnxBytes,
      reloadable: false,
    });
  }
  slots.push(sparrowSlot(`sparrow dense @${threads}`, dense, threads, w.feeds, reference, ref));
  return slots;
}

/** onnxruntime-node's output on the dense model, at 1 thread: the dense reference. */
export async function denseReference(w: Workload): Promise<Float32Array> {
  const k = await ortNode(w.onnx, 1, w.feeds);
  try {
    return await k.run();
  } finally {
    await k.close();
  }
}

/**
 * The text of a /proc file. Deno wants --allow-all to read /proc/cpuinfo and --allow-sys for
 * memory info, which the bench task does not grant; it may run programs, so `cat` reads them.
 */
async function procText(file: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(file);
  } catch {
    try {
      const r = await new Deno.Command("cat", { args: [file], stdout: "piped", stderr: "null" }).output();
      return r.success ? new TextDecoder().decode(r.stdout) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Total and available memory in bytes, from /proc/meminfo. */
async function memInfo(): Promise<{ total: number; available: number } | undefined> {
  const text = await procText("/proc/meminfo");
  const kb = (key: string) => Number(text?.match(new RegExp(`^${key}:\\s*(\\d+) kB`, "m"))?.[1]) * 1024;
  const total = kb("MemTotal"), available = kb("MemAvailable");
  return Number.isFinite(total) && Number.isFinite(available) ? { total, available } : undefined;
}

/**
 * How much memory the loaded contenders of one thread count may take: 60% of what is available,
 * once the memory of models closed before has been given back (it is freed some time after the
 * collection: this waits, up to 10 s, until the available memory has stopped growing).
 */
export async function memoryBudget(): Promise<number> {
  let available = (await memInfo())?.available;
  for (let i = 0, stable = 0; i < 25 && available !== undefined && stable < 3; i++) {
    await releaseMemory();
    await new Promise((ok) => setTimeout(ok, 400));
    const now = (await memInfo())?.available ?? 0;
    stable = now < available + 64 * 2 ** 20 ? stable + 1 : 0;
    available = Math.max(available, now);
  }
  return 0.6 * (available ?? 8 * 2 ** 30);
}

/** Whether `/usr/bin/python3` can import torch (for the PyTorch eager column). */
export async function torchAvailable(): Promise<boolean> {
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

/** The machine and software the numbers come from. */
export async function machineInfo(): Promise<Record<string, unknown>> {
  const cpu = (await procText("/proc/cpuinfo"))?.match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown";
  const mem = await memInfo();
  const memoryGiB = mem && Math.round((mem.total / 2 ** 30) * 10) / 10;
  let commit: string | undefined;
  try {
    const r = await new Deno.Command("git", {
      args: ["describe", "--always", "--dirty"],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    if (r.success) commit = new TextDecoder().decode(r.stdout).trim();
  } catch { /* no git */ }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memoryGiB,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    commit,
    date: new Date().toISOString(),
  };
}

/** Mean (std) in ms. */
export function fmtMs(s: { mean: number; std: number } | undefined, digits = 1): string {
  return s ? `${s.mean.toFixed(digits)} (${s.std.toFixed(digits)})` : "";
}

/** Parses a thread list `1,2`. */
export function parseThreads(text: string): number[] {
  const ts = text.split(",").map(Number);
  if (ts.length === 0 || !ts.every((t) => Number.isInteger(t) && t >= 1 && t <= 256)) {
    throw new BenchError(`--threads must be a comma-separated list of thread counts, got '${text}'`);
  }
  return [...new Set(ts)];
}

/** Parses a positive integer option. */
export function positiveInt(name: string, text: string, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    throw new BenchError(`--${name} must be an integer ≥ ${min}, got '${text}'`);
  }
  return n;
}

/** Parses a block shape `RxC`. */
export function parseBlock(text: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new BenchError(`not a block shape RxC: '${text}'`);
  return [Number(m[1]), Number(m[2])];
}

/** Runs `body`; a BenchError (or any error) becomes one `error:` line and exit code 1. */
export async function cliMain(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    console.error(`\nerror: ${e instanceof Error ? e.message : e}`);
    if (!(e instanceof BenchError) && e instanceof Error && e.stack) console.error(e.stack);
    Deno.exit(1);
  }
}

// ---------------------------------------------------------------------------------------------
// Table 1

/** Options of `runTable1`. */
export interface Table1Options {
  model: string;
  seq: number;
  repeat: number;
  warmup: number;
  threads: number[];
  blocks: string[];
  sparsity: number;
  web: boolean;
  quick: boolean;
  out: string;
  fresh: boolean;
  /** Tune the sparse schedules with this tuning log (`--tune`). */
  tune?: { log: TuningLog; path: string };
  /** Load the pruned artifacts in every round instead of keeping them loaded (`--reload`). */
  reload?: boolean;
  /** Only build the cache (`--build-only`): compile and compute the references, time nothing. */
  buildOnly?: boolean;
}

/** One row of Table 1: a block shape at a thread count. */
export interface Table1Row {
  block: string;
  threads: number;
  /** Pruned weights compiled without bsr-lower (dense kernels). */
  negativeControl: Summary;
  /** Pruned weights compiled with bsr-lower. */
  bsr: Summary;
  /** BSR / Sparrow dense: mean and std of BSR over the dense mean (as the paper's TVM⁺/Dense). */
  ratio: { mean: number; std: number };
  /** Negative control / Sparrow dense, likewise. */
  negativeControlRatio: { mean: number; std: number };
  check: { negativeControl: number; bsr: number; bsrVsNegativeControl: number };
  /** Blocks and elements bsr-lower stored, and the stored fraction of the weights' elements. */
  bsrStored: { blocks: number; elements: number };
  compileMs: { negativeControl: number; bsr: number };
  cached: { negativeControl: boolean; bsr: boolean };
}

/** Runs Table 1 and writes the JSON, Markdown and SVG; returns the JSON object. */
export async function runTable1(o: Table1Options): Promise<Record<string, unknown>> {
  const progress = progressBar();
  const notes: string[] = [];
  try {
    const tStart = performance.now();
    const w = await workload(o.model, o.seq, o.out);
    const hasTorch = await torchAvailable();
    notes.push(
      hasTorch
        ? "PyTorch eager: torch is importable by /usr/bin/python3, but the PyTorch contender is not implemented; column omitted."
        : "PyTorch eager: /usr/bin/python3 cannot import torch; column omitted.",
    );
    notes.push("TensorFlow column of the paper: not reproduced.");
    if (!o.web) notes.push(`onnxruntime-web: not run (${o.quick ? "--quick" : "--no-web"}).`);
    else {
      notes.push(
        "onnxruntime-web runs in a subprocess; its times include sending the output back as JSON " +
          `(${w.config.seq * w.config.hidden} floats, about 10-15 ms).`,
      );
    }
    notes.push(
      "The model is BertModel (no pooler/classifier): the checked output is the whole last hidden state.",
    );

    // Build: the dense model, then per block shape the pruned model with and without bsr-lower.
    const sp = `sparsity=${o.sparsity}`;
    const families: { block: string; family: Family }[] = o.blocks.map((block) => ({
      block,
      family: {
        prune: `prune{${sp} block=${block}}`,
        tails: { nc: "fuse,dce", bsr: `fuse,bsr-lower{block=${block}},dce` },
      },
    }));
    progress.start(1 + 3 * families.length, "compile");
    const dense = (await buildFamily(w, { tails: { dense: "fuse,dce" } }, {
      fresh: o.fresh,
      onStep: (d) => progress.tick(d),
    })).artifacts.dense;
    const built = new Map<string, Built>();
    for (const { block, family } of families) {
      built.set(
        block,
        await buildFamily(w, family, {
          fresh: o.fresh,
          tune: o.tune,
          onStep: (d) => progress.tick(`${block} ${d}`),
        }),
      );
    }
    progress.stop();
    if (o.buildOnly) {
      console.error(
        `built ${1 + 2 * families.length} artifacts under ${w.cacheRoot} (--build-only: nothing timed)`,
      );
      return {};
    }
    const reference = await denseReference(w);

    // Time, one thread count at a time.
    const perThread = new Map<number, { times: Map<string, number[]>; checks: Check[]; resident: boolean }>();
    const slotsOf = (t: number): Slot[] => [
      ...peerSlots(w, dense, reference, t, o.web),
      ...o.blocks.flatMap((block) => {
        const b = built.get(block)!;
        const ref = `onnxruntime-node on the ${block}-pruned weights`;
        return [
          sparrowSlot(`pruned ${block} (no bsr-lower) @${t}`, b.artifacts.nc, t, w.feeds, b.reference!, ref),
          sparrowSlot(
            `bsr ${block} @${t}`,
            b.artifacts.bsr,
            t,
            w.feeds,
            b.reference!,
            ref,
            `pruned ${block} (no bsr-lower) @${t}`,
          ),
        ];
      }),
    ];
    const steps = o.threads.reduce((n, t) => n + slotsOf(t).length * (1 + o.repeat), 0);
    progress.start(steps, "check+time");
    for (const t of o.threads) {
      perThread.set(
        t,
        await timeSlots(slotsOf(t), {
          repeat: o.repeat,
          warmup: o.warmup,
          progress,
          budgetBytes: await memoryBudget(),
          reload: o.reload,
        }),
      );
    }
    progress.stop();

    // Summaries.
    const sum = (t: number, id: string) => summarize(perThread.get(t)!.times.get(`${id} @${t}`)!);
    const checkOf = (t: number, id: string) => perThread.get(t)!.checks.find((c) => c.id === `${id} @${t}`)!;
    const peers: Record<string, Record<string, Summary>> = {};
    const rows: Table1Row[] = [];
    for (const t of o.threads) {
      const p: Record<string, Summary> = {
        "onnxruntime-node": sum(t, "onnxruntime-node"),
        "sparrow-dense": sum(t, "sparrow dense"),
      };
      if (o.web) p["onnxruntime-web"] = sum(t, "onnxruntime-web");
      peers[t] = p;
      const d = p["sparrow-dense"].mean;
      for (const block of o.blocks) {
        const b = built.get(block)!;
        const nc = sum(t, `pruned ${block} (no bsr-lower)`), bsr = sum(t, `bsr ${block}`);
        const bc = checkOf(t, `bsr ${block}`);
        rows.push({
          block,
          threads: t,
          negativeControl: nc,
          bsr,
          ratio: { mean: bsr.mean / d, std: bsr.std / d },
          negativeControlRatio: { mean: nc.mean / d, std: nc.std / d },
          check: {
            negativeControl: checkOf(t, `pruned ${block} (no bsr-lower)`).maxAbs,
            bsr: bc.maxAbs,
            bsrVsNegativeControl: bc.pairMaxAbs!,
          },
          bsrStored: {
            blocks: b.artifacts.bsr.stats["bsr-lower.blocks"] ?? 0,
            elements: b.artifacts.bsr.stats["bsr-lower.elements"] ?? 0,
          },
          compileMs: { negativeControl: b.artifacts.nc.compileMs, bsr: b.artifacts.bsr.compileMs },
          cached: { negativeControl: b.artifacts.nc.cached, bsr: b.artifacts.bsr.cached },
        });
      }
    }
    if (o.tune) notes.push(`Sparse schedules tuned (--tune), tuning log ${o.tune.path}.`);
    for (const t of o.threads) {
      if (!perThread.get(t)!.resident) {
        notes.push(
          `${t} thread(s): pruned artifacts were loaded (and warmed up) in each round` +
            (o.reload ? " (--reload)." : ", as they did not all fit in memory at once."),
        );
      }
    }
    const result = {
      benchmark: "table1",
      setting: {
        model: w.name,
        config: w.config,
        batch: 1,
        seq: o.seq,
        sparsity: o.sparsity,
        seed: w.config.seed,
        pruning: `prune{${sp} block=RxC} (score l2, per matrix, every encoder dense weight)`,
        pipelines: {
          dense: dense.pipeline,
          negativeControl: pipelineText(`prune{${sp} block=RxC}`, "fuse,dce"),
          bsr: pipelineText(`prune{${sp} block=RxC}`, "fuse,bsr-lower{block=RxC},dce"),
        },
        repeat: o.repeat,
        warmup: o.warmup,
        threads: o.threads,
        blocks: o.blocks,
        quick: o.quick,
        tolerance: TOLERANCE,
        tuned: !!o.tune,
        statistic: "mean and sample standard deviation over interleaved rounds, in ms",
      },
      machine: await machineInfo(),
      notes,
      peers,
      dense: {
        compileMs: dense.compileMs,
        cached: dense.cached,
        check: o.threads.map((t) => checkOf(t, "sparrow dense").maxAbs),
      },
      rows,
      wallSeconds: 0,
    };
    result.wallSeconds = Math.round((performance.now() - tStart) / 100) / 10;
    await Deno.mkdir(o.out, { recursive: true });
    const base = join(o.out, "table1");
    await Deno.writeTextFile(`${base}.json`, JSON.stringify(result, null, 2) + "\n");
    const md = table1Markdown(result.setting, result.machine, peers, rows, notes, o);
    await Deno.writeTextFile(`${base}.md`, md);
    await Deno.writeTextFile(`${base}.svg`, table1Svg(w.name, o, peers, rows));
    console.log(md);
    console.error(`wrote ${base}.json, ${base}.md, ${base}.svg (${result.wallSeconds} s)`);
    return result;
  } finally {
    progress.stop();
  }
}

/** The Markdown report: one table per thread count, laid out like the paper's Table 1. */
function table1Markdown(
  setting: { model: string; seq: number; sparsity: number; seed: number; repeat: number },
  machine: Record<string, unknown>,
  peers: Record<string, Record<string, Summary>>,
  rows: Table1Row[],
  notes: string[],
  o: Table1Options,
): string {
  const lines = [
    `# Table 1: inference time of ${setting.model} (synthetic), S=${setting.seq}, batch 1, ` +
    `${Math.round(setting.sparsity * 100)}% block sparsity`,
    "",
    `Mean (std) in ms over ${setting.repeat} interleaved rounds. Machine: ${machine.cpu}, ${machine.cores} cores, ` +
    `Deno ${machine.deno}, V8 ${machine.v8}; ${machine.date}.`,
    "",
    "Columns: onnxruntime-node and -web run the dense model; *Sparrow dense kernels* is Sparrow without " +
    "bsr-lower (the dense model in the Dense row; the pruned weights elsewhere: the negative control); " +
    "*Sparrow BSR* adds bsr-lower (block-sparse kernels); the ratio is Sparrow BSR / Sparrow dense (mean, std).",
    "",
  ];
  for (const t of o.threads) {
    const p = peers[t];
    const d = p["sparrow-dense"];
    const head = [
      "",
      "ℓ1 block size",
      "onnxruntime-node ms",
      ...(o.web ? ["onnxruntime-web ms"] : []),
      "Sparrow dense kernels ms mean (std)",
      "Sparrow BSR ms mean (std)",
      "BSR / Dense mean (std)",
    ];
    lines.push(
      `## ${t} thread${t > 1 ? "s" : ""}`,
      "",
      `| ${head.join(" | ")} |`,
      `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
    );
    lines.push(
      `| ${
        [
          "Dense",
          "",
          fmtMs(p["onnxruntime-node"]),
          ...(o.web ? [fmtMs(p["onnxruntime-web"])] : []),
          fmtMs(d),
          fmtMs(d),
          `1.000 (${(d.std / d.mean).toFixed(3)})`,
        ].join(" | ")
      } |`,
    );
    let structured = false;
    for (const r of rows.filter((r) => r.threads === t)) {
      const label = r.block === "1x1" ? "Irregular sparsity" : structured ? "" : "Structured sparsity";
      if (r.block !== "1x1") structured = true;
      lines.push(
        `| ${
          [
            label,
            r.block.replace("x", "×"),
            "",
            ...(o.web ? [""] : []),
            fmtMs(r.negativeControl),
            fmtMs(r.bsr),
            `${r.ratio.mean.toFixed(3)} (${r.ratio.std.toFixed(3)})`,
          ].join(" | ")
        } |`,
      );
    }
    lines.push("");
  }
  const checks = rows.map((r) =>
    Math.max(r.check.bsr, r.check.negativeControl, r.check.bsrVsNegativeControl)
  );
  lines.push(
    `Every output was checked before timing (max abs ≤ ${TOLERANCE}; worst pruned-model difference ` +
      `${Math.max(0, ...checks).toExponential(1)}).`,
    "",
    ...notes.map((n) => `- ${n}`),
    "",
  );
  return lines.join("\n");
}

/** Figure 2: time against block shape, BSR (and the negative control) per thread count, peers as lines. */
function table1Svg(
  model: string,
  o: Table1Options,
  peers: Record<string, Record<string, Summary>>,
  rows: Table1Row[],
): string {
  const series: Series[] = [];
  const hlines: HLine[] = [];
  o.threads.forEach((t, i) => {
    const rs = o.blocks.map((b) => rows.find((r) => r.block === b && r.threads === t)!);
    const th = `${t} thread${t > 1 ? "s" : ""}`;
    const color = THREAD_COLORS[i % THREAD_COLORS.length];
    series.push({
      name: `Sparrow BSR, ${th}`,
      color,
      values: rs.map((r) => r.bsr.mean),
      errors: rs.map((r) => r.bsr.std),
    });
    series.push({
      name: `no bsr-lower (control), ${th}`,
      color,
      dash: "5 3",
      opacity: 0.55,
      values: rs.map((r) => r.negativeControl.mean),
      errors: rs.map((r) => r.negativeControl.std),
    });
    const dash = THREAD_DASHES[i % THREAD_DASHES.length];
    const p = peers[t];
    hlines.push({
      name: `Sparrow dense, ${th}`,
      color: PEER_COLORS.sparrowDense,
      dash,
      value: p["sparrow-dense"].mean,
    });
    hlines.push({
      name: `ORT-node, ${th}`,
      color: PEER_COLORS.ortNode,
      dash,
      value: p["onnxruntime-node"].mean,
    });
    if (p["onnxruntime-web"]) {
      hlines.push({
        name: `ORT-web, ${th}`,
        color: PEER_COLORS.ortWeb,
        dash,
        value: p["onnxruntime-web"].mean,
      });
    }
  });
  return linePlot({
    title: `Inference time vs block shape: ${model}, S=${o.seq}, ${Math.round(o.sparsity * 100)}% sparsity`,
    subtitle: `mean ± std over ${o.repeat} interleaved rounds; horizontal lines: dense peers`,
    xLabel: "ℓ1 block size (R×C over W[out, in])",
    yLabel: "inference time, ms",
    categories: o.blocks.map((b) => b.replace("x", "×")),
    series,
    hlines,
    width: 1000,
  });
}

/** Runs the benchmark with command-line `args`. */
export function table1Bench(args: string[]): Promise<void> {
  return cliMain(async () => {
    const { values } = parseArgs({
      args,
      options: {
        model: { type: "string" },
        seq: { type: "string", default: "128" },
        repeat: { type: "string" },
        warmup: { type: "string", default: "1" },
        threads: { type: "string", default: "1,2" },
        blocks: { type: "string" },
        sparsity: { type: "string", default: "0.8" },
        quick: { type: "boolean", default: false },
        "no-web": { type: "boolean", default: false },
        fresh: { type: "boolean", default: false },
        tune: { type: "boolean", default: false },
        "tuning-log": { type: "string" },
        reload: { type: "boolean", default: false },
        "build-only": { type: "boolean", default: false },
        out: { type: "string", default: "out/bench" },
      },
    });
    const quick = values.quick;
    const blocks = values.blocks?.split(",") ?? [...(quick ? QUICK_BLOCKS : TABLE1_BLOCKS)];
    blocks.forEach(parseBlock);
    const sparsity = Number(values.sparsity);
    if (!(sparsity >= 0 && sparsity < 1)) {
      throw new BenchError(`--sparsity must be in [0, 1), got '${values.sparsity}'`);
    }
    await runTable1({
      model: values.model ?? (quick ? "bert-mini" : "bert-base"),
      seq: positiveInt("seq", values.seq),
      repeat: positiveInt("repeat", values.repeat ?? (quick ? "2" : "10")),
      warmup: positiveInt("warmup", values.warmup, 0),
      threads: parseThreads(values.threads),
      blocks,
      sparsity,
      web: !quick && !values["no-web"],
      quick,
      out: values.out,
      fresh: values.fresh,
      tune: values.tune
        ? await tuningOption(values["tuning-log"] ?? join(values.out, "cache", "tuning-log.json"))
        : undefined,
      reload: values.reload,
      buildOnly: values["build-only"],
    });
  });
}
