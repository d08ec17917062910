/**
 * The tuning log: the schedule `--tune` measured fastest for each sparse weight, as TVM's
 * tuning logs keep them, so the next compile reuses them without timing again.
 *
 * An entry is keyed on what decides the best schedule: the product's dimensions (M, N, K), the
 * block shape, the density rounded to 1%, whether the kernels use relaxed SIMD and the machine's
 * CPU model. The exact pattern is not in the key: two weights of the same shape, block and
 * density run best with the same schedule. A weight whose block rows share few column patterns
 * (a row-grouped kernel is then a candidate, codegen/wasm/bsr_cost.ts) also has its number of
 * groups in the key (`groups 12`), when the arrays are given: its best schedule depends on it.
 */

import { cpus } from "node:os";
import { bsrRowGroupCount } from "../ir/bsr_pattern.ts";
import { fewRowPatterns } from "./wasm/bsr_cost.ts";

/** One measured choice. */
export interface TuningEntry {
  /** The variant's key (`variantKey`). */
  best: string;
  /** Median ms of each candidate, by variant key. */
  timings: Record<string, number>;
  /** When it was measured (ISO date). */
  date: string;
}

/** The log file's content. */
export interface TuningLog {
  /** Always "sparrow-tuning-log". */
  format: "sparrow-tuning-log";
  /** The format version. */
  version: 1;
  /** The measured choices, by `tuningKey`. */
  entries: Record<string, TuningEntry>;
}

/** The key of a sparse product for the log. */
export function tuningKey(
  s: {
    M: number;
    N: number;
    K: number;
    block: readonly [number, number];
    density: number;
    indptr?: Int32Array;
    indices?: Int32Array;
  },
  relaxedSimd: boolean,
  cpu: string,
): string {
  const groups = s.indptr && s.indices
    ? bsrRowGroupCount({ indptr: s.indptr, indices: s.indices })
    : undefined;
  const grouped = groups !== undefined && fewRowPatterns(groups, s.indptr!.length - 1);
  return `${s.M}x${s.N}x${s.K} block ${s.block[0]}x${s.block[1]} density ${s.density.toFixed(2)}${
    grouped ? ` groups ${groups}` : ""
  } ${relaxedSimd ? "relaxed-simd" : "simd"} ${cpu}`;
}

/** An empty log. */
export const emptyLog = (): TuningLog => ({ format: "sparrow-tuning-log", version: 1, entries: {} });

/** Reads a log; a missing file is an empty log, a corrupt one an Error naming the file. */
export async function readTuningLog(path: string): Promise<TuningLog> {
  let text;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return emptyLog();
    throw e;
  }
  try {
    const log = JSON.parse(text) as TuningLog;
    if (log.format !== "sparrow-tuning-log" || log.version !== 1 || typeof log.entries !== "object") {
      throw new Error("not a Sparrow tuning log (format/version)");
    }
    return log;
  } catch (e) {
    throw new Error(`${path}: bad tuning log: ${(e as Error).message}`);
  }
}

/** The CPU model (node:os, which needs `--allow-sys=cpus`), for log keys; "unknown-cpu" without it. */
export function cpuModel(): string {
  try {
    return cpus()[0]?.model.trim() || "unknown-cpu";
  } catch {
    return "unknown-cpu";
  }
}
