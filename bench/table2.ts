/**
 * `deno task bench table2 [--quick] [--limit N] [--calibration N] [--workers N] [--seq N]
 * [--threads 1,2] [--repeat N] [--interpreter] [--int8 [--int8-methods LIST]]
 * [--finetune [--finetune-methods LIST] [--finetune-sparsities LIST] [--finetune-steps N] ...] [--out DIR]
 * [--results FILE | --no-results] [--from-json FILE [--retime]]`: the paper's Table 2, accuracy beside
 * sparsity, and the co-design view, accuracy against latency. SST-2 dev accuracy of sst2-bert-mini
 * dense and with every encoder dense weight pruned to 50% / 80% in blocks 1x1, 1x4, 1x32, 32x1, 4x4
 * and 16x16, by two one-shot methods without retraining:
 *
 * - `magnitude`: `prune{score=l2}`, the block ℓ2 norm (plain magnitude for 1x1), per matrix;
 * - `reconstruct`: `prune-reconstruct`, OBS/SparseGPT-style pruning that updates the kept weights
 *   to reproduce each layer's unpruned outputs on `--calibration` train sentences (default 256);
 *   `--reconstruct-options "correct=false"` etc. pass more options to it.
 *
 * Both passes run on the model imported at `--cal-seq` (default 48; longer calibration sentences
 * are truncated). Each pruned model is then compiled at `--seq` (default 64, longer than every dev
 * sentence) with `bsr-lower` in its block shape (the dense model without it) into
 * `--out/table2-artifacts/<configuration>/`, and that artifact is what is measured: its accuracy
 * on every dev row (padded and masked to `--seq`), and after all configurations are built, its
 * latency (median over `--repeat` interleaved rounds at each of `--threads`, default 1, nothing
 * else running). Before timing, each artifact's logits on the first dev row are checked against
 * the reference interpreter on the same pruned weights. `--interpreter` also evaluates every
 * configuration with the reference interpreter (each row at its own length, nothing padded) and
 * counts the rows whose prediction differs from the artifact's.
 *
 * `--int8` adds an int8 variant of each configuration of `--int8-methods` (default
 * `dense,reconstruct`; `magnitude` may be added): the same pruned weights compiled with `quantize`
 * after `bsr-lower` (after `fuse` for dense; per-channel int8 weights, 7-bit dynamic activations,
 * int8 embedding tables) into `<configuration>-int8/`, its accuracy measured on every dev row as
 * the f32 artifact's is, its first-row logits checked against the interpreter on the quantized
 * module (`qdense`, `qgather`) within twice what ±2-ulp noise in the interpreter's f32 ops moves
 * them (bench/ulp_noise.ts) or 1e-3 if larger, and timed in the same interleaved rounds as the f32
 * artifacts. The int8 block-sparse kernel runs blocks whose rows and columns are multiples of 4;
 * the other shapes run the int8 dense kernel on the densified weight, which the tables note. Table
 * 2 then has an int8 column beside each such method's, an int8 table (accuracy and latency beside
 * f32, and the difference), and the plot and the Pareto front take the f32 and int8 points together.
 * `--interpreter` evaluates the f32 models only. JSON files from runs without `--int8` re-render
 * without int8.
 *
 * `--finetune` adds a fine-tuned variant of each configuration of `--finetune-methods` (default
 * `reconstruct`; or `magnitude`) at `--finetune-sparsities` (default all the run's): masked
 * fine-tuning through the library (train/sst2.ts `trainSst2`: objective `masked`, compiled training
 * steps on `--finetune-threads` threads per worker (default 1), distillation from the dense model at
 * `--finetune-temperature` (2) with `--finetune-alpha` (0.5) of the labels' loss, a moving average of
 * the weights with decay `--finetune-ema` (0.99; 0 = none) evaluated and kept, word embeddings
 * frozen, batch 32 at `--seq`) from the configuration's pruned weights for `--finetune-steps` (400)
 * at `--finetune-lr` (5e-5) after `--finetune-warmup` (40) steps, on `--finetune-train-rows` (40000)
 * seeded train rows (`--finetune-seed`, 0). The checkpoint it writes
 * (`<configuration>-finetuned-checkpoint/`) must keep exactly the pruned zeros (checked entry by
 * entry), and is compiled into
 * `<configuration>-finetuned/`, evaluated, checked against the interpreter on its own weights and
 * timed like the f32 artifacts. Table 2 then has a fine-tuned column beside each such method's, a
 * fine-tuning table (steps, training seconds, loss, accuracy beside one-shot), and the fine-tuned
 * points (diamonds) join the plot and the Pareto front. `--quick` fine-tunes 4 steps (warmup 1) on
 * 256 rows unless told otherwise. JSON files from runs without `--finetune` re-render without it.
 *
 * Configurations are pruned, compiled and evaluated in `--workers` workers (default 2). Writes
 * `table2.json`, `table2.md` and `table2.svg` (accuracy against latency at the first thread
 * count, every block shape, sparsity and method, with the Pareto front) to `--out` (default
 * `out/bench`) and prints the Markdown. `--quick`: dense and 1x32 at 80% with both methods, on
 * the first 100 dev rows unless `--limit` says otherwise. `--blocks`, `--sparsities` and
 * `--methods` pick a subset.
 *
 * A full run (no `--quick`, `--limit` or subset) also rewrites the generated `table2` section of
 * docs/results.md (`--results FILE` elsewhere or for any run, `--no-results` not at all) and writes
 * `table2.svg` beside it. `--from-json out/bench/table2.json` renders all of that again from an
 * earlier run's JSON without measuring anything; with `--retime` it first times that run's
 * artifacts again (at `--threads`, `--repeat` rounds; each checked against the interpreter first),
 * e.g. when something else ran during the run's timing.
 *
 * The parts live in bench/table2/: a configuration's pruning, build and evaluation (job.ts; the
 * compiling and measuring of an artifact, artifact.ts; the fine-tuning, finetune.ts), the worker
 * that runs them (worker.ts), the workers and the timing (measure.ts), the Markdown and the
 * results section (report.ts) and the accuracy-against-latency view (pareto.ts).
 */

import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { writeSection } from "../cli/generated_section.ts";
import type { FinetuneSetting } from "./table2/finetune.ts";
import type { Job, JobResult, Setting } from "./table2/job.ts";
import { measure, timeArtifacts } from "./table2/measure.ts";
import { paretoView } from "./table2/pareto.ts";
import { REFERENCE, resultsSection, table2Markdown } from "./table2/report.ts";

const BLOCKS = ["1x1", "1x4", "1x32", "32x1", "4x4", "16x16"];
const SPARSITIES = [0.5, 0.8];

/** Runs the benchmark with command-line `args`. */
export async function table2Bench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean" },
      model: { type: "string", default: "../shared/models/sst2-bert-mini" },
      data: { type: "string", default: "../shared/data/sst2/dev.tsv" },
      train: { type: "string", default: "../shared/data/sst2/train.tsv" },
      limit: { type: "string" },
      calibration: { type: "string", default: "256" },
      "cal-seq": { type: "string", default: "48" },
      seq: { type: "string", default: "64" },
      seed: { type: "string", default: "0" },
      workers: { type: "string", default: "2" },
      threads: { type: "string", default: "1" },
      repeat: { type: "string", default: "50" },
      interpreter: { type: "boolean" },
      results: { type: "string" },
      "no-results": { type: "boolean" },
      "from-json": { type: "string" },
      retime: { type: "boolean" },
      blocks: { type: "string" },
      sparsities: { type: "string" },
      methods: { type: "string", default: "dense,magnitude,reconstruct" },
      "reconstruct-options": { type: "string", default: "" },
      int8: { type: "boolean" },
      "int8-methods": { type: "string", default: "dense,reconstruct" },
      finetune: { type: "boolean" },
      "finetune-methods": { type: "string", default: "reconstruct" },
      "finetune-sparsities": { type: "string" },
      "finetune-steps": { type: "string" },
      "finetune-lr": { type: "string", default: "5e-5" },
      "finetune-warmup": { type: "string" },
      "finetune-seed": { type: "string", default: "0" },
      "finetune-train-rows": { type: "string" },
      "finetune-temperature": { type: "string", default: "2" },
      "finetune-alpha": { type: "string", default: "0.5" },
      "finetune-threads": { type: "string", default: "1" },
      "finetune-ema": { type: "string", default: "0.99" },
      out: { type: "string", default: "out/bench" },
    },
  });
  const int = (name: string, v: string | undefined, min: number) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
    return n;
  };
  const quick = values.quick === true;
  const blocks = values.blocks?.split(",") ?? (quick ? ["1x32"] : BLOCKS);
  const sparsities = values.sparsities?.split(",").map(Number) ?? (quick ? [0.8] : SPARSITIES);
  const methods = values.methods.split(",");
  const int8Methods = values.int8 ? values["int8-methods"].split(",") : [];
  for (const m of [...methods, ...int8Methods]) {
    if (!["dense", "magnitude", "reconstruct"].includes(m)) {
      throw new Error(`unknown method '${m}' (dense, magnitude, reconstruct)`);
    }
  }
  const positive = (name: string, v: string, max = Infinity) => {
    const x = Number(v);
    if (!(x > 0 && x <= max)) throw new Error(`--${name} must be a number in (0, ${max}], got '${v}'`);
    return x;
  };
  let finetune: FinetuneSetting | undefined;
  if (values.finetune) {
    const ftMethods = values["finetune-methods"].split(",");
    const ftSparsities = values["finetune-sparsities"]?.split(",").map(Number) ?? sparsities;
    for (const m of ftMethods) {
      if (!["magnitude", "reconstruct"].includes(m) || !methods.includes(m)) {
        throw new Error(
          `--finetune-methods: '${m}' is not a pruning method of this run (${
            methods.filter((x) => x !== "dense").join(", ") || "none"
          })`,
        );
      }
    }
    for (const sp of ftSparsities) {
      if (!sparsities.includes(sp)) {
        throw new Error(
          `--finetune-sparsities: ${sp} is not a sparsity of this run (${sparsities.join(", ")})`,
        );
      }
    }
    // --quick fine-tunes a handful of steps on a few hundred rows, unless told otherwise.
    const steps = int("finetune-steps", values["finetune-steps"], 1) ?? (quick ? 4 : 400);
    finetune = {
      methods: ftMethods,
      sparsities: ftSparsities,
      steps,
      lr: positive("finetune-lr", values["finetune-lr"]),
      warmup: int("finetune-warmup", values["finetune-warmup"], 0) ?? (quick ? 1 : 40),
      batch: 32,
      seed: int("finetune-seed", values["finetune-seed"], 0)!,
      trainRows: int("finetune-train-rows", values["finetune-train-rows"], 1) ?? (quick ? 256 : 40000),
      temperature: positive("finetune-temperature", values["finetune-temperature"]),
      alpha: Number(values["finetune-alpha"]),
      threads: int("finetune-threads", values["finetune-threads"], 1)!,
      ema: values["finetune-ema"] === "0" ? undefined : Number(values["finetune-ema"]),
    };
    if (finetune.ema !== undefined && !(finetune.ema > 0 && finetune.ema < 1)) {
      throw new Error(`--finetune-ema must be in (0, 1), or 0 for none; got '${values["finetune-ema"]}'`);
    }
    if (!(finetune.alpha >= 0 && finetune.alpha <= 1)) {
      throw new Error(`--finetune-alpha must be in [0, 1], got '${values["finetune-alpha"]}'`);
    }
  }
  const threadCounts = values.threads.split(",").map((t) => int("threads", t, 1)!);
  const repeat = int("repeat", values.repeat, 1)!;
  const setting: Setting = {
    model: values.model,
    data: values.data,
    train: values.train,
    limit: int("limit", values.limit, 1) ?? (quick ? 100 : undefined),
    calibration: int("calibration", values.calibration, 1)!,
    calSeq: int("cal-seq", values["cal-seq"], 2)!,
    seq: int("seq", values.seq, 2)!,
    seed: int("seed", values.seed, 0)!,
    reconstructOptions: values["reconstruct-options"],
    artifacts: join(values.out, "table2-artifacts"),
    interpreter: values.interpreter === true,
    int8Methods,
    ...(finetune ? { finetune } : {}),
  };
  const jobs: Job[] = [];
  for (const method of ["reconstruct", "magnitude"] as const) {
    if (!methods.includes(method)) continue;
    for (const sparsity of sparsities) for (const block of blocks) jobs.push({ method, block, sparsity });
  }
  if (methods.includes("dense")) jobs.push({ method: "dense" });
  const nWorkers = Math.max(1, Math.min(int("workers", values.workers, 1)!, jobs.length));

  let results: JobResult[], seconds: number, date: string;
  if (values.retime && !values["from-json"]) throw new Error("--retime needs --from-json");
  if (values["from-json"]) {
    // Re-render from an earlier run: its setting, results and date, nothing measured again.
    const old = JSON.parse(await Deno.readTextFile(values["from-json"]));
    ({ results, seconds } = old);
    date = old.machine.date;
    // Runs before --int8 have no int8Methods and no int8 results: absent, not an error.
    // Runs before --finetune have no finetune setting and no fine-tuned results, like runs without it.
    Object.assign(setting, {
      ...old.setting,
      int8Methods: old.setting.int8Methods ?? [],
      finetune: old.setting.finetune,
    });
    blocks.splice(0, blocks.length, ...old.setting.blocks);
    sparsities.splice(0, sparsities.length, ...old.setting.sparsities);
    if (values.retime) {
      // Time the run's artifacts again (checked against the interpreter first, as a run does);
      // accuracies and everything built stay the run's.
      const t0 = performance.now();
      await timeArtifacts(results, setting, threadCounts, repeat);
      console.error(
        `(re-timed the artifacts of ${values["from-json"]} in ${
          ((performance.now() - t0) / 1000).toFixed(0)
        } s)`,
      );
    } else threadCounts.splice(0, threadCounts.length, ...old.setting.threads);
  } else {
    const t0 = performance.now();
    results = await measure(setting, jobs, nWorkers);
    await timeArtifacts(results, setting, threadCounts, repeat);
    seconds = (performance.now() - t0) / 1000;
    date = new Date().toISOString();
  }
  const view = paretoView(results, { threads: threadCounts[0], seq: setting.seq, model: setting.model });
  const md = table2Markdown(results, setting, blocks, sparsities, threadCounts[0]) + "\n" + view.markdown;
  await Deno.mkdir(values.out, { recursive: true });
  const json = {
    setting: {
      ...setting,
      blocks,
      sparsities,
      methods,
      workers: nWorkers,
      quick,
      threads: threadCounts,
      repeat,
    },
    machine: { deno: Deno.version.deno, v8: Deno.version.v8, date },
    seconds,
    reference: REFERENCE,
    results,
    paretoFront: view.front.map((i) => view.points[i].label),
  };
  await Deno.writeTextFile(join(values.out, "table2.json"), JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile(join(values.out, "table2.md"), md);
  await Deno.writeTextFile(join(values.out, "table2.svg"), view.svg);
  console.log(md);
  // A full run (every configuration, every row) rewrites the results page's generated section unless told not to.
  const full = !quick && setting.limit === undefined && !values.blocks && !values.sparsities &&
    values.methods === "dense,magnitude,reconstruct";
  const page = values["no-results"] ? undefined : values.results ?? (full ? "docs/results.md" : undefined);
  if (page) {
    const svgPath = join(dirname(page), "table2.svg");
    await Deno.mkdir(dirname(svgPath), { recursive: true });
    await Deno.writeTextFile(svgPath, view.svg);
    await writeSection(
      page,
      "table2",
      resultsSection(results, setting, blocks, sparsities, view.frontTable, date, threadCounts[0]),
    );
    console.log(`(wrote the table2 section of ${page} and ${svgPath})`);
  }
  console.log(`(${seconds.toFixed(0)} s; wrote ${join(values.out, "table2.{json,md,svg}")})`);
}
