/**
 * `deno task bench <name> [options]`: runs one benchmark.
 *
 *   dense    BERT-base: Sparrow's dense artifact against onnxruntime-node and -web, 1 and 2 threads
 *   table1   the paper's Table 1 / Figure 2: 80% block-sparse BERT-base per block shape, with and
 *            without bsr-lower, against the dense peers [--seq] [--repeat] [--threads] [--quick] [--no-web] [--out]
 *   sweep    time against sparsity 0.5..0.95 for one block shape: --block 1x32 [--seq] [--threads]
 *   table2   the paper's Table 2: SST-2 accuracy of sst2-bert-mini per block shape, sparsity and
 *            pruning method, each pruned model compiled and timed; accuracy against latency with the
 *            Pareto front [--quick] [--limit] [--threads] [--repeat] [--interpreter] [--out]
 *            [--results FILE | --no-results] (a full run rewrites docs/results.md's table2 section)
 *   compare  compiled artifacts side by side, interleaved medians: DIR... [--threads] [--repeat]
 *   ir       parse, verify and print speed of the IR (deno bench)
 */

import { compareBench } from "./compare.ts";
import { denseBench } from "./dense.ts";
import { table1Bench } from "./table1.ts";
import { sweepBench } from "./sweep.ts";

const BENCHES: Record<string, (args: string[]) => Promise<void>> = {
  dense: denseBench,
  table1: table1Bench,
  sweep: sweepBench,
  compare: compareBench,
  table2: (args) => import("./table2.ts").then((m) => m.table2Bench(args)),
};

const [name, ...rest] = Deno.args;
if (name === "ir") {
  const file = new URL("./ir_bench.ts", import.meta.url).pathname;
  const { code } = await new Deno.Command(Deno.execPath(), { args: ["bench", "--allow-read", file, ...rest] })
    .spawn().status;
  Deno.exit(code);
}
if (!name || !Object.hasOwn(BENCHES, name)) {
  console.error(`usage: deno task bench <${[...Object.keys(BENCHES), "ir"].join("|")}> [options]`);
  Deno.exit(2);
}
try {
  await BENCHES[name](rest);
} catch (e) {
  // One line, not a stack trace: bad options, missing files and failed checks all say what and where.
  console.error(`bench ${name}: ${e instanceof Error ? e.message : String(e)}`);
  Deno.exit(1);
}
