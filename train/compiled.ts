/**
 * Compiled training steps: the loss and gradients of a batch from a wasm artifact instead of the
 * reference interpreter. For each batch shape (batch size × length bucket, as `bertLossAndGrads`
 * buckets them) the backward function the IR's autodiff builds is compiled once, with every weight
 * turned into a function argument (`weightsAsParams`, ir/params.ts), so the artifact takes the
 * current weights as run-time inputs and serves every step of that shape without recompiling.
 *
 * ```ts
 * const model = await loadBert("../shared/models/sst2-bert-mini", { seq: 64 });
 * const lossAndGrads = compiledBertLossAndGrads(model, { threads: 2 });
 * const { loss, grads } = await lossAndGrads(model.weights, batch); // compiles 32x64 the first time
 * lossAndGrads.close(); // stops the artifacts' worker threads
 * ```
 *
 * The gradients equal the interpreter's within f32 rounding (tests/codegen/grad_model_test.ts).
 */

import { compileModule } from "../codegen/compile.ts";
import { grad, type GradInfo } from "../ir/autodiff.ts";
import { cloneModule } from "../ir/clone.ts";
import { type ParamsInfo, weightsAsParams } from "../ir/params.ts";
import { type CompiledModel, type InputData, loadCompiled } from "../runtime/compiled.ts";
import {
  batchAt,
  type BertGradOptions,
  bucketLength,
  lossInputs,
  storeOf,
  type Teacher,
  type TeacherOptions,
  type TrainableBert,
  trainedWeights,
  withHiddenOutputs,
  withTrainingLoss,
} from "./bert.ts";
import type { Batch, Example } from "./data.ts";
import type { LossAndGrads } from "./trainer.ts";

/** Options of {@link compiledBertLossAndGrads}. */
export interface CompiledGradOptions extends BertGradOptions {
  /** Threads each artifact runs on (the caller's included); the number of cores by default. */
  readonly threads?: number;
  /** Use the plain-SIMD kernels even where relaxed SIMD is available. */
  readonly noRelaxedSimd?: boolean;
  /** Called after each batch shape is compiled and loaded, with its key (`32x64`) and the seconds it took. */
  readonly onCompile?: (key: string, seconds: number) => void;
}

/** A {@link LossAndGrads} backed by compiled artifacts, which hold worker threads until closed. */
export interface CompiledLossAndGrads extends LossAndGrads {
  /** Stops the worker threads of every artifact loaded so far; later calls compile afresh. */
  close(): void;
}

/** One compiled batch shape: the artifact and how its inputs and outputs map to weights. */
interface Step {
  readonly model: CompiledModel;
  readonly info: GradInfo;
  readonly params: ParamsInfo;
  readonly outputs: readonly string[];
}

/** Builds and compiles the backward function of `model` at batch `B`, length `L`. */
async function compileStep(
  model: TrainableBert,
  wrt: string[],
  B: number,
  L: number,
  options: CompiledGradOptions,
): Promise<Step> {
  const m = cloneModule(model.moduleAt(B, L));
  const info = grad(m, withTrainingLoss(m, options), { wrt });
  const params = weightsAsParams(m, info.func);
  const compiled = await compileModule(m, storeOf(m, model.weights), { func: params.func });
  const loaded = await loadCompiled(compiled, {
    threads: options.threads,
    noRelaxedSimd: options.noRelaxedSimd,
  });
  return { model: loaded, info, params, outputs: loaded.plan.buckets[0].outputs.map((o) => o.name) };
}

/**
 * The mean cross-entropy of a batch and its gradient with respect to every trained weight, as
 * `bertLossAndGrads` (train/bert.ts) computes them, from compiled code: the first batch of each
 * shape compiles its artifact (a few seconds), later ones only run it.
 */
export function compiledBertLossAndGrads(
  model: TrainableBert,
  options: CompiledGradOptions = {},
): CompiledLossAndGrads {
  const wrt = trainedWeights(model, options);
  const steps = new Map<string, Promise<Step>>();
  const fn = async (weights: ReadonlyMap<string, Float32Array>, batch: Batch) => {
    const L = options.buckets === false ? batch.seq : bucketLength(batch.maxLength, batch.seq);
    const B = batch.batch;
    const key = `${B}x${L}`;
    let pending = steps.get(key);
    if (!pending) {
      const t0 = performance.now();
      pending = compileStep(model, wrt, B, L, options).then((s) => {
        options.onCompile?.(key, (performance.now() - t0) / 1000);
        return s;
      });
      steps.set(key, pending);
      pending.catch(() => steps.delete(key));
    }
    const step = await pending;
    const { ids, mask } = batchAt(batch, L);
    const feed: Record<string, InputData> = {
      input_ids: ids,
      token_type_ids: new Int32Array(B * L),
      attention_mask: mask,
      ...await lossInputs(options, batch, L),
    };
    for (const p of step.params.params) {
      const w = weights.get(p.weight);
      if (!w) throw new Error(`compiledBertLossAndGrads: no weight '${p.weight}' given`);
      feed[p.param] = w;
    }
    const out = step.model.run(feed);
    const grads = new Map<string, Float32Array>();
    step.info.grads.forEach((g, i) => grads.set(g.name, out[step.outputs[i + 1]]));
    return { loss: out[step.outputs[0]][0], grads };
  };
  return Object.assign(fn, {
    close() {
      for (const p of steps.values()) p.then((s) => s.model.close(), () => {});
      steps.clear();
    },
  });
}

/** A {@link predict}-like function backed by compiled forward artifacts, which hold worker threads until closed. */
export interface CompiledPredict {
  /** The logits of each example with `weights`, each row at its length bucket, as `predict` gives them. */
  (
    weights: ReadonlyMap<string, Float32Array>,
    examples: readonly Example[],
    onRow?: (done: number) => void,
  ): Promise<Float32Array[]>;
  /** Stops the worker threads of every artifact loaded so far; later calls compile afresh. */
  close(): void;
}

/** One compiled length bucket of the forward function, with every weight an argument. */
interface Forward {
  readonly model: CompiledModel;
  readonly params: ParamsInfo;
  readonly output: string;
}

/**
 * Evaluation on compiled code: the forward function of `model` at batch 1 and each length bucket,
 * compiled once (at the first row of that bucket) with the weights as run-time inputs, so one
 * artifact serves every evaluation of a training run. Each row runs at its length bucket, as
 * `predict` (train/bert.ts) runs it on the interpreter; the logits agree within f32 rounding.
 */
export function compiledPredict(
  model: TrainableBert,
  options: { readonly threads?: number; readonly noRelaxedSimd?: boolean } = {},
): CompiledPredict {
  const forwards = new Map<number, Promise<Forward>>();
  const forwardAt = (L: number) => {
    let pending = forwards.get(L);
    if (!pending) {
      pending = (async () => {
        const m = cloneModule(model.moduleAt(1, L));
        const params = weightsAsParams(m, "main");
        const compiled = await compileModule(m, storeOf(m, model.weights), { func: params.func });
        const loaded = await loadCompiled(compiled, options);
        return { model: loaded, params, output: loaded.plan.buckets[0].outputs[0].name };
      })();
      forwards.set(L, pending);
      pending.catch(() => forwards.delete(L));
    }
    return pending;
  };
  const fn = async (
    weights: ReadonlyMap<string, Float32Array>,
    examples: readonly Example[],
    onRow?: (done: number) => void,
  ) => {
    const logits: Float32Array[] = [];
    for (const e of examples) {
      const L = bucketLength(e.length, model.seq);
      const f = await forwardAt(L);
      const feed: Record<string, InputData> = {
        input_ids: e.ids.subarray(0, L),
        token_type_ids: new Int32Array(L),
        attention_mask: e.mask.subarray(0, L),
      };
      for (const p of f.params.params) feed[p.param] = weights.get(p.weight)!;
      logits.push(Float32Array.from(f.model.run(feed)[f.output]));
      onRow?.(logits.length);
    }
    return logits;
  };
  return Object.assign(fn, {
    close() {
      for (const p of forwards.values()) p.then((f) => f.model.close(), () => {});
      forwards.clear();
    },
  });
}

/** A {@link Teacher} on compiled code, which holds worker threads until closed. */
export interface CompiledTeacher extends Teacher {
  /** Stops the worker threads of every artifact loaded so far. */
  close(): void;
}

/**
 * A {@link Teacher} on compiled code: `model`'s forward function with `weights` (its own by
 * default) compiled once per batch shape, the weights packed into the artifact as in inference;
 * with `options.hidden` the function also returns those hidden states (`withHiddenOutputs`).
 */
export function compiledTeacher(
  model: TrainableBert,
  weights: ReadonlyMap<string, Float32Array> = model.weights,
  options: TeacherOptions & { readonly threads?: number; readonly noRelaxedSimd?: boolean } = {},
): CompiledTeacher {
  const copies = new Map([...weights].map(([n, w]) => [n, Float32Array.from(w)]));
  const artifacts = new Map<string, Promise<CompiledModel>>();
  const fn = async (batch: Batch, L: number) => {
    const key = `${batch.batch}x${L}`;
    let pending = artifacts.get(key);
    if (!pending) {
      const base = model.moduleAt(batch.batch, L);
      const m = options.hidden ? withHiddenOutputs(base, options.hidden) : cloneModule(base);
      pending = compileModule(m, storeOf(m, copies)).then((c) => loadCompiled(c, options));
      artifacts.set(key, pending);
      pending.catch(() => artifacts.delete(key));
    }
    const artifact = await pending;
    const { ids, mask } = batchAt(batch, L);
    const out = artifact.run({
      input_ids: ids,
      token_type_ids: new Int32Array(ids.length),
      attention_mask: mask,
    });
    const [logits, ...hidden] = artifact.plan.buckets[0].outputs.map((o) => Float32Array.from(out[o.name]));
    return options.hidden ? { logits, hidden } : logits;
  };
  return Object.assign(fn, {
    close() {
      for (const p of artifacts.values()) p.then((a) => a.close(), () => {});
      artifacts.clear();
    },
  });
}
