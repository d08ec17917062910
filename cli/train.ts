/**
 * `deno task train <hf-dir> --task sst2 --data TRAIN.tsv -o OUT [options]`: fine-tunes a BERT
 * classifier on SST-2 with AdamW (warmup, linear decay), gradients from the IR's autodiff on the
 * reference interpreter, and a sparsity objective (masked fine-tuning, group lasso, gradual
 * magnitude pruning, or the recipe chaining them); shows a progress bar with the loss, the
 * learning rate and dev accuracy when measured; writes the result as a checkpoint in the input's
 * Hugging Face layout, with `training.json`.
 */

import cliProgress from "cli-progress";
import process from "node:process";
import {
  type BlockShape,
  CheckpointError,
  EvalError,
  HfImportError,
  type Objective,
  parseBlock,
  SafetensorsError,
  TokenizerError,
  trainSst2,
} from "../mod.ts";
import { main, parseCli, threadsFlag, UsageError } from "./common.ts";

const USAGE = `usage: deno task train <hf-dir> --task sst2 --data TRAIN.tsv -o OUT [options]

  <hf-dir>               a Hugging Face BERT sequence-classification checkpoint folder
  --task sst2            the task (only sst2)
  --data FILE            the training TSV (sentence and label columns)
  -o, --out DIR          the folder to write the trained checkpoint to (not the input's)
  --weights FILE         start from these weights (a safetensors file, e.g. what 'deno task compile
                         <hf-dir> --passes prune{...} -o x.sir' writes as x.safetensors)

  --steps N              optimizer steps (default 100)
  --batch N              rows per batch (default 32)
  --lr X                 peak learning rate of AdamW (default 5e-5)
  --warmup N             warmup steps, then linear decay to 0 (default 10% of the steps)
  --seq N                static sequence length rows are fitted to (default 64)
  --seed N               seed of the shuffling (default 0)
  --weight-decay X       AdamW's decoupled weight decay, not on biases and LayerNorm (default 0.01)

  --objective NAME       plain | masked | group-lasso | gmp | recipe (default: group-lasso with
                         --group-lasso, else plain)
                           masked: masked fine-tuning; the zeros of the encoder's dense weights stay 0
                           group-lasso: λ·Σ‖w_b‖₂ over RxC blocks, by its proximal step
                           gmp: gradual magnitude pruning to --sparsity on Zhu & Gupta's cubic schedule
                           recipe: group lasso, prune to --sparsity in --block blocks, masked fine-tuning
  --group-lasso λ        the group-lasso weight (group-lasso, recipe)
  --block RxC            block shape over W[out, in] (group-lasso, gmp, recipe; default 1x1)
  --sparsity S           target fraction of blocks pruned, in [0, 1) (gmp, recipe)
  --lasso-fraction F     recipe: fraction of the steps in group lasso (default 0.3)
  --prune-start N        gmp: first pruning step (default 10% of the steps)
  --prune-end N          gmp: last pruning step (default 60% of the steps)
  --prune-interval N     gmp: steps between pruning updates (default a tenth of end - start)

  --train-rows N         train on a seeded random sample of N rows of --data (only they are tokenized)
  --dev FILE             dev TSV (default dev.tsv beside --data, when it exists)
  --eval-every N         evaluate every N steps (default 0: at the end only)
  --eval-rows N          rows of the interval evaluations (the first N; the final one uses all)
  --eval-at-start        also evaluate before training (all dev rows)
  --group-by-length N    batch rows of like length from runs of N batches (default 50; 0 = off)
  --compiled             run the training steps as compiled wasm artifacts (one per batch shape,
                         compiled at its first batch) instead of on the interpreter,
                         and evaluate on compiled artifacts too
  --threads N            threads of the compiled steps (default: the number of cores)
  --freeze-embeddings    do not train the word embeddings
  --distill              distil from the checkpoint's own weights (the model before --weights
                         replaced them): alpha x cross-entropy + (1 - alpha) x T^2 x soft
                         cross-entropy against its probabilities at temperature T
  --temperature T        distillation temperature (default 2)
  --ema D                evaluate and write a moving average of the weights, decay D (e.g. 0.998;
                         masked zeros stay zero; not with group-lasso or recipe)
  --distill-alpha A      weight of the labels' cross-entropy, in [0, 1] (default 0.5)
  --distill-hidden BETA  with --distill, also hidden-state distillation: add BETA x the sum over
                         the encoder layers' outputs of the mean squared difference from the
                         teacher's, over real tokens and hidden units
  --teacher DIR          with --distill, distil from this checkpoint folder instead (e.g. a larger
                         model trained on the same task; same tokenizer; not with --distill-hidden)
  --time-limit MIN       stop after the step that passes MIN minutes of training (evaluations not
                         counted; the schedule stays the one planned for --steps), then evaluate
                         and write the checkpoint
  -h, --help             print this help`;

function number(name: string, text: string | undefined, check: (n: number) => boolean, what: string) {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || !check(n)) {
    throw new UsageError(`--${name} must be ${what}, got '${text}'`);
  }
  return n;
}

const int = (min: number) => (n: number) => Number.isSafeInteger(n) && n >= min;

main(async () => {
  const { values, positionals } = parseCli(Deno.args, {
    task: { type: "string" },
    data: { type: "string" },
    out: { type: "string", short: "o" },
    weights: { type: "string" },
    steps: { type: "string" },
    batch: { type: "string" },
    lr: { type: "string" },
    warmup: { type: "string" },
    seq: { type: "string" },
    seed: { type: "string" },
    "weight-decay": { type: "string" },
    objective: { type: "string" },
    "group-lasso": { type: "string" },
    block: { type: "string" },
    sparsity: { type: "string" },
    "lasso-fraction": { type: "string" },
    "prune-start": { type: "string" },
    "prune-end": { type: "string" },
    "prune-interval": { type: "string" },
    dev: { type: "string" },
    "train-rows": { type: "string" },
    "eval-every": { type: "string" },
    "eval-rows": { type: "string" },
    "eval-at-start": { type: "boolean" },
    "group-by-length": { type: "string" },
    "freeze-embeddings": { type: "boolean" },
    distill: { type: "boolean" },
    ema: { type: "string" },
    temperature: { type: "string" },
    "distill-alpha": { type: "string" },
    "distill-hidden": { type: "string" },
    teacher: { type: "string" },
    compiled: { type: "boolean" },
    threads: { type: "string" },
    "time-limit": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return void console.log(USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one model (a checkpoint folder); see --help`);
  if (values.task === undefined) throw new UsageError(`--task is required (sst2)`);
  if (values.task !== "sst2") throw new UsageError(`--task '${values.task}' is not supported (sst2)`);
  if (values.data === undefined) throw new UsageError(`--data is required (the SST-2 training TSV)`);
  if (values.out === undefined) {
    throw new UsageError(`-o/--out is required (the folder to write the checkpoint to)`);
  }

  const steps = number("steps", values.steps, int(1), "an integer >= 1") ?? 100;
  const batch = number("batch", values.batch, int(1), "an integer >= 1");
  const lr = number("lr", values.lr, (n) => n > 0, "a positive number");
  const warmup = number("warmup", values.warmup, int(0), "an integer >= 0");
  const seq = number("seq", values.seq, (n) => int(3)(n) && n <= 4096, "an integer from 3 to 4096");
  const seed = number("seed", values.seed, int(0), "an integer >= 0");
  const weightDecay = number("weight-decay", values["weight-decay"], (n) => n >= 0, "a number >= 0");
  const lambda = number("group-lasso", values["group-lasso"], (n) => n >= 0, "a number >= 0");
  const sparsity = number("sparsity", values.sparsity, (n) => n >= 0 && n < 1, "a number in [0, 1)");
  const lassoFraction = number(
    "lasso-fraction",
    values["lasso-fraction"],
    (n) => n > 0 && n < 1,
    "in (0, 1)",
  );
  const start = number("prune-start", values["prune-start"], int(1), "an integer >= 1");
  const end = number("prune-end", values["prune-end"], int(1), "an integer >= 1");
  const interval = number("prune-interval", values["prune-interval"], int(1), "an integer >= 1");
  const evalEvery = number("eval-every", values["eval-every"], int(0), "an integer >= 0");
  const evalRows = number("eval-rows", values["eval-rows"], int(1), "an integer >= 1");
  const trainRows = number("train-rows", values["train-rows"], int(1), "an integer >= 1");
  const timeLimit = number("time-limit", values["time-limit"], (n) => n > 0, "a positive number of minutes");
  const group = number("group-by-length", values["group-by-length"], int(0), "an integer >= 0");
  const ema = number("ema", values.ema, (n) => n > 0 && n < 1, "a decay in (0, 1)");
  const temperature = number("temperature", values.temperature, (n) => n > 0, "a positive number");
  const alpha = number(
    "distill-alpha",
    values["distill-alpha"],
    (n) => n >= 0 && n <= 1,
    "a number in [0, 1]",
  );
  const hidden = number("distill-hidden", values["distill-hidden"], (n) => n >= 0, "a number >= 0");
  if (!values.distill) {
    for (
      const [flag, v] of [["temperature", temperature], ["distill-alpha", alpha], ["distill-hidden", hidden]]
    ) {
      if (v !== undefined) throw new UsageError(`--${flag} needs --distill`);
    }
    if (values.teacher !== undefined) throw new UsageError(`--teacher needs --distill`);
  }
  if (values.teacher !== undefined && hidden !== undefined) {
    throw new UsageError(`--distill-hidden needs the checkpoint itself as the teacher: not with --teacher`);
  }
  let block: BlockShape = [1, 1];
  if (values.block !== undefined) {
    try {
      block = parseBlock(values.block);
    } catch (e) {
      throw new UsageError(`--block: ${(e as Error).message}`);
    }
  }

  const kind = values.objective ?? (lambda !== undefined ? "group-lasso" : "plain");
  const need = (flag: string, v: unknown) => {
    if (v === undefined) throw new UsageError(`--objective ${kind} needs --${flag}`);
  };
  const unused = (flag: string, v: unknown) => {
    if (v !== undefined) throw new UsageError(`--${flag} does not apply to --objective ${kind}`);
  };
  let objective: Objective;
  switch (kind) {
    case "plain":
    case "masked":
      for (const f of ["group-lasso", "block", "sparsity"] as const) unused(f, values[f]);
      objective = { kind };
      break;
    case "group-lasso":
      need("group-lasso", lambda);
      unused("sparsity", sparsity);
      objective = { kind, lambda: lambda!, block };
      break;
    case "gmp":
      need("sparsity", sparsity);
      unused("group-lasso", lambda);
      objective = { kind, sparsity: sparsity!, block, start, end, interval };
      break;
    case "recipe":
      need("group-lasso", lambda);
      need("sparsity", sparsity);
      objective = { kind, lambda: lambda!, block, sparsity: sparsity!, lassoFraction };
      break;
    default:
      throw new UsageError(`--objective '${kind}' is not one of plain, masked, group-lasso, gmp, recipe`);
  }
  if (kind !== "gmp") {
    for (const f of ["prune-start", "prune-end", "prune-interval"] as const) unused(f, values[f]);
  }
  if (kind !== "recipe") unused("lasso-fraction", values["lasso-fraction"]);

  const tty = Deno.stderr.isTerminal();
  const bar = tty
    ? new cliProgress.SingleBar({
      format: "{stage} [{bar}] {value}/{total} | loss {loss} | lr {lr} | dev {dev} | zeros {zeros} | " +
        "{duration_formatted}, ETA {eta_formatted}",
      stream: process.stderr,
      etaBuffer: 10,
      hideCursor: true,
    })
    : undefined;
  let dev = "-", lastLine = 0;
  const t0 = performance.now();
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  try {
    const r = await trainSst2({
      model: positionals[0],
      data: values.data,
      weights: values.weights,
      trainRows,
      dev: values.dev,
      out: values.out,
      steps,
      batch,
      lr,
      warmup,
      seq,
      seed,
      weightDecay,
      objective,
      evalEvery,
      evalRows,
      evalAtStart: values["eval-at-start"],
      group,
      freezeEmbeddings: values["freeze-embeddings"],
      distill: values.distill ? { temperature, alpha, hidden, teacher: values.teacher } : undefined,
      ema,
      compiled: values.compiled,
      threads: threadsFlag(values.threads),
      timeLimit: timeLimit === undefined ? undefined : timeLimit * 60,
      onStage: (s) => console.error(s),
      onStep: (s) => {
        const fields = {
          stage: s.phase,
          loss: s.loss.toFixed(4),
          lr: s.lr.toExponential(2),
          dev,
          zeros: pct(s.sparsity),
        };
        if (s.step === 1) bar?.start(s.steps, 0, fields);
        bar?.update(s.step, fields);
        const now = performance.now();
        if (!bar && (now - lastLine > 20_000 || s.step === s.steps || s.step === 1)) {
          lastLine = now;
          console.error(
            `step ${s.step}/${s.steps} ${s.phase}: loss ${fields.loss}, lr ${fields.lr}, zeros ${fields.zeros}, ` +
              `${s.seconds.toFixed(0)} s`,
          );
        }
      },
      onEvalRow: (done, rows) => {
        if (done === 0 && !bar) console.error(`evaluating on ${rows} dev rows`);
        if (bar && (done % 10 === 0 || done === rows)) bar.update({ dev: `eval ${done}/${rows}` });
      },
      onEval: (e) => {
        dev = `${pct(e.accuracy)} (${e.rows} rows)`;
        bar?.update({ dev });
        if (!bar) console.error(`step ${e.step}: dev accuracy ${dev}, zeros ${pct(e.sparsity)}`);
      },
    });
    bar?.stop();
    const { result } = r;
    const last = result.evals.at(-1);
    console.log(
      `trained ${positionals[0]} on ${values.data} (${r.trainRows} rows): ${result.steps} steps` +
        (result.stoppedEarly ? ` (of ${steps} planned; stopped by --time-limit), ` : ", ") + objective.kind,
    );
    console.log(
      `  loss ${result.losses[0].toFixed(4)} -> ${result.losses.at(-1)!.toFixed(4)}; ` +
        `encoder dense weights ${pct(result.sparsity)} zeros`,
    );
    for (const e of result.evals) console.log(`  step ${e.step}: dev accuracy ${pct(e.accuracy)}`);
    if (last) console.log(`  dev accuracy ${pct(last.accuracy)} on ${r.devRows} rows`);
    const trainSeconds = result.seconds - result.evalSeconds;
    console.log(
      `  training ${trainSeconds.toFixed(1)} s (${
        (result.steps * (batch ?? 32) / trainSeconds).toFixed(2)
      } ` +
        `samples/s), evaluations ${result.evalSeconds.toFixed(1)} s; total ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
    );
    console.log(`  wrote ${values.out} (${r.checkpoint.files.length} files)`);
  } catch (e) {
    bar?.stop();
    if (
      e instanceof EvalError || e instanceof TokenizerError || e instanceof HfImportError ||
      e instanceof CheckpointError || e instanceof SafetensorsError
    ) {
      throw new UsageError(e.message);
    }
    if (
      e instanceof Error &&
      /^(the target sparsity|the group-lasso|block \d+x\d+ is larger|the recipe)/.test(e.message)
    ) {
      throw new UsageError(e.message);
    }
    throw e;
  }
});
