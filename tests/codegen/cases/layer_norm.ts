/**
 * layer_norm and add_layer_norm cases (codegen/wasm/layer_norm.ts): tiny, odd and long rows, with
 * and without beta, two epsilons, random sizes, in place over x or the residual, BERT-base size,
 * and a constant row (variance 0: exactly beta, not NaN); 1-3 threads.
 *
 * Oracle: the `layer_norm` op, or `add_layer_norm` with a residual. Tolerance: absolute. Out of
 * place, the 4 floats past y must stay untouched.
 */

import { layerNormKernel, type LayerNormSpec } from "../../../codegen/wasm/layer_norm.ts";
import { float, t } from "../../ops/helpers.ts";
import { type CaseBase, type Family, oracle, type Problem, rng } from "../kernel_runner.ts";

/** One layer-norm kernel and its operands. */
export interface LayerNormCase extends CaseBase {
  spec: LayerNormSpec;
  /** Seed of the operands, unless given. */
  seed: number;
  /** y overwrites x or the residual. */
  into?: "x" | "residual";
  /** The operands, instead of random values (x, gamma and beta; no residual). */
  data?: { x: number[]; gamma: number[]; beta: number[] };
}

/** Row count and length: tiny, odd, one vector, vectors and a tail, long. */
const SIZES: [number, number][] = [[1, 1], [3, 3], [2, 4], [2, 7], [5, 13], [4, 16], [3, 33], [7, 64], [
  3,
  770,
]];

/** `count` random sizes from `seed`, with or without a residual. */
function randomCases(count: number, seed: number): LayerNormCase[] {
  const next = rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const spec = {
      rows: 1 + Math.floor(next() * 9),
      cols: 1 + Math.floor(next() * 200),
      epsilon: 1e-6,
      residual: next() < 0.5,
    };
    return { spec, seed: 50 + i };
  });
}

/** The layer-norm case table. */
export const LAYER_NORM_CASES: readonly LayerNormCase[] = [
  ...[false, true].flatMap((residual) =>
    SIZES.flatMap(([rows, cols], i): LayerNormCase[] => [
      { spec: { rows, cols, epsilon: 1e-12, residual }, seed: 10 + i },
      { spec: { rows, cols, epsilon: 1e-5, residual, beta: false }, seed: 30 + i },
    ])
  ),
  ...randomCases(10, 99),
  { spec: { rows: 3, cols: 37, epsilon: 1e-12, residual: false }, seed: 1, into: "x" },
  { spec: { rows: 3, cols: 37, epsilon: 1e-12, residual: true }, seed: 2, into: "x" },
  { spec: { rows: 4, cols: 40, epsilon: 1e-12, residual: true }, seed: 3, into: "residual" },
  { spec: { rows: 128, cols: 768, epsilon: 1e-12, residual: true }, seed: 7 },
  { spec: { rows: 128, cols: 768, epsilon: 1e-12, residual: false }, seed: 8 },
  {
    spec: { rows: 1, cols: 6, epsilon: 1e-12, residual: false },
    seed: 0,
    data: { x: new Array(6).fill(5), gamma: new Array(6).fill(2), beta: [1, 2, 3, 4, 5, 6] },
    tol: 0,
  },
];

interface LayerNormProblem extends Problem {
  x: Float32Array;
  residual: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
}

/** Floats past y that must stay untouched. */
const GUARD = 4;

/** `n` values uniform in [offset - spread, offset + spread). */
function uniform(n: number, next: () => number, offset: number, spread: number): Float32Array {
  return Float32Array.from({ length: n }, () => offset + (next() * 2 - 1) * spread);
}

/** The layer-norm family. */
export const LAYER_NORM: Family<LayerNormCase, LayerNormProblem> = {
  name: "layer_norm",
  cases: LAYER_NORM_CASES,
  defaults: { threads: [1, 2, 3], tol: 1e-5 },
  label: ({ spec: s, into }) =>
    `${s.residual ? "add_" : ""}layer_norm ${s.rows}x${s.cols} eps ${s.epsilon}${
      s.beta === false ? " no beta" : ""
    }` +
    `${into ? ` into ${into}` : ""}`,
  problem(c, tol) {
    const { rows, cols, residual: hasResidual } = c.spec;
    const hasBeta = c.spec.beta ?? true;
    const next = rng(c.seed);
    const n = rows * cols;
    const x = c.data ? Float32Array.from(c.data.x) : uniform(n, next, 3, 2);
    const residual = uniform(n, next, -1, 4);
    const gamma = c.data ? Float32Array.from(c.data.gamma) : uniform(cols, next, 1, 0.5);
    const beta = c.data ? Float32Array.from(c.data.beta) : uniform(cols, next, 0, 0.5);
    const operands = [t([rows, cols], Array.from(x))];
    if (hasResidual) operands.push(t([rows, cols], Array.from(residual)));
    operands.push(t([cols], Array.from(gamma)));
    if (hasBeta) operands.push(t([cols], Array.from(beta)));
    const op = hasResidual ? "add_layer_norm" : "layer_norm";
    const y = oracle(op, operands, { epsilon: float(c.spec.epsilon) }).data;
    const want = new Float32Array(n + (c.into ? 0 : GUARD)).fill(NaN);
    want.set(y);
    return { want, tolerance: tol, x, residual, gamma, beta };
  },
  wasm(c, _p, target) {
    const kernel = layerNormKernel(c.spec, target);
    return [{
      variant: "",
      kernels: [kernel],
      run(h, p, nt) {
        const x = h.put(p.x);
        const residual = c.spec.residual ? [h.put(p.residual)] : [];
        const gamma = h.put(p.gamma);
        const beta = c.spec.beta ?? true ? [h.put(p.beta)] : [];
        const y = c.into === "x" ? x : c.into === "residual" ? residual[0] : h.alloc(p.want.length);
        h.run(kernel.name, [x, ...residual, gamma, ...beta, y], nt);
        return h.read(y, p.want.length);
      },
    }];
  },
};
