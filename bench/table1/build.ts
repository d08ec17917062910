/**
 * The workload of the timing benchmarks (`table1`, `sweep`) and its cached builds: the synthetic
 * model with its weights, inputs and dense ONNX export, and per family (one pruning, or none) the
 * compiled artifacts and onnxruntime-node's reference output on the pruned weights.
 */

import { join } from "node:path";
import { exportOnnx } from "../../frontend/onnx/export.ts";
import {
  type BertConfig,
  bertConfig,
  type BertPresetName,
  buildBertModule,
  isBertPreset,
  syntheticBertWeights,
} from "../../frontend/synthetic_bert.ts";
import { seededInputs } from "../../ir/inputs.ts";
import type { TuningLog } from "../../codegen/tuning_log.ts";
import {
  compile,
  memoryStore,
  type Module,
  Tensor,
  tensorType,
  type WeightStore,
  writeArtifact,
} from "../../mod.ts";
import { type Feeds, ortNode } from "../peers.ts";
import { BenchError } from "./args.ts";
import {
  artifactEntry,
  cachedFile,
  denseOnnxPath,
  type Meta,
  metaFiles,
  readCachedArtifact,
  readReference,
  referencePath,
  writeAtomic,
  writeReference,
} from "./cache.ts";

/** The passes before pruning (as in `bench dense`, whose pipeline is PREFIX,fuse,dce). */
const PREFIX = "canonicalize,cse";

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
  const onnxPath = await denseOnnxPath(cacheRoot, module.name, config);
  const onnx = await cachedFile(onnxPath, () => exportOnnx(module, base).bytes);
  return { config, name: module.name, module, base, feeds, onnx, onnxPath, cacheRoot };
}

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
  /** Bytes of its weights region (packed weights, BSR indices, scales). */
  weightBytes: number;
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

/** The full pipeline text of a family's artifact. */
export function pipelineText(prune: string | undefined, tail: string): string {
  return [PREFIX, prune, tail].filter(Boolean).join(",");
}

function statsOf(
  r: { stats: readonly { pass: string; name: string; value: number }[] },
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of r.stats) out[`${s.pass}.${s.name}`] = (out[`${s.pass}.${s.name}`] ?? 0) + s.value;
  return out;
}

/** The model after a family's pruning, with its pass statistics, log and time. */
interface Pruned {
  module: Module;
  store: WeightStore;
  stats: Record<string, number>;
  log: string[];
  ms: number;
}

/** onnxruntime-node's output on the ONNX model `onnx`, at 1 thread. */
async function ortOutput(onnx: Uint8Array, feeds: Feeds): Promise<Float32Array> {
  const ort = await ortNode(onnx, 1, feeds);
  try {
    return await ort.run();
  } finally {
    await ort.close();
  }
}

/** onnxruntime-node's output on the dense model, at 1 thread: the dense reference. */
export function denseReference(w: Workload): Promise<Float32Array> {
  return ortOutput(w.onnx, w.feeds);
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
      const entry = await artifactEntry(w.cacheRoot, w.name, id, { config: w.config, pipeline, seed }, {
        tune: !!options.tune,
        fresh: options.fresh,
      });
      return { id, tail, pipeline, ...entry };
    }),
  );
  let refFile: string | undefined;
  let reference: Float32Array | undefined;
  if (family.prune) {
    refFile = await referencePath(w.cacheRoot, w.name, {
      config: w.config,
      pipeline: pipelineText(family.prune, ""),
      seed,
    });
    reference = await readReference(refFile, options.fresh);
    if (reference) options.onStep?.(`reference ${family.prune} (cached)`);
  }

  // Pruning, shared by the family's artifacts; run only when something is missing.
  let pruned: Pruned | undefined;
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
    // The exporter takes the original IR: pruning changes only weight data, not the IR.
    reference = await ortOutput(exportOnnx(w.module, (await prunedOnce()).store).bytes, w.feeds);
    await writeReference(refFile!, reference);
    options.onStep?.(`reference ${family.prune}`);
  }

  const artifacts: Record<string, Artifact> = {};
  for (const a of plans) {
    if (a.cached) {
      const { meta, memoryBytes, weightBytes } = await readCachedArtifact(a.dir);
      artifacts[a.id] = {
        id: a.id,
        dir: a.dir,
        key: a.key,
        pipeline: a.pipeline,
        cached: true,
        compileMs: meta.compileMs,
        stats: meta.stats,
        memoryBytes,
        weightBytes,
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
    await writeArtifact(r, a.dir, { files: metaFiles(meta) });
    artifacts[a.id] = {
      id: a.id,
      dir: a.dir,
      key: a.key,
      pipeline: a.pipeline,
      cached: false,
      compileMs,
      stats,
      memoryBytes: compiled.plan.memory.pages * 65536,
      weightBytes: compiled.plan.memory.weights.size,
    };
    options.onStep?.(a.id);
  }
  return { artifacts, reference };
}
