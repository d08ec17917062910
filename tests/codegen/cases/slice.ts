/**
 * Slice cases for the wasm strided-copy kernel (`stridedCopyKernel`, codegen/wasm/data_movement.ts), set
 * up as the lowering sets it up for a slice that is not a view (codegen/lower/data.ts): the
 * source at the slice's first element, source strides read off the slice of element indices,
 * a contiguous output. Steps, negative bounds, size-1 dims, ranks 1-5; 1-3 threads.
 *
 * Oracle: the `slice` op. The output must be exact, and the 4 floats past it untouched.
 */

import { stridedCopyKernel } from "../../../codegen/wasm/data_movement.ts";
import type { Attr } from "../../../ir/attrs.ts";
import { strides } from "../../../ir/tensor.ts";
import { ints, t } from "../../ops/helpers.ts";
import {
  type CaseBase,
  type Family,
  type Implementation,
  numel,
  oracle,
  type Problem,
  rng,
} from "../kernel_runner.ts";

/** One slice of a random f32 tensor. */
export interface SliceCase extends CaseBase {
  /** x's shape. */
  shape: number[];
  starts: number[];
  ends: number[];
  axes?: number[];
  steps?: number[];
  /** Seed of x. */
  seed: number;
}

/** The slice case table. */
export const SLICE_CASES: readonly SliceCase[] = [
  { shape: [37], starts: [3], ends: [30], steps: [3], seed: 1 },
  { shape: [4, 10], starts: [1], ends: [10], axes: [1], steps: [2], seed: 2 },
  { shape: [1, 8, 16], starts: [0], ends: [1], axes: [1], seed: 3 },
  { shape: [6, 5], starts: [-4, 1], ends: [-1, 4], seed: 4 },
  { shape: [2, 3, 5, 6], starts: [1, 2], ends: [3, 6], axes: [1, 3], seed: 5 },
  { shape: [3, 1, 9, 2], starts: [0, 1, 1], ends: [3, 9, 2], axes: [0, 2, 3], steps: [2, 4, 1], seed: 6 },
  { shape: [2, 3, 2, 4, 5], starts: [1, 0, 1], ends: [3, 4, 5], axes: [1, 3, 4], steps: [1, 3, 2], seed: 7 },
  { shape: [1, 128, 2304], starts: [768], ends: [1536], axes: [2], seed: 8 },
  { shape: [9, 7], starts: [-100], ends: [100], axes: [0], steps: [4], seed: 9 },
];

/** The slice's attributes. */
function attrsOf(c: SliceCase): Record<string, Attr> {
  const attrs: Record<string, Attr> = { starts: ints(c.starts), ends: ints(c.ends) };
  if (c.axes) attrs.axes = ints(c.axes);
  if (c.steps) attrs.steps = ints(c.steps);
  return attrs;
}

interface SliceProblem extends Problem {
  x: Float32Array;
  /** Output shape. */
  shape: number[];
  /** Source element offsets of output elements 0 and each output stride, as the slice of indices gives them. */
  picked: ArrayLike<number>;
}

/** Floats past the output that must stay untouched. */
const GUARD = 4;

/** The slice family. */
export const SLICE: Family<SliceCase, SliceProblem> = {
  name: "slice",
  cases: SLICE_CASES,
  defaults: { threads: [1, 2, 3], tol: 0 },
  label: (c) =>
    `[${c.shape}] starts [${c.starts}] ends [${c.ends}]${c.axes ? ` axes [${c.axes}]` : ""}` +
    `${c.steps ? ` steps [${c.steps}]` : ""}`,
  problem(c, tol) {
    const next = rng(c.seed);
    const x = Float32Array.from({ length: numel(c.shape) }, () => next() * 2 - 1);
    const y = oracle("slice", [t(c.shape, Array.from(x))], attrsOf(c));
    const index = t(c.shape, [...x.keys()], "i32");
    const picked = oracle("slice", [index], attrsOf(c)).data;
    const want = new Float32Array(y.data.length + GUARD).fill(NaN);
    want.set(y.data);
    return { want, tolerance: tol, x, shape: [...y.shape], picked };
  },
  wasm: (_c, p) => copy(p, stridedCopyKernel),
};

/** Runs the strided-copy kernel `make` builds for a problem. */
function copy<K extends { name: string }>(
  p: SliceProblem,
  make: (shape: number[], srcStrides: number[], outStrides: number[]) => K,
): Implementation<SliceProblem, K>[] {
  const outStrides = strides(p.shape);
  const base = p.picked.length > 0 ? p.picked[0] : 0;
  const srcStrides = p.shape.map((d, i) => (d > 1 ? p.picked[outStrides[i]] - base : 0));
  const kernel = make(p.shape, srcStrides, outStrides);
  return [{
    variant: "",
    kernels: [kernel],
    run(h, p, nt) {
      const out = h.alloc(p.want.length);
      h.run(kernel.name, [h.put(p.x) + 4 * base, out], nt);
      return h.read(out, p.want.length);
    },
  }];
}
