/**
 * `deno task bench sweep --block 1x32 [--seq 128] [--threads 1,2] [--repeat N] [--sparsities
 * 0.5,0.6,...] [--quick] [--out DIR] [--fresh] [--tune [--tuning-log FILE]] [--reload]`: inference time against sparsity for one block
 * shape. Synthetic BERT-base, batch 1; every encoder dense weight pruned to each sparsity
 * (0.5, 0.6, 0.7, 0.8, 0.9, 0.95) with `prune{sparsity=s block=RxC}` and compiled with
 * `bsr-lower`; timed against Sparrow's dense artifact, in interleaved rounds, after checking
 * every output (the dense one against onnxruntime-node, each sparse one against
 * onnxruntime-node on the same pruned weights; max abs ≤ 1e-3). Writes
 * `--out/sweep-<block>.{json,md,svg}` (default out/bench). Artifacts are cached as in `table1`.
 * `--quick`: bert-mini, sparsities 0.5, 0.8, 0.95, two repeats.
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { linePlot, PEER_COLORS, type Series, THREAD_COLORS, THREAD_DASHES } from "../cli/plot.ts";
import { summarize, type Summary } from "./stats.ts";
import { BenchError, cliMain, parseBlock, parseThreads, positiveInt, tuningOption } from "./table1/args.ts";
import { buildFamily, type Built, denseReference, workload } from "./table1/build.ts";
import { machineInfo, memoryBudget } from "./table1/machine.ts";
import { fmtMs } from "./table1/report.ts";
import { progressBar, type Slot, sparrowSlot, timeSlots, TOLERANCE } from "./table1/timing.ts";

/** The sparsities of the sweep. */
export const SWEEP_SPARSITIES = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95];

/** One row: a sparsity at a thread count. */
export interface SweepRow {
  sparsity: number;
  threads: number;
  bsr: Summary;
  dense: Summary;
  /** BSR mean / dense mean, and BSR std / dense mean. */
  ratio: { mean: number; std: number };
  check: number;
  bsrStored: { blocks: number; elements: number };
}

/** Runs the benchmark with command-line `args`. */
export function sweepBench(args: string[]): Promise<void> {
  return cliMain(async () => {
    const { values } = parseArgs({
      args,
      options: {
        block: { type: "string", default: "1x32" },
        model: { type: "string" },
        seq: { type: "string", default: "128" },
        repeat: { type: "string" },
        warmup: { type: "string", default: "1" },
        threads: { type: "string", default: "1,2" },
        sparsities: { type: "string" },
        quick: { type: "boolean", default: false },
        fresh: { type: "boolean", default: false },
        tune: { type: "boolean", default: false },
        "tuning-log": { type: "string" },
        reload: { type: "boolean", default: false },
        out: { type: "string", default: "out/bench" },
      },
    });
    const quick = values.quick;
    const block = values.block;
    parseBlock(block);
    const sparsities = values.sparsities?.split(",").map(Number) ??
      (quick ? [0.5, 0.8, 0.95] : SWEEP_SPARSITIES);
    if (!sparsities.every((s) => s >= 0 && s < 1)) {
      throw new BenchError(`--sparsities must be in [0, 1): '${values.sparsities}'`);
    }
    const seq = positiveInt("seq", values.seq);
    const repeat = positiveInt("repeat", values.repeat ?? (quick ? "2" : "10"));
    const warmup = positiveInt("warmup", values.warmup, 0);
    const threads = parseThreads(values.threads);
    const out = values.out;
    const tune = values.tune
      ? await tuningOption(values["tuning-log"] ?? join(out, "cache", "tuning-log.json"))
      : undefined;
    const progress = progressBar();
    try {
      const tStart = performance.now();
      const w = await workload(values.model ?? (quick ? "bert-mini" : "bert-base"), seq, out);
      progress.start(1 + 2 * sparsities.length, "compile");
      const dense = (await buildFamily(w, { tails: { dense: "fuse,dce" } }, {
        fresh: values.fresh,
        onStep: (d) => progress.tick(d),
      })).artifacts.dense;
      const built = new Map<number, Built>();
      for (const s of sparsities) {
        built.set(
          s,
          await buildFamily(w, {
            prune: `prune{sparsity=${s} block=${block}}`,
            tails: { bsr: `fuse,bsr-lower{block=${block}},dce` },
          }, { fresh: values.fresh, tune, onStep: (d) => progress.tick(`${s} ${d}`) }),
        );
      }
      progress.stop();
      const reference = await denseReference(w);
      const slotsOf = (t: number): Slot[] => [
        sparrowSlot(
          `sparrow dense @${t}`,
          dense,
          t,
          w.feeds,
          reference,
          "onnxruntime-node (dense, 1 thread)",
        ),
        ...sparsities.map((s) =>
          sparrowSlot(
            `bsr ${block} s=${s} @${t}`,
            built.get(s)!.artifacts.bsr,
            t,
            w.feeds,
            built.get(s)!.reference!,
            `onnxruntime-node on the pruned weights (sparsity ${s})`,
          )
        ),
      ];
      progress.start(threads.reduce((n, t) => n + slotsOf(t).length * (1 + repeat), 0), "check+time");
      const rows: SweepRow[] = [];
      for (const t of threads) {
        const r = await timeSlots(slotsOf(t), {
          repeat,
          warmup,
          progress,
          budgetBytes: await memoryBudget(),
          reload: values.reload,
        });
        const d = summarize(r.times.get(`sparrow dense @${t}`)!);
        for (const s of sparsities) {
          const id = `bsr ${block} s=${s} @${t}`;
          const b = summarize(r.times.get(id)!);
          const st = built.get(s)!.artifacts.bsr.stats;
          rows.push({
            sparsity: s,
            threads: t,
            bsr: b,
            dense: d,
            ratio: { mean: b.mean / d.mean, std: b.std / d.mean },
            check: r.checks.find((c) => c.id === id)!.maxAbs,
            bsrStored: { blocks: st["bsr-lower.blocks"] ?? 0, elements: st["bsr-lower.elements"] ?? 0 },
          });
        }
      }
      progress.stop();

      const machine = await machineInfo();
      const result = {
        benchmark: "sweep",
        setting: {
          model: w.name,
          config: w.config,
          batch: 1,
          seq,
          block,
          sparsities,
          seed: w.config.seed,
          pipeline: `canonicalize,cse,prune{sparsity=S block=${block}},fuse,bsr-lower{block=${block}},dce`,
          dense: dense.pipeline,
          repeat,
          warmup,
          threads,
          tuned: !!tune,
          tolerance: TOLERANCE,
          statistic: "mean and sample standard deviation over interleaved rounds, in ms",
        },
        machine,
        rows,
        wallSeconds: Math.round((performance.now() - tStart) / 100) / 10,
      };
      await Deno.mkdir(out, { recursive: true });
      const base = join(out, `sweep-${block}`);
      await Deno.writeTextFile(`${base}.json`, JSON.stringify(result, null, 2) + "\n");
      const md = [
        `# Sparsity sweep: ${w.name} (synthetic), S=${seq}, batch 1, ${block.replace("x", "×")} blocks`,
        "",
        `Mean (std) in ms over ${repeat} interleaved rounds. Machine: ${machine.cpu}, ${machine.cores} cores, ` +
        `Deno ${machine.deno}, V8 ${machine.v8}; ${machine.date}. Outputs checked before timing (max abs ≤ ${TOLERANCE}).`,
        "",
        ...threads.flatMap((t) => {
          const rs = rows.filter((r) => r.threads === t);
          return [
            `## ${t} thread${t > 1 ? "s" : ""}`,
            "",
            "| sparsity | Sparrow dense ms mean (std) | Sparrow BSR ms mean (std) | BSR / Dense mean (std) | stored blocks |",
            "|---:|---:|---:|---:|---:|",
            ...rs.map((r) =>
              `| ${r.sparsity} | ${fmtMs(r.dense)} | ${fmtMs(r.bsr)} | ${r.ratio.mean.toFixed(3)} (${
                r.ratio.std.toFixed(3)
              }) | ${r.bsrStored.blocks} |`
            ),
            "",
          ];
        }),
      ].join("\n");
      await Deno.writeTextFile(`${base}.md`, md);
      const series: Series[] = threads.map((t, i) => {
        const rs = rows.filter((r) => r.threads === t);
        return {
          name: `Sparrow BSR ${block}, ${t} thread${t > 1 ? "s" : ""}`,
          color: THREAD_COLORS[i % THREAD_COLORS.length],
          values: rs.map((r) => r.bsr.mean),
          errors: rs.map((r) => r.bsr.std),
        };
      });
      const svg = linePlot({
        title: `Inference time vs sparsity: ${w.name}, S=${seq}, ${block.replace("x", "×")} blocks`,
        subtitle: `mean ± std over ${repeat} interleaved rounds; horizontal lines: Sparrow dense`,
        xLabel: "sparsity (fraction of blocks pruned)",
        yLabel: "inference time, ms",
        categories: sparsities.map(String),
        series,
        hlines: threads.map((t, i) => ({
          name: `Sparrow dense, ${t} thread${t > 1 ? "s" : ""}`,
          color: PEER_COLORS.sparrowDense,
          dash: THREAD_DASHES[i % THREAD_DASHES.length],
          value: rows.find((r) => r.threads === t)!.dense.mean,
        })),
      });
      await Deno.writeTextFile(`${base}.svg`, svg);
      console.log(md);
      console.error(`wrote ${base}.json, ${base}.md, ${base}.svg (${result.wallSeconds} s)`);
    } finally {
      progress.stop();
    }
  });
}
