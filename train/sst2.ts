/**
 * Fine-tuning a Hugging Face BERT classifier on SST-2, end to end: the checkpoint is read
 * (`train/bert.ts`), the training rows are tokenized and batched (`train/data.ts`), the loop runs
 * the objective (`train/trainer.ts`) with gradients from the IR's autodiff on the interpreter,
 * dev accuracy is measured at intervals (on the first `evalRows` dev rows) and at the end (on all
 * of them), and the result is written as a checkpoint in the input's layout
 * (`train/checkpoint.ts`) with a `training.json` beside it saying how it was made.
 *
 * ```ts
 * const r = await trainSst2({
 *   model: "../shared/models/sst2-bert-mini-pruned-1x32-80",
 *   data: "../shared/data/sst2/train.tsv",
 *   out: "out/mini-1x32-ft",
 *   steps: 40,
 *   objective: { kind: "masked" },
 * });
 * console.log(r.result.evals.at(-1)); // { step: 40, accuracy: ..., sparsity: ... }
 * ```
 */

import { dirname, join } from "node:path";
import {
  accuracyOf,
  bertHiddenStates,
  bertLossAndGrads,
  evaluateAccuracy,
  interpretedTeacher,
  loadBert,
  type TrainableBert,
  trainedWeights,
} from "./bert.ts";
import {
  compiledBertLossAndGrads,
  type CompiledLossAndGrads,
  compiledPredict,
  compiledTeacher,
} from "./compiled.ts";
import { readSafetensors } from "../ir/safetensors.ts";
import {
  checkOutputFolder,
  CheckpointError,
  writeHfCheckpoint,
  type WrittenCheckpoint,
} from "./checkpoint.ts";
import { readSst2Tsv } from "../frontend/sst2.ts";
import { Batches, encodeRows, type Example, readExamples, shuffled } from "./data.ts";
import { type EvalPoint, type Objective, type StepReport, train, type TrainResult } from "./trainer.ts";

/** Options of {@link trainSst2}. */
export interface Sst2TrainOptions {
  /** The Hugging Face checkpoint folder to start from. */
  readonly model: string;
  /**
   * A safetensors file whose tensors replace the checkpoint's of the same names before training,
   * e.g. the weights `deno task compile <model> --passes 'prune{...}' -o x.sir` wrote beside
   * `x.sir`; the checkpoint still gives the config, the tokenizer and the layout written.
   */
  readonly weights?: string;
  /** The training TSV (`sentence<TAB>label`). */
  readonly data: string;
  /**
   * Train on a seeded random sample of this many training rows (only they are tokenized); all by
   * default. Short runs see few rows, and tokenizing all 67,349 takes minutes on a busy machine.
   */
  readonly trainRows?: number;
  /** The dev TSV; by default `dev.tsv` beside `data` (no evaluation when it does not exist). */
  readonly dev?: string;
  /** The folder to write the trained checkpoint to (never the input's). */
  readonly out: string;
  /** Optimizer steps; 100 by default. */
  readonly steps?: number;
  /** Rows per batch; 32 by default. */
  readonly batch?: number;
  /** Peak learning rate; 5e-5 by default. */
  readonly lr?: number;
  /** Warmup steps; 10% of the steps by default. */
  readonly warmup?: number;
  /** The static sequence length rows are fitted to; 64 by default. */
  readonly seq?: number;
  /** Seed of the shuffling; 0 by default. */
  readonly seed?: number;
  /** AdamW's weight decay; 0.01 by default. */
  readonly weightDecay?: number;
  /** The objective; plain fine-tuning by default. */
  readonly objective?: Objective;
  /** Evaluate every this many steps (0 = only at the end); 0 by default. */
  readonly evalEvery?: number;
  /** Dev rows of the interval evaluations (the first N); all by default. The last one uses all. */
  readonly evalRows?: number;
  /** Also evaluate before training (on all dev rows). */
  readonly evalAtStart?: boolean;
  /** Batch rows of like length together (runs of `group` batches sorted by length); 0 = off; 50 by default. */
  readonly group?: number;
  /**
   * Run the training steps as compiled wasm artifacts (`train/compiled.ts`, one per batch shape,
   * compiled at its first batch) instead of on the reference interpreter, and evaluate on compiled
   * forward artifacts (`compiledPredict`) too.
   */
  readonly compiled?: boolean;
  /** Threads of the compiled steps; the number of cores by default. */
  readonly threads?: number;
  /**
   * Knowledge distillation from the checkpoint's own weights (the model before `weights` replaced
   * them, e.g. the dense model a pruned one came from): the loss is `withDistillationLoss`'s
   * (ir/loss.ts), α · cross-entropy + (1 − α) · T² · soft cross-entropy against the teacher's
   * probabilities at temperature T. The labels alone by default. `hidden: β` adds hidden-state
   * distillation: β · Σ over the encoder layers' outputs (`bertHiddenStates`, the embeddings not
   * included) of the mean squared difference from the teacher's over real tokens and hidden units.
   */
  readonly distill?: {
    readonly temperature?: number;
    readonly alpha?: number;
    readonly hidden?: number;
    /**
     * Another checkpoint folder to distil from instead (e.g. a larger model trained on the same
     * task): its logits are the soft targets. Its tokenizer must give the same ids; not with `hidden`.
     */
    readonly teacher?: string;
  };
  /** Evaluate and write a moving average of the weights with this decay (`TrainOptions.ema`); off by default. */
  readonly ema?: number;
  /** Do not train the word embeddings (the largest weight, a third of the mini model). */
  readonly freezeEmbeddings?: boolean;
  /** Stop training after this many seconds (see `TrainOptions.timeLimit`); unlimited by default. */
  readonly timeLimit?: number;
  /** Called after every step. */
  readonly onStep?: (r: StepReport) => void;
  /** Called after every evaluation. */
  readonly onEval?: (e: EvalPoint & { rows: number }) => void;
  /** Called when an evaluation starts, then per row. */
  readonly onEvalRow?: (done: number, rows: number) => void;
  /** Called with what is being done (loading, tokenizing, writing). */
  readonly onStage?: (stage: string) => void;
}

/** What {@link trainSst2} did. */
export interface Sst2TrainResult {
  /** The loop's result. */
  readonly result: TrainResult;
  /** The checkpoint written. */
  readonly checkpoint: WrittenCheckpoint;
  /** Training rows read. */
  readonly trainRows: number;
  /** Dev rows read (0 without a dev file). */
  readonly devRows: number;
  /** The `training.json` written beside the checkpoint. */
  readonly report: Record<string, unknown>;
}

async function isFile(path: string): Promise<boolean> {
  return (await Deno.stat(path).catch(() => undefined))?.isFile ?? false;
}

/**
 * The checkpoint in `dir` as a teacher for `student`: at the same length, with as many labels, and
 * a tokenizer that gives the same ids (checked on a few sentences). Throws a CheckpointError otherwise.
 */
async function loadTeacher(dir: string, student: TrainableBert, seq: number): Promise<TrainableBert> {
  const teacher = await loadBert(dir, { seq });
  if (teacher.labels !== student.labels) {
    throw new CheckpointError(
      `${dir}: the teacher has ${teacher.labels} labels, the model ${student.labels}`,
    );
  }
  for (const text of ["a gripping, funny film.", "it's not worth the ticket price", "naïve résumé 1999!"]) {
    const [a, b] = [teacher, student].map((m) => m.tokenizer.encode(text).join(","));
    if (a !== b) {
      throw new CheckpointError(`${dir}: the teacher's tokenizer gives other ids than the model's`);
    }
  }
  return teacher;
}

/** Trains a checkpoint on SST-2 and writes the result (see the module doc). */
export async function trainSst2(o: Sst2TrainOptions): Promise<Sst2TrainResult> {
  const steps = o.steps ?? 100;
  const batch = o.batch ?? 32;
  const seq = o.seq ?? 64;
  const lr = o.lr ?? 5e-5;
  const warmup = o.warmup ?? Math.round(0.1 * steps);
  const seed = o.seed ?? 0;
  const objective: Objective = o.objective ?? { kind: "plain" };
  await checkOutputFolder(o.model, o.out);
  o.onStage?.(`loading ${o.model}`);
  const model = await loadBert(o.model, { seq });
  if (o.distill?.teacher !== undefined && o.distill.hidden !== undefined) {
    throw new CheckpointError(
      `hidden-state distillation needs the checkpoint itself as the teacher, not ${o.distill.teacher}`,
    );
  }
  const teacherModel = o.distill?.teacher === undefined
    ? model
    : await loadTeacher(o.distill.teacher, model, seq);
  const teacherWeights = o.distill
    ? new Map([...teacherModel.weights].map(([n, w]) => [n, Float32Array.from(w)]))
    : null;
  let replaced = 0;
  if (o.weights !== undefined) {
    const file = await readSafetensors(o.weights);
    for (const [name, w] of model.weights) {
      const info = file.tensors.get(name);
      if (!info) continue;
      const n = info.shape.reduce((a, b) => a * b, 1);
      if (n !== w.length) {
        throw new CheckpointError(`${o.weights}: tensor '${name}' has ${n} values, the model's ${w.length}`);
      }
      w.set(file.float32(name));
      replaced++;
    }
    if (replaced === 0) throw new CheckpointError(`${o.weights}: no tensor named as a weight of ${o.model}`);
    o.onStage?.(`${replaced} weights from ${o.weights}`);
  }
  o.onStage?.(`tokenizing ${o.data}`);
  let rows = await readSst2Tsv(o.data);
  if (o.trainRows !== undefined && o.trainRows < rows.length) {
    const all = rows;
    rows = shuffled(all.length, (seed ^ 0x9e3779b9) >>> 0).slice(0, o.trainRows).sort((a, b) => a - b)
      .map((i) => all[i]);
  }
  const examples = encodeRows(rows, model.tokenizer, seq);
  const devPath = o.dev ?? join(dirname(o.data), "dev.tsv");
  let dev: Example[] = [];
  if (o.dev !== undefined || await isFile(devPath)) dev = await readExamples(devPath, model.tokenizer, seq);
  const frozen = o.freezeEmbeddings ? (n: string) => n.endsWith("word_embeddings.weight") : undefined;
  const beta = o.distill?.hidden;
  const layers = beta !== undefined ? bertHiddenStates(model.module) : undefined;
  const compiledTeacherModel = teacherWeights && o.compiled
    ? compiledTeacher(teacherModel, teacherWeights, { threads: o.threads, hidden: layers })
    : undefined;
  const teacher = compiledTeacherModel ??
    (teacherWeights ? interpretedTeacher(teacherModel, teacherWeights, { hidden: layers }) : undefined);
  const distill = teacher && {
    teacher,
    temperature: o.distill?.temperature,
    alpha: o.distill?.alpha,
    hidden: layers && { beta: beta!, layers },
  };
  const lossAndGrads = o.compiled
    ? compiledBertLossAndGrads(model, {
      frozen,
      distill,
      threads: o.threads,
      onCompile: (key, seconds) =>
        o.onStage?.(`compiled the ${key} training step in ${seconds.toFixed(1)} s`),
    })
    : bertLossAndGrads(model, { frozen, distill });

  const compiledEval = o.compiled && dev.length > 0
    ? compiledPredict(model, { threads: o.threads })
    : undefined;
  let lastRows = 0;
  const evaluate = dev.length === 0
    ? undefined
    : (weights: ReadonlyMap<string, Float32Array>, at: { step: number; final: boolean }) => {
      // Interval evaluations use the first evalRows rows; the ones before and after training, all.
      const rows = at.final || at.step === 0 || o.evalRows === undefined ? dev : dev.slice(0, o.evalRows);
      lastRows = rows.length;
      o.onEvalRow?.(0, rows.length);
      const onRow = (d: number) => o.onEvalRow?.(d, rows.length);
      return compiledEval
        ? compiledEval(weights, rows, onRow).then((logits) => accuracyOf(logits, rows))
        : evaluateAccuracy(model, weights, rows, onRow);
    };
  let result: TrainResult;
  try {
    result = await train({
      weights: model.weights,
      prunable: model.prunable,
      lossAndGrads,
      batches: new Batches(examples, batch, seed, o.group ?? 50),
      steps,
      lr,
      warmup,
      weightDecay: o.weightDecay,
      objective,
      ema: o.ema,
      evalEvery: o.evalEvery,
      evalAtStart: o.evalAtStart,
      evaluate,
      timeLimit: o.timeLimit,
      onStep: o.onStep,
      onEval: (e) => o.onEval?.({ ...e, rows: lastRows }),
    });
  } finally {
    if ("close" in lossAndGrads) (lossAndGrads as CompiledLossAndGrads).close();
    compiledEval?.close();
    compiledTeacherModel?.close();
  }

  const report = {
    model: o.model,
    weights: o.weights ?? null,
    task: "sst2",
    data: o.data,
    trainRows: examples.length,
    dev: dev.length > 0 ? devPath : null,
    objective,
    distill: o.distill
      ? {
        temperature: o.distill.temperature ?? 2,
        alpha: o.distill.alpha ?? 0.5,
        hidden: layers ? { beta, layers } : null,
        teacher: o.distill.teacher ?? null,
      }
      : null,
    ema: o.ema ?? null,
    steps,
    stepsTaken: result.steps,
    stoppedEarly: result.stoppedEarly,
    timeLimit: o.timeLimit ?? null,
    batch,
    lr,
    warmup,
    seq,
    seed,
    weightDecay: o.weightDecay ?? 0.01,
    group: o.group ?? 50,
    stepsOn: o.compiled ? "compiled artifacts" : "the reference interpreter",
    trained: trainedWeights(model, { frozen }).length,
    frozen: o.freezeEmbeddings ? ["word embeddings"] : [],
    seconds: result.seconds,
    evalSeconds: result.evalSeconds,
    trainSeconds: result.seconds - result.evalSeconds,
    samplesPerSecond: result.steps * batch / (result.seconds - result.evalSeconds),
    loss: { first: result.losses[0], last: result.losses.at(-1), mean: mean(result.losses) },
    evals: result.evals,
    sparsity: result.sparsity,
  };
  o.onStage?.(`writing ${o.out}`);
  const trained = new Map([...model.weights].filter(([name]) => !(frozen?.(name) ?? false)));
  const checkpoint = await writeHfCheckpoint(o.model, o.out, trained, {
    "training.json": JSON.stringify(report, null, 2) + "\n",
  });
  return { result, checkpoint, trainRows: examples.length, devRows: dev.length, report };
}

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}
