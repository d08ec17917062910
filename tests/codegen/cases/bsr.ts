/**
 * Block-sparse dense cases (codegen/wasm/bsr.ts, weights packed by codegen/bsr_pack.ts): seeded
 * random patterns of every supported block shape with ragged edges, empty block rows (every
 * third), empty matrices, skewed patterns (the first quarter of the block rows full), M = 1, 4,
 * 33, every activation; each case runs every variant from `bsrVariants` (codegen/wasm/bsr_cost.ts)
 * on 1-3 threads.
 *
 * Oracle: the `bsr_dense` op, y = act(x · Wᵀ + bias). Tolerance: tol times the magnitude of the
 * sum, `bsr_dense` on |x|, |W| and |bias| plus 1. The 8 floats either side of y must stay
 * untouched; W's padding outside [N, K] is NaN, so a kernel reading it shows.
 */

import { packBsrData, packBsrIndex } from "../../../codegen/bsr_pack.ts";
import { bsrKernel, type BsrSpec, variantKey } from "../../../codegen/wasm/bsr.ts";
import { bsrVariants } from "../../../codegen/wasm/bsr_cost.ts";
import { BsrTensor, type Tensor } from "../../../ir/tensor.ts";
import { enumValue, t } from "../../ops/helpers.ts";
import { type CaseBase, type Family, oracle, type Problem, rng } from "../kernel_runner.ts";

/** One product: shapes, block shape, pattern density and epilogue. */
export interface BsrCase extends CaseBase {
  M: number;
  N: number;
  K: number;
  block: [number, number];
  /** Probability that a block is stored (block rows 1, 4, 7, ... stay empty when there are several). */
  density: number;
  bias: boolean;
  activation: BsrSpec["activation"];
  /** The first quarter of the block rows is full, the rest at `density`. */
  skewed?: boolean;
  /** Seed of the pattern, the weights, x and the bias. */
  seed: number;
}

/** Every supported block shape. */
const SHAPES: [number, number][] = [
  [1, 1],
  [1, 2],
  [1, 4],
  [1, 8],
  [1, 16],
  [1, 32],
  [1, 64],
  [1, 128],
  [1, 384],
  [32, 1],
  [2, 2],
  [3, 5],
  [4, 4],
  [8, 8],
  [16, 16],
  [32, 32],
  [64, 64],
];

/** Per block shape: ragged N and K (not multiples of R, C), then a whole-block shape. */
const shapeCases: BsrCase[] = SHAPES.flatMap(([R, C], i): BsrCase[] => {
  const big = R * C >= 256 || C >= 128;
  const N1 = big ? 2 * R + Math.max(1, R >> 1) : 3 * R + 1 + (R > 1 ? 1 : 0);
  const K1 = big ? 2 * C + Math.max(1, C >> 2) : 5 * C + (C > 1 ? 1 : 0) + 2;
  const block: [number, number] = [R, C];
  return [
    { seed: 2 * i + 1, M: 13, N: N1, K: K1, block, density: 0.5, bias: true, activation: "none" },
    {
      seed: 2 * i + 2,
      M: 7,
      N: big ? 2 * R : 4 * R,
      K: big ? 2 * C : 4 * C,
      block,
      density: 0.4,
      bias: false,
      activation: "gelu",
    },
  ];
});

/** The BSR case table. */
export const BSR_CASES: readonly BsrCase[] = [
  ...shapeCases,
  // M = 1, 4, 33, empty matrices (density 0), activations.
  { seed: 101, M: 1, N: 37, K: 50, block: [1, 4], density: 0.3, bias: true, activation: "tanh" },
  { seed: 102, M: 4, N: 40, K: 24, block: [4, 4], density: 0.5, bias: true, activation: "gelu_tanh" },
  { seed: 103, M: 33, N: 45, K: 70, block: [1, 1], density: 0.2, bias: true, activation: "gelu" },
  { seed: 104, M: 33, N: 48, K: 64, block: [8, 8], density: 0.3, bias: false, activation: "none" },
  { seed: 105, M: 9, N: 20, K: 30, block: [4, 4], density: 0, bias: true, activation: "gelu" },
  { seed: 106, M: 9, N: 20, K: 30, block: [1, 1], density: 0, bias: false, activation: "none" },
  // Skewed: most blocks in the first block rows.
  {
    seed: 201,
    M: 13,
    N: 64,
    K: 96,
    block: [1, 8],
    density: 0.1,
    bias: true,
    activation: "none",
    skewed: true,
  },
  {
    seed: 202,
    M: 21,
    N: 67,
    K: 50,
    block: [4, 4],
    density: 0.05,
    bias: false,
    activation: "gelu",
    skewed: true,
  },
  { seed: 203, M: 8, N: 5, K: 64, block: [1, 32], density: 0, bias: true, activation: "none", skewed: true },
  {
    seed: 204,
    M: 8,
    N: 48,
    K: 48,
    block: [16, 16],
    density: 0.2,
    bias: false,
    activation: "none",
    skewed: true,
  },
];

/** A case's pattern and values: the kernel spec, W's blocks (NaN outside [N, K]), x and the bias. */
export interface BsrInstance {
  spec: BsrSpec;
  data: Float32Array;
  x: Float32Array;
  bias: Float32Array;
}

/** The random pattern and values of `c`. */
export function bsrInstance(c: BsrCase): BsrInstance {
  const rand = rng(c.seed);
  const { M, N, K, block: [R, C] } = c;
  const nbr = Math.ceil(N / R), nbc = Math.ceil(K / C);
  const indptr = new Int32Array(nbr + 1);
  const indices: number[] = [];
  for (let br = 0; br < nbr; br++) {
    if (br % 3 !== 1 || nbr === 1) {
      const d = c.skewed && br < nbr / 4 ? 1 : c.density;
      for (let bc = 0; bc < nbc; bc++) if (rand() < d) indices.push(bc);
    }
    indptr[br + 1] = indices.length;
  }
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
    spec: {
      M,
      N,
      K,
      block: c.block,
      indptr,
      indices: Int32Array.from(indices),
      bias: c.bias,
      activation: c.activation,
    },
    data,
    x: Float32Array.from({ length: M * K }, () => rand() * 2 - 1),
    bias: Float32Array.from({ length: N }, () => rand() * 2 - 1),
  };
}

/** Floats untouched either side of y. */
const GUARD = 8;

interface BsrProblem extends Problem, BsrInstance {}

/** `bsr_dense` of `x`, `w` (its blocks `data`) and the bias, with `activation`. */
function bsrDense(
  s: BsrSpec,
  data: Float32Array,
  x: Float32Array,
  bias: Float32Array | undefined,
  activation: string,
) {
  const w = new BsrTensor(
    { shape: [s.N, s.K], dtype: "f32", sparse: { kind: "bsr", block: s.block, nnzBlocks: s.indices.length } },
    data,
    s.indices,
    s.indptr,
  );
  const operands: Tensor[] = [t([s.M, s.K], Array.from(x)), w];
  if (bias) operands.push(t([s.N], Array.from(bias)));
  return oracle("bsr_dense", operands, { activation: enumValue(activation) }).data;
}

/** The BSR family. */
export const BSR: Family<BsrCase, BsrProblem> = {
  name: "bsr",
  cases: BSR_CASES,
  defaults: { threads: [1, 2, 3], tol: 1e-4 },
  label: (c) =>
    `${c.block.join("x")} M${c.M} N${c.N} K${c.K} density ${c.density}${c.skewed ? " skewed" : ""}` +
    `${c.bias ? " bias" : ""} ${c.activation}`,
  problem(c, tol) {
    const inst = bsrInstance(c);
    const { spec: s } = inst;
    const y = bsrDense(s, inst.data, inst.x, s.bias ? inst.bias : undefined, s.activation);
    const abs = (a: Float32Array) => a.map(Math.abs);
    const scale = bsrDense(s, abs(inst.data), abs(inst.x), s.bias ? abs(inst.bias) : undefined, "none");
    const want = new Float32Array(s.M * s.N + 2 * GUARD).fill(NaN);
    want.set(y, GUARD);
    const tolerance = new Float64Array(want.length);
    scale.forEach((v, i) => (tolerance[GUARD + i] = tol * (v + 1)));
    return { ...inst, want, tolerance };
  },
  wasm(_c, p, target) {
    return bsrVariants(p.spec).map((v) => {
      const k = bsrKernel(p.spec, v, target);
      const packed = packBsrData(p.spec, v, p.data);
      const index = packBsrIndex(p.spec, v);
      return {
        variant: variantKey(v),
        kernels: k.prepare ? [k.prepare, k.kernel] : [k.kernel],
        run(h, p, nt) {
          const { M, N, bias } = p.spec;
          const x = h.put(p.x);
          const args = [
            x,
            h.put(packed.length ? packed : new Float32Array(1)),
            ...(index ? [h.put(index)] : []),
            ...(bias ? [h.put(p.bias)] : []),
          ];
          const image = h.alloc(M * N + 2 * GUARD);
          const scratch = h.alloc(k.scratchBytes / 4);
          if (k.prepare) h.run(k.prepare.name, [x, scratch], nt);
          h.run(k.kernel.name, [...args, image + 4 * GUARD, scratch], nt);
          return h.read(image, M * N + 2 * GUARD);
        },
      };
    });
  },
};
