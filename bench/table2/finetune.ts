/**
 * The fine-tuned variant of a `deno task bench table2` configuration (`--finetune`): masked
 * fine-tuning through the library (train/sst2.ts `trainSst2`: objective `masked`, compiled training
 * steps, distillation from the checkpoint's own dense weights, word embeddings frozen) starting from
 * the configuration's pruned weights. The checkpoint it writes is imported like any checkpoint,
 * its pruned entries are checked to have stayed exactly zero, and it is compiled, evaluated and
 * checked against the interpreter as the one-shot configurations are (bench/table2/artifact.ts).
 */

import { join } from "node:path";
import { loadEvalModel } from "../../frontend/sst2.ts";
import { writeSafetensors } from "../../ir/safetensors.ts";
import type { Tensor } from "../../ir/tensor.ts";
import { trainSst2 } from "../../train/sst2.ts";
import type { Summary } from "../stats.ts";
import {
  build,
  evaluateArtifact,
  interpreterLogits,
  jobId,
  maxAbs,
  type Pruned,
  rowInputs,
} from "./artifact.ts";
import type { Job, Loaded, Setting } from "./job.ts";
import { finetunedLabel } from "./pareto.ts";

/** How `--finetune` trains, and which configurations. */
export interface FinetuneSetting {
  /** The methods whose configurations are fine-tuned (`--finetune-methods`). */
  readonly methods: readonly string[];
  /** The sparsities at which they are (`--finetune-sparsities`). */
  readonly sparsities: readonly number[];
  readonly steps: number;
  /** Peak learning rate, reached after `warmup` steps. */
  readonly lr: number;
  readonly warmup: number;
  readonly batch: number;
  /** Seed of the training-row sample and of the batches' order. */
  readonly seed: number;
  /** Training rows sampled (seeded) from the training TSV. */
  readonly trainRows: number;
  /** Distillation temperature and the weight of the labels' cross-entropy. */
  readonly temperature: number;
  readonly alpha: number;
  /** Decay of the moving average of the weights that is evaluated and kept (`TrainOptions.ema`), if any. */
  readonly ema?: number;
  /** Threads of the compiled training steps and evaluations, in each worker. */
  readonly threads: number;
}

/** What the fine-tuned variant of a configuration measured. */
export interface FinetuneResult {
  /** Accuracy of the fine-tuned model's compiled artifact, on the same dev rows as the others. */
  readonly accuracy: number;
  readonly correct: number;
  readonly rows: number;
  /** Steps taken, and the seconds they took (the trainer's evaluation not counted). */
  readonly steps: number;
  readonly trainSeconds: number;
  readonly samplesPerSecond: number;
  /** The training loss: first step, last step, mean over the steps. */
  readonly loss: { readonly first: number; readonly last: number; readonly mean: number };
  /** The trainer's own accuracy at the end (compiled forward at each row's length bucket), same rows. */
  readonly trainerAccuracy: number;
  /** Fraction of zeros over the pruned weights after fine-tuning: checked equal to the pruned one. */
  readonly sparsityAchieved: number;
  /** The checkpoint `trainSst2` wrote, and the pruned weights it started from. */
  readonly checkpoint: string;
  readonly startWeights: string;
  readonly compileSeconds: number;
  readonly evalSeconds: number;
  readonly artifact: string;
  readonly pipeline: string;
  readonly memoryBytes: number;
  /** The interpreter's logits on the first dev row with the fine-tuned weights; the artifact's distance from them. */
  readonly referenceLogits: number[];
  readonly checkMaxAbs: number;
  /** Latency in ms by thread count, timed in the same rounds as the other artifacts. */
  latency?: Record<string, Summary>;
}

/**
 * Checks that fine-tuning kept the mask: every entry of the pruned weights that pruning zeroed is
 * still exactly zero after it, and no other entry became zero. Returns the zero fraction.
 */
function checkMask(
  name: string,
  pruned: ReadonlyMap<string, Tensor>,
  tuned: ReadonlyMap<string, Tensor>,
): number {
  let zeros = 0, total = 0;
  for (const [weight, before] of pruned) {
    const after = tuned.get(weight)!.data;
    for (let k = 0; k < before.data.length; k++) {
      if ((before.data[k] === 0) !== (after[k] === 0)) {
        throw new Error(
          `${name}: @${weight}[${k}] is ${before.data[k]} after pruning and ${after[k]} after fine-tuning; ` +
            `masked fine-tuning must keep exactly the pruned zeros`,
        );
      }
      if (after[k] === 0) zeros++;
    }
    total += before.data.length;
  }
  return total ? zeros / total : 0;
}

/**
 * Fine-tunes the configuration `job` from its pruned weights (`pruned`) as `s.finetune` says, then
 * compiles and evaluates the checkpoint written: into `s.artifacts/<id>-finetuned`, beside the
 * checkpoint `<id>-finetuned-checkpoint` and the pruned weights it started from,
 * `<id>-pruned.safetensors`.
 */
export async function runFinetune(s: Setting, l: Loaded, job: Job, pruned: Pruned): Promise<FinetuneResult> {
  const ft = s.finetune!;
  const id = jobId(job), name = finetunedLabel(job);
  await Deno.mkdir(s.artifacts, { recursive: true });
  // The pruned weights as trainSst2 takes them: a safetensors file of the tensors they replace.
  const startWeights = join(s.artifacts, `${id}-pruned.safetensors`);
  await writeSafetensors(
    startWeights,
    [...pruned.changed].map(([weight, t]) => ({
      name: weight,
      dtype: "F32",
      shape: [...t.shape],
      data: t.data,
    })),
  );
  // The trainer's own final evaluation runs on the dev rows the artifacts are measured on.
  let dev = s.data;
  if (s.limit !== undefined) {
    dev = join(s.artifacts, `${id}-dev.tsv`);
    await Deno.writeTextFile(
      dev,
      ["sentence\tlabel", ...l.rows.map((r) => `${r.sentence}\t${r.label}`)].join("\n") + "\n",
    );
  }
  const checkpoint = join(s.artifacts, `${id}-finetuned-checkpoint`);
  const started = performance.now();
  const trained = await trainSst2({
    model: s.model,
    weights: startWeights,
    data: s.train,
    trainRows: ft.trainRows,
    dev,
    out: checkpoint,
    steps: ft.steps,
    batch: ft.batch,
    lr: ft.lr,
    warmup: ft.warmup,
    seq: s.seq,
    seed: ft.seed,
    objective: { kind: "masked" },
    compiled: true,
    threads: ft.threads,
    distill: { temperature: ft.temperature, alpha: ft.alpha },
    ema: ft.ema,
    freezeEmbeddings: true,
    onStep: (r) => {
      if (r.step % 100 === 0 || r.step === r.steps) {
        const seconds = (performance.now() - started) / 1000;
        console.error(
          `${name}: step ${r.step}/${r.steps}, loss ${r.loss.toFixed(4)}, ${seconds.toFixed(0)} s`,
        );
      }
    },
  });
  const { result, report } = trained;
  const loss = report.loss as FinetuneResult["loss"];

  // The checkpoint written, imported like any checkpoint.
  const t0 = performance.now();
  const model = await loadEvalModel(checkpoint, { seq: s.seq });
  const tuned = new Map(
    [...pruned.changed.keys()].map((
      weight,
    ) => [weight, model.weights.get(model.module.weights.get(weight)!)]),
  );
  const sparsityAchieved = checkMask(name, pruned.changed, tuned);
  const built = await build(
    s,
    model.module,
    job,
    { weights: model.weights, changed: tuned, logs: [] },
    "finetuned",
  );
  const t1 = performance.now();
  const { acc, first } = await evaluateArtifact(s, l, built.dir);
  const referenceLogits = interpreterLogits(
    model.module,
    model.weights,
    rowInputs(l.tokenizer, l.rows[0], s.seq),
  );
  const trainSeconds = result.seconds - result.evalSeconds;
  return {
    accuracy: acc.accuracy,
    correct: acc.correct,
    rows: acc.rows,
    steps: result.steps,
    trainSeconds,
    samplesPerSecond: result.steps * ft.batch / trainSeconds,
    loss,
    trainerAccuracy: result.evals.at(-1)?.accuracy ?? NaN,
    sparsityAchieved,
    checkpoint,
    startWeights,
    compileSeconds: (t1 - t0) / 1000,
    evalSeconds: acc.seconds,
    artifact: built.dir,
    pipeline: built.pipeline,
    memoryBytes: built.memoryBytes,
    referenceLogits: [...referenceLogits],
    checkMaxAbs: maxAbs(referenceLogits, first),
  };
}
