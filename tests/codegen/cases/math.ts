/**
 * Cases for the math helpers of codegen/wasm/math.ts (`exp_f32x4` and friends), each a claim of
 * its doc comment checked over a dense grid on [-10, 10], special values and values spanning the
 * float range: error bounds, exact values, ranges, NaN in NaN out. The wasm SIMD target runs the
 * plain helper, the relaxed-SIMD target its `_fma` variant, through a test kernel applying it to
 * an array.
 *
 * Oracle: in f64, the IR's `erf`, `tanh` and `gelu` (erf and tanh) ops on f64 tensors, `Math.exp`
 * and `Math.log` (the IR has no exp or log op); pow is the `pow` op on f32 tensors. Cases state
 * their expectation instead of a tolerance (see `Expect`).
 */

import type { WasmKernel } from "../../../codegen/wasm/kernel.ts";
import { enumValue, t } from "../../ops/helpers.ts";
import { type CaseBase, type Family, oracle, type Problem } from "../kernel_runner.ts";

/** The helpers, by the name of their plain variant without `_f32x4`. */
export type Helper = "exp" | "erf" | "tanh" | "gelu" | "gelu_tanh" | "log" | "pow";

/** What each output must be, given the reference value `want` of its input. */
export type Expect =
  /** |got - want| <= abs, and <= rel·|want| where want is not 0. */
  | { abs?: number; rel?: number }
  /** Exactly this value (NaN for NaN, and -0 is not 0). */
  | { exactly: (x: number) => number }
  /** Any value in [lo, hi]. */
  | { within: [number, number] }
  /** |got - want| <= this; 0 demands the same value. */
  | { tolerance: (want: number, x: number, y: number) => number };

/** A claim about a helper on some inputs. */
export interface MathCase extends Omit<CaseBase, "tol"> {
  helper: Helper;
  /** The claim, as the doc comment states it. */
  claim: string;
  /** The inputs; for pow, the bases. */
  x: Float32Array;
  /** pow's exponents. */
  y?: Float32Array;
  expect: Expect;
}

/** A dense grid on [-10, 10], special values, and values spanning the float range. */
const GRID = (() => {
  const xs: number[] = [];
  for (let i = 0; i <= 200000; i++) xs.push(-10 + i * 1e-4);
  xs.push(
    0,
    -0,
    1e-30,
    -1e-30,
    1e-8,
    -1e-8,
    3.9999,
    4,
    4.0001,
    8.9,
    9,
    9.1,
    30,
    -30,
    87,
    -87,
    88.3,
    88.37,
    88.5,
  );
  xs.push(89, -87.3, -87.34, -88, -90, -10000, 10000, 1e30, -1e30, 3e38, -3e38, Infinity, -Infinity);
  return Float32Array.from(xs);
})();

/** The grid's values where `pick` holds. */
const grid = (pick: (x: number) => boolean) => GRID.filter(pick);

const F32_MAX = 3.4028234663852886e38;

/** Every pair of bases and exponents, and NaN bases. */
const POW = (() => {
  const xs: number[] = [], ys: number[] = [];
  const bases = [0, -0, 1, -1, 2, -2, 0.5, -0.5, 3.7, -3.7, 1e-3, 100, 1e10, -1e-5];
  const exps = [0, 1, 2, 3, -1, -2, 0.5, -0.5, 1.5, 2.5, 1 / 3, 7, -3, 1e8, NaN];
  for (const x of bases) {
    for (const y of exps) xs.push(x), ys.push(y);
  }
  xs.push(NaN, NaN);
  ys.push(0, 2);
  return { x: Float32Array.from(xs), y: Float32Array.from(ys) };
})();

const UNARY: readonly Helper[] = ["exp", "erf", "tanh", "gelu", "gelu_tanh", "log"];

/** The math case table. */
export const MATH_CASES: readonly MathCase[] = [
  {
    helper: "exp",
    claim: "relative error < 3e-7 on (-87, 88.3)",
    x: grid((x) => x > -87 && x < 88.3),
    expect: { rel: 3e-7 },
  },
  { helper: "exp", claim: "never inf", x: GRID, expect: { within: [-F32_MAX, F32_MAX] } },
  {
    helper: "exp",
    claim: "0 below -87.34 (and at -inf), 1 at 0",
    x: grid((x) => x < -87.34 || x === 0),
    expect: { exactly: (x) => (x === 0 ? 1 : 0) },
  },
  { helper: "erf", claim: "absolute error < 1.5e-7", x: GRID, expect: { abs: 1.5e-7 } },
  {
    helper: "erf",
    claim: "±0 at ±0, ±1 from |x| = 4",
    x: grid((x) => x === 0 || Math.abs(x) >= 4),
    expect: { exactly: (x) => (x === 0 ? x : Math.sign(x)) },
  },
  { helper: "erf", claim: "|erf| <= 1", x: GRID, expect: { within: [-1, 1] } },
  { helper: "tanh", claim: "absolute error < 1e-7", x: GRID, expect: { abs: 1e-7 } },
  {
    helper: "tanh",
    claim: "relative error < 1.5e-7 below |x| = 1",
    x: grid((x) => Math.abs(x) < 1),
    expect: { rel: 1.5e-7 },
  },
  {
    helper: "tanh",
    claim: "±1 from |x| = 9.1",
    x: grid((x) => Math.abs(x) >= 9.1),
    expect: { exactly: Math.sign },
  },
  ...(["gelu", "gelu_tanh"] as const).flatMap((helper): MathCase[] => [
    {
      helper,
      claim: "absolute error < 6e-7 on [-10, 10]",
      x: grid((x) => x >= -10 && x <= 10),
      expect: { abs: 6e-7 },
    },
    {
      helper,
      claim: "relative error < 2e-6 on [-4, 10]",
      x: grid((x) => x >= -4 && x <= 10),
      expect: { rel: 2e-6 },
    },
    { helper, claim: "x itself from 10 up", x: grid((x) => x >= 10 && x < Infinity), expect: { rel: 1e-6 } },
    {
      helper,
      claim: "within 1e-6 of 0 below -10",
      x: grid((x) => x <= -10 && x > -Infinity),
      expect: { within: [-1e-6, 1e-6] },
    },
  ]),
  {
    helper: "gelu",
    claim: "absolute error < 3e-7 on [-10, 10]",
    x: grid((x) => x >= -10 && x <= 10),
    expect: { abs: 3e-7 },
  },
  {
    helper: "gelu",
    claim: "relative error < 2e-6 on [-5.5, 10]",
    x: grid((x) => x >= -5.5 && x <= 10),
    expect: { rel: 2e-6 },
  },
  {
    helper: "gelu",
    claim: "NaN at -inf, inf at inf (as 0.5·x·(1 + erf(x/√2)) in f64)",
    x: Float32Array.from([-Infinity, Infinity]),
    expect: { exactly: (x) => (x < 0 ? NaN : Infinity) },
  },
  {
    helper: "log",
    claim: "relative error < 2e-7 on normal x",
    x: grid((x) => x > 1e-30 && Number.isFinite(x) && Math.abs(Math.log(x)) > 1e-3),
    expect: { rel: 2e-7 },
  },
  {
    helper: "log",
    claim: "absolute error < 1e-7 on (0.5, 2)",
    x: grid((x) => x > 0.5 && x < 2),
    expect: { abs: 1e-7 },
  },
  {
    helper: "log",
    claim: "-inf at ±0, NaN below 0, inf at inf",
    x: grid((x) => x <= 0 || x === Infinity),
    expect: { exactly: (x) => (x === 0 ? -Infinity : x < 0 ? NaN : Infinity) },
  },
  {
    helper: "pow",
    claim: "relative error (1 + |y·ln x|)·3e-7 on finite x; exact NaN, 0 and inf",
    ...POW,
    expect: {
      tolerance: (want, x, y) =>
        want === 0 || !Number.isFinite(want)
          ? 0
          : (1 + (Math.abs(y * Math.log(Math.abs(x))) || 0)) * 3e-7 * Math.abs(want),
    },
  },
  ...UNARY.map((helper): MathCase => ({
    helper,
    claim: "NaN stays NaN",
    x: Float32Array.from([NaN, 1, NaN, -1]),
    expect: { abs: 1e-6 },
  })),
];

/** The f64 (pow: f32) reference of `helper` on `x` (and `y`). */
function reference(helper: Helper, x: Float32Array, y: Float32Array | undefined): ArrayLike<number> {
  const f64 = t([x.length], Array.from(x), "f64");
  switch (helper) {
    case "exp":
      return Float64Array.from(x, Math.exp);
    case "log":
      return Float64Array.from(x, Math.log);
    case "erf":
    case "tanh":
      return oracle(helper, [f64]).data;
    case "gelu":
    case "gelu_tanh":
      return oracle("gelu", [f64], { approximation: enumValue(helper === "gelu" ? "erf" : "tanh") }).data;
    case "pow":
      return oracle("pow", [t([x.length], Array.from(x)), t([x.length], Array.from(y!))]).data;
  }
}

/** The wanted value and tolerance of an output, from the reference value `ref` at (x, y). */
function expectation(e: Expect, ref: number, x: number, y: number): [number, number] {
  if ("exactly" in e) return [e.exactly(x), 0];
  if ("within" in e) return [(e.within[0] + e.within[1]) / 2, (e.within[1] - e.within[0]) / 2];
  if ("tolerance" in e) return [ref, e.tolerance(ref, x, y)];
  return [
    ref,
    Math.min(e.abs ?? Infinity, e.rel !== undefined && ref !== 0 ? e.rel * Math.abs(ref) : Infinity),
  ];
}

/** A test kernel applying helper `name` to `n` (a multiple of 4, a parameter) floats: y[i] = name(x[i]), or pow(x[i], y[i]). */
function applyKernel(name: string, binary: boolean): WasmKernel {
  const load = (p: string) => `(v128.load (i32.add (local.get $${p}) (local.get $i)))`;
  const params = binary ? ["x", "y", "z"] : ["x", "y"];
  const out = params.at(-1)!;
  return {
    name: `apply_${name}`,
    params: [...params, "n"],
    uses: [name],
    wat: `  (func $apply_${name} (export "apply_${name}") ${
      params.map((p) => `(param $${p} i32) `).join("")
    }(param $n i32) (param $tid i32) (param $nt i32)
    (local $i i32)
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $next
        (v128.store (i32.add (local.get $${out}) (local.get $i))
          (call $${name} ${load("x")}${binary ? ` ${load("y")}` : ""}))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br_if $next (i32.lt_u (local.get $i) (i32.shl (local.get $n) (i32.const 2)))))))`,
  };
}

interface MathProblem extends Problem {
  /** The inputs, padded with 1s to whole vectors. */
  x: Float32Array;
  y?: Float32Array;
}

/** `a` padded with 1s to a multiple of 4 elements. */
function padded(a: Float32Array): Float32Array {
  const out = new Float32Array(Math.ceil(a.length / 4) * 4).fill(1);
  out.set(a);
  return out;
}

/** The math helper family. */
export const MATH: Family<MathCase, MathProblem> = {
  name: "math helper",
  cases: MATH_CASES,
  defaults: { threads: [1], tol: 0 },
  label: (c) => `${c.helper}: ${c.claim}`,
  problem(c) {
    const ref = reference(c.helper, c.x, c.y);
    const want = new Float64Array(c.x.length);
    const tolerance = new Float64Array(c.x.length);
    for (let i = 0; i < c.x.length; i++) {
      [want[i], tolerance[i]] = expectation(c.expect, ref[i], c.x[i], c.y?.[i] ?? NaN);
    }
    return { want, tolerance, x: padded(c.x), y: c.y && padded(c.y) };
  },
  wasm(c, _p, target) {
    const kernel = applyKernel(`${c.helper}_f32x4${target.relaxedSimd ? "_fma" : ""}`, c.y !== undefined);
    return [{
      variant: "",
      kernels: [kernel],
      run(h, p) {
        const n = p.x.length;
        const out = h.alloc(n);
        h.run(kernel.name, [h.put(p.x), ...(p.y ? [h.put(p.y)] : []), out, n]);
        return h.read(out, p.want.length);
      },
    }];
  },
};
