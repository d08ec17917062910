/**
 * GEMM kernels in wasm SIMD128: `C = act(alpha · A·B + bias)` over a batch of matrices, fully
 * specialized to shapes, strides and alpha.
 *
 * C is cut into micro-tiles of `rows` x `4 · vecs` elements that live in registers (f32x4
 * accumulators) for the whole K loop: each K step loads the tile's B row as `vecs` vectors,
 * broadcasts one A element per row (`v128.load32_splat`) and does `rows · vecs` multiply-adds.
 * All addressing inside a tile is one A and one B pointer plus constant offsets, and K is
 * unrolled. Tiles are visited panel-major (every row tile of one column panel, then the next
 * panel) so a panel of B stays in L1 while A streams from L2; threads take contiguous ranges of
 * tiles. Ragged edges get their own straight-line tiles: fewer rows, and partial loads and stores
 * of the last vector, so nothing outside A, the "rows" B or C's `[M, N]` region is read or written.
 */

import { PACK_WIDTH } from "../pack.ts";
import { interleave } from "./hoist.ts";
import { kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import { type Activation, activationOf } from "./qtile.ts";
import type { Code, I32, Instr, Local, V128 } from "./wat.ts";
import { br_if, comment, f32Lit, f32x4, i32, i32x4, if_, local, loop, madd, return_, v128 } from "./wat.ts";

/** A matrix product `C = act(alpha · A·B + bias)` for each of `batch` items. */
export interface GemmSpec {
  /** Number of products (>= 1). */
  batch: number;
  /** Rows of A and C. */
  M: number;
  /** Columns of B and C. */
  N: number;
  /** Columns of A, rows of B. */
  K: number;
  /** A is row-major [M, K] per batch item, row stride lda elements (>= K). */
  lda: number;
  /** Elements between A's batch items (0 = same A for every item). */
  aBatchStride: number;
  /** B: "packed" = packB's layout (one matrix, shared by every batch item); "rows" = row-major [K, N] with row stride ldb and a batch stride (0 = broadcast). */
  b: { layout: "packed" } | { layout: "rows"; ldb: number; batchStride: number };
  /** C is row-major [M, N] per batch item with row stride ldc (>= N) elements. */
  ldc: number;
  /** Elements between C's batch items. */
  cBatchStride: number;
  /** A bias [N] is added (after alpha scaling). */
  bias: boolean;
  /** Scale applied to A·B before the bias; default 1. */
  alpha?: number;
  /** Applied after the bias: "none" | "gelu" (erf) | "gelu_tanh" | "tanh". */
  activation: "none" | "gelu" | "gelu_tanh" | "tanh";
}

/**
 * Kernel-name suffixes of the activations. The epilogue applies one as the int8 kernels' does
 * (qtile.ts `activationOf`): math.ts's snippet inline, with FMA on relaxed SIMD, 4 outputs at a
 * time interleaved, its constants in locals set once per call; in place of a call to the helper
 * without FMA, one vector at a time (GELU 24 -> about 6 ns a vector, AMD EPYC).
 */
const ACTIVATION_NAMES = { gelu: "gelu", gelu_tanh: "gelu_tanh", tanh: "tanh" } as const;

/** K steps per iteration of the inner loop. */
const UNROLL = 4;

/** A micro-tile: `rows` rows by `vecs` f32x4 vectors of columns, accumulated in registers. */
interface Tile {
  rows: number;
  vecs: number;
}

/**
 * The tile for a product with M rows. V8 gives wasm SIMD 15 registers (xmm15 is its scratch):
 * with FMA, 6x8 takes 12 accumulators, 2 B vectors and the A splat; a separate mul and add needs
 * one more temporary, so 5x8. Both have enough accumulators to hide the FMA latency. One or two
 * rows get wider tiles for the same reason.
 */
function chooseTile(M: number, target: KernelTarget): Tile {
  if (M === 1) return { rows: 1, vecs: 8 };
  if (M === 2) return { rows: 2, vecs: 4 };
  return { rows: target.relaxedSimd ? 6 : 5, vecs: 2 };
}

/** The kernel computing C = act(alpha * A·B + bias) for every batch item. Params: a, b, [bias,] c (byte addresses), then tid, nt. */
export function gemmKernel(spec: GemmSpec, target: KernelTarget): WasmKernel {
  const p = plan(spec);
  const w = new GemmWriter(p, chooseTile(p.M, target), target, activationOf(spec.activation, target));
  return kernel({
    name: kernelName(p, target),
    params: p.bias ? [A, B, BIAS, C] : [A, B, C],
    comment: w.summary(),
    locals: w.locals(),
    body: w.body(),
  });
}

// The params, and the locals every GEMM kernel has: the thread's tile range, the tile
// counters (batch item, column panel, row tile; those of one value are not declared), the
// tile's A, B, C and bias pointers, where its K loop ends, and a v128 temporary (the A splat).
const [A, B, BIAS, C] = ["a", "b", "bias", "c"].map(local.i32);
const [start, end, bi, jn, im] = ["start", "end", "bi", "jn", "im"].map(local.i32);
const [pa, pb, pc, kend, pbias] = ["pa", "pb", "pc", "kend", "pbias"].map(local.i32);
const x = local.v128("x");

/** The spec with defaults filled in, batch folded into M where the strides allow, B flattened. */
interface Plan {
  batch: number;
  M: number;
  N: number;
  K: number;
  lda: number;
  sa: number;
  packed: boolean;
  /** Elements between rows k and k + 1 of B (PACK_WIDTH when packed). */
  ldb: number;
  sb: number;
  ldc: number;
  sc: number;
  bias: boolean;
  alpha: number;
  /** The activation's name in kernel names, if any. */
  activation?: string;
}

function plan(s: GemmSpec): Plan {
  const packed = s.b.layout === "packed";
  const ldb = s.b.layout === "rows" ? s.b.ldb : PACK_WIDTH;
  const sb = s.b.layout === "rows" ? s.b.batchStride : 0;
  const { batch, M, N, K, lda, aBatchStride, ldc, cBatchStride } = s;
  const sizes = { batch, M, N, K, lda, aBatchStride, ldb, sb, ldc, cBatchStride };
  for (const [k, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < (k === "batch" ? 1 : 0)) throw new Error(`gemm: bad ${k} ${v}`);
  }
  if (s.lda < s.K || s.ldc < s.N || (!packed && ldb < s.N)) {
    throw new Error(`gemm: a row stride is below its row`);
  }
  const p: Plan = {
    batch: s.batch,
    M: s.M,
    N: s.N,
    K: s.K,
    lda: s.lda,
    sa: s.aBatchStride,
    packed,
    ldb,
    sb,
    ldc: s.ldc,
    sc: s.cBatchStride,
    bias: s.bias,
    alpha: Math.fround(s.alpha ?? 1),
    activation: s.activation === "none" ? undefined : ACTIVATION_NAMES[s.activation],
  };
  // Batch items stacked exactly like rows of one taller matrix, against one B, are that matrix.
  if (p.batch > 1 && sb === 0 && p.sa === p.M * p.lda && p.sc === p.M * p.ldc) {
    return { ...p, M: p.batch * p.M, batch: 1, sa: 0, sc: 0 };
  }
  return p.batch === 1 ? { ...p, sa: 0, sb: 0, sc: 0 } : p;
}

/** E.g. `gemm_b1_m128_n768_k768_lda768_packed_ldc768_bias_gelu_fma`; batch strides only when batch > 1. */
function kernelName(p: Plan, target: KernelTarget): string {
  const batched = p.batch > 1;
  const parts = [`gemm_b${p.batch}_m${p.M}_n${p.N}_k${p.K}_lda${p.lda}`];
  if (batched) parts.push(`sa${p.sa}`);
  parts.push(p.packed ? "packed" : `rows_ldb${p.ldb}`);
  if (batched && !p.packed) parts.push(`sb${p.sb}`);
  parts.push(`ldc${p.ldc}`);
  if (batched) parts.push(`sc${p.sc}`);
  if (p.bias) parts.push("bias");
  if (p.alpha !== 1) parts.push(`alpha${f32Lit(p.alpha)}`);
  if (p.activation) parts.push(p.activation);
  if (target.relaxedSimd) parts.push("fma");
  return parts.join("_");
}

/** A tile counter: which batch item (`bi`), column panel (`jn`) or row tile (`im`), of `size`. */
interface Dim {
  local: Local<"i32">;
  size: number;
}

/** Emits one kernel: its locals, the thread's tile loop and the tile variants. */
class GemmWriter {
  private readonly cols: number;
  private readonly nTiles: number;
  private readonly mTiles: number;
  /** Row tiles `0 .. fullRowTiles - 1` have tile.rows rows, the others `shortRows`. */
  private readonly fullRowTiles: number;
  private readonly shortRows: number;
  /** The tile counters in loop order (outermost first), only those with more than one value. */
  private readonly dims: Dim[];
  /** The tile's B vectors (or bias vectors) and accumulators `acc[row][vector]`. */
  private readonly bv: Local<"v128">[];
  private readonly acc: Local<"v128">[][];

  constructor(
    private readonly p: Plan,
    private readonly tile: Tile,
    private readonly target: KernelTarget,
    private readonly act: Activation | undefined,
  ) {
    this.cols = 4 * tile.vecs;
    this.nTiles = Math.ceil(p.N / this.cols);
    // Rows that full tiles leave over go to `short` tiles one row short where M allows (e.g.
    // 128 = 18·6 + 4·5), not to one thin tile (128 = 21·6 + 2) too thin to hide the FMA latency.
    const R = tile.rows;
    const short = (R - (p.M % R)) % R;
    const mixed = short > 0 && short * (R - 1) <= p.M;
    this.fullRowTiles = mixed ? (p.M - short * (R - 1)) / R : Math.floor(p.M / R);
    this.shortRows = mixed ? R - 1 : p.M % R;
    this.mTiles = mixed ? this.fullRowTiles + short : Math.ceil(p.M / R);
    const batch = { local: bi, size: p.batch }, panel = { local: jn, size: this.nTiles };
    const rowTile = { local: im, size: this.mTiles };
    // A packed B is shared by the batch: finish a panel for every batch item before the next.
    this.dims = (p.packed ? [panel, batch, rowTile] : [batch, panel, rowTile]).filter((d) => d.size > 1);
    this.bv = Array.from({ length: tile.vecs }, (_, v) => local.v128(`b${v}`));
    this.acc = Array.from(
      { length: tile.rows },
      (_, r) => Array.from({ length: tile.vecs }, (_, v) => local.v128(`c${r}_${v}`)),
    );
  }

  private get total(): number {
    return this.p.batch * this.mTiles * this.nTiles;
  }

  /** What the kernel's tiles are. */
  summary(): string {
    const { p, tile, cols } = this;
    return `${this.total} tiles of up to ${tile.rows}x${cols}: ${p.batch} batch x ${this.nTiles} column x ${this.mTiles} row tiles, split between threads`;
  }

  locals(): Local[] {
    const { p, tile } = this;
    const usesB = tile.rows > 1 || p.bias; // one row loads B inside its multiply-adds
    const pointers = [pa, pb, pc, kend, ...(p.bias ? [pbias] : [])];
    return [
      start,
      end,
      ...this.dims.map((d) => d.local),
      ...pointers,
      x,
      ...(usesB ? this.bv : []),
      ...this.acc.flat(),
      ...(this.act?.locals ?? []),
    ];
  }

  body(): Code {
    const { p, tile, cols } = this;
    return [
      threadRange(this.total, start, end),
      if_(i32.ge_u(local.get(start), local.get(end)), return_()),
      this.act?.setup,
      this.dims.map((d, i) => {
        const inner = this.dims.slice(i + 1).reduce((n, e) => n * e.size, 1);
        let v = inner > 1 ? i32.div_u(local.get(start), i32.const(inner)) : local.get(start);
        if (i > 0) v = i32.rem_u(v, i32.const(d.size));
        return local.set(d.local, v);
      }),
      loop(
        "tiles",
        local.set(pa, this.address(A, [[bi, p.sa], [im, tile.rows * p.lda]])),
        local.set(pb, this.address(B, p.packed ? [[jn, cols * p.K]] : [[bi, p.sb], [jn, cols]])),
        local.set(pc, this.address(C, [[bi, p.sc], [im, tile.rows * p.ldc], [jn, cols]])),
        p.bias && local.set(pbias, this.address(BIAS, [[jn, cols]])),
        this.columnTiles((n) => this.rowTiles((m) => this.tileCode(m, n))),
        this.dims.length > 0 && this.advance(this.dims.length - 1),
        local.set(start, i32.add(local.get(start), i32.const(1))),
        br_if("tiles", i32.lt_u(local.get(start), local.get(end))),
      ),
    ];
  }

  /** The byte address `base` plus `counter * elements` f32 for each active counter. */
  private address(base: Local<"i32">, terms: [Local<"i32">, number][]): I32 {
    let e = local.get(base);
    for (const [counter, elements] of terms) {
      if (elements === 0 || !this.dims.some((d) => d.local === counter)) continue;
      e = i32.add(e, i32.mul(local.get(counter), i32.const(4 * elements)));
    }
    return e;
  }

  /** Moves counter `i` to the next tile and, when it wraps, those outside it. */
  private advance(i: number): Instr[] {
    const d = this.dims[i].local;
    const inc = local.set(d, i32.add(local.get(d), i32.const(1)));
    if (i === 0) return [inc];
    return [
      inc,
      if_(i32.eq(local.get(d), i32.const(this.dims[i].size)), [
        local.set(d, i32.const(0)),
        this.advance(i - 1),
      ]),
    ];
  }

  /** `code(cols)` for the column tile $jn: all are `cols` wide but a ragged last one. */
  private columnTiles(code: (cols: number) => Code): Code {
    const { cols, nTiles } = this;
    const edge = this.p.N % cols;
    if (edge === 0) return code(cols);
    if (nTiles === 1) return code(edge);
    return if_(i32.eq(local.get(jn), i32.const(nTiles - 1)), code(edge), code(cols));
  }

  /**
   * `code(rows)` for the row tile $im: full tiles, then short ones, whose $pa and $pc (computed
   * for full tiles) move back by the rows the short tiles before them lack.
   */
  private rowTiles(code: (rows: number) => Code): Code {
    const { p, fullRowTiles: full, shortRows: short, mTiles } = this;
    if (full === mTiles) return code(this.tile.rows);
    const back = (ptr: Local<"i32">, ld: number) =>
      local.set(
        ptr,
        i32.sub(
          local.get(ptr),
          i32.mul(i32.sub(local.get(im), i32.const(full)), i32.const(4 * ld * (this.tile.rows - short))),
        ),
      );
    const shorts = [mTiles - full > 1 && [back(pa, p.lda), back(pc, p.ldc)], code(short)];
    if (full === 0) return shorts;
    return if_(i32.ge_u(local.get(im), i32.const(full)), shorts, code(this.tile.rows));
  }

  /** One tile of `rows` rows and `cols` columns at $pa, $pb, $pc. */
  private tileCode(rows: number, cols: number): Code {
    const { p } = this;
    const vecs = Math.ceil(cols / 4);
    const full = Math.floor(p.K / UNROLL) * UNROLL;
    return [
      comment(`tile ${rows}x${cols}`),
      this.acc.slice(0, rows).map((row) => row.slice(0, vecs).map((c) => local.set(c, i32x4.const(0)))),
      full > 0 && [
        local.set(kend, i32.add(local.get(pa), i32.const(4 * full))),
        loop(
          "k",
          Array.from({ length: UNROLL }, (_, k) => this.kStep(rows, cols, k)),
          local.set(pa, i32.add(local.get(pa), i32.const(4 * UNROLL))),
          local.set(pb, i32.add(local.get(pb), i32.const(4 * UNROLL * p.ldb))),
          br_if("k", i32.ne(local.get(pa), local.get(kend))),
        ),
      ],
      Array.from({ length: p.K - full }, (_, k) => this.kStep(rows, cols, k)),
      this.epilogue(rows, cols),
    ];
  }

  /** Step `k` (0 <= k < UNROLL, from $pa and $pb) of the K loop. */
  private kStep(rows: number, cols: number, k: number): Code {
    const { p, target } = this;
    const vecs = Math.ceil(cols / 4);
    const [acc, bv] = [this.acc.slice(0, rows), this.bv.slice(0, vecs)];
    const splat = (r: number) => v128.load32_splat(local.get(pa), { offset: 4 * (r * p.lda + k) });
    const b = (v: number) =>
      p.packed
        ? load(4, 4 * ((v >> 1) * p.K * PACK_WIDTH + k * PACK_WIDTH + 4 * (v & 1)), local.get(pb))
        : load(Math.min(4, cols - 4 * v), 4 * (k * p.ldb + 4 * v), local.get(pb));
    const madds = (r: number, bvec: (v: number) => V128) =>
      acc[r].slice(0, vecs).map((c, v) => local.set(c, madd(target, local.get(x), bvec(v), local.get(c))));
    // one row: each B vector is used once, so it is loaded inside its multiply-add
    if (rows === 1) return [comment(`k + ${k}`), local.set(x, splat(0)), madds(0, b)];
    return [
      comment(`k + ${k}`),
      bv.map((bvec, v) => local.set(bvec, b(v))),
      acc.map((_, r) => [local.set(x, splat(r)), madds(r, (v) => local.get(bv[v]))]),
    ];
  }

  /**
   * Scales, adds the bias, applies the activation (4 outputs at a time, their snippets
   * interleaved) and stores the tile's accumulators.
   */
  private epilogue(rows: number, cols: number): Code {
    const { p, act } = this;
    const vecs = Math.ceil(cols / 4);
    const [acc, bv] = [this.acc.slice(0, rows), this.bv.slice(0, vecs)];
    const lanes = (v: number) => Math.min(4, cols - 4 * v);
    const result = (c: Local<"v128">, v: number) => {
      let e = local.get(c);
      if (p.alpha !== 1) e = f32x4.mul(e, f32x4.const(p.alpha));
      if (p.bias) e = f32x4.add(e, local.get(bv[v]));
      return e;
    };
    const outputs = acc.flatMap((row, r) =>
      row.slice(0, vecs).map((c, v) => ({ c, v, offset: 4 * (r * p.ldc + 4 * v) }))
    );
    const stores = (): Code => {
      if (!act) return outputs.map((o) => store(lanes(o.v), o.offset, local.get(pc), result(o.c, o.v)));
      const n = act.inputs.length;
      return Array.from({ length: Math.ceil(outputs.length / n) }, (_, g) => {
        const group = outputs.slice(g * n, (g + 1) * n);
        const snippets = group.map((_, slot) => act.apply(slot));
        return [
          group.map((o, slot) => local.set(act.inputs[slot], result(o.c, o.v))),
          interleave(snippets),
          group.map((o, slot) => store(lanes(o.v), o.offset, local.get(pc), snippets[slot].result)),
        ];
      });
    };
    return [
      p.bias && bv.map((b, v) => local.set(b, load(lanes(v), 16 * v, local.get(pbias)))),
      stores(),
    ];
  }
}

/** A v128 of the `lanes` (1-4) f32 at `addr + offset`, zeros above them. */
function load(lanes: number, offset: number, addr: I32): V128 {
  switch (lanes) {
    case 1:
      return v128.load32_zero(addr, { offset });
    case 2:
      return v128.load64_zero(addr, { offset });
    case 3:
      return v128.load32_lane(2, addr, v128.load64_zero(addr, { offset }), { offset: offset + 8 });
    default:
      return v128.load(addr, { offset });
  }
}

/** Stores the low `lanes` (1-4) f32 of `value` at `addr + offset` (3 lanes go through $x). */
function store(lanes: number, offset: number, addr: I32, value: V128): Code {
  switch (lanes) {
    case 1:
      return v128.store32_lane(0, addr, value, { offset });
    case 2:
      return v128.store64_lane(0, addr, value, { offset });
    case 3:
      return [
        local.set(x, value),
        v128.store64_lane(0, addr, local.get(x), { offset }),
        v128.store32_lane(2, addr, local.get(x), { offset: offset + 8 }),
      ];
    default:
      return v128.store(addr, value, { offset });
  }
}
