/**
 * Synthetic row-grouped BSR weights for the row-grouped kernel's tests (codegen/wasm/grouped_bsr.ts):
 * `groups` seeded column patterns (one of them empty when `empty` is set), each block row
 * assigned one of them at random, so the rows of a group are not contiguous. Values outside
 * `[N, K]` (ragged edge blocks) are NaN, so a kernel or packing reading them shows.
 *
 * Oracle: the `bsr_dense` op, y = act(x · Wᵀ + bias). Tolerance: tol times the magnitude of the
 * sum (`bsr_dense` on |x|, |W| and |bias|) plus 1. The 8 floats either side of y must stay NaN.
 */

import { bsrKernel, type BsrSpec, GROUPED_VARIANT } from "../../codegen/wasm/bsr.ts";
import { packBsrData, packBsrIndex } from "../../codegen/bsr_pack.ts";
import { BsrTensor, type Tensor } from "../../ir/tensor.ts";
import { enumValue, t } from "../ops/helpers.ts";
import { type CaseBase, type Family, oracle, type Problem, rng } from "./kernel_runner.ts";

/** One product with `groups` shared row patterns. */
export interface GroupedCase extends CaseBase {
  seed: number;
  M: number;
  N: number;
  K: number;
  block: [number, number];
  /** Distinct column patterns. */
  groups: number;
  /** Fraction of block columns each pattern keeps. */
  density: number;
  /** Pattern 0 keeps no column. */
  empty?: boolean;
  bias: boolean;
  activation: BsrSpec["activation"];
}

/** A case's spec, W's blocks, x and the bias. */
export interface GroupedInstance {
  spec: BsrSpec;
  data: Float32Array;
  x: Float32Array;
  bias: Float32Array;
}

/** The column patterns of a case and the block rows' assignment to them. */
export function groupedPattern(
  rand: () => number,
  nbr: number,
  nbc: number,
  groups: number,
  density: number,
  empty = false,
): { indptr: Int32Array; indices: Int32Array; assignment: number[] } {
  const patterns = Array.from({ length: groups }, (_, g) => {
    if (empty && g === 0) return [];
    const cols: number[] = [];
    for (let c = 0; c < nbc; c++) if (rand() < density) cols.push(c);
    if (cols.length === 0) cols.push(Math.floor(rand() * nbc));
    return cols;
  });
  // Every pattern used at least once when there are enough rows, the rest at random.
  const assignment = Array.from({ length: nbr }, (_, r) => (r < groups ? r : Math.floor(rand() * groups)));
  for (let i = nbr - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [assignment[i], assignment[j]] = [assignment[j], assignment[i]];
  }
  const indptr = new Int32Array(nbr + 1);
  const indices: number[] = [];
  assignment.forEach((g, r) => {
    indices.push(...patterns[g]);
    indptr[r + 1] = indices.length;
  });
  return { indptr, indices: Int32Array.from(indices), assignment };
}

/** The seeded instance of `c`. */
export function groupedInstance(c: GroupedCase): GroupedInstance {
  const rand = rng(c.seed);
  const { M, N, K, block: [R, C] } = c;
  const nbr = Math.ceil(N / R), nbc = Math.ceil(K / C);
  const { indptr, indices } = groupedPattern(rand, nbr, nbc, c.groups, c.density, c.empty);
  const data = new Float32Array(indices.length * R * C);
  for (let br = 0; br < nbr; br++) {
    for (let b = indptr[br]; b < indptr[br + 1]; b++) {
      for (let r = 0; r < R; r++) {
        for (let j = 0; j < C; j++) {
          const inside = br * R + r < N && indices[b] * C + j < K;
          data[(b * R + r) * C + j] = inside ? rand() * 2 - 1 : NaN;
        }
      }
    }
  }
  return {
    spec: { M, N, K, block: c.block, indptr, indices, bias: c.bias, activation: c.activation },
    data,
    x: Float32Array.from({ length: M * K }, () => rand() * 2 - 1),
    bias: Float32Array.from({ length: N }, () => rand() * 2 - 1),
  };
}

/** `bsr_dense` by the reference interpreter. */
export function bsrDenseOracle(
  s: BsrSpec,
  data: Float32Array,
  x: Float32Array,
  bias: Float32Array | undefined,
  activation: string,
): Float32Array {
  const w = new BsrTensor(
    { shape: [s.N, s.K], dtype: "f32", sparse: { kind: "bsr", block: s.block, nnzBlocks: s.indices.length } },
    data,
    s.indices,
    s.indptr,
  );
  const operands: Tensor[] = [t([s.M, s.K], Array.from(x)), w];
  if (bias) operands.push(t([s.N], Array.from(bias)));
  return oracle("bsr_dense", operands, { activation: enumValue(activation) }).data as Float32Array;
}

const GUARD = 8;

interface GroupedProblem extends Problem, GroupedInstance {}

/** Block shapes, M (ragged against both tiles), groups and epilogues. */
export const GROUPED_CASES: readonly GroupedCase[] = [
  { seed: 1, M: 13, N: 37, K: 50, block: [1, 1], groups: 3, density: 0.3, bias: true, activation: "none" },
  { seed: 2, M: 7, N: 40, K: 64, block: [1, 4], groups: 4, density: 0.4, bias: false, activation: "gelu" },
  { seed: 3, M: 33, N: 45, K: 83, block: [1, 8], groups: 5, density: 0.3, bias: true, activation: "none" },
  { seed: 4, M: 20, N: 64, K: 160, block: [1, 32], groups: 4, density: 0.3, bias: true, activation: "gelu" },
  { seed: 5, M: 11, N: 30, K: 100, block: [1, 32], groups: 2, density: 0.5, bias: true, activation: "tanh" },
  { seed: 6, M: 30, N: 48, K: 48, block: [4, 4], groups: 3, density: 0.3, bias: true, activation: "none" },
  {
    seed: 7,
    M: 9,
    N: 42,
    K: 50,
    block: [4, 4],
    groups: 4,
    density: 0.4,
    bias: false,
    activation: "gelu_tanh",
  },
  { seed: 8, M: 17, N: 64, K: 72, block: [8, 8], groups: 3, density: 0.4, bias: true, activation: "gelu" },
  { seed: 9, M: 12, N: 67, K: 40, block: [16, 1], groups: 2, density: 0.3, bias: true, activation: "none" },
  { seed: 10, M: 25, N: 23, K: 31, block: [3, 5], groups: 3, density: 0.5, bias: true, activation: "none" },
  { seed: 11, M: 6, N: 50, K: 40, block: [2, 2], groups: 6, density: 0.3, bias: false, activation: "none" },
  // Empty patterns: a group keeping no column writes act(bias) (or act(0)).
  {
    seed: 12,
    M: 19,
    N: 40,
    K: 64,
    block: [1, 8],
    groups: 3,
    density: 0.3,
    empty: true,
    bias: true,
    activation: "gelu",
  },
  {
    seed: 13,
    M: 5,
    N: 32,
    K: 32,
    block: [4, 4],
    groups: 2,
    density: 0.4,
    empty: true,
    bias: false,
    activation: "none",
  },
  {
    seed: 14,
    M: 8,
    N: 9,
    K: 16,
    block: [1, 4],
    groups: 1,
    density: 0,
    empty: true,
    bias: true,
    activation: "tanh",
  },
  // One token, one group, ragged everything.
  { seed: 15, M: 1, N: 11, K: 13, block: [1, 1], groups: 1, density: 0.5, bias: true, activation: "none" },
  {
    seed: 16,
    M: 61,
    N: 96,
    K: 128,
    block: [1, 32],
    groups: 8,
    density: 0.25,
    bias: true,
    activation: "gelu",
  },
];

/** The row-grouped kernel against the oracle. */
export const GROUPED: Family<GroupedCase, GroupedProblem> = {
  name: "row-grouped bsr",
  cases: GROUPED_CASES,
  defaults: { threads: [1, 2, 3], tol: 1e-4 },
  label: (c) =>
    `${c.block.join("x")} M${c.M} N${c.N} K${c.K} ${c.groups} groups${c.empty ? " (one empty)" : ""}` +
    `${c.bias ? " bias" : ""} ${c.activation}`,
  problem(c, tol) {
    const inst = groupedInstance(c);
    const { spec: s } = inst;
    const y = bsrDenseOracle(s, inst.data, inst.x, s.bias ? inst.bias : undefined, s.activation);
    const abs = (a: Float32Array) => a.map(Math.abs);
    const scale = bsrDenseOracle(s, abs(inst.data), abs(inst.x), s.bias ? abs(inst.bias) : undefined, "none");
    const want = new Float32Array(s.M * s.N + 2 * GUARD).fill(NaN);
    want.set(y, GUARD);
    const tolerance = new Float64Array(want.length);
    scale.forEach((v, i) => (tolerance[GUARD + i] = tol * (v + 1)));
    return { ...inst, want, tolerance };
  },
  wasm(_c, p, target) {
    const k = bsrKernel(p.spec, GROUPED_VARIANT, target);
    const packed = packBsrData(p.spec, GROUPED_VARIANT, p.data);
    const index = packBsrIndex(p.spec, GROUPED_VARIANT)!;
    return [{
      variant: "grouped",
      kernels: [k.kernel],
      run(h, p, nt) {
        const { M, N, bias } = p.spec;
        const args = [
          h.put(p.x),
          h.put(packed.length ? packed : new Float32Array(1)),
          h.put(index),
          ...(bias ? [h.put(p.bias)] : []),
        ];
        const image = h.alloc(M * N + 2 * GUARD);
        const scratch = h.alloc(k.scratchBytes / 4);
        h.run(k.kernel.name, [...args, image + 4 * GUARD, scratch], nt);
        return h.read(image, M * N + 2 * GUARD);
      },
    }];
  },
};
