/**
 * The training loop: AdamW with warmup and linear decay over batches, gradient clipping, dev
 * evaluation at intervals, and the sparsity objectives:
 *
 * - `plain`: fine-tuning, nothing pruned.
 * - `masked`: masked fine-tuning of a pruned model. The prunable weights' zeros at the start are
 *   the mask; gradients and weights are masked every step, so pruned entries stay exactly zero.
 * - `group-lasso`: the paper's penalty `λ·Σ_b ‖w_b‖₂` over R×C blocks of the prunable weights,
 *   applied by its proximal step after every AdamW step (block soft-thresholding with
 *   `τ = lr_t·λ`), which sets whole blocks exactly to zero.
 * - `gmp`: gradual magnitude pruning (Zhu & Gupta): at steps t0, t0+Δt, …, t0+nΔt every
 *   prunable weight is pruned to the cubic schedule's sparsity by block norm; pruned blocks are
 *   masked from then on, and the steps after t0+nΔt fine-tune at the final sparsity.
 * - `recipe`: group lasso for the first part of the steps, then one-shot pruning to the target
 *   sparsity with the same block shape, then masked fine-tuning for the rest, with its own warmup
 *   and decay and a fresh optimizer.
 *
 * Gradients come from a {@link LossAndGrads} function, so the loop runs on any model: the BERT one
 * differentiates the IR (`train/bert.ts`); tests use small analytic problems.
 */

import type { Batch } from "./data.ts";
import { AdamW, warmupLinearLr } from "./adamw.ts";
import {
  applyMask,
  type Block,
  checkBlock,
  type CubicSchedule,
  cubicSparsity,
  groupLassoPenalty,
  isPruningStep,
  masksFromZeros,
  type Matrix,
  proxGroupLasso,
  pruneBlocks,
} from "./sparsity.ts";

/** The mean loss of a batch and its gradient with respect to each trainable weight, by name. */
export type LossAndGrads = (
  weights: ReadonlyMap<string, Float32Array>,
  batch: Batch,
) =>
  | { loss: number; grads: Map<string, Float32Array> }
  | Promise<{ loss: number; grads: Map<string, Float32Array> }>;

/** What to train for (see the header). */
export type Objective =
  | { readonly kind: "plain" }
  | { readonly kind: "masked" }
  | { readonly kind: "group-lasso"; readonly lambda: number; readonly block: Block }
  | {
    readonly kind: "gmp";
    readonly sparsity: number;
    readonly block: Block;
    /** First pruning step t0; default 10% of the steps (at least 1). */
    readonly start?: number;
    /** Last pruning step t0 + nΔt; default 60% of the steps. */
    readonly end?: number;
    /** Δt; default a tenth of `end − start` (at least 1). */
    readonly interval?: number;
  }
  | {
    readonly kind: "recipe";
    readonly lambda: number;
    readonly block: Block;
    readonly sparsity: number;
    /** The fraction of the steps spent in group lasso before pruning; 0.3 by default. */
    readonly lassoFraction?: number;
  };

/** One step's figures, handed to `onStep`. */
export interface StepReport {
  /** The step just taken, 1-based. */
  readonly step: number;
  /** All steps. */
  readonly steps: number;
  /** The batch's mean loss (before the step). */
  readonly loss: number;
  /** The group-lasso penalty after the step (group lasso and recipe's first phase). */
  readonly penalty?: number;
  /** The learning rate used. */
  readonly lr: number;
  /** `train`, `group-lasso`, `pruning`, `masked`. */
  readonly phase: string;
  /** Zero fraction over all prunable weights after the step. */
  readonly sparsity: number;
  /** Gradient norm before clipping. */
  readonly gradNorm: number;
  /** Seconds since training started. */
  readonly seconds: number;
}

/** One dev evaluation. */
export interface EvalPoint {
  /** Steps taken when it was measured (0 = before training). */
  readonly step: number;
  /** The accuracy. */
  readonly accuracy: number;
  /** Zero fraction over the prunable weights then. */
  readonly sparsity: number;
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** The weights, by name, trained in place. */
  readonly weights: Map<string, Float32Array>;
  /** The weights the sparsity objectives act on, with their layouts (`prunableWeights`). */
  readonly prunable: readonly Matrix[];
  /** The loss and gradients of a batch. */
  readonly lossAndGrads: LossAndGrads;
  /** Where batches come from (`Batches`). */
  readonly batches: { next(): Batch };
  /** Optimizer steps. */
  readonly steps: number;
  /** Peak learning rate. */
  readonly lr: number;
  /** Warmup steps. */
  readonly warmup: number;
  /** AdamW's decoupled weight decay (not on biases and LayerNorm); 0.01 by default. */
  readonly weightDecay?: number;
  /** Clip the global gradient norm to this (as Hugging Face's `max_grad_norm`); 1 by default, 0 = off. */
  readonly clipNorm?: number;
  /** The objective; plain by default. */
  readonly objective?: Objective;
  /**
   * Polyak averaging: keep an exponential moving average of the trained weights, with decay
   * `min(ema, (1 + t) / (10 + t))` at step t (so early steps do not pin it to the start), and
   * evaluate and return the average instead of the last weights. Masks apply to it too, so pruned
   * entries stay exactly zero. Off by default; not with `group-lasso` or `recipe`, whose zeros come
   * from the proximal step, not a mask.
   */
  readonly ema?: number;
  /** Evaluate every this many steps (0 = only at the end); needs `evaluate`. */
  readonly evalEvery?: number;
  /** Also evaluate before the first step. */
  readonly evalAtStart?: boolean;
  /**
   * Measures the model with the current weights (e.g. dev accuracy); `at.step` is the steps taken
   * (0 before training), `at.final` whether it is the evaluation at the end.
   */
  readonly evaluate?: (
    weights: ReadonlyMap<string, Float32Array>,
    at: { readonly step: number; readonly final: boolean },
  ) => number | Promise<number>;
  /**
   * Stop after the first step that ends when this many seconds of training (evaluations not
   * counted) have passed; the learning-rate schedule stays the one planned for `steps`, and the
   * final evaluation runs then. Unlimited by default.
   */
  readonly timeLimit?: number;
  /** Called after every step. */
  readonly onStep?: (r: StepReport) => void;
  /** Called after every evaluation. */
  readonly onEval?: (e: EvalPoint) => void;
}

/** What {@link train} did. */
export interface TrainResult {
  /** Steps taken (fewer than planned when the time limit stopped training). */
  readonly steps: number;
  /** Whether the time limit stopped training early. */
  readonly stoppedEarly: boolean;
  /** The loss of each step. */
  readonly losses: number[];
  /** The evaluations, in order. */
  readonly evals: EvalPoint[];
  /** Zero fraction over the prunable weights at the end. */
  readonly sparsity: number;
  /** Seconds of the whole run, evaluations included. */
  readonly seconds: number;
  /** Seconds spent in evaluations. */
  readonly evalSeconds: number;
}

/** Zero fraction over all the prunable weights together. */
export function prunableSparsity(
  weights: ReadonlyMap<string, Float32Array>,
  prunable: readonly Matrix[],
): number {
  let zeros = 0, all = 0;
  for (const mat of prunable) {
    const w = weights.get(mat.name)!;
    for (let i = 0; i < w.length; i++) if (w[i] === 0) zeros++;
    all += w.length;
  }
  return all === 0 ? 0 : zeros / all;
}

/** Checks the options; throws an Error saying what is wrong. */
function check(o: TrainOptions): void {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isSafeInteger(v) || v < min) {
      throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
    }
  };
  int("steps", o.steps, 1);
  int("warmup", o.warmup, 0);
  int("evalEvery", o.evalEvery ?? 0, 0);
  if (!(o.lr > 0 && Number.isFinite(o.lr))) throw new Error(`lr must be a positive number, got ${o.lr}`);
  for (const mat of o.prunable) {
    const w = o.weights.get(mat.name);
    if (!w || w.length !== mat.out * mat.in) {
      throw new Error(`prunable weight '${mat.name}' is not ${mat.out}x${mat.in}`);
    }
  }
  const obj = o.objective ?? { kind: "plain" };
  if ("lambda" in obj && !(obj.lambda >= 0 && Number.isFinite(obj.lambda))) {
    throw new Error(`the group-lasso λ must be a number >= 0, got ${obj.lambda}`);
  }
  if ("sparsity" in obj && !(obj.sparsity >= 0 && obj.sparsity < 1)) {
    throw new Error(`the target sparsity must be in [0, 1), got ${obj.sparsity}`);
  }
  if ("block" in obj) { for (const mat of o.prunable) checkBlock(mat, obj.block); }
  if (obj.kind !== "plain" && obj.kind !== "masked" && o.prunable.length === 0) {
    throw new Error(`objective '${obj.kind}' needs prunable weights; the model has none`);
  }
  if (o.ema !== undefined) {
    if (!(o.ema > 0 && o.ema < 1)) {
      throw new Error(`the moving-average decay must be in (0, 1), got ${o.ema}`);
    }
    if (obj.kind === "group-lasso" || obj.kind === "recipe") {
      throw new Error(`a moving average of the weights does not apply to objective '${obj.kind}'`);
    }
  }
  if (obj.kind === "recipe") {
    const f = obj.lassoFraction ?? 0.3;
    if (!(f > 0 && f < 1)) throw new Error(`the recipe's group-lasso fraction must be in (0, 1), got ${f}`);
    if (o.steps < 2) throw new Error(`the recipe needs at least 2 steps (group lasso, then fine-tuning)`);
  }
}

/** The cubic schedule of a `gmp` objective over `steps` steps, with its defaults filled in. */
export function gmpSchedule(
  obj: { sparsity: number; start?: number; end?: number; interval?: number },
  steps: number,
): CubicSchedule {
  const start = obj.start ?? Math.max(1, Math.round(0.1 * steps));
  const end = Math.max(start, obj.end ?? Math.round(0.6 * steps));
  const interval = obj.interval ?? Math.max(1, Math.round((end - start) / 10));
  if (!Number.isSafeInteger(interval) || interval < 1) throw new Error(`the pruning interval must be >= 1`);
  return { initial: 0, final: obj.sparsity, start, interval, updates: Math.floor((end - start) / interval) };
}

/**
 * Trains `options.weights` in place for `options.steps` steps (see the header for the
 * objectives) and returns the losses and evaluations. The last evaluation is at the end, when
 * `evaluate` is given.
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  check(options);
  const o = options;
  const obj: Objective = o.objective ?? { kind: "plain" };
  const t0 = performance.now();
  const names = o.prunable.map((m) => m.name);
  const trainable = new Map(o.weights);
  const newOptimizer = () => new AdamW(trainable, { weightDecay: o.weightDecay ?? 0.01 });
  let opt = newOptimizer();
  let masks: Map<string, Uint8Array> | undefined = obj.kind === "masked"
    ? masksFromZeros(o.weights, names)
    : undefined;
  const gmp = obj.kind === "gmp" ? gmpSchedule(obj, o.steps) : undefined;
  const lassoSteps = obj.kind === "recipe"
    ? Math.max(1, Math.round((obj.lassoFraction ?? 0.3) * o.steps))
    : 0;
  const losses: number[] = [];
  const evals: EvalPoint[] = [];
  const sparsity = () => prunableSparsity(o.weights, o.prunable);
  let stopped = false, taken = 0;

  // The moving average, of the weights that get gradients (known after the first step).
  let averaged: Map<string, Float32Array> | undefined;
  const current = () => averaged ? new Map([...o.weights, ...averaged]) : o.weights;

  let evalSeconds = 0;
  const evaluate = async (step: number) => {
    if (!o.evaluate) return;
    const e0 = performance.now();
    const at = { step, final: step === o.steps || stopped };
    const point = { step, accuracy: await o.evaluate(current(), at), sparsity: sparsity() };
    evals.push(point);
    evalSeconds += (performance.now() - e0) / 1000;
    o.onEval?.(point);
  };
  if (o.evalAtStart) await evaluate(0);

  for (let t = 1; t <= o.steps; t++) {
    // The learning rate: one schedule, or the recipe's two (group lasso, then fine-tuning).
    let lr: number, phase: string;
    if (obj.kind === "recipe" && t > lassoSteps) {
      if (t === lassoSteps + 1) {
        for (const mat of o.prunable) pruneBlocks(o.weights.get(mat.name)!, mat, obj.block, obj.sparsity);
        masks = masksFromZeros(o.weights, names);
        opt = newOptimizer();
      }
      const rest = o.steps - lassoSteps;
      lr = warmupLinearLr(t - lassoSteps, rest, Math.min(o.warmup, rest - 1), o.lr);
      phase = "masked";
    } else {
      const total = obj.kind === "recipe" ? lassoSteps : o.steps;
      lr = warmupLinearLr(t, total, Math.min(o.warmup, total - 1), o.lr);
      phase = obj.kind === "group-lasso" || obj.kind === "recipe"
        ? "group-lasso"
        : obj.kind === "masked"
        ? "masked"
        : obj.kind === "gmp"
        ? (t < gmp!.start ? "train" : t <= gmp!.start + gmp!.updates * gmp!.interval ? "pruning" : "masked")
        : "train";
    }

    const { loss, grads } = await o.lossAndGrads(o.weights, o.batches.next());
    if (!Number.isFinite(loss)) throw new Error(`step ${t}: the loss is ${loss}`);
    losses.push(loss);
    if (masks) { for (const [name, mask] of masks) if (grads.has(name)) applyMask(grads.get(name)!, mask); }
    let sq = 0;
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
    const gradNorm = Math.sqrt(sq);
    const clip = o.clipNorm ?? 1;
    if (clip > 0 && gradNorm > clip) {
      const s = clip / (gradNorm + 1e-6);
      for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= s;
    }
    opt.step(grads, lr);

    let penalty: number | undefined;
    if (obj.kind === "group-lasso" || (obj.kind === "recipe" && t <= lassoSteps)) {
      penalty = 0;
      for (const mat of o.prunable) {
        const w = o.weights.get(mat.name)!;
        proxGroupLasso(w, mat, obj.block, lr * obj.lambda);
        penalty += groupLassoPenalty(w, mat, obj.block, obj.lambda);
      }
    }
    if (gmp && obj.kind === "gmp" && isPruningStep(t, gmp)) {
      masks ??= new Map(names.map((n) => [n, new Uint8Array(o.weights.get(n)!.length).fill(1)]));
      const s = cubicSparsity(t, gmp);
      for (const mat of o.prunable) {
        pruneBlocks(o.weights.get(mat.name)!, mat, obj.block, s, masks.get(mat.name));
      }
    }
    if (masks) { for (const [name, mask] of masks) applyMask(o.weights.get(name)!, mask); }
    if (o.ema !== undefined) {
      averaged ??= new Map([...grads.keys()].map((n) => [n, Float32Array.from(o.weights.get(n)!)]));
      const d = Math.min(o.ema, (1 + t) / (10 + t));
      for (const [name, avg] of averaged) {
        const w = o.weights.get(name)!;
        for (let i = 0; i < w.length; i++) avg[i] = d * avg[i] + (1 - d) * w[i];
        const mask = masks?.get(name);
        if (mask) applyMask(avg, mask);
      }
    }

    o.onStep?.({
      step: t,
      steps: o.steps,
      loss,
      penalty,
      lr,
      phase,
      sparsity: sparsity(),
      gradNorm,
      seconds: (performance.now() - t0) / 1000,
    });
    taken = t;
    stopped = t < o.steps && o.timeLimit !== undefined &&
      (performance.now() - t0) / 1000 - evalSeconds >= o.timeLimit;
    const every = o.evalEvery ?? 0;
    if (t === o.steps || stopped || (every > 0 && t % every === 0)) await evaluate(t);
    if (stopped) break;
  }
  if (averaged) { for (const [name, avg] of averaged) o.weights.get(name)!.set(avg); }
  return {
    steps: taken,
    stoppedEarly: stopped,
    losses,
    evals,
    sparsity: sparsity(),
    seconds: (performance.now() - t0) / 1000,
    evalSeconds,
  };
}
