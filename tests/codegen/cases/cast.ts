/**
 * Cast cases for the wasm dtype-cast kernel (`castKernel`, codegen/wasm/data_movement.ts) between f32, i32
 * and i64 (i64 as little-endian word pairs): truncation toward zero, ±0, NaN, infinities,
 * wrapping out of i32's range, values past 2^32 and up to 2^53, then seeded random values;
 * 1-3 threads.
 *
 * Oracle: the `cast` op. The output words must be exact, and the 4 words past them untouched.
 */

import { castKernel } from "../../../codegen/wasm/data_movement.ts";
import { t } from "../../ops/helpers.ts";
import {
  type CaseBase,
  type Family,
  type Implementation,
  oracle,
  type Problem,
  rng,
} from "../kernel_runner.ts";

type Dtype = "f32" | "i32" | "i64";

/** A cast of `values`, then of `random` seeded values, from one dtype to another. */
export interface CastCase extends CaseBase {
  from: Dtype;
  to: Dtype;
  values: number[];
  random: number;
  /** Seed of the random values. */
  seed: number;
}

/** The cast case table. */
export const CAST_CASES: readonly CastCase[] = [
  {
    from: "f32",
    to: "i32",
    values: [0, -0, 0.5, -0.5, 1.9, -1.9, 2.5, 1e9, -1e9, 3e9, -3e9, 2147483520, NaN, Infinity, -Infinity],
    random: 40,
    seed: 1,
  },
  {
    from: "f32",
    to: "i64",
    values: [0, -0, 0.5, -1.5, 1e9, -3e9, 1e15, -1e15, 2 ** 40, NaN],
    random: 40,
    seed: 2,
  },
  {
    from: "i32",
    to: "f32",
    values: [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 16777217, 123456789],
    random: 40,
    seed: 3,
  },
  {
    from: "i64",
    to: "f32",
    values: [0, -1, 2 ** 32, -(2 ** 32), 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 31, 4294967295, 123456789012],
    random: 40,
    seed: 4,
  },
  { from: "i32", to: "i64", values: [0, -1, 2 ** 31 - 1, -(2 ** 31), 5], random: 40, seed: 5 },
  {
    from: "i64",
    to: "i32",
    values: [0, -1, 2 ** 32 + 5, -(2 ** 32) - 7, 2 ** 31, 2 ** 53 - 1],
    random: 40,
    seed: 6,
  },
  // One element, more threads than elements.
  { from: "i64", to: "i32", values: [], random: 1, seed: 7 },
];

/** `values` as memory words of `dtype`: f32 bits, i32, or i64 as (low, high) pairs. */
function words(values: ArrayLike<number>, dtype: Dtype): Int32Array {
  if (dtype === "f32") return new Int32Array(Float32Array.from(values).buffer);
  if (dtype === "i32") return Int32Array.from(values);
  return new Int32Array(BigInt64Array.from(Array.from(values), (v) => BigInt(v)).buffer);
}

/** Words past the output that must stay untouched (the harness fills them with f32 NaN). */
const GUARD = 4;
const NAN_WORD = new Int32Array(Float32Array.of(NaN).buffer)[0];

interface CastProblem extends Problem {
  /** The source's words. */
  src: Int32Array;
}

/** The cast family. */
export const CAST: Family<CastCase, CastProblem> = {
  name: "cast",
  cases: CAST_CASES,
  defaults: { threads: [1, 2, 3], tol: 0 },
  label: (c) => `${c.from} to ${c.to}, ${c.values.length + c.random} values`,
  problem(c, tol) {
    const next = rng(c.seed);
    const span = { f32: 1e4, i32: 2 ** 31, i64: 2 ** 50 }[c.from];
    const random = Array.from({ length: c.random }, () => {
      const v = (next() * 2 - 1) * span;
      return c.from === "f32" ? v : Math.floor(v);
    });
    const values = [...c.values, ...random];
    const y = oracle("cast", [t([values.length], values, c.from)], {}, {
      shape: [values.length],
      dtype: c.to,
    });
    const out = words(y.data, c.to);
    const want = new Int32Array(out.length + GUARD).fill(NAN_WORD);
    want.set(out);
    return { want, tolerance: tol, src: words(values, c.from) };
  },
  wasm: (c) => convert(castKernel(c.values.length + c.random, c.from, c.to)),
};

/** Runs a cast kernel on a problem. */
function convert<K extends { name: string }>(kernel: K): Implementation<CastProblem, K>[] {
  return [{
    variant: "",
    kernels: [kernel],
    run(h, p, nt) {
      const out = h.alloc(p.want.length);
      h.run(kernel.name, [h.put(p.src), out], nt);
      return h.readI32(out, p.want.length);
    },
  }];
}
