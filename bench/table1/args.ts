/**
 * The command line of `deno task bench table1` (its options are described in bench/table1.ts)
 * and the option parsers and error reporting it shares with `sweep` and `compare`.
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { readTuningLog, type TuningLog } from "../../codegen/tuning_log.ts";
import type { Table1Options } from "./run.ts";

/** The block shapes of the paper's Table 1 (plus 32x1, the column-block counterpart of 1x32). */
export const TABLE1_BLOCKS = [
  "1x1",
  "1x4",
  "1x8",
  "1x16",
  "1x32",
  "1x64",
  "1x128",
  "1x256",
  "1x384",
  "32x1",
  "4x4",
  "8x8",
  "16x16",
  "32x32",
  "64x64",
] as const;

/** The block shapes of `--quick`. */
export const QUICK_BLOCKS = ["1x1", "1x32", "16x16"] as const;

/** A failure the benchmark reports as one `error:` line. */
export class BenchError extends Error {}

/** Parses a thread list `1,2`. */
export function parseThreads(text: string): number[] {
  const ts = text.split(",").map(Number);
  if (ts.length === 0 || !ts.every((t) => Number.isInteger(t) && t >= 1 && t <= 256)) {
    throw new BenchError(`--threads must be a comma-separated list of thread counts, got '${text}'`);
  }
  return [...new Set(ts)];
}

/** Parses a positive integer option. */
export function positiveInt(name: string, text: string, min = 1): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    throw new BenchError(`--${name} must be an integer ≥ ${min}, got '${text}'`);
  }
  return n;
}

/** Parses a block shape `RxC`. */
export function parseBlock(text: string): [number, number] {
  const m = /^(\d+)x(\d+)$/.exec(text);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new BenchError(`not a block shape RxC: '${text}'`);
  return [Number(m[1]), Number(m[2])];
}

/** Runs `body`; a BenchError (or any error) becomes one `error:` line and exit code 1. */
export async function cliMain(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (e) {
    console.error(`\nerror: ${e instanceof Error ? e.message : e}`);
    if (!(e instanceof BenchError) && e instanceof Error && e.stack) console.error(e.stack);
    Deno.exit(1);
  }
}

/** Reads the tuning log at `path` for `--tune` (a missing file is an empty log). */
export async function tuningOption(path: string): Promise<{ log: TuningLog; path: string }> {
  try {
    return { log: await readTuningLog(path), path };
  } catch (e) {
    throw new BenchError(`--tuning-log: ${(e as Error).message}`);
  }
}

/** The options of `runTable1` from the command-line `args` of `deno task bench table1`. */
export async function parseTable1Args(args: string[]): Promise<Table1Options> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string" },
      seq: { type: "string", default: "128" },
      repeat: { type: "string" },
      warmup: { type: "string", default: "1" },
      threads: { type: "string", default: "1,2" },
      blocks: { type: "string" },
      sparsity: { type: "string", default: "0.8" },
      quick: { type: "boolean", default: false },
      "no-web": { type: "boolean", default: false },
      fresh: { type: "boolean", default: false },
      tune: { type: "boolean", default: false },
      "tuning-log": { type: "string" },
      reload: { type: "boolean", default: false },
      "build-only": { type: "boolean", default: false },
      int8: { type: "boolean", default: false },
      out: { type: "string", default: "out/bench" },
    },
  });
  const quick = values.quick;
  const blocks = values.blocks?.split(",") ?? [...(quick ? QUICK_BLOCKS : TABLE1_BLOCKS)];
  blocks.forEach(parseBlock);
  const sparsity = Number(values.sparsity);
  if (!(sparsity >= 0 && sparsity < 1)) {
    throw new BenchError(`--sparsity must be in [0, 1), got '${values.sparsity}'`);
  }
  return {
    model: values.model ?? (quick ? "bert-mini" : "bert-base"),
    seq: positiveInt("seq", values.seq),
    repeat: positiveInt("repeat", values.repeat ?? (quick ? "2" : "10")),
    warmup: positiveInt("warmup", values.warmup, 0),
    threads: parseThreads(values.threads),
    blocks,
    sparsity,
    web: !quick && !values["no-web"],
    quick,
    out: values.out,
    fresh: values.fresh,
    tune: values.tune
      ? await tuningOption(values["tuning-log"] ?? join(values.out, "cache", "tuning-log.json"))
      : undefined,
    reload: values.reload,
    buildOnly: values["build-only"],
    int8: values.int8,
  };
}
