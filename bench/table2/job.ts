/**
 * One configuration of `deno task bench table2`, as a worker runs it (bench/table2/worker.ts):
 * prune the model as the job says (on the model at the calibration length), compile it with the
 * pruned weights at the artifact length into its own folder, measure the artifact's SST-2 dev
 * accuracy, and check it against the reference interpreter on the same pruned weights; then its
 * int8 variant (`--int8`) and its fine-tuned variant (`--finetune`, bench/table2/finetune.ts).
 * Compiling and evaluating an artifact is bench/table2/artifact.ts.
 */

import { loadEvalModel, readSst2Tsv, type Sst2Row } from "../../frontend/sst2.ts";
import { type BertTokenizer, loadTokenizer } from "../../frontend/tokenizer.ts";
import type { Module } from "../../ir/module.ts";
import { Tensor } from "../../ir/tensor.ts";
import type { WeightStore } from "../../ir/weights.ts";
import { compile, type CompileResult } from "../../mod.ts";
import type { Summary } from "../stats.ts";
import { TOLERANCE } from "../table1/timing.ts";
import { ulpNoiseSpread } from "../ulp_noise.ts";
import {
  build,
  evaluateArtifact,
  interpreterLogits,
  jobId,
  maxAbs,
  type Pruned,
  rowInputs,
} from "./artifact.ts";
import { type FinetuneResult, type FinetuneSetting, runFinetune } from "./finetune.ts";

/** One configuration to evaluate. */
export interface Job {
  readonly method: "dense" | "magnitude" | "reconstruct";
  readonly block?: string;
  readonly sparsity?: number;
}

/** What the workers need to know. */
export interface Setting {
  readonly model: string;
  readonly data: string;
  readonly train: string;
  readonly limit?: number;
  readonly calibration: number;
  readonly calSeq: number;
  /** The length the artifacts are compiled for. */
  readonly seq: number;
  readonly seed: number;
  /** More `prune-reconstruct` options, e.g. `window=0 damp=0.1`. */
  readonly reconstructOptions: string;
  /** Where the artifacts go, one folder per configuration. */
  readonly artifacts: string;
  /** Also evaluate with the reference interpreter. */
  readonly interpreter: boolean;
  /** The methods whose configurations also get an int8 variant (`--int8`; empty: none). */
  readonly int8Methods: readonly string[];
  /** Masked fine-tuning of some configurations (`--finetune`; absent: none). */
  readonly finetune?: FinetuneSetting;
}

/** One reconstructed weight's report. */
interface LayerError {
  readonly weight: string;
  readonly magnitude: number;
  readonly reconstructed: number;
}

/** What the reference interpreter measured, with `--interpreter`. */
interface InterpreterAccuracy {
  readonly accuracy: number;
  readonly correct: number;
  /** Rows whose prediction differs from the artifact's. */
  readonly disagree: number;
  readonly seconds: number;
}

/**
 * What the int8 variant of a configuration measured: the same pruned weights compiled with
 * `quantize` after `bsr-lower` (after `fuse` for dense), evaluated like the f32 artifact.
 */
export interface Int8Result {
  readonly accuracy: number;
  readonly correct: number;
  readonly rows: number;
  readonly compileSeconds: number;
  readonly evalSeconds: number;
  readonly artifact: string;
  readonly pipeline: string;
  readonly memoryBytes: number;
  /** Weights `quantize` made int8 (the encoder's dense weights and, by default, the embedding tables). */
  readonly quantizedWeights: number;
  /**
   * The kernels of the artifact's `qdense` steps: the int8 block-sparse kernel (blocks made of 4x4
   * ones), or the int8 dense GEMM (the dense model, and the densified weight of other block shapes).
   */
  readonly qdenseSteps: { readonly bsr: number; readonly dense: number };
  /** The interpreter's logits on the first dev row, on the quantized module, and the artifact's distance from them. */
  readonly referenceLogits: number[];
  readonly checkMaxAbs: number;
  /** How far ±2-ulp noise in the interpreter's f32 ops moves those logits (bench/ulp_noise.ts). */
  readonly spread: number;
  /** Seconds the interpreter took for the reference logits and their noise spread (five runs). */
  readonly referenceSeconds: number;
  /** The check's tolerance: twice the spread, or the f32 checks' tolerance if larger ({@link int8Tolerance}). */
  readonly tolerance: number;
  /** Latency in ms by thread count, timed in the same rounds as the f32 artifacts. */
  latency?: Record<string, Summary>;
}

/**
 * The tolerance of an int8 artifact's check against the interpreter on its quantized module: twice
 * what ±2-ulp noise in the interpreter's f32 ops moves the logits (a quantizer rounding a value the
 * other way), or the f32 artifacts' tolerance if that is larger.
 */
export const int8Tolerance = (spread: number): number => Math.max(2 * spread, TOLERANCE);

/** What one configuration measured. */
export interface JobResult extends Job {
  /** Accuracy of the compiled artifact. */
  readonly accuracy: number;
  readonly correct: number;
  readonly rows: number;
  /** Fraction of zeros over all pruned weights (0 for dense). */
  readonly sparsityAchieved: number;
  readonly pruneSeconds: number;
  readonly compileSeconds: number;
  readonly evalSeconds: number;
  /** The artifact folder, its pipeline, and its wasm memory in bytes. */
  readonly artifact: string;
  readonly pipeline: string;
  readonly memoryBytes: number;
  /** The interpreter's logits on the first dev row (the timing input), and the artifact's distance from them. */
  readonly referenceLogits: number[];
  readonly checkMaxAbs: number;
  readonly interpreter?: InterpreterAccuracy;
  readonly layers?: LayerError[];
  /** Latency in ms by thread count, filled in after every configuration is built. */
  latency?: Record<string, Summary>;
  /** The int8 variant, with `--int8` for this method (absent in runs without it). */
  readonly int8?: Int8Result;
  /** The fine-tuned variant, with `--finetune` for this method and sparsity (absent in runs without it). */
  readonly finetuned?: FinetuneResult;
}

const LAYER_LINE = /^prune-reconstruct: @(\S+) .*rel\. error magnitude ([\d.]+) -> reconstructed ([\d.]+)/;

/** The state of a worker: the model at the calibration and artifact lengths, its weights, the tokenizer, the dev rows. */
export interface Loaded {
  readonly cal: Module;
  readonly weights: WeightStore;
  /** The model at `seq`, compiled into the artifacts. */
  readonly compiled: Module;
  readonly tokenizer: BertTokenizer;
  readonly rows: Sst2Row[];
  /** The model at each token count, imported on first use (`--interpreter`). */
  readonly byLength: Map<number, Module>;
}

/** Loads what a worker keeps: the model at both lengths, its weights, the tokenizer and the dev rows. */
export async function load(s: Setting): Promise<Loaded> {
  const cal = await loadEvalModel(s.model, { seq: s.calSeq });
  const compiled = await loadEvalModel(s.model, { seq: s.seq });
  const tokenizer = await loadTokenizer(s.model);
  const all = await readSst2Tsv(s.data);
  return {
    cal: cal.module,
    weights: cal.weights,
    compiled: compiled.module,
    tokenizer,
    rows: s.limit === undefined ? all : all.slice(0, s.limit),
    byLength: new Map(),
  };
}

/** Prunes as `job` says, on the model at the calibration length. */
async function prune(s: Setting, l: Loaded, job: Job): Promise<Pruned> {
  const logs: string[] = [];
  if (job.method === "dense") return { weights: l.weights, changed: new Map(), logs };
  const text = job.method === "magnitude"
    ? `prune{sparsity=${job.sparsity} block=${job.block} score=l2}`
    : `prune-reconstruct{sparsity=${job.sparsity} block=${job.block} calibration=${s.calibration} seed=${s.seed} ` +
      `calibration-data=${JSON.stringify(s.train)} tokenizer=${
        JSON.stringify(s.model)
      } ${s.reconstructOptions}}`;
  const r = await compile({ module: l.cal, weights: l.weights, path: s.model }, {
    pipeline: text,
    codegen: false,
    log: (line) => logs.push(line),
  });
  return { weights: r.weights, changed: r.changedWeights, logs };
}

/** Interpreter predictions with the pruned weights; each row at its own length. */
async function interpreterPredictions(s: Setting, l: Loaded, store: WeightStore) {
  const preds: number[] = [];
  for (const row of l.rows) {
    const ids = l.tokenizer.encode(row.sentence);
    let m = l.byLength.get(ids.length);
    if (!m) {
      m = (await loadEvalModel(s.model, { seq: ids.length })).module;
      l.byLength.set(ids.length, m);
    }
    const logits = interpreterLogits(m, store, {
      input_ids: ids,
      token_type_ids: ids.map(() => 0),
      attention_mask: ids.map(() => 1),
    });
    let pred = 0;
    for (let k = 1; k < logits.length; k++) if (logits[k] > logits[pred]) pred = k;
    preds.push(pred);
  }
  return preds;
}

/** The kernels of an artifact's `qdense` steps: int8 block-sparse, or int8 dense. */
function qdenseSteps(r: CompileResult): { bsr: number; dense: number } {
  // The GEMM steps (`qdense`, `qdense (bsr)`), not the row quantizers (`qdense (quantize)`).
  const steps = r.artifact!.plan.buckets[0].steps.filter((st) =>
    st.op.split("+").some((o) => o === "qdense" || o === "qdense (bsr)")
  );
  const bsr = steps.filter((st) => st.op.includes("qdense (bsr)") || st.kernel[0].startsWith("qbsr")).length;
  return { bsr, dense: steps.length - bsr };
}

/**
 * The int8 variant of a configuration: the pruned weights compiled with `quantize`, evaluated on
 * every row like the f32 artifact, and its first row's logits beside the interpreter's on the
 * quantized module, with how far ±2-ulp noise moves those.
 */
async function runInt8(s: Setting, l: Loaded, job: Job, pruned: Pruned): Promise<Int8Result> {
  const t0 = performance.now();
  const built = await build(s, l.compiled, job, pruned, "int8");
  const t1 = performance.now();
  const { acc, first } = await evaluateArtifact(s, l, built.dir);
  const t2 = performance.now();
  const f = built.result.module.func("main")!;
  const values = rowInputs(l.tokenizer, l.rows[0], s.seq);
  const inputs = f.params.map((p) => Tensor.from(p.type.shape, p.type.dtype, values[p.name]));
  const { output, spread } = ulpNoiseSpread(built.result.module, inputs, built.result.weights);
  const checkMaxAbs = maxAbs(output, first), tolerance = int8Tolerance(spread);
  // Checked here, so that a mismatch stops the run at once; the timing checks it again.
  if (!(checkMaxAbs <= tolerance)) {
    throw new Error(
      `${jobId(job)} int8: the artifact's logits on the first dev row differ from the interpreter's on the ` +
        `quantized module by ${checkMaxAbs} (max abs; tolerance ${tolerance}, ±2-ulp noise spread ${spread}); ` +
        `artifact ${built.dir}`,
    );
  }
  return {
    accuracy: acc.accuracy,
    correct: acc.correct,
    rows: acc.rows,
    compileSeconds: (t1 - t0) / 1000,
    evalSeconds: acc.seconds,
    artifact: built.dir,
    pipeline: built.pipeline,
    memoryBytes: built.memoryBytes,
    quantizedWeights: built.quantized,
    qdenseSteps: qdenseSteps(built.result),
    referenceLogits: [...output],
    checkMaxAbs,
    spread,
    tolerance,
    referenceSeconds: (performance.now() - t2) / 1000,
  };
}

/** Prunes, compiles and evaluates the configuration `job`: what it measured, but its latency. */
export async function runJob(s: Setting, l: Loaded, job: Job): Promise<JobResult> {
  const t0 = performance.now();
  const pruned = await prune(s, l, job);
  const { changed, logs } = pruned;
  const t1 = performance.now();
  const built = await build(s, l.compiled, job, pruned);
  const t2 = performance.now();
  const { acc, first } = await evaluateArtifact(s, l, built.dir);
  const referenceLogits = interpreterLogits(
    l.compiled,
    pruned.weights,
    rowInputs(l.tokenizer, l.rows[0], s.seq),
  );
  const checkMaxAbs = maxAbs(referenceLogits, first);
  const t3 = performance.now();
  let interpreter: InterpreterAccuracy | undefined;
  if (s.interpreter) {
    const preds = await interpreterPredictions(s, l, pruned.weights);
    const correct = preds.filter((p, k) => p === l.rows[k].label).length;
    interpreter = {
      accuracy: correct / l.rows.length,
      correct,
      disagree: preds.filter((p, k) => p !== acc.preds[k]).length,
      seconds: (performance.now() - t3) / 1000,
    };
  }
  const int8 = s.int8Methods.includes(job.method) ? await runInt8(s, l, job, pruned) : undefined;
  const ft = s.finetune;
  const finetuned = ft?.methods.includes(job.method) && ft.sparsities.includes(job.sparsity!)
    ? await runFinetune(s, l, job, pruned)
    : undefined;
  let zeros = 0, total = 0;
  for (const t of changed.values()) {
    total += t.data.length;
    for (let k = 0; k < t.data.length; k++) if (t.data[k] === 0) zeros++;
  }
  const layers = logs.map((line) => LAYER_LINE.exec(line)).filter((m) => m !== null).map((m) => ({
    weight: m[1],
    magnitude: Number(m[2]),
    reconstructed: Number(m[3]),
  }));
  return {
    ...job,
    accuracy: acc.accuracy,
    correct: acc.correct,
    rows: acc.rows,
    sparsityAchieved: total ? zeros / total : 0,
    pruneSeconds: (t1 - t0) / 1000,
    compileSeconds: (t2 - t1) / 1000,
    evalSeconds: acc.seconds,
    artifact: built.dir,
    pipeline: built.pipeline,
    memoryBytes: built.memoryBytes,
    referenceLogits: [...referenceLogits],
    checkMaxAbs,
    ...(interpreter ? { interpreter } : {}),
    ...(job.method === "reconstruct" ? { layers } : {}),
    ...(int8 ? { int8 } : {}),
    ...(finetuned ? { finetuned } : {}),
  };
}
