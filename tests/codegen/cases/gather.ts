/**
 * Gather cases for the wasm embedding-lookup kernel (`gatherKernel`, codegen/wasm/data_movement.ts): rows of
 * one float and of many, i32 and i64 indices (little-endian word pairs), repeated indices, the
 * first and last rows; 1-3 threads.
 *
 * Oracle: the `gather` op along axis 0. The output must be exact, and the 4 floats past it untouched.
 */

import { gatherKernel } from "../../../codegen/wasm/data_movement.ts";
import { t } from "../../ops/helpers.ts";
import {
  type CaseBase,
  type Family,
  type Implementation,
  oracle,
  type Problem,
  rng,
} from "../kernel_runner.ts";

/** A lookup of `count` random indices into a random [rows, rowLen] table. */
export interface GatherCase extends CaseBase {
  rows: number;
  rowLen: number;
  count: number;
  dtype: "i32" | "i64";
  /** Seed of the table and the indices. */
  seed: number;
}

/** The gather case table. */
export const GATHER_CASES: readonly GatherCase[] = [
  { rows: 1, rowLen: 1, count: 1, dtype: "i32", seed: 1 },
  { rows: 5, rowLen: 1, count: 9, dtype: "i64", seed: 2 },
  { rows: 30, rowLen: 7, count: 13, dtype: "i32", seed: 3 },
  { rows: 30, rowLen: 16, count: 13, dtype: "i64", seed: 4 },
  { rows: 3, rowLen: 5, count: 2, dtype: "i64", seed: 5 },
  { rows: 512, rowLen: 64, count: 128, dtype: "i64", seed: 6 },
];

interface GatherProblem extends Problem {
  table: Float32Array;
  /** The indices as i32 words: one per i32 index, two (low, high) per i64. */
  words: Int32Array;
}

/** Floats past the output that must stay untouched. */
const GUARD = 4;

/** The gather family. */
export const GATHER: Family<GatherCase, GatherProblem> = {
  name: "gather",
  cases: GATHER_CASES,
  defaults: { threads: [1, 2, 3], tol: 0 },
  label: (c) => `${c.count} ${c.dtype} indices into [${c.rows}, ${c.rowLen}]`,
  problem(c, tol) {
    const next = rng(c.seed);
    const table = Float32Array.from({ length: c.rows * c.rowLen }, () => next() * 2 - 1);
    // The last and first rows, then random ones.
    const indices = Array.from(
      { length: c.count },
      (_, i) => i === 0 ? c.rows - 1 : i === 1 ? 0 : Math.floor(next() * c.rows),
    );
    const words = c.dtype === "i32"
      ? Int32Array.from(indices)
      : new Int32Array(BigInt64Array.from(indices, (i) => BigInt(i)).buffer);
    const y =
      oracle("gather", [t([c.rows, c.rowLen], Array.from(table)), t([c.count], indices, c.dtype)]).data;
    const want = new Float32Array(y.length + GUARD).fill(NaN);
    want.set(y);
    return { want, tolerance: tol, table, words };
  },
  wasm: (c) => lookup(gatherKernel(c.count, c.rowLen, c.dtype)),
};

/** Runs a gather kernel on a problem. */
function lookup<K extends { name: string }>(kernel: K): Implementation<GatherProblem, K>[] {
  return [{
    variant: "",
    kernels: [kernel],
    run(h, p, nt) {
      const out = h.alloc(p.want.length);
      h.run(kernel.name, [h.put(p.table), h.put(p.words), out], nt);
      return h.read(out, p.want.length);
    },
  }];
}
