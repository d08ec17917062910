/**
 * Transpose cases (codegen/wasm/transpose.ts): BERT's head split and merge and K transposed, 4x4
 * tiles with ragged edges, NCHW <-> NHWC, copies, runs (memory.copy, v128 copies), the
 * element-by-element path, and seeded random shapes and permutations of rank 1-6; 1-3 threads.
 *
 * Oracle: the `transpose` op. The input holds distinct values (its element index + 0.5), so any
 * misplaced element shows; the output must be exact, and the 4 floats past it untouched.
 */

import { transposeKernel, type TransposeSpec } from "../../../codegen/wasm/transpose.ts";
import { ints, t } from "../../ops/helpers.ts";
import { type CaseBase, type Family, numel, oracle, type Problem, rng } from "../kernel_runner.ts";

/** One transpose kernel. */
export interface TransposeCase extends CaseBase {
  spec: TransposeSpec;
  /** The path or use it exercises. */
  note?: string;
}

const tr = (shape: number[], perm: number[], note?: string): TransposeCase => ({
  spec: { shape, perm },
  note,
});

/** `count` random shapes (dims 1-7, 1-4 above rank 4) and permutations of rank 1-6. */
function randomCases(count: number, seed: number): TransposeCase[] {
  const next = rng(seed);
  return Array.from({ length: count }, () => {
    const rank = 1 + Math.floor(next() * 6);
    const shape = Array.from({ length: rank }, () => 1 + Math.floor(next() * (rank > 4 ? 4 : 7)));
    const perm = [...Array(rank).keys()];
    for (let i = rank - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    return tr(shape, perm);
  });
}

/** The transpose case table. */
export const TRANSPOSE_CASES: readonly TransposeCase[] = [
  tr([1, 128, 12, 64], [0, 2, 1, 3], "BERT head split"),
  tr([1, 12, 128, 64], [0, 2, 1, 3], "BERT head merge"),
  tr([12, 128, 64], [0, 2, 1], "K transposed"),
  tr([1, 12, 128, 64], [0, 1, 3, 2], "K transposed"),
  ...[[4, 4], [5, 4], [4, 5], [7, 9], [13, 6], [8, 12], [6, 7]].flatMap(([p, q]) => [
    tr([q, p], [1, 0], "4x4 tiles"),
    tr([3, q, p], [0, 2, 1], "4x4 tiles"),
  ]),
  tr([2, 3, 5, 6], [0, 2, 3, 1], "NCHW -> NHWC"),
  tr([2, 5, 6, 3], [0, 3, 1, 2], "NHWC -> NCHW"),
  tr([37], [0], "copy"),
  tr([2, 1, 3], [1, 0, 2], "only a size-1 dim moves: a copy"),
  tr([5, 1], [1, 0], "copy"),
  tr([3, 2, 300], [1, 0, 2], "long runs: memory.copy"),
  tr([3, 2, 16], [1, 0, 2], "64-byte runs: v128 copies"),
  tr([3, 2, 7], [1, 0, 2], "runs"),
  tr([3, 2, 2], [2, 1, 0], "element by element"),
  tr([2, 3], [1, 0], "narrower than a tile"),
  tr([3, 2, 5, 2], [3, 1, 2, 0], "element by element"),
  ...randomCases(40, 42),
];

interface TransposeProblem extends Problem {
  x: Float32Array;
}

/** Floats past the output that must stay untouched. */
const GUARD = 4;

/** The transpose family. */
export const TRANSPOSE: Family<TransposeCase, TransposeProblem> = {
  name: "transpose",
  cases: TRANSPOSE_CASES,
  defaults: { threads: [1, 2, 3], tol: 0 },
  label: ({ spec, note }) => `[${spec.shape}] perm [${spec.perm}]${note ? ` (${note})` : ""}`,
  problem({ spec }, tol) {
    const n = numel(spec.shape);
    const x = Float32Array.from({ length: n }, (_, i) => i + 0.5);
    const y = oracle("transpose", [t(spec.shape, Array.from(x))], { perm: ints(spec.perm) }).data;
    const want = new Float32Array(n + GUARD).fill(NaN);
    want.set(y);
    return { want, tolerance: tol, x };
  },
  wasm({ spec }, _p, target) {
    const kernel = transposeKernel(spec, target);
    return [{
      variant: "",
      kernels: [kernel],
      run(h, p, nt) {
        const out = h.alloc(p.want.length);
        h.run(kernel.name, [h.put(p.x), out], nt);
        return h.read(out, p.want.length);
      },
    }];
  },
};
