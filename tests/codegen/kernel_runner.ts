/**
 * The runner of the kernel test tables (tests/codegen/cases/), in the manner of onnxruntime-web's
 * per-op test data: a kernel family is a list of cases (shapes, attributes, seed, thread counts,
 * tolerance) and an adapter that knows how to compute a case's expected output with the IR
 * reference interpreter (the op's `interpret`, from the builtin registry) and how to lay out
 * and call the family's kernels. `testFamily` runs every case on every target the family has a
 * kernel for: wasm with relaxed SIMD and plain SIMD wasm.
 *
 * The runner compares an output image: the oracle's values where the kernel writes and NaN
 * around them, where it must not write (the harness fills fresh memory with NaN).
 */

import type { Attr } from "../../ir/attrs.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import type { Tensor } from "../../ir/tensor.ts";
import type { TensorType } from "../../ir/types.ts";
import type { KernelTarget, WasmKernel } from "../../codegen/wasm/kernel.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { run } from "../ops/helpers.ts";
import { KernelHarness } from "./wasm_harness.ts";

/** A deterministic generator of floats in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The number of elements of a shape. */
export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Op `name` of the builtin registry, interpreted on `inputs` with attributes `attrs` (the oracle). */
export function oracle(
  name: string,
  inputs: Tensor[],
  attrs: Record<string, Attr> = {},
  declared?: TensorType,
): Tensor {
  const def = builtinRegistry.get(name);
  if (!def) throw new Error(`no op '${name}' in the builtin registry`);
  return run(def, inputs, attrs, declared);
}

/** The fields every case may set; a family's cases add their shapes and attributes. */
export interface CaseBase {
  /** Thread counts to run it with; the family's default when absent. */
  threads?: readonly number[];
  /** Allowed error, in the unit the family documents; the family's default when absent. */
  tol?: number;
}

/** A case's expected output, from the oracle, with whatever else its runs need (operands). */
export interface Problem {
  /** The output image: the oracle's values where the kernel writes, NaN where it must leave memory alone. */
  want: ArrayLike<number>;
  /**
   * The largest |got - want|, per element of `want` or one for all. 0 (or a non-finite want)
   * demands the same value: NaN for NaN, and -0 is not 0.
   */
  tolerance: number | ArrayLike<number>;
}

/** One way to run a case on a target: its kernels, and how to call them. */
export interface Implementation<P extends Problem, K> {
  /** What tells it from the target's other implementations of the case (a schedule), or "". */
  variant: string;
  /** The kernels it calls, assembled into the target's module. */
  kernels: readonly K[];
  /** Lays out `p`'s operands in `h`, runs the kernels on `nt` threads and returns the output image. */
  run(h: KernelHarness, p: P, nt: number): ArrayLike<number>;
}

/** A kernel family: its case table and the adapter between cases, oracle and kernels. */
export interface Family<C extends CaseBase, P extends Problem> {
  /** The family's name, in test names. */
  name: string;
  /** The case table. */
  cases: readonly C[];
  /** Thread counts and tolerance for cases that do not set them. */
  defaults: { threads: readonly number[]; tol: number };
  /** A short description of `c`, naming its test step. */
  label(c: C): string;
  /** `c`'s operands and the oracle's output image, `tol` being the case's tolerance. */
  problem(c: C, tol: number): P;
  /** `c`'s implementations on a wasm target. */
  wasm(c: C, p: P, target: KernelTarget): Implementation<P, WasmKernel>[];
}

/** Where a kernel runs: a wasm target. */
export interface Target {
  name: string;
  wasm: KernelTarget;
}

/** Every target, in the order the tests run them. */
export const TARGETS: readonly Target[] = [
  { name: "wasm relaxed SIMD", wasm: { relaxedSimd: true } },
  { name: "wasm SIMD", wasm: { relaxedSimd: false } },
];

/** NaN and NaN are the same value; -0 and 0 are not. */
const sameValue = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

/** Where `got` differs from `p`'s image beyond the tolerance, as a message; undefined if nowhere. */
function mismatch(got: ArrayLike<number>, p: Problem): string | undefined {
  if (got.length !== p.want.length) return `output image has ${got.length} elements, want ${p.want.length}`;
  for (let i = 0; i < got.length; i++) {
    const want = p.want[i];
    const tol = typeof p.tolerance === "number" ? p.tolerance : p.tolerance[i];
    const ok = tol === 0 || !Number.isFinite(want) ? sameValue(got[i], want) : Math.abs(got[i] - want) <= tol;
    if (!ok) {
      const what = Number.isNaN(want) ? "must stay NaN (written where it must not be?)" : `want ${want}`;
      return `out[${i}] = ${got[i]}, ${what}, tolerance ${tol}`;
    }
  }
  return undefined;
}

/** The problems of a family's cases, computed once and shared by its targets. */
const problems = new WeakMap<object, Problem>();

/**
 * Registers one test per wasm target of `family`, each running every case, as a step, with every implementation and thread
 * count, against the oracle. All the cases' kernels of a target share one module.
 */
export function testFamily<C extends CaseBase, P extends Problem>(family: Family<C, P>): void {
  const problemOf = (c: C): P => {
    let p = problems.get(c) as P | undefined;
    if (!p) problems.set(c, p = family.problem(c, c.tol ?? family.defaults.tol));
    return p;
  };
  for (const target of TARGETS) {
    const build = (c: C) => family.wasm(c, problemOf(c), target.wasm);
    Deno.test(`${family.name} kernels match the interpreter: every case on ${target.name}`, async (t) => {
      const impls = family.cases.map(build);
      const kernels = impls.flat().flatMap((i) => i.kernels);
      const h = await KernelHarness.create(kernels, WASM_HELPERS);
      for (const [n, c] of family.cases.entries()) {
        const label = `#${n} ${family.label(c)}`;
        await t.step(label, () => {
          const p = problemOf(c);
          for (const impl of impls[n]) {
            for (const nt of c.threads ?? family.defaults.threads) {
              h.reset();
              const where = `${label}${impl.variant && ` [${impl.variant}]`} on ${nt} thread(s)`;
              let got;
              try {
                got = impl.run(h, p, nt);
              } catch (e) {
                throw new Error(`${where}: ${e}`);
              }
              const bad = mismatch(got, p);
              if (bad) throw new Error(`${where}: ${bad}`);
            }
          }
        });
      }
    });
  }
}
