/**
 * `deno task bench table2 [--quick] [--limit N] [--calibration N] [--workers N] [--seq N]
 * [--threads 1,2] [--repeat N] [--interpreter] [--out DIR] [--readme FILE | --no-readme] [--from-json FILE]`: the paper's Table 2, accuracy beside
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
 * Configurations are pruned, compiled and evaluated in `--workers` workers (default 2). Writes
 * `table2.json`, `table2.md` and `table2.svg` (accuracy against latency at the first thread
 * count, every block shape, sparsity and method, with the Pareto front) to `--out` (default
 * `out/bench`) and prints the Markdown. `--quick`: dense and 1x32 at 80% with both methods, on
 * the first 100 dev rows unless `--limit` says otherwise. `--blocks`, `--sparsities` and
 * `--methods` pick a subset.
 *
 * A full run (no `--quick`, `--limit` or subset) also rewrites the generated `table2` section of
 * README.md (`--readme FILE` elsewhere or for any run, `--no-readme` not at all) and writes
 * `docs/table2.svg` beside it. `--from-json out/bench/table2.json` renders all of that again from an
 * earlier run's JSON without measuring anything.
 */

import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import {
  type EvalRunner,
  evaluateSst2,
  fitToLength,
  loadEvalModel,
  readSst2Tsv,
  type Sst2Row,
} from "../frontend/sst2.ts";
import { type BertTokenizer, loadTokenizer } from "../frontend/tokenizer.ts";
import { interpret } from "../ir/interpreter.ts";
import type { Module } from "../ir/module.ts";
import { Tensor } from "../ir/tensor.ts";
import type { WeightStore } from "../ir/weights.ts";
import { compile, loadCompiled, writeArtifact } from "../mod.ts";
import { summarize, type Summary } from "./stats.ts";
import { sparrow } from "./peers.ts";
import { memoryBudget } from "./table1/machine.ts";
import { progressBar, type Slot, timeSlots } from "./table1/timing.ts";
import { writeSection } from "./readme_section.ts";
import { label, paretoView } from "./table2_pareto.ts";

const BLOCKS = ["1x1", "1x4", "1x32", "32x1", "4x4", "16x16"];
const SPARSITIES = [0.5, 0.8];

/** Block L2 magnitude, no retraining, by an independent PyTorch implementation (dense 80.62%). */
const REFERENCE: Record<string, Record<string, number>> = {
  "1x1": { "0.5": 80.7, "0.8": 76.7 },
  "1x4": { "0.5": 77.2, "0.8": 77.0 },
  "1x32": { "0.5": 72.8, "0.8": 60.1 },
  "32x1": { "0.5": 75.9, "0.8": 71.1 },
  "4x4": { "0.5": 77.4, "0.8": 73.3 },
  "16x16": { "0.5": 74.7, "0.8": 73.5 },
};

/** One configuration to evaluate. */
export interface Job {
  readonly method: "dense" | "magnitude" | "reconstruct";
  readonly block?: string;
  readonly sparsity?: number;
}

/** What the workers need to know. */
interface Setting {
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
}

const LAYER_LINE = /^prune-reconstruct: @(\S+) .*rel\. error magnitude ([\d.]+) -> reconstructed ([\d.]+)/;

/** The state of a worker: the model at the calibration and artifact lengths, its weights, the tokenizer, the dev rows. */
interface Loaded {
  readonly cal: Module;
  readonly weights: WeightStore;
  /** The model at `seq`, compiled into the artifacts. */
  readonly compiled: Module;
  readonly tokenizer: BertTokenizer;
  readonly rows: Sst2Row[];
  /** The model at each token count, imported on first use (`--interpreter`). */
  readonly byLength: Map<number, Module>;
}

async function load(s: Setting): Promise<Loaded> {
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

/** What pruning gave: the weights after it, the ones it changed, and the passes' log lines. */
interface Pruned {
  readonly weights: WeightStore;
  readonly changed: ReadonlyMap<string, Tensor>;
  readonly logs: string[];
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

/** The folder name of a configuration. */
export function jobId(j: Job): string {
  return j.method === "dense" ? "dense" : `${j.method}-${j.block}-${Math.round(j.sparsity! * 100)}`;
}

/**
 * Compiles the model at the artifact length with the pruned weights, `bsr-lower` in the job's
 * block shape for a pruned model, into `s.artifacts/<id>`; fails unless every pruned weight was lowered.
 */
async function build(s: Setting, l: Loaded, job: Job, pruned: Pruned) {
  const pipeline = job.method === "dense"
    ? "canonicalize,cse,fuse,dce"
    : `canonicalize,cse,fuse,bsr-lower{block=${job.block} sparsity-threshold=0.3},dce`; // not the dense pooler
  const r = await compile({ module: l.compiled, weights: pruned.weights }, {
    pipeline,
    log: () => {}, // the counts are checked below
  });
  const lowered = r.stats.filter((x) => x.pass === "bsr-lower" && x.name === "weights")
    .reduce((n, x) => n + x.value, 0);
  if (lowered !== pruned.changed.size) {
    throw new Error(
      `${jobId(job)}: bsr-lower lowered ${lowered} of the ${pruned.changed.size} pruned weights`,
    );
  }
  const dir = join(s.artifacts, jobId(job));
  await writeArtifact(r, dir);
  return { dir, pipeline, memoryBytes: r.artifact!.plan.memory.pages * 65536 };
}

/** The model inputs of one dev row fitted to `seq`. */
function rowInputs(tokenizer: BertTokenizer, row: Sst2Row, seq: number): Record<string, number[]> {
  const fit = fitToLength(tokenizer.encode(row.sentence), seq, tokenizer.sepId, tokenizer.padId);
  return { input_ids: fit.ids, token_type_ids: fit.ids.map(() => 0), attention_mask: fit.mask };
}

/** The reference interpreter's logits of `m` on `values`. */
function interpreterLogits(m: Module, store: WeightStore, values: Record<string, number[]>): Float32Array {
  const f = m.func("main")!;
  const inputs = f.params.map((p) => Tensor.from(p.type.shape, p.type.dtype, values[p.name]));
  return Float32Array.from(interpret(m, inputs, store)[0].data);
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

async function runJob(s: Setting, l: Loaded, job: Job): Promise<JobResult> {
  const t0 = performance.now();
  const pruned = await prune(s, l, job);
  const { changed, logs } = pruned;
  const t1 = performance.now();
  const built = await build(s, l, job, pruned);
  const t2 = performance.now();
  const model = await loadCompiled(built.dir, { threads: 1 });
  let acc, checkMaxAbs, referenceLogits;
  try {
    const out = model.plan.outputs[0].name;
    const runner: EvalRunner = {
      seq: s.seq,
      labels: model.plan.outputs[0].shape[1],
      run: (values) => model.run(values)[out],
    };
    acc = evaluateSst2(runner, l.tokenizer, l.rows);
    const first = rowInputs(l.tokenizer, l.rows[0], s.seq);
    referenceLogits = interpreterLogits(l.compiled, pruned.weights, first);
    const y = runner.run(first);
    checkMaxAbs = Math.max(...referenceLogits.map((v, k) => Math.abs(v - y[k])));
  } finally {
    model.close();
  }
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
  };
}

// A worker: loads once, then runs the jobs it is sent.
// deno-lint-ignore no-explicit-any
const scope = globalThis as any;
if (typeof scope.WorkerGlobalScope !== "undefined" && globalThis instanceof scope.WorkerGlobalScope) {
  let setting: Setting | undefined;
  let loaded: Promise<Loaded> | undefined;
  scope.onmessage = async (e: MessageEvent<{ setting?: Setting; job?: Job }>) => {
    try {
      if (e.data.setting) {
        setting = e.data.setting;
        loaded = load(setting);
        return;
      }
      const result = await runJob(setting!, await loaded!, e.data.job!);
      scope.postMessage({ result });
    } catch (err) {
      scope.postMessage({ error: err instanceof Error ? err.stack ?? err.message : String(err) });
    }
  };
}

const pct = (x: number) => (100 * x).toFixed(1);

/** The accuracy table: a row per block, magnitude / reconstruct / reference per sparsity. */
function accuracyTable(results: JobResult[], blocks: string[], sparsities: number[]): string[] {
  const find = (method: string, block: string, sp: number) =>
    results.find((r) => r.method === method && r.block === block && r.sparsity === sp);
  const lines = [
    `| block | ${
      sparsities.map((sp) => `${sp * 100}% magnitude | ${sp * 100}% reconstruct | ${sp * 100}% reference`)
        .join(" | ")
    } |`,
    `| --- | ${sparsities.map(() => "---: | ---: | ---:").join(" | ")} |`,
  ];
  for (const b of blocks) {
    const cells = sparsities.map((sp) => {
      const m = find("magnitude", b, sp), r = find("reconstruct", b, sp);
      const ref = REFERENCE[b]?.[String(sp)];
      return `${m ? pct(m.accuracy) : "-"} | ${r ? pct(r.accuracy) : "-"} | ${ref?.toFixed(1) ?? "-"}`;
    });
    lines.push(`| ${b} | ${cells.join(" | ")} |`);
  }
  return lines;
}

/**
 * What reconstruction recovers at 80% 1x32 (the issue's target: at least half of what magnitude
 * loses against dense), as a sentence; undefined when those runs are missing.
 */
function recoverySentence(results: JobResult[]): string | undefined {
  const at = (method: string) =>
    results.find((r) => r.method === method && r.block === "1x32" && r.sparsity === 0.8);
  const dense = results.find((r) => r.method === "dense"), m = at("magnitude"), r = at("reconstruct");
  if (!dense || !m || !r) return undefined;
  const lost = 100 * (dense.accuracy - m.accuracy), back = 100 * (r.accuracy - m.accuracy);
  return `At 80% with 1x32 blocks, reconstruction recovers ${back.toFixed(1)} of the ${
    lost.toFixed(1)
  } points ` +
    `magnitude pruning loses against dense (${pct(m.accuracy)}% -> ${pct(r.accuracy)}%; dense ${
      pct(dense.accuracy)
    }%).`;
}

/** README's generated section: the accuracy table, the recovery at 1x32 80%, the plot and the Pareto front. */
function readmeSection(
  results: JobResult[],
  s: Setting,
  blocks: string[],
  sparsities: number[],
  frontTable: string,
  date: string,
): string {
  const checked = results.filter((r) => r.interpreter);
  const worst = Math.max(...results.map((r) => r.checkMaxAbs));
  const lines = [
    `Written by \`deno task bench table2${s.interpreter ? " --interpreter" : ""}\` on ${date.slice(0, 10)}: ${
      results[0]?.rows ?? 0
    } dev rows, accuracy measured on each configuration's compiled artifact (S=${s.seq}).`,
    "",
    ...accuracyTable(results, blocks, sparsities),
    "",
    recoverySentence(results) ?? "",
    `Each artifact's logits on the first dev row are within ${
      worst.toExponential(1)
    } of the reference interpreter's ` +
    `on the same pruned weights.` +
    (checked.length
      ? ` On the interpreter, each sentence at its own length, ${
        checked.reduce((n, r) => n + r.interpreter!.disagree, 0)
      } of ${checked.length} x ${results[0].rows} predictions differ from the artifacts'.`
      : ""),
    "",
    "![accuracy against latency](docs/table2.svg)",
    "",
    "The Pareto front, fastest first (every configuration: `out/bench/table2.md`):",
    "",
    frontTable,
  ];
  return lines.join("\n");
}

/** The Markdown tables of the results. */
function markdown(results: JobResult[], s: Setting, blocks: string[], sparsities: number[]): string {
  const dense = results.find((r) => r.method === "dense");
  const rows = results[0]?.rows ?? 0;
  const lines = [
    `SST-2 dev accuracy (%) of ${s.model}, ${rows} rows, one-shot pruning of every encoder dense weight, ` +
    `no retraining, measured on Sparrow's compiled artifact of each pruned model (S=${s.seq}, padded and masked). ` +
    `Dense: ${dense ? pct(dense.accuracy) : "-"}%. magnitude = block L2 norm (\`prune{score=l2}\`); ` +
    `reconstruct = \`prune-reconstruct{${s.reconstructOptions}}\` (OBS/SparseGPT fitted to the unpruned model's layer ` +
    `outputs, ${s.calibration} train sentences, seed ${s.seed}); ` +
    `reference = independent PyTorch block-L2 magnitude (full dev set).`,
    "",
    ...accuracyTable(results, blocks, sparsities),
    "",
    recoverySentence(results) ?? "",
  ];
  for (const r of results.filter((r) => r.layers && r.layers.length > 0)) {
    if (!(r.block === "1x32" && r.sparsity === 0.8)) continue;
    lines.push(
      "",
      `Per-weight relative output error ‖X_d Wᵀ − XŴᵀ‖ / ‖X_d Wᵀ‖ on the calibration inputs (X_d: the unpruned ` +
        `model's inputs to the layer; X_d = X with correct=false), ${label(r)}:`,
      "",
      "| weight | magnitude mask | reconstructed |",
      "| --- | ---: | ---: |",
      ...r.layers!.map((l) => `| ${l.weight} | ${l.magnitude.toFixed(4)} | ${l.reconstructed.toFixed(4)} |`),
    );
  }
  const interp = results.some((r) => r.interpreter);
  lines.push(
    "",
    `| configuration | accuracy % | zeros in pruned weights | prune s | compile s | eval s | artifact vs interpreter (max abs, row 1)${
      interp ? " | interpreter accuracy % | rows predicted differently" : ""
    } |`,
    `| --- | ---: | ---: | ---: | ---: | ---: | ---:${interp ? " | ---: | ---:" : ""} |`,
    ...results.map((r) =>
      `| ${label(r)} | ${pct(r.accuracy)} | ${pct(r.sparsityAchieved)}% | ${r.pruneSeconds.toFixed(1)} | ${
        r.compileSeconds.toFixed(1)
      } | ${r.evalSeconds.toFixed(1)} | ${r.checkMaxAbs.toExponential(1)}${
        interp
          ? ` | ${r.interpreter ? pct(r.interpreter.accuracy) : "-"} | ${r.interpreter?.disagree ?? "-"}`
          : ""
      } |`
    ),
  );
  return lines.join("\n") + "\n";
}

/** Times every configuration's artifact at `threads`, interleaved; fills in `latency`. */
async function timeArtifacts(results: JobResult[], s: Setting, threadCounts: number[], repeat: number) {
  const l = { tokenizer: await loadTokenizer(s.model), rows: await readSst2Tsv(s.data) };
  const values = rowInputs(l.tokenizer, l.rows[0], s.seq);
  const feeds = Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, BigInt64Array.from(v.map(BigInt))]),
  );
  const budgetBytes = await memoryBudget();
  const progress = progressBar();
  for (const threads of threadCounts) {
    const slots: Slot[] = results.map((r) => ({
      id: label(r),
      threads,
      open: () => sparrow(label(r), r.artifact, threads, feeds),
      reference: Float32Array.from(r.referenceLogits),
      referenceName: "the reference interpreter on the same pruned weights",
      bytes: r.memoryBytes,
      reloadable: true,
      source: `artifact ${r.artifact}`,
    }));
    progress.start(slots.length * (repeat + 1), `latency at ${threads} thread${threads > 1 ? "s" : ""}`);
    try {
      const { times } = await timeSlots(slots, { repeat, warmup: 3, progress, budgetBytes });
      for (const r of results) (r.latency ??= {})[threads] = summarize(times.get(label(r))!);
    } finally {
      progress.stop();
    }
  }
}

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
      readme: { type: "string" },
      "no-readme": { type: "boolean" },
      "from-json": { type: "string" },
      blocks: { type: "string" },
      sparsities: { type: "string" },
      methods: { type: "string", default: "dense,magnitude,reconstruct" },
      "reconstruct-options": { type: "string", default: "" },
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
  };
  const jobs: Job[] = [];
  for (const method of ["reconstruct", "magnitude"] as const) {
    if (!methods.includes(method)) continue;
    for (const sparsity of sparsities) for (const block of blocks) jobs.push({ method, block, sparsity });
  }
  if (methods.includes("dense")) jobs.push({ method: "dense" });
  const nWorkers = Math.max(1, Math.min(int("workers", values.workers, 1)!, jobs.length));

  let results: JobResult[], seconds: number, date: string;
  if (values["from-json"]) {
    // Re-render from an earlier run: its setting, results and date, nothing measured again.
    const old = JSON.parse(await Deno.readTextFile(values["from-json"]));
    ({ results, seconds } = old);
    date = old.machine.date;
    Object.assign(setting, old.setting);
    blocks.splice(0, blocks.length, ...old.setting.blocks);
    sparsities.splice(0, sparsities.length, ...old.setting.sparsities);
    threadCounts.splice(0, threadCounts.length, ...old.setting.threads);
  } else {
    const t0 = performance.now();
    results = await measure(setting, jobs, nWorkers);
    await timeArtifacts(results, setting, threadCounts, repeat);
    seconds = (performance.now() - t0) / 1000;
    date = new Date().toISOString();
  }
  const view = paretoView(results, { threads: threadCounts[0], seq: setting.seq, model: setting.model });
  const md = markdown(results, setting, blocks, sparsities) + "\n" + view.markdown;
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
    paretoFront: view.front.map((i) => label(results[i])),
  };
  await Deno.writeTextFile(join(values.out, "table2.json"), JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile(join(values.out, "table2.md"), md);
  await Deno.writeTextFile(join(values.out, "table2.svg"), view.svg);
  console.log(md);
  // A full run (every configuration, every row) rewrites README's generated section unless told not to.
  const full = !quick && setting.limit === undefined && !values.blocks && !values.sparsities &&
    values.methods === "dense,magnitude,reconstruct";
  const readme = values["no-readme"] ? undefined : values.readme ?? (full ? "README.md" : undefined);
  if (readme) {
    const svgPath = join(dirname(readme), "docs", "table2.svg");
    await Deno.mkdir(dirname(svgPath), { recursive: true });
    await Deno.writeTextFile(svgPath, view.svg);
    await writeSection(
      readme,
      "table2",
      readmeSection(results, setting, blocks, sparsities, view.frontTable, date),
    );
    console.log(`(wrote the table2 section of ${readme} and ${svgPath})`);
  }
  console.log(`(${seconds.toFixed(0)} s; wrote ${join(values.out, "table2.{json,md,svg}")})`);
}

/** Runs `jobs` in `nWorkers` workers (prune, compile, evaluate); results in the jobs' order. */
async function measure(setting: Setting, jobs: Job[], nWorkers: number): Promise<JobResult[]> {
  const results: JobResult[] = [];
  const workers = Array.from({ length: nWorkers }, () => {
    const w = new Worker(import.meta.url, { type: "module" });
    w.postMessage({ setting });
    return w;
  });
  let next = 0;
  await Promise.all(workers.map((w) =>
    new Promise<void>((done, fail) => {
      const send = () => {
        if (next >= jobs.length) return done();
        w.postMessage({ job: jobs[next++] });
      };
      w.onmessage = (e: MessageEvent<{ result?: JobResult; error?: string }>) => {
        if (e.data.error) return fail(new Error(e.data.error));
        const r = e.data.result!;
        results.push(r);
        console.error(
          `${label(r).padEnd(24)} ${pct(r.accuracy)}% (${r.correct}/${r.rows})  prune ${
            r.pruneSeconds.toFixed(1)
          } s, compile ${r.compileSeconds.toFixed(1)} s, eval ${r.evalSeconds.toFixed(1)} s${
            r.interpreter
              ? `; interpreter ${pct(r.interpreter.accuracy)}%, ${r.interpreter.disagree} rows differ`
              : ""
          }`,
        );
        send();
      };
      w.onerror = (e) => {
        e.preventDefault();
        fail(new Error(`table2 worker: ${e.message}`));
      };
      send();
    })
  )).finally(() => workers.forEach((w) => w.terminate()));

  const order = (r: Job) =>
    jobs.findIndex((j) => j.method === r.method && j.block === r.block && j.sparsity === r.sparsity);
  return results.sort((a, b) => order(a) - order(b));
}
