/**
 * The measuring of `deno task bench table2`: the configurations run in workers (prune, compile,
 * evaluate, and fine-tune with `--finetune`; bench/table2/worker.ts), then every artifact is timed,
 * interleaved.
 */

import { readSst2Tsv } from "../../frontend/sst2.ts";
import { loadTokenizer } from "../../frontend/tokenizer.ts";
import { sparrow } from "../peers.ts";
import { summarize } from "../stats.ts";
import { memoryBudget } from "../table1/machine.ts";
import { progressBar, type Slot, timeSlots } from "../table1/timing.ts";
import { rowInputs } from "./artifact.ts";
import type { Job, JobResult, Setting } from "./job.ts";
import { finetunedLabel, int8Label, label } from "./pareto.ts";
import { pct } from "./report.ts";

/** Runs `jobs` in `nWorkers` workers (prune, compile, evaluate); results in the jobs' order. */
export async function measure(setting: Setting, jobs: Job[], nWorkers: number): Promise<JobResult[]> {
  const results: JobResult[] = [];
  const workers = Array.from({ length: nWorkers }, () => {
    const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
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
          }${
            r.int8
              ? `; int8 ${pct(r.int8.accuracy)}% (${r.int8.correct}/${r.int8.rows}), compile ${
                r.int8.compileSeconds.toFixed(1)
              } s, eval ${r.int8.evalSeconds.toFixed(1)} s, reference ${r.int8.referenceSeconds.toFixed(1)} s`
              : ""
          }${
            r.finetuned
              ? `; fine-tuned ${
                pct(r.finetuned.accuracy)
              }% (${r.finetuned.correct}/${r.finetuned.rows}), ${r.finetuned.steps} steps in ${
                r.finetuned.trainSeconds.toFixed(1)
              } s, compile ${r.finetuned.compileSeconds.toFixed(1)} s, eval ${
                r.finetuned.evalSeconds.toFixed(1)
              } s`
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

/**
 * Times every configuration's artifact at `threads`, f32, int8 and fine-tuned in the same
 * interleaved rounds; fills in `latency` (and the int8 and fine-tuned variants' `latency`).
 */
export async function timeArtifacts(
  results: JobResult[],
  s: Setting,
  threadCounts: number[],
  repeat: number,
): Promise<void> {
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
    for (const r of results) {
      const q = r.int8;
      if (!q) continue;
      slots.push({
        id: int8Label(r),
        threads,
        open: () => sparrow(int8Label(r), q.artifact, threads, feeds),
        reference: Float32Array.from(q.referenceLogits),
        referenceName: `the reference interpreter on the same quantized module (±2-ulp noise spread ${
          q.spread.toExponential(1)
        })`,
        tolerance: q.tolerance,
        bytes: q.memoryBytes,
        reloadable: true,
        source: `artifact ${q.artifact}`,
      });
    }
    for (const r of results) {
      const f = r.finetuned;
      if (!f) continue;
      slots.push({
        id: finetunedLabel(r),
        threads,
        open: () => sparrow(finetunedLabel(r), f.artifact, threads, feeds),
        reference: Float32Array.from(f.referenceLogits),
        referenceName: "the reference interpreter on the same fine-tuned weights",
        bytes: f.memoryBytes,
        reloadable: true,
        source: `artifact ${f.artifact}`,
      });
    }
    progress.start(slots.length * (repeat + 1), `latency at ${threads} thread${threads > 1 ? "s" : ""}`);
    try {
      const { times } = await timeSlots(slots, { repeat, warmup: 3, progress, budgetBytes });
      for (const r of results) {
        (r.latency ??= {})[threads] = summarize(times.get(label(r))!);
        if (r.int8) (r.int8.latency ??= {})[threads] = summarize(times.get(int8Label(r))!);
        if (r.finetuned) (r.finetuned.latency ??= {})[threads] = summarize(times.get(finetunedLabel(r))!);
      }
    } finally {
      progress.stop();
    }
  }
}
