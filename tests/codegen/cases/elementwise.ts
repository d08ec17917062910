/**
 * Fused element-wise cases (codegen/wasm/elementwise.ts): every binary op over every broadcast
 * form, every unary op alone and after a broadcast add, gelu written out, pow with special
 * exponents and special values (±0, ±inf, NaN, huge, tiny), general pow, in place over either
 * input, seeded random expressions and shapes, and BERT-base sizes; 1-3 threads.
 *
 * Oracle: the expression evaluated op by op with the IR's ops (`add`, `sub`, `mul`, `div`, `pow`,
 * `sqrt`, `erf`, `tanh`, `gelu`), each rounding to f32 as it stores its result; the kernel's ops
 * the IR lacks (`neg`, `abs`, `exp`, `max`, `min`) are made with the IR's own op factories.
 * Tolerance: expressions of correctly rounded ops only (see `exact`) must give the same value;
 * others tol·max(1, |want|), and the same value where want is not finite. Out of place, the 4
 * floats past the output must stay untouched.
 */

import {
  type ElementwiseExpr,
  elementwiseKernel,
  type ElementwiseSpec,
} from "../../../codegen/wasm/elementwise.ts";
import { binaryOp } from "../../../ir/ops/binary.ts";
import { broadcastOffsets } from "../../../ir/ops/common.ts";
import { unaryOp } from "../../../ir/ops/unary.ts";
import type { OpDef } from "../../../ir/registry.ts";
import type { Tensor } from "../../../ir/tensor.ts";
import { enumValue, run, t } from "../../ops/helpers.ts";
import { type CaseBase, type Family, numel, oracle, type Problem, rng } from "../kernel_runner.ts";

/** One element-wise kernel and its operands. */
export interface ElementwiseCase extends CaseBase {
  spec: ElementwiseSpec;
  /** Seed of the inputs, unless given. */
  seed: number;
  /** The inputs, instead of random values. */
  data?: readonly Float32Array[];
  /** The range of the random inputs; [-3, 3) when absent. */
  range?: [number, number];
  /** The output overwrites this input (which has the output's shape). */
  inPlace?: number;
}

const x = (input: number): ElementwiseExpr => ({ input });
const c = (constant: number): ElementwiseExpr => ({ constant });
const op = (name: string, ...args: ElementwiseExpr[]) => ({ op: name, args }) as ElementwiseExpr;

/** Every broadcast form: same shape, bias along leading dims, scalars, and general broadcasts. */
const BROADCASTS: [number[], number[][]][] = [
  [[1, 128, 768], [[1, 128, 768], [1, 128, 768]]],
  [[37], [[37], [37]]],
  [[2, 3, 7], [[2, 3, 7], [7]]],
  [[5, 13], [[13], [5, 13]]],
  [[1, 128, 768], [[1, 128, 768], [768]]],
  [[3, 4, 6], [[3, 4, 6], [4, 6]]],
  [[2, 9], [[2, 9], []]],
  [[2, 9], [[1, 1], [2, 9]]],
  [[4, 5], [[4, 1], [1, 5]]],
  [[6, 7], [[6, 7], [6, 1]]],
  [[2, 4, 3], [[2, 1, 3], [1, 4, 1]]],
  [[3, 4, 5], [[3, 1, 5], [3, 4, 1]]],
  [[2, 3, 4, 5], [[2, 3, 4, 5], [3, 1, 5]]],
  [[1, 12, 16, 16], [[1, 12, 16, 16], [1, 1, 1, 16]]],
  [[1, 12, 16, 16], [[1, 12, 16, 16], [1, 12, 1, 16]]],
  [[2, 1, 3], [[2, 1, 3], [1]]],
  [[1], [[1], [1]]],
  [[3], [[], []]],
];

/** Every binary op over every broadcast form (only `add` on the large ones). */
const broadcastCases: ElementwiseCase[] = BROADCASTS.flatMap(([shape, shapes], i) => {
  const inputs = shapes.map((s) => ({ shape: s }));
  const ops = numel(shape) > 10000 ? ["add"] : ["add", "sub", "mul", "div", "max", "min"];
  return ops.map((name) => ({ spec: { shape, inputs, expr: op(name, x(0), x(1)) }, seed: i }));
});

/** Every unary op, alone and after a broadcast add, then gelu written out (x used three times). */
const unaryCases: ElementwiseCase[] = (() => {
  const inputs = [{ shape: [3, 37] }, { shape: [37] }];
  const gelu = op("mul", op("mul", x(0), c(0.5)), op("add", c(1), op("erf", op("div", x(0), c(Math.SQRT2)))));
  return [
    ...["neg", "sqrt", "abs", "exp", "erf", "tanh", "gelu", "gelu_tanh"].flatMap((name) => [
      { spec: { shape: [3, 37], inputs, expr: op(name, x(0)) }, seed: 1 },
      { spec: { shape: [3, 37], inputs, expr: op(name, op("add", x(0), x(1))) }, seed: 2 },
    ]),
    { spec: { shape: [3, 37], inputs, expr: gelu }, seed: 3 },
  ];
})();

/** pow: exact for exponents 0, 1, 2, 0.5, -1, close otherwise, on special values; then general pow. */
const powCases: ElementwiseCase[] = (() => {
  const special = Float32Array.from([
    0,
    -0,
    1,
    -1,
    2.5,
    -2.5,
    1e-3,
    7,
    Infinity,
    -Infinity,
    NaN,
    3e19,
    1e-30,
  ]);
  const shape = [special.length];
  const base = Float32Array.from({ length: 41 }, (_, i) => 0.05 + i * 0.25);
  const exps = Float32Array.from({ length: 41 }, (_, i) => -3 + i * 0.15);
  const negative = Float32Array.from({ length: 41 }, (_, i) => -0.5 - i * 0.1);
  const ints = Float32Array.from({ length: 41 }, (_, i) => (i % 9) - 4);
  const general = { shape: [41], inputs: [{ shape: [41] }, { shape: [41] }], expr: op("pow", x(0), x(1)) };
  return [
    ...[0, 1, 2, 0.5, -1, 3, -2, 4, 7, -0.5].map((e) => ({
      spec: { shape, inputs: [{ shape }], expr: op("pow", x(0), c(e)) },
      seed: 4,
      data: [special],
    })),
    // Positive bases with any exponents, negative bases with integer exponents, a constant 1.5.
    { spec: general, seed: 5, data: [base, exps], tol: 5e-6 },
    { spec: general, seed: 6, data: [negative, ints], tol: 5e-6 },
    { spec: { ...general, expr: op("pow", x(0), c(1.5)) }, seed: 7, data: [base, exps], tol: 5e-6 },
  ];
})();

/** `count` random expressions of depth up to 3 over 1-3 inputs broadcast to a random shape. */
function randomCases(count: number, seed: number): ElementwiseCase[] {
  const next = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  return Array.from({ length: count }, (_, trial) => {
    const rank = 1 + Math.floor(next() * 4);
    const shape = Array.from({ length: rank }, () => 1 + Math.floor(next() * 9));
    const inputs = Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
      const keep = Math.floor(next() * (rank + 1));
      return { shape: shape.slice(rank - keep).map((n) => next() < 0.3 ? 1 : n) };
    });
    inputs[0] = { shape };
    const gen = (depth: number): ElementwiseExpr => {
      const r = next();
      if (depth === 0 || r < 0.25) {
        return next() < 0.8 ? x(Math.floor(next() * inputs.length)) : c(next() * 2 - 1);
      }
      if (r < 0.45) return op(pick(["neg", "abs", "tanh", "erf", "gelu", "gelu_tanh"]), gen(depth - 1));
      return op(pick(["add", "sub", "mul", "max", "min"]), gen(depth - 1), gen(depth - 1));
    };
    return { spec: { shape, inputs, expr: gen(3) }, seed: 300 + trial, tol: 2e-6 };
  });
}

/** The element-wise case table. */
export const ELEMENTWISE_CASES: readonly ElementwiseCase[] = [
  ...broadcastCases,
  ...unaryCases,
  ...powCases,
  // In place over either same-shape input.
  ...[0, 2].map((inPlace, i) => ({
    spec: {
      shape: [5, 19],
      inputs: [{ shape: [5, 19] }, { shape: [19] }, { shape: [5, 19] }],
      expr: op("add", op("mul", x(0), x(1)), x(2)),
    },
    seed: 8 + i,
    inPlace,
  })),
  { spec: { shape: [100], inputs: [{ shape: [100] }], expr: op("gelu", x(0)) }, seed: 10, inPlace: 0 },
  ...randomCases(25, 1234),
  // BERT-base: gelu on [1, 128, 3072], and the unfused layer norm (x - mean) / sqrt(var + eps) · gamma + beta.
  { spec: { shape: [1, 128, 3072], inputs: [{ shape: [1, 128, 3072] }], expr: op("gelu", x(0)) }, seed: 11 },
  {
    spec: {
      shape: [1, 128, 768],
      inputs: [[1, 128, 768], [1, 128, 1], [1, 128, 1], [768], [768]].map((shape) => ({ shape })),
      expr: op(
        "add",
        op("mul", op("div", op("sub", x(0), x(1)), op("pow", op("add", x(2), c(1e-12)), c(0.5))), x(3)),
        x(4),
      ),
    },
    seed: 12,
    range: [0.1, 2.1],
  },
];

/** The kernel's ops that the IR has no op for, made like the IR's own element-wise ops. */
const NOT_IN_IR: Record<string, OpDef> = {
  neg: unaryOp("neg", "Negation.", (a) => -a),
  abs: unaryOp("abs", "Absolute value.", Math.abs),
  exp: unaryOp("exp", "Exponential.", Math.exp),
  max: binaryOp("max", "Maximum.", Math.max),
  min: binaryOp("min", "Minimum.", Math.min),
};

/** The value of `e` on `inputs`, op by op. */
function evaluate(e: ElementwiseExpr, inputs: readonly Tensor[]): Tensor {
  if ("input" in e) return inputs[e.input];
  if ("constant" in e) return t([], [e.constant]);
  const args = e.args.map((a) => evaluate(a, inputs));
  if (e.op === "gelu" || e.op === "gelu_tanh") {
    return oracle("gelu", args, { approximation: enumValue(e.op === "gelu" ? "erf" : "tanh") });
  }
  return Object.hasOwn(NOT_IN_IR, e.op) ? run(NOT_IN_IR[e.op], args) : oracle(e.op, args);
}

/** True when the expression has only ops the kernel computes exactly (correctly rounded). */
function exact(e: ElementwiseExpr): boolean {
  if (!("op" in e)) return true;
  if (["erf", "tanh", "gelu", "gelu_tanh", "exp"].includes(e.op)) return false;
  if (e.op === "pow") {
    const p = e.args[1];
    if (!("constant" in p) || ![0, 1, 2, 0.5, -1].includes(p.constant)) return false;
  }
  return e.args.every(exact);
}

/** The expression as text, e.g. `add(x0, mul(x1, 0.5))`. */
function text(e: ElementwiseExpr): string {
  if ("input" in e) return `x${e.input}`;
  if ("constant" in e) return `${e.constant}`;
  return `${e.op}(${e.args.map(text).join(", ")})`;
}

interface ElementwiseProblem extends Problem {
  data: readonly Float32Array[];
}

/** Floats past the output that must stay untouched. */
const GUARD = 4;

/** The element-wise family. */
export const ELEMENTWISE: Family<ElementwiseCase, ElementwiseProblem> = {
  name: "elementwise",
  cases: ELEMENTWISE_CASES,
  defaults: { threads: [1, 2, 3], tol: 1e-6 },
  label: ({ spec: s, inPlace }) =>
    `${text(s.expr)} [${s.shape}] of ${s.inputs.map((i) => `[${i.shape}]`).join(" ")}` +
    `${inPlace === undefined ? "" : ` in place over x${inPlace}`}`,
  problem(k, tol) {
    const { spec } = k;
    const next = rng(k.seed);
    const [lo, hi] = k.range ?? [-3, 3];
    const data = k.data ??
      spec.inputs.map((inp) =>
        Float32Array.from({ length: numel(inp.shape) }, () => lo + next() * (hi - lo))
      );
    const result = evaluate(spec.expr, spec.inputs.map((inp, i) => t(inp.shape, Array.from(data[i]))));
    const n = numel(spec.shape);
    const at = broadcastOffsets(result.shape, spec.shape);
    const want = new Float32Array(n + (k.inPlace === undefined ? GUARD : 0)).fill(NaN);
    for (let i = 0; i < n; i++) want[i] = result.data[at[i]];
    const isExact = exact(spec.expr);
    const tolerance = Float64Array.from(
      want,
      (w, i) => i >= n || isExact ? 0 : tol * Math.max(1, Math.abs(w)),
    );
    return { want, tolerance, data };
  },
  wasm(k, _p, target) {
    const kernel = elementwiseKernel(k.spec, target);
    return [{
      variant: "",
      kernels: [kernel],
      run(h, p, nt) {
        const addrs = p.data.map((d) => h.put(d));
        const out = k.inPlace === undefined ? h.alloc(p.want.length) : addrs[k.inPlace];
        h.run(kernel.name, [...addrs, out], nt);
        return h.read(out, p.want.length);
      },
    }];
  },
};
