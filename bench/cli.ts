/**
 * `deno task bench <name> [options]`: runs one benchmark.
 *
 *   dense    BERT-base: Sparrow's dense artifact against onnxruntime-node and -web, 1 and 2 threads
 *   table1   the paper's Table 1 / Figure 2: 80% block-sparse BERT-base per block shape, with and
 *            without bsr-lower, against the dense peers [--seq] [--repeat] [--threads] [--quick] [--no-web] [--out]
 *            [--int8]: also int8 dense, int8 BSR and onnxruntime-node int8
 *   sweep    time against sparsity 0.5..0.95 for one block shape: --block 1x32 [--seq] [--threads]
 *   table2   the paper's Table 2: SST-2 accuracy of sst2-bert-mini per block shape, sparsity and
 *            pruning method, each pruned model compiled and timed; accuracy against latency with the
 *            Pareto front [--quick] [--limit] [--threads] [--repeat] [--interpreter] [--out]
 *            [--results FILE | --no-results] (a full run rewrites docs/results.md's table2 section)
 *            [--int8 [--int8-methods LIST]]: also int8 (quantize) variants, timed and plotted beside f32
 *   compare  compiled artifacts side by side, interleaved medians: DIR... [--threads] [--repeat]
 *   buckets  sst2-bert-mini rows/s on SST-2 dev: length buckets against fixed S=64, batch 1 and 8, in
 *            Deno, Node and Chromium beside onnxruntime-web [--threads] [--repeat] [--limit] [--no-node]
 *            [--no-browser] [--no-web] [--out]
 *   train    training samples/s of sst2-bert-mini at batch 32, S=64: Sparrow beside PyTorch on CPU
 *            [--steps] [--torch-steps] [--warmup] [--threads] [--batch] [--seq] [--no-torch] [--out]
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
  buckets: (args) => import("./buckets.ts").then((m) => m.bucketsBench(args)),
  train: (args) => import("./train.ts").then((m) => m.trainBench(args)),
};

/** What `deno task bench --help` prints: every benchmark and every option it takes. */
const USAGE = `usage: deno task bench <dense|table1|sweep|compare|table2|buckets|train|ir> [options]

  dense     BERT-base: Sparrow's dense artifact against onnxruntime-node and -web
    --model PRESET       synthetic preset (default bert-base)
    --seq N              sequence length (default 128)
    --repeat N           timed runs per engine (default 10)
    --threads 1,2        thread counts (default 1,2)
    --no-web             skip onnxruntime-web
    --out DIR            where models, artifacts and results go (default out/bench)

  table1    the paper's Table 1 / Figure 2: 80% block-sparse BERT-base per block shape, with and
            without bsr-lower, against the dense peers
    --model PRESET       synthetic preset (default bert-base)
    --seq N              sequence length (default 128)
    --repeat N           timed rounds
    --warmup N           warm-up runs (default 1)
    --threads 1,2        thread counts (default 1,2)
    --blocks LIST        block shapes
    --sparsity S         sparsity of every pruned weight (default 0.8)
    --quick              bert-mini, fewer shapes and repeats
    --no-web             skip onnxruntime-web
    --fresh              rebuild the cached artifacts
    --tune               tune sparse schedules
    --tuning-log FILE    the tuning log to read and update
    --reload             load the pruned artifacts in every round instead of keeping them loaded
    --build-only         build the artifacts, time nothing
    --int8               also int8 (quantize): int8 dense, int8 BSR per block shape of 4x4 blocks and
                         onnxruntime-node on the int8 weights; GOP/s, weight bytes; outputs checked first
    --out DIR            (default out/bench)

  sweep     time against sparsity for one block shape
    --block RxC          the block shape (default 1x32)
    --model PRESET       synthetic preset (default bert-base)
    --seq N              sequence length (default 128)
    --repeat N           timed rounds
    --warmup N           warm-up runs (default 1)
    --threads 1,2        thread counts (default 1,2)
    --sparsities LIST    the sparsities (default 0.5,0.6,0.7,0.8,0.9,0.95)
    --quick              bert-mini, sparsities 0.5, 0.8, 0.95, two repeats
    --fresh              rebuild the cached artifacts
    --tune               tune sparse schedules
    --tuning-log FILE    the tuning log to read and update
    --reload             load the pruned artifacts in every round instead of keeping them loaded
    --out DIR            (default out/bench)

  compare   compiled artifacts side by side, interleaved medians: DIR...
    --threads N          (default 1)
    --repeat N           (default 50)
    --warmup N           (default 3)
    --pause MS           pause between runs (default 20; 0 runs back to back)

  table2    the paper's Table 2: SST-2 accuracy of sst2-bert-mini per block shape, sparsity and
            pruning method, each pruned model compiled and timed
    --quick              dense and 1x32 at 80%, both methods, on the first 100 dev rows
    --model DIR          the checkpoint (default ../shared/models/sst2-bert-mini)
    --data FILE          the dev TSV (default ../shared/data/sst2/dev.tsv)
    --train FILE         calibration sentences (default ../shared/data/sst2/train.tsv)
    --limit N            evaluate only the first N dev rows
    --calibration N      calibration sentences (default 256)
    --cal-seq N          calibration sequence length (default 48)
    --seq N              sequence length (default 64)
    --seed N             seed (default 0)
    --workers N          parallel workers (default 2)
    --threads N          threads when timing (default 1)
    --repeat N           timed runs (default 50)
    --interpreter        evaluate with the interpreter instead of compiled artifacts
    --results FILE       the page whose table2 section a full run rewrites (default docs/results.md)
    --no-results         rewrite no page
    --from-json FILE     redraw from an earlier run's JSON
    --blocks LIST        block shapes
    --sparsities LIST    sparsities
    --methods LIST       dense,magnitude,reconstruct (default all three)
    --reconstruct-options OPTS  more prune-reconstruct options
    --int8               also an int8 variant (quantize) of each configuration of --int8-methods:
                         accuracy, latency (same rounds), on the plot and the Pareto front
    --int8-methods LIST  methods with int8 variants (default dense,reconstruct)
    --out DIR            (default out/bench)

  buckets   sst2-bert-mini rows/s on the SST-2 dev rows: an artifact with length buckets
            (8 to 64 by 8, 128) against fixed length 64, batch 1 and 8, in Deno, Node and headless
            Chromium, beside onnxruntime-web on the same model exported to ONNX
    --threads 1,2        thread counts (default 1,2)
    --repeat N           passes over the rows per configuration (default 3)
    --limit N            only the first N dev rows
    --no-node            skip Node
    --no-browser         skip Chromium (and onnxruntime-web)
    --no-web             skip onnxruntime-web
    --out DIR            (default out/bench/buckets)

  train     training samples/s of sst2-bert-mini at batch 32, S=64: Sparrow's trainer beside PyTorch
            on CPU (python3-torch) on the same batches
    --model DIR          the checkpoint (default ../shared/models/sst2-bert-mini)
    --data FILE          training TSV (default ../shared/data/sst2/train.tsv)
    --batch N            rows per batch (default 32)
    --seq N              sequence length (default 64)
    --steps N            Sparrow's timed steps (default 3)
    --torch-steps N      PyTorch's timed steps (default 10)
    --warmup N           untimed steps first (default 1)
    --threads LIST       PyTorch thread counts (default 1,2)
    --python PATH        (default /usr/bin/python3)
    --no-torch           Sparrow only
    --out DIR            (default out/bench/train)

  ir        parse, verify and print speed of the IR (deno bench)

  -h, --help             print this help`;

const [name, ...rest] = Deno.args;
if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
  console.log(USAGE);
  Deno.exit(0);
}
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
