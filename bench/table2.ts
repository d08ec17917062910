/**
 * `deno task bench table2 [--quick] [--limit N] [--calibration N] [--workers N] [--out DIR]`: the
 * paper's Table 2, accuracy beside sparsity: SST-2 dev accuracy of sst2-bert-mini dense and with
 * every encoder dense weight pruned to 50% / 80% in blocks 1x1, 1x4, 1x32, 32x1, 4x4 and 16x16,
 * by two one-shot methods without retraining:
 *
 * - `magnitude`: `prune{score=l2}`, the block ℓ2 norm (plain magnitude for 1x1), per matrix;
 * - `reconstruct`: `prune-reconstruct`, OBS/SparseGPT-style pruning that updates the kept weights
 *   to reproduce each layer's unpruned outputs on `--calibration` train sentences (default 256);
 *   `--reconstruct-options "correct=false"` etc. pass more options to it.
 *
 * Both passes run on the model imported at `--cal-seq` (default 48; longer calibration sentences
 * are truncated); the pruned weights are then evaluated with the reference interpreter on every
 * dev row at its own length (the model is imported once per distinct token count, so nothing is
 * padded; padding with a mask gives the same logits). Configurations run in `--workers` workers
 * (default 2). Writes `table2.json` and `table2.md` to `--out` (default `out/bench`) and prints
 * the Markdown. `--quick`: dense and 1x32 at 80% with both methods, on the first 100 dev rows
 * unless `--limit` says otherwise. `--blocks`, `--sparsities` and `--methods` pick a subset.
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { loadEvalModel, readSst2Tsv, type Sst2Row } from "../frontend/sst2.ts";
import { type BertTokenizer, loadTokenizer } from "../frontend/tokenizer.ts";
import { interpret } from "../ir/interpreter.ts";
import type { Module } from "../ir/module.ts";
import { Tensor } from "../ir/tensor.ts";
import type { WeightStore } from "../ir/weights.ts";
import { createPassRegistry } from "../passes/index.ts";
import { runPipeline } from "../passes/manager.ts";
import { parsePipeline } from "../passes/pipeline.ts";

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
interface Job {
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
  readonly seed: number;
  /** More `prune-reconstruct` options, e.g. `window=0 damp=0.1`. */
  readonly reconstructOptions: string;
}

/** One reconstructed weight's report. */
interface LayerError {
  readonly weight: string;
  readonly magnitude: number;
  readonly reconstructed: number;
}

/** What one configuration measured. */
interface JobResult extends Job {
  readonly accuracy: number;
  readonly correct: number;
  readonly rows: number;
  /** Fraction of zeros over all pruned weights (0 for dense). */
  readonly sparsityAchieved: number;
  readonly pruneSeconds: number;
  readonly evalSeconds: number;
  readonly layers?: LayerError[];
}

const LAYER_LINE = /^prune-reconstruct: @(\S+) .*rel\. error magnitude ([\d.]+) -> reconstructed ([\d.]+)/;

/** The state of a worker: the model at the calibration length, its weights, the tokenizer, the dev rows. */
interface Loaded {
  readonly cal: Module;
  readonly weights: WeightStore;
  readonly tokenizer: BertTokenizer;
  readonly rows: Sst2Row[];
  /** The model at each token count, imported on first use. */
  readonly byLength: Map<number, Module>;
}

async function load(s: Setting): Promise<Loaded> {
  const cal = await loadEvalModel(s.model, { seq: s.calSeq });
  const tokenizer = await loadTokenizer(s.model);
  const all = await readSst2Tsv(s.data);
  return {
    cal: cal.module,
    weights: cal.weights,
    tokenizer,
    rows: s.limit === undefined ? all : all.slice(0, s.limit),
    byLength: new Map(),
  };
}

/** Prunes as `job` says; returns the changed weights and the passes' log lines. */
function prune(s: Setting, l: Loaded, job: Job): { changed: ReadonlyMap<string, Tensor>; logs: string[] } {
  const logs: string[] = [];
  if (job.method === "dense") return { changed: new Map(), logs };
  const text = job.method === "magnitude"
    ? `prune{sparsity=${job.sparsity} block=${job.block} score=l2}`
    : `prune-reconstruct{sparsity=${job.sparsity} block=${job.block} calibration=${s.calibration} seed=${s.seed} ` +
      `calibration-data=${JSON.stringify(s.train)} tokenizer=${
        JSON.stringify(s.model)
      } ${s.reconstructOptions}}`;
  const r = runPipeline(l.cal, parsePipeline(text, createPassRegistry()), {
    weights: l.weights,
    log: (line) => logs.push(line),
  });
  return { changed: r.changedWeights, logs };
}

/** Dev accuracy with `changed` weights over the base ones; each row at its own length. */
async function evaluate(s: Setting, l: Loaded, changed: ReadonlyMap<string, Tensor>) {
  const store: WeightStore = {
    entries: () => l.weights.entries(),
    get: (w) => changed.get(w.name) ?? l.weights.get(w),
  };
  let correct = 0;
  for (const row of l.rows) {
    const ids = l.tokenizer.encode(row.sentence);
    let m = l.byLength.get(ids.length);
    if (!m) {
      m = (await loadEvalModel(s.model, { seq: ids.length })).module;
      l.byLength.set(ids.length, m);
    }
    const f = m.func("main")!;
    const values: Record<string, number[]> = {
      input_ids: ids,
      token_type_ids: ids.map(() => 0),
      attention_mask: ids.map(() => 1),
    };
    const inputs = f.params.map((p) => Tensor.from(p.type.shape, p.type.dtype, values[p.name]));
    const logits = interpret(m, inputs, store)[0].data;
    let pred = 0;
    for (let k = 1; k < logits.length; k++) if (logits[k] > logits[pred]) pred = k;
    if (pred === row.label) correct++;
  }
  return { correct, rows: l.rows.length, accuracy: l.rows.length ? correct / l.rows.length : 0 };
}

async function runJob(s: Setting, l: Loaded, job: Job): Promise<JobResult> {
  const t0 = performance.now();
  const { changed, logs } = prune(s, l, job);
  const t1 = performance.now();
  const acc = await evaluate(s, l, changed);
  const t2 = performance.now();
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
    ...acc,
    sparsityAchieved: total ? zeros / total : 0,
    pruneSeconds: (t1 - t0) / 1000,
    evalSeconds: (t2 - t1) / 1000,
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
const label = (j: Job) => j.method === "dense" ? "dense" : `${j.method} ${j.block} ${j.sparsity! * 100}%`;

/** The Markdown tables of the results. */
function markdown(results: JobResult[], s: Setting, blocks: string[], sparsities: number[]): string {
  const find = (method: string, block: string, sp: number) =>
    results.find((r) => r.method === method && r.block === block && r.sparsity === sp);
  const dense = results.find((r) => r.method === "dense");
  const rows = results[0]?.rows ?? 0;
  const lines = [
    `SST-2 dev accuracy (%) of ${s.model}, ${rows} rows, one-shot pruning of every encoder dense weight, ` +
    `no retraining. Dense: ${
      dense ? pct(dense.accuracy) : "-"
    }%. magnitude = block L2 norm (\`prune{score=l2}\`); ` +
    `reconstruct = \`prune-reconstruct{${s.reconstructOptions}}\` (OBS/SparseGPT fitted to the unpruned model's layer ` +
    `outputs, ${s.calibration} train sentences, seed ${s.seed}); ` +
    `reference = independent PyTorch block-L2 magnitude (full dev set).`,
    "",
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
      return `${m ? pct(m.accuracy) : "-"} | ${r ? pct(r.accuracy) : "-"} | ${ref ?? "-"}`;
    });
    lines.push(`| ${b} | ${cells.join(" | ")} |`);
  }
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
  lines.push(
    "",
    "| configuration | accuracy % | zeros in pruned weights | prune s | eval s |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...results.map((r) =>
      `| ${label(r)} | ${pct(r.accuracy)} | ${pct(r.sparsityAchieved)}% | ${r.pruneSeconds.toFixed(1)} | ${
        r.evalSeconds.toFixed(1)
      } |`
    ),
  );
  return lines.join("\n") + "\n";
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
      seed: { type: "string", default: "0" },
      workers: { type: "string", default: "2" },
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
  const setting: Setting = {
    model: values.model,
    data: values.data,
    train: values.train,
    limit: int("limit", values.limit, 1) ?? (quick ? 100 : undefined),
    calibration: int("calibration", values.calibration, 1)!,
    calSeq: int("cal-seq", values["cal-seq"], 2)!,
    seed: int("seed", values.seed, 0)!,
    reconstructOptions: values["reconstruct-options"],
  };
  const jobs: Job[] = [];
  for (const method of ["reconstruct", "magnitude"] as const) {
    if (!methods.includes(method)) continue;
    for (const sparsity of sparsities) for (const block of blocks) jobs.push({ method, block, sparsity });
  }
  if (methods.includes("dense")) jobs.push({ method: "dense" });
  const nWorkers = Math.max(1, Math.min(int("workers", values.workers, 1)!, jobs.length));

  const t0 = performance.now();
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
          } s, eval ${r.evalSeconds.toFixed(1)} s`,
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
  results.sort((a, b) => order(a) - order(b));
  const seconds = (performance.now() - t0) / 1000;
  const md = markdown(results, setting, blocks, sparsities);
  await Deno.mkdir(values.out, { recursive: true });
  const json = {
    setting: { ...setting, blocks, sparsities, methods, workers: nWorkers, quick },
    machine: { deno: Deno.version.deno, v8: Deno.version.v8, date: new Date().toISOString() },
    seconds,
    reference: REFERENCE,
    results,
  };
  await Deno.writeTextFile(join(values.out, "table2.json"), JSON.stringify(json, null, 2) + "\n");
  await Deno.writeTextFile(join(values.out, "table2.md"), md);
  console.log(md);
  console.log(`(${seconds.toFixed(0)} s; wrote ${join(values.out, "table2.json")} and table2.md)`);
}
