/**
 * A Hugging Face BERT classifier as a training problem: its weights as f32 arrays by checkpoint
 * name (copies, trained in place), its prunable weights, the mean cross-entropy of a batch and its
 * gradients (the IR's own autodiff, `ir/autodiff.ts`, run on the reference interpreter), and SST-2
 * accuracy on the interpreter with the current weights.
 *
 * A batch runs at `[batch, L]`, L the length bucket of its longest row (below): the module is
 * specialized to that shape once, `withCrossEntropyLoss` and `grad` add its backward function,
 * and the result is cached.
 *
 * Evaluation runs each row at the shortest length bucket that holds it (multiples of 16 up to
 * the model's length, `specializeShapes` of the imported module): the tokens past a row's length
 * are padding, masked with -10000 before the softmax, whose exponential is exactly 0 in f32, so
 * the logits are those of the full length, at a fraction of the work.
 *
 * ```ts
 * const model = await loadBert("../shared/models/sst2-bert-mini", { seq: 64 });
 * const dev = await readExamples("../shared/data/sst2/dev.tsv", model.tokenizer, 64);
 * console.log(evaluateAccuracy(model, model.weights, dev));
 * ```
 */

import { readHfBert } from "../frontend/hf.ts";
import type { BertConfig } from "../frontend/synthetic_bert.ts";
import { type BertTokenizer, loadTokenizer } from "../frontend/tokenizer.ts";
import { grad, type GradInfo, runGrad } from "../ir/autodiff.ts";
import { cloneModule } from "../ir/clone.ts";
import { interpret } from "../ir/interpreter.ts";
import { withCrossEntropyLoss, withDistillationLoss } from "../ir/loss.ts";
import type { Module } from "../ir/module.ts";
import { specializeShapes } from "../ir/specialize.ts";
import { Tensor } from "../ir/tensor.ts";
import { memoryStore, type WeightStore } from "../ir/weights.ts";
import type { Batch, Example } from "./data.ts";
import type { LossAndGrads } from "./trainer.ts";
import { type Matrix, prunableWeights } from "./sparsity.ts";

/** The bucket step of evaluation's lengths. */
export const LENGTH_STEP = 16;

/** A BERT sequence classifier ready to train. */
export interface TrainableBert {
  /** The checkpoint folder it came from. */
  readonly dir: string;
  /** The imported module (batch 1, length `seq`). */
  readonly module: Module;
  /** The model's dimensions. */
  readonly config: BertConfig;
  /** The static sequence length. */
  readonly seq: number;
  /** Number of labels. */
  readonly labels: number;
  /** Every declared weight, by checkpoint name: f32 copies, trained in place. */
  readonly weights: Map<string, Float32Array>;
  /** The weights the sparsity objectives act on. */
  readonly prunable: Matrix[];
  /** The checkpoint's tokenizer. */
  readonly tokenizer: BertTokenizer;
  /** The module at batch `batch` and length `seq` (cached). */
  moduleAt(batch: number, seq: number): Module;
}

/** Loads a Hugging Face BERT sequence classifier from `dir` at length `seq` for training. */
export async function loadBert(dir: string, options: { seq: number }): Promise<TrainableBert> {
  const hf = await readHfBert(dir, { seq: options.seq });
  if (hf.head !== "classifier") throw new Error(`${dir}: ${hf.architecture} is not a sequence classifier`);
  const weights = new Map<string, Float32Array>();
  for (const w of hf.module.weights.values()) {
    if (w.type.dtype !== "f32" || w.type.sparse) {
      throw new Error(`weight '${w.name}' is not a dense f32 tensor`);
    }
    weights.set(w.name, Float32Array.from(hf.weights.get(w).data));
  }
  const cache = new Map<string, Module>();
  const seq = options.seq;
  return {
    dir,
    module: hf.module,
    config: hf.config,
    seq,
    labels: hf.config.labels,
    weights,
    prunable: prunableWeights(hf.module),
    tokenizer: await loadTokenizer(dir),
    moduleAt(batch, length) {
      const key = `${batch}x${length}`;
      let m = cache.get(key);
      if (!m) {
        m = batch === 1 && length === seq ? hf.module : specializeShapes(hf.module, { batch, seq: length });
        cache.set(key, m);
      }
      return m;
    },
  };
}

/** A weight store over `weights` (views, not copies) for module `m`. */
export function storeOf(m: Module, weights: ReadonlyMap<string, Float32Array>): WeightStore {
  return memoryStore(
    new Map([...m.weights.values()].map((w) => [w.name, new Tensor(w.type, weights.get(w.name)!)])),
  );
}

/** The bucket length of a row of `length` tokens: the next multiple of {@link LENGTH_STEP}, at most `seq`. */
export function bucketLength(length: number, seq: number): number {
  return Math.min(seq, Math.max(LENGTH_STEP, Math.ceil(length / LENGTH_STEP) * LENGTH_STEP));
}

/** The logits of each example with `weights`, each row at its length bucket. */
export function predict(
  model: TrainableBert,
  weights: ReadonlyMap<string, Float32Array>,
  examples: readonly Example[],
  onRow?: (done: number) => void,
): Float32Array[] {
  const stores = new Map<number, WeightStore>();
  return examples.map((e, r) => {
    const L = bucketLength(e.length, model.seq);
    const m = model.moduleAt(1, L);
    let store = stores.get(L);
    if (!store) stores.set(L, store = storeOf(m, weights));
    const ids = Tensor.from([1, L], "i64", e.ids.subarray(0, L));
    const inputs = {
      input_ids: ids,
      token_type_ids: Tensor.from([1, L], "i64", new Int32Array(L)),
      attention_mask: Tensor.from([1, L], "i64", e.mask.subarray(0, L)),
    };
    const out = Float32Array.from(interpret(m, inputs, store)[0].data);
    onRow?.(r + 1);
    return out;
  });
}

/** The fraction of `examples` whose argmax logit (first on ties) is their label. */
export function evaluateAccuracy(
  model: TrainableBert,
  weights: ReadonlyMap<string, Float32Array>,
  examples: readonly Example[],
  onRow?: (done: number) => void,
): number {
  return accuracyOf(predict(model, weights, examples, onRow), examples);
}

/** The fraction of `examples` whose argmax logit in `logits` (first on ties) is their label. */
export function accuracyOf(logits: readonly Float32Array[], examples: readonly Example[]): number {
  let right = 0;
  logits.forEach((l, r) => {
    let k = 0;
    for (let j = 1; j < l.length; j++) if (l[j] > l[k]) k = j;
    if (k === examples[r].label) right++;
  });
  return examples.length === 0 ? 0 : right / examples.length;
}

/**
 * What a teacher model gives a batch's rows cut to length `L`: its logits `[B, C]` (row-major),
 * or, for hidden-state distillation, the logits and the hidden states it was asked for, each
 * `[B, L, H]` (see {@link TeacherOutput}).
 */
export type Teacher = (
  batch: Batch,
  L: number,
) => Float32Array | TeacherOutput | Promise<Float32Array | TeacherOutput>;

/** A teacher's outputs for a batch with hidden-state distillation. */
export interface TeacherOutput {
  /** The logits, `[B, C]` row-major. */
  readonly logits: Float32Array;
  /** The hidden states asked for (`TeacherOptions.hidden`), in order, each `[B, L, H]` row-major. */
  readonly hidden: readonly Float32Array[];
}

/** Options of {@link interpretedTeacher} and `compiledTeacher` (train/compiled.ts). */
export interface TeacherOptions {
  /**
   * Also return these values of `@main` (op result names, e.g. {@link bertHiddenStates}), so the
   * teacher gives a {@link TeacherOutput}; the logits alone by default.
   */
  readonly hidden?: readonly string[];
}

/** A teacher's result as logits and hidden states (none when it gave the logits alone). */
export function teacherOutput(out: Float32Array | TeacherOutput): TeacherOutput {
  return out instanceof Float32Array ? { logits: out, hidden: [] } : out;
}

/** Knowledge distillation: the loss of `withDistillationLoss` (ir/loss.ts) against a teacher. */
export interface Distillation {
  /** The teacher's logits of each batch (and hidden states with `hidden`). */
  readonly teacher: Teacher;
  /** Softmax temperature of both distributions; 2 by default. */
  readonly temperature?: number;
  /** Weight of the cross-entropy against the labels; 0.5 by default. */
  readonly alpha?: number;
  /**
   * Hidden-state distillation as well: β · Σ over `layers` of the mean squared difference between
   * the student's and the teacher's values over real tokens and hidden units (ir/loss.ts's
   * `HiddenDistillation`); the teacher must give those values (`TeacherOptions.hidden`), in order.
   */
  readonly hidden?: { readonly beta: number; readonly layers: readonly string[] };
}

/**
 * The hidden states of a BERT's `@main` as op result names, in order: the output of each encoder
 * layer (its final LayerNorm, over `encoder.layer.<i>.output.LayerNorm`), preceded with
 * `embeddings` by the embeddings' LayerNorm output. Throws when there are none.
 */
export function bertHiddenStates(m: Module, options: { readonly embeddings?: boolean } = {}): string[] {
  const f = m.func("main");
  if (!f) throw new Error(`bertHiddenStates: the module has no function '@main'`);
  const layers: { index: number; name: string }[] = [];
  for (const op of f.body) {
    if (op.name !== "layer_norm" && op.name !== "add_layer_norm") continue;
    for (const v of op.operands) {
      if (v.kind !== "weight") continue;
      const layer = /encoder\.layer\.(\d+)\.output\.LayerNorm\.weight$/.exec(v.name);
      if (layer) layers.push({ index: Number(layer[1]), name: op.result.name });
      else if (options.embeddings && /embeddings\.LayerNorm\.weight$/.test(v.name)) {
        layers.push({ index: -1, name: op.result.name });
      }
    }
  }
  if (!layers.some((l) => l.index >= 0)) throw new Error(`bertHiddenStates: no encoder layer outputs found`);
  return layers.sort((a, b) => a.index - b.index).map((l) => l.name);
}

/**
 * A copy of `m` whose `@main` also returns the op results named `values`, after its own results
 * (the module is cloned; `m` is unchanged).
 */
export function withHiddenOutputs(m: Module, values: readonly string[]): Module {
  const copy = cloneModule(m);
  const f = copy.func("main")!;
  for (const name of values) {
    const op = f.body.find((o) => o.result.name === name);
    if (!op) throw new Error(`withHiddenOutputs: '@main' has no op result '%${name}'`);
    f.returns.push(op.result);
    f.resultTypes.push(structuredClone(op.result.type));
  }
  return copy;
}

/** Options of {@link bertLossAndGrads}. */
export interface BertGradOptions {
  /** Weights not to train (no gradient is computed for them), by name. */
  readonly frozen?: (name: string) => boolean;
  /** Rows of length buckets (16, 32, ...) rather than the model's full length; true by default. */
  readonly buckets?: boolean;
  /** Train against a teacher's soft targets as well as the labels; the labels alone by default. */
  readonly distill?: Distillation;
}

/** Adds the training loss `options` asks for to `m`'s `@main`; returns the loss function's name. */
export function withTrainingLoss(m: Module, options: BertGradOptions): string {
  const d = options.distill;
  return d
    ? withDistillationLoss(m, "main", {
      temperature: d.temperature,
      alpha: d.alpha,
      hidden: d.hidden && { beta: d.hidden.beta, values: d.hidden.layers },
    })
    : withCrossEntropyLoss(m, "main");
}

/** A batch's ids and mask cut to its first `L` positions, `[B, L]`. */
export function batchAt(batch: Batch, L: number): { ids: Int32Array; mask: Int32Array } {
  const B = batch.batch;
  const ids = new Int32Array(B * L), mask = new Int32Array(B * L);
  for (let r = 0; r < B; r++) {
    ids.set(batch.ids.subarray(r * batch.seq, r * batch.seq + L), r * L);
    mask.set(batch.mask.subarray(r * batch.seq, r * batch.seq + L), r * L);
  }
  return { ids, mask };
}

/**
 * The extra inputs of the training loss for `batch` at length `L`, by argument name: the labels,
 * with distillation the teacher's probabilities at the temperature (`soft_targets`, computed in
 * f64), and with hidden-state distillation the teacher's hidden states (`teacher_hidden_<i>`,
 * `[B, L, H]`) and the weight of each position (`hidden_weights`, `[B, L, 1]`): mask / (N·H), N
 * the batch's real tokens, so that the loss's sum is the mean over real tokens and hidden units.
 */
export async function lossInputs(
  options: BertGradOptions,
  batch: Batch,
  L: number,
): Promise<Record<string, Int32Array | Float32Array>> {
  const d = options.distill;
  if (!d) return { labels: batch.labels };
  const out = teacherOutput(await d.teacher(batch, L));
  const logits = out.logits;
  const C = logits.length / batch.batch, T = d.temperature ?? 2;
  const probs = new Float32Array(logits.length);
  for (let r = 0; r < batch.batch; r++) {
    const row = logits.subarray(r * C, r * C + C);
    const top = Math.max(...row);
    const e = Array.from(row, (z) => Math.exp((z - top) / T));
    const sum = e.reduce((a, b) => a + b, 0);
    e.forEach((v, c) => probs[r * C + c] = v / sum);
  }
  const inputs: Record<string, Int32Array | Float32Array> = { labels: batch.labels, soft_targets: probs };
  if (!d.hidden) return inputs;
  const layers = d.hidden.layers.length;
  if (out.hidden.length !== layers) {
    throw new Error(
      `the teacher gave ${out.hidden.length} hidden states, hidden distillation needs ${layers}`,
    );
  }
  const { mask } = batchAt(batch, L);
  const H = out.hidden[0].length / mask.length;
  const real = mask.reduce((a, b) => a + (b !== 0 ? 1 : 0), 0);
  inputs.hidden_weights = Float32Array.from(mask, (v) => v !== 0 ? 1 / (real * H) : 0);
  out.hidden.forEach((h, i) => inputs[`teacher_hidden_${i}`] = h);
  return inputs;
}

/**
 * The tensors of `extra` (from {@link lossInputs}) shaped as the arguments of the same names of
 * function `fn` of `m`.
 */
function lossTensors(
  m: Module,
  fn: string,
  extra: Record<string, Int32Array | Float32Array>,
): Record<string, Tensor> {
  const params = new Map(m.func(fn)!.params.map((p) => [p.name, p.type]));
  return Object.fromEntries(
    Object.entries(extra).map(([name, data]) => {
      const type = params.get(name);
      if (!type) throw new Error(`the loss function '@${fn}' has no argument '%${name}'`);
      return [name, Tensor.from([...type.shape], type.dtype, data)];
    }),
  );
}

/**
 * A {@link Teacher} on the reference interpreter: `model`'s module with `weights` (its own by
 * default); with `options.hidden` it gives those hidden states as well.
 */
export function interpretedTeacher(
  model: TrainableBert,
  weights: ReadonlyMap<string, Float32Array> = model.weights,
  options: TeacherOptions = {},
): Teacher {
  const built = new Map<string, { m: Module; store: WeightStore }>();
  return (batch, L) => {
    const key = `${batch.batch}x${L}`;
    let b = built.get(key);
    if (!b) {
      const base = model.moduleAt(batch.batch, L);
      const m = options.hidden ? withHiddenOutputs(base, options.hidden) : base;
      built.set(key, b = { m, store: storeOf(m, weights) });
    }
    const { ids, mask } = batchAt(batch, L);
    const shape = [batch.batch, L];
    const out = interpret(b.m, {
      input_ids: Tensor.from(shape, "i64", ids),
      token_type_ids: Tensor.from(shape, "i64", new Int32Array(ids.length)),
      attention_mask: Tensor.from(shape, "i64", mask),
    }, b.store);
    const logits = Float32Array.from(out[0].data);
    return options.hidden ? { logits, hidden: out.slice(1).map((t) => Float32Array.from(t.data)) } : logits;
  };
}

/** The names of the weights {@link bertLossAndGrads} trains. */
export function trainedWeights(model: TrainableBert, options: BertGradOptions = {}): string[] {
  return [...model.weights.keys()].filter((n) => !(options.frozen?.(n) ?? false));
}

/**
 * The mean cross-entropy of a batch and its gradient with respect to every trained weight, from
 * the backward function the IR's autodiff builds for the batch's shape, run on the interpreter.
 */
export function bertLossAndGrads(model: TrainableBert, options: BertGradOptions = {}): LossAndGrads {
  const wrt = trainedWeights(model, options);
  const built = new Map<string, { m: Module; info: GradInfo; store: WeightStore }>();
  return async (weights: ReadonlyMap<string, Float32Array>, batch: Batch) => {
    const L = options.buckets === false ? batch.seq : bucketLength(batch.maxLength, batch.seq);
    const B = batch.batch;
    const key = `${B}x${L}`;
    let b = built.get(key);
    if (!b) {
      const m = cloneModule(model.moduleAt(B, L));
      const info = grad(m, withTrainingLoss(m, options), { wrt });
      b = { m, info, store: storeOf(m, weights) };
      built.set(key, b);
    }
    const { ids, mask } = batchAt(batch, L);
    const extra = lossTensors(b.m, b.info.forward, await lossInputs(options, batch, L));
    const r = runGrad(b.m, b.info, {
      input_ids: Tensor.from([B, L], "i64", ids),
      token_type_ids: Tensor.from([B, L], "i64", new Int32Array(B * L)),
      attention_mask: Tensor.from([B, L], "i64", mask),
      ...extra,
    }, b.store);
    const grads = new Map<string, Float32Array>();
    for (const [name, t] of r.grads) grads.set(name, t.data as Float32Array);
    return { loss: r.loss, grads };
  };
}
