/**
 * GEMM cases (codegen/wasm/gemm.ts with the packed weight layout of codegen/pack.ts): hand-picked
 * edges, BERT-like and attention-like shapes, then seeded random ones around the tile edges,
 * sometimes strided, broadcast, scaled or biased; 1-4 threads.
 *
 * Oracle: per batch item, the `dense` op on that item's A (scaled by alpha) and B matrices, with
 * the bias and activation. The alphas are powers of two, so scaling A first is exact.
 * Tolerance: relative, tol·max(1, |want|). Every C element is checked, and that nothing else in
 * C's strided region (gaps between rows and batch items) or 16 floats either side was written.
 * Each run puts one operand (A, B or the bias, by thread count) flush against the end of memory,
 * so that reading past it traps.
 */

import { packB } from "../../../codegen/pack.ts";
import { gemmKernel, type GemmSpec } from "../../../codegen/wasm/gemm.ts";
import { bool, enumValue, t } from "../../ops/helpers.ts";
import { type CaseBase, type Family, oracle, type Problem, rng } from "../kernel_runner.ts";

/** One product: the spec and, for a packed B, whether its weight is given transposed ([N, K]). */
export interface GemmCase extends CaseBase {
  spec: GemmSpec;
  transposed: boolean;
  /** Seed of A, B and the bias. */
  seed: number;
}

/** Floats untouched either side of C's region. */
const MARGIN = 16;

/** A single-item product with unpadded rows and a transposed packed weight, and `extra` on top. */
function dense(seed: number, M: number, N: number, K: number, extra: Partial<GemmSpec> = {}): GemmCase {
  const spec: GemmSpec = {
    batch: 1,
    M,
    N,
    K,
    lda: K,
    aBatchStride: 0,
    b: { layout: "packed" },
    ldc: N,
    cBatchStride: 0,
    bias: false,
    activation: "none",
    ...extra,
  };
  return { spec, transposed: true, seed };
}

/** `count` random specs from `seed`: sizes around the tile edges, sometimes strided, broadcast, scaled or biased. */
function randomCases(count: number, seed: number): GemmCase[] {
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const size = () => pick([1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 31, 33, 40]);
  return Array.from({ length: count }, (_, i) => {
    const batch = pick([1, 1, 2, 3]);
    const [M, N, K] = [size(), size(), size()];
    const pad = () => pick([0, 0, 1, 5]);
    const lda = K + pad(), ldc = N + pad();
    const b: GemmSpec["b"] = rand() < 0.5
      ? { layout: "packed" }
      : { layout: "rows", ldb: N + pad(), batchStride: pick([0, (K + 1) * (N + 7)]) };
    const spec: GemmSpec = {
      batch,
      M,
      N,
      K,
      lda,
      aBatchStride: pick([0, M * lda, M * lda + 3]),
      b,
      ldc,
      cBatchStride: pick([M * ldc, M * ldc + 11]),
      bias: rand() < 0.5,
      alpha: rand() < 0.3 ? 0.125 : undefined,
      activation: pick(["none", "none", "gelu", "gelu_tanh", "tanh"] as const),
    };
    return { spec, transposed: rand() < 0.5, seed: 100 + i };
  });
}

/** The GEMM case table. */
export const GEMM_CASES: readonly GemmCase[] = [
  dense(1, 1, 2, 3),
  dense(2, 7, 13, 5),
  dense(3, 1, 1, 1),
  dense(4, 3, 5, 0, { bias: true }),
  dense(5, 1, 100, 64, { bias: true, activation: "gelu" }),
  dense(6, 2, 37, 19, { activation: "tanh" }),
  dense(7, 37, 70, 67, { bias: true, alpha: 0.5, activation: "gelu_tanh" }),
  dense(8, 128, 20, 9, { bias: true }),
  dense(9, 5, 9, 11, { lda: 20, ldc: 30, bias: true }),
  // Batch items stacked like rows of one matrix (folded into M), and broadcast A.
  dense(10, 6, 24, 16, { batch: 3, aBatchStride: 6 * 16, cBatchStride: 6 * 24 }),
  dense(11, 6, 24, 16, { batch: 3, aBatchStride: 0, cBatchStride: 6 * 24 + 5 }),
  // Attention-like "rows" products: per-item B, and B broadcast.
  dense(12, 9, 20, 8, {
    batch: 3,
    aBatchStride: 9 * 8,
    cBatchStride: 9 * 20,
    b: { layout: "rows", ldb: 20, batchStride: 8 * 20 },
    alpha: 0.125,
  }),
  dense(13, 9, 11, 8, {
    batch: 2,
    lda: 10,
    aBatchStride: 100,
    ldc: 12,
    cBatchStride: 120,
    b: { layout: "rows", ldb: 15, batchStride: 0 },
  }),
  // Long K.
  dense(14, 13, 10, 2310, { bias: true, alpha: 0.25, activation: "gelu" }),
  dense(15, 5, 7, 1603, {
    batch: 2,
    aBatchStride: 5 * 1603,
    cBatchStride: 40,
    b: { layout: "rows", ldb: 9, batchStride: 1603 * 9 },
  }),
  ...randomCases(60, 7),
];

/** A GEMM case's operands as laid out in memory. */
interface GemmProblem extends Problem {
  a: Float32Array;
  /** B's memory: row-major rows at their strides, or the packed weight. */
  b: Float32Array;
  bias: Float32Array;
}

/** Elements from the first to one past the last of `count` matrices of `rows` x `cols` at these strides. */
function extent(count: number, batchStride: number, rows: number, cols: number, ld: number): number {
  return rows === 0 || cols === 0 ? 0 : (count - 1) * batchStride + (rows - 1) * ld + cols;
}

/** The `rows` x `cols` matrix at `offset` in `mem`, rows `ld` apart, times `scale`, row-major. */
function matrix(
  mem: Float32Array,
  offset: number,
  rows: number,
  cols: number,
  ld: number,
  scale = 1,
): number[] {
  return Array.from(
    { length: rows * cols },
    (_, j) => scale * mem[offset + Math.floor(j / cols) * ld + j % cols],
  );
}

const randomArray = (n: number, rand: () => number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);

/** The GEMM family. */
export const GEMM: Family<GemmCase, GemmProblem> = {
  name: "gemm",
  cases: GEMM_CASES,
  defaults: { threads: [1, 2, 3, 4], tol: 1e-4 },
  label({ spec: s, transposed }) {
    const b = s.b.layout === "packed"
      ? `packed${transposed ? "ᵀ" : ""}`
      : `rows ldb ${s.b.ldb} sb ${s.b.batchStride}`;
    return `${s.batch}x ${s.M}x${s.N}x${s.K} lda ${s.lda} sa ${s.aBatchStride} ${b} ldc ${s.ldc} sc ${s.cBatchStride}` +
      `${s.bias ? " bias" : ""}${s.alpha === undefined ? "" : ` alpha ${s.alpha}`} ${s.activation}`;
  },
  problem({ spec: s, transposed, seed }, tol) {
    const rand = rng(seed);
    const { batch, M, N, K } = s;
    const a = randomArray(Math.max(extent(batch, s.aBatchStride, M, K, s.lda), 1), rand);
    // B's memory, and item i's B as `dense` takes it: w [K, N], or [N, K] when transposed.
    const rowsB = s.b.layout === "rows" ? s.b : undefined;
    const w = rowsB ? undefined : randomArray(K * N, rand);
    const b = rowsB
      ? randomArray(Math.max(extent(batch, rowsB.batchStride, K, N, rowsB.ldb), 1), rand)
      : packB(w!, K, N, transposed);
    const bOf = (i: number) => rowsB ? matrix(b, i * rowsB.batchStride, K, N, rowsB.ldb) : Array.from(w!);
    const packedT = !rowsB && transposed;
    const bias = randomArray(N, rand);
    const cLen = extent(batch, s.cBatchStride, M, N, s.ldc);
    const want = new Float32Array(cLen + 2 * MARGIN).fill(NaN);
    const tolerance = new Float64Array(want.length);
    for (let i = 0; i < batch; i++) {
      const x = matrix(a, i * s.aBatchStride, M, K, s.lda, s.alpha);
      const operands = [t([M, K], x), t(packedT ? [N, K] : [K, N], bOf(i))];
      if (s.bias) operands.push(t([N], Array.from(bias)));
      const y =
        oracle("dense", operands, { transpose_b: bool(packedT), activation: enumValue(s.activation) }).data;
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          const at = MARGIN + i * s.cBatchStride + m * s.ldc + n;
          want[at] = y[m * N + n];
          tolerance[at] = tol * Math.max(1, Math.abs(want[at]));
        }
      }
    }
    return { want, tolerance, a, b, bias };
  },
  wasm(c, _p, target) {
    const kernel = gemmKernel(c.spec, target);
    return [{
      variant: "",
      kernels: [kernel],
      run(h, p, nt) {
        const last = nt % 3;
        const operands = c.spec.bias ? [p.a, p.b, p.bias] : [p.a, p.b];
        const args = operands.map((x, i) => i === last ? h.putAtEnd(x) : h.put(x));
        const image = h.alloc(p.want.length);
        h.run(kernel.name, [...args, image + 4 * MARGIN], nt);
        return h.read(image, p.want.length);
      },
    }];
  },
};
