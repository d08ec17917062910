/**
 * Softmax cases (codegen/wasm/softmax.ts): ranks 1-4, odd and tiny rows, every mask broadcast,
 * scales, in place, BERT-base size, rows masked whole or with huge values, and a mask constant
 * along rows; 1-3 threads.
 *
 * Oracle: the `mul` op by the scale (when there is one), then the `softmax` op with the mask.
 * Tolerance: absolute. Out of place, the 4 floats past y must stay untouched.
 */

import { softmaxKernel, type SoftmaxSpec } from "../../../codegen/wasm/softmax.ts";
import type { Tensor } from "../../../ir/tensor.ts";
import { t } from "../../ops/helpers.ts";
import { type CaseBase, type Family, numel, oracle, type Problem, rng } from "../kernel_runner.ts";

/** One softmax kernel and its operands. */
export interface SoftmaxCase extends CaseBase {
  spec: SoftmaxSpec;
  /** Seed of x and the mask, unless given. */
  seed: number;
  /** y overwrites x. */
  inPlace?: boolean;
  /** x, instead of random values. */
  x?: readonly number[];
  /** The mask, instead of random values. */
  mask?: readonly number[];
}

/** Hand-picked shapes, masks and scales. */
const picked: SoftmaxSpec[] = [
  { shape: [1] },
  { shape: [3] },
  { shape: [7] },
  { shape: [13], scale: 0.5 },
  { shape: [4, 16] },
  { shape: [5, 33], scale: -0.25 },
  { shape: [2, 3, 17], maskShape: [17] },
  { shape: [2, 3, 5], maskShape: [2, 1, 1] },
  { shape: [2, 3, 5], maskShape: [3, 1] },
  { shape: [2, 3, 6], maskShape: [] },
  { shape: [2, 3, 6], maskShape: [1, 1, 6] },
  { shape: [1, 4, 9, 9], maskShape: [1, 1, 1, 9], scale: 0.125 },
  { shape: [1, 4, 8, 8], maskShape: [1, 1, 8, 8] },
  { shape: [1, 4, 6, 10], maskShape: [1, 4, 1, 10], scale: 2 },
  { shape: [2, 3, 4, 5], maskShape: [2, 1, 4, 1] },
  { shape: [3, 64], maskShape: [3, 64] },
];

/** `count` random specs from `seed`: rank 1-4, rows up to 40, masks broadcast any way, some scaled. */
function randomCases(count: number, seed: number): SoftmaxCase[] {
  const next = rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const rank = 1 + Math.floor(next() * 4);
    const shape = Array.from({ length: rank }, (_, d) => 1 + Math.floor(next() * (d === rank - 1 ? 40 : 4)));
    const maskShape = next() < 0.3
      ? undefined
      : shape.slice(Math.floor(next() * rank)).map((n) => next() < 0.5 ? 1 : n);
    return { spec: { shape, maskShape, scale: next() < 0.5 ? undefined : 0.3 }, seed: 200 + i };
  });
}

/** The softmax case table. */
export const SOFTMAX_CASES: readonly SoftmaxCase[] = [
  ...picked.map((spec, i) => ({ spec, seed: 100 + i })),
  ...randomCases(12, 7),
  { spec: { shape: [3, 13], maskShape: [13] }, seed: 5, inPlace: true },
  { spec: { shape: [2, 32], scale: 0.125 }, seed: 6, inPlace: true },
  { spec: { shape: [1, 12, 128, 128], maskShape: [1, 1, 1, 128], scale: 0.125 }, seed: 9 },
  // A plain row, a row of ±1e30 masked whole, a row of large values masked whole: finite.
  {
    spec: { shape: [3, 6], maskShape: [3, 6] },
    seed: 0,
    x: [1, 2, 3, 4, 5, 6, 1e30, -1e30, 0, 0, 0, 0, 80, 90, 100, -100, 0, 1],
    mask: [0, 0, 0, 0, 0, 0, ...new Array(12).fill(-10000)],
  },
  // The ±1e30 row alone is exactly [1, 0, 0, 0, 0, 0].
  {
    spec: { shape: [1, 6], maskShape: [1, 6] },
    seed: 0,
    x: [1e30, -1e30, 0, 0, 0, 0],
    mask: new Array(6).fill(-10000),
    tol: 0,
  },
  // A mask constant along rows cancels exactly, -10000 included.
  {
    spec: { shape: [2, 3, 5], maskShape: [2, 3, 1] },
    seed: 3,
    mask: [-10000, 0, 5, -10000, 1e6, -3],
    tol: 1e-6,
  },
];

/**
 * Random data in [-4, 4). With `last`, a mask: some -10000 (masked) entries, never at index 0 of a
 * row of `last`, so no row is masked whole (f32 would lose z's precision there).
 */
function data(n: number, next: () => number, last = 0): Float32Array {
  return Float32Array.from(
    { length: n },
    (_, i) => last && i % last && next() < 0.3 ? -10000 : (next() - 0.5) * 8,
  );
}

interface SoftmaxProblem extends Problem {
  x: Float32Array;
  mask?: Float32Array;
}

/** Floats past y that must stay untouched. */
const GUARD = 4;

/** The softmax family. */
export const SOFTMAX: Family<SoftmaxCase, SoftmaxProblem> = {
  name: "softmax",
  cases: SOFTMAX_CASES,
  defaults: { threads: [1, 2, 3], tol: 1e-5 },
  label: ({ spec: s, inPlace }) =>
    `[${s.shape}]${s.maskShape ? ` mask [${s.maskShape}]` : ""}${
      s.scale === undefined ? "" : ` scale ${s.scale}`
    }` +
    `${inPlace ? " in place" : ""}`,
  problem(c, tol) {
    const { shape, maskShape, scale } = c.spec;
    const next = rng(c.seed);
    const x = c.x ? Float32Array.from(c.x) : data(numel(shape), next);
    const mask = !maskShape
      ? undefined
      : c.mask
      ? Float32Array.from(c.mask)
      : data(numel(maskShape), next, maskShape.at(-1) ?? 1);
    let z: Tensor = t(shape, Array.from(x));
    if (scale !== undefined) z = oracle("mul", [z, t([], [scale])]);
    const y = oracle("softmax", mask ? [z, t(maskShape!, Array.from(mask))] : [z]).data;
    const want = new Float32Array(y.length + (c.inPlace ? 0 : GUARD)).fill(NaN);
    want.set(y);
    return { want, tolerance: tol, x, mask };
  },
  wasm(c, _p, target) {
    const kernel = softmaxKernel(c.spec, target);
    return [{
      variant: "",
      kernels: [kernel],
      run(h, p, nt) {
        const x = h.put(p.x);
        const y = c.inPlace ? x : h.alloc(p.want.length);
        h.run(kernel.name, [x, ...(p.mask ? [h.put(p.mask)] : []), y], nt);
        return h.read(y, p.want.length);
      },
    }];
  },
};
