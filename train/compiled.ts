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
import { withCrossEntropyLoss } from "../ir/loss.ts";
import { type ParamsInfo, weightsAsParams } from "../ir/params.ts";
import { type CompiledModel, type InputData, loadCompiled } from "../runtime/compiled.ts";
import { type BertGradOptions, bucketLength, storeOf, type TrainableBert, trainedWeights } from "./bert.ts";
import type { Batch } from "./data.ts";
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
  const info = grad(m, withCrossEntropyLoss(m, "main"), { wrt });
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
    const ids = new Int32Array(B * L), mask = new Int32Array(B * L);
    for (let r = 0; r < B; r++) {
      ids.set(batch.ids.subarray(r * batch.seq, r * batch.seq + L), r * L);
      mask.set(batch.mask.subarray(r * batch.seq, r * batch.seq + L), r * L);
    }
    const feed: Record<string, InputData> = {
      input_ids: ids,
      token_type_ids: new Int32Array(B * L),
      attention_mask: mask,
      labels: batch.labels,
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
