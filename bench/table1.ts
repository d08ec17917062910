/**
 * `deno task bench table1 [--seq 128|384] [--repeat N] [--threads 1,2] [--quick] [--no-web]
 * [--out DIR] [--fresh] [--tune [--tuning-log FILE]] [--reload] [--blocks 1x1,1x32] [--model bert-base]
 * [--sparsity 0.8] [--warmup 1] [--build-only] [--int8]`: the paper's Table 1 and Figure 2 (Guo & Huang 2021) in one command.
 *
 * Synthetic BERT-base (seeded weights, no classifier head: the output, which the checks compare,
 * is the last hidden state), batch 1. Every encoder dense weight is pruned to 80%
 * block sparsity (`prune{sparsity=0.8 block=RxC}`, the same seed and scores for every method)
 * for each block shape of the paper, and compiled twice: with `bsr-lower` (block-sparse
 * kernels, the paper's TVM⁺) and without it (dense kernels over the pruned weights, the
 * paper's negative control, "unmodified compiler"). Peers run the dense model:
 * onnxruntime-node, onnxruntime-web, Sparrow dense (and PyTorch eager when `python3` has torch;
 * not implemented, the column is omitted with a note).
 *
 * Before anything is timed, every contender's output is checked (max abs ≤ 1e-3): the dense
 * contenders against onnxruntime-node on the dense model; the pruned ones (with and without
 * bsr-lower) against onnxruntime-node on the same pruned weights, and against each other. A
 * failing check aborts: a fast wrong kernel never reaches the table.
 *
 * Timing: per thread count, every contender runs once per round (rounds interleaved, so drift
 * hits all alike), after a warm-up run; mean and standard deviation over the rounds. When the
 * loaded artifacts would not fit in memory, each pruned artifact is loaded, warmed up, timed and
 * closed within its round instead.
 *
 * Compiled artifacts are cached under `--out/cache/<model>-s<seq>-<id>-<key>/`, the key hashing
 * the model config, the pipeline text, the seed (and `--tune`) and a fingerprint of the
 * compiler's sources (bench/fingerprint.ts); a re-run reuses them, a compiler change rebuilds
 * them, and `--fresh` rebuilds them anyway. Sparse schedules come from the cost model, or with `--tune` from timing each candidate (tuning log
 * `--out/cache/tuning-log.json` by default). `--reload` loads each pruned artifact in every
 * round (as when they do not fit in memory together). `--build-only` fills the cache and stops.
 *
 * `--int8` adds INT8 (bench/table1/int8.ts): Sparrow int8 dense, int8 BSR for every block shape made
 * of 4x4 blocks, and onnxruntime-node on the int8 model, checked against the reference interpreter.
 *
 * Writes `--out/table1.{json,md,svg}` (default out/bench). `--quick`: bert-mini, three block
 * shapes, two repeats, no onnxruntime-web — a smoke test for CI.
 *
 * The parts live in bench/table1/: the command line (args.ts), the cache (cache.ts), the workload
 * and its cached builds (build.ts), the checked, interleaved timing (timing.ts), the machine
 * (machine.ts), the run (run.ts) and the report (report.ts); `sweep` and `table2` use them too.
 */

import { cliMain, parseTable1Args } from "./table1/args.ts";
import { runTable1 } from "./table1/run.ts";

/** Runs the benchmark with command-line `args`. */
export function table1Bench(args: string[]): Promise<void> {
  return cliMain(async () => {
    await runTable1(await parseTable1Args(args));
  });
}
