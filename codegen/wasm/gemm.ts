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
import { fma, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import { f32Lit, f32x4 } from "./math.ts";

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

/** The math.ts helper (a `(param v128) (result v128)` function) for each activation. */
const ACTIVATION_HELPERS = { gelu: "gelu_f32x4", gelu_tanh: "gelu_tanh_f32x4", tanh: "tanh_f32x4" } as const;

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
  const name = kernelName(p, target);
  const params = p.bias ? ["a", "b", "bias", "c"] : ["a", "b", "c"];
  const wat = [
    `(func $${name} (export "${name}")`,
    `  ${[...params, "tid", "nt"].map((q) => `(param $${q} i32)`).join(" ")}`,
    ...indent(new GemmWriter(p, chooseTile(p.M, target), target).body()),
    `)`,
  ].join("\n");
  return { name, params, wat, uses: p.helper ? [p.helper] : [] };
}

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
  helper?: string;
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
    helper: s.activation === "none" ? undefined : ACTIVATION_HELPERS[s.activation],
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
  if (p.helper) parts.push(p.helper.replace("_f32x4", ""));
  if (target.relaxedSimd) parts.push("fma");
  return parts.join("_");
}

/** A tile counter: which batch item (`bi`), column panel (`jn`) or row tile (`im`), of `size`. */
interface Dim {
  name: "bi" | "jn" | "im";
  size: number;
}

/** Emits the body of one kernel: locals, the thread's tile loop and the tile variants. */
class GemmWriter {
  private readonly cols: number;
  private readonly nTiles: number;
  private readonly mTiles: number;
  /** Row tiles `0 .. fullRowTiles - 1` have tile.rows rows, the others `shortRows`. */
  private readonly fullRowTiles: number;
  private readonly shortRows: number;
  /** The tile counters in loop order (outermost first), only those with more than one value. */
  private readonly dims: Dim[];

  constructor(private readonly p: Plan, private readonly tile: Tile, private readonly target: KernelTarget) {
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
    const bi: Dim = { name: "bi", size: p.batch };
    const jn: Dim = { name: "jn", size: this.nTiles };
    const im: Dim = { name: "im", size: this.mTiles };
    // A packed B is shared by the batch: finish a panel for every batch item before the next.
    this.dims = (p.packed ? [jn, bi, im] : [bi, jn, im]).filter((d) => d.size > 1);
  }

  body(): string[] {
    const { p, tile, cols } = this;
    const total = p.batch * this.mTiles * this.nTiles;
    const locals = ["start", "end", ...this.dims.map((d) => d.name), "pa", "pb", "pc", "kend"];
    if (p.bias) locals.push("pbias");
    const vectors = ["x"];
    if (tile.rows > 1 || p.bias) { for (let v = 0; v < tile.vecs; v++) vectors.push(`b${v}`); }
    for (let r = 0; r < tile.rows; r++) for (let v = 0; v < tile.vecs; v++) vectors.push(`c${r}_${v}`);
    return [
      locals.map((l) => `(local $${l} i32)`).join(" "),
      vectors.map((l) => `(local $${l} v128)`).join(" "),
      `;; ${total} tiles of up to ${tile.rows}x${cols}: ${p.batch} batch x ${this.nTiles} column x ${this.mTiles} row tiles, split between threads`,
      ...threadRange(total).split("\n").map((l) => l.trim()),
      `(if (i32.ge_u (local.get $start) (local.get $end)) (then (return)))`,
      ...this.dims.map((d, i) => {
        const inner = this.dims.slice(i + 1).reduce((n, e) => n * e.size, 1);
        let v = inner > 1 ? `(i32.div_u (local.get $start) (i32.const ${inner}))` : `(local.get $start)`;
        if (i > 0) v = `(i32.rem_u ${v} (i32.const ${d.size}))`;
        return `(local.set $${d.name} ${v})`;
      }),
      `(loop $tiles`,
      ...indent([
        `(local.set $pa ${this.address("a", [["bi", p.sa], ["im", tile.rows * p.lda]])})`,
        `(local.set $pb ${
          this.address("b", p.packed ? [["jn", cols * p.K]] : [["bi", p.sb], ["jn", cols]])
        })`,
        `(local.set $pc ${this.address("c", [["bi", p.sc], ["im", tile.rows * p.ldc], ["jn", cols]])})`,
        ...(p.bias ? [`(local.set $pbias ${this.address("bias", [["jn", cols]])})`] : []),
        ...this.columnTiles((n) => this.rowTiles((m) => this.tileCode(m, n))),
        ...(this.dims.length ? this.advance(this.dims.length - 1) : []),
        `(local.set $start (i32.add (local.get $start) (i32.const 1)))`,
        `(br_if $tiles (i32.lt_u (local.get $start) (local.get $end)))`,
      ]),
      `)`,
    ];
  }

  /** The byte address `base` plus `counter * elements` f32 for each active counter. */
  private address(base: string, terms: [Dim["name"], number][]): string {
    let e = `(local.get $${base})`;
    for (const [name, elements] of terms) {
      if (elements === 0 || !this.dims.some((d) => d.name === name)) continue;
      e = `(i32.add ${e} (i32.mul (local.get $${name}) (i32.const ${4 * elements})))`;
    }
    return e;
  }

  /** Moves counter `i` to the next tile and, when it wraps, those outside it. */
  private advance(i: number): string[] {
    const d = this.dims[i];
    const inc = `(local.set $${d.name} (i32.add (local.get $${d.name}) (i32.const 1)))`;
    if (i === 0) return [inc];
    return [
      inc,
      `(if (i32.eq (local.get $${d.name}) (i32.const ${d.size})) (then`,
      ...indent([`(local.set $${d.name} (i32.const 0))`, ...this.advance(i - 1)]),
      `))`,
    ];
  }

  /** `code(cols)` for the column tile $jn: all are `cols` wide but a ragged last one. */
  private columnTiles(code: (cols: number) => string[]): string[] {
    const { cols, nTiles } = this;
    const edge = this.p.N % cols;
    if (edge === 0) return code(cols);
    if (nTiles === 1) return code(edge);
    return ifElse(`(i32.eq (local.get $jn) (i32.const ${nTiles - 1}))`, code(edge), code(cols));
  }

  /**
   * `code(rows)` for the row tile $im: full tiles, then short ones, whose $pa and $pc (computed
   * for full tiles) move back by the rows the short tiles before them lack.
   */
  private rowTiles(code: (rows: number) => string[]): string[] {
    const { p, fullRowTiles: full, shortRows: short, mTiles } = this;
    if (full === mTiles) return code(this.tile.rows);
    const back = (ptr: string, ld: number) =>
      `(local.set $${ptr} (i32.sub (local.get $${ptr}) (i32.mul (i32.sub (local.get $im) (i32.const ${full})) (i32.const ${
        4 * ld * (this.tile.rows - short)
      }))))`;
    const shorts = [...(mTiles - full > 1 ? [back("pa", p.lda), back("pc", p.ldc)] : []), ...code(short)];
    if (full === 0) return shorts;
    return ifElse(`(i32.ge_u (local.get $im) (i32.const ${full}))`, shorts, code(this.tile.rows));
  }

  /** One tile of `rows` rows and `cols` columns at $pa, $pb, $pc. */
  private tileCode(rows: number, cols: number): string[] {
    const { p } = this;
    const vecs = Math.ceil(cols / 4);
    const full = Math.floor(p.K / UNROLL) * UNROLL;
    const code = [`;; tile ${rows}x${cols}`];
    for (let r = 0; r < rows; r++) {
      for (let v = 0; v < vecs; v++) code.push(`(local.set $c${r}_${v} (v128.const i32x4 0 0 0 0))`);
    }
    if (full > 0) {
      code.push(
        `(local.set $kend (i32.add (local.get $pa) (i32.const ${4 * full})))`,
        `(loop $k`,
        ...indent([
          ...Array.from({ length: UNROLL }, (_, k) => this.kStep(rows, cols, k)).flat(),
          `(local.set $pa (i32.add (local.get $pa) (i32.const ${4 * UNROLL})))`,
          `(local.set $pb (i32.add (local.get $pb) (i32.const ${4 * UNROLL * p.ldb})))`,
          `(br_if $k (i32.ne (local.get $pa) (local.get $kend)))`,
        ]),
        `)`,
      );
    }
    for (let k = 0; k < p.K - full; k++) code.push(...this.kStep(rows, cols, k));
    return [...code, ...this.epilogue(rows, cols)];
  }

  /** Step `k` (0 <= k < UNROLL, from $pa and $pb) of the K loop. */
  private kStep(rows: number, cols: number, k: number): string[] {
    const { p, target } = this;
    const vecs = Math.ceil(cols / 4);
    const code = [`;; k + ${k}`];
    const splat = (r: number) => `(v128.load32_splat${offset(4 * (r * p.lda + k))} (local.get $pa))`;
    const b = (v: number) => {
      if (p.packed) {
        return load(4, 4 * ((v >> 1) * p.K * PACK_WIDTH + k * PACK_WIDTH + 4 * (v & 1)), "(local.get $pb)");
      }
      return load(Math.min(4, cols - 4 * v), 4 * (k * p.ldb + 4 * v), "(local.get $pb)");
    };
    const acc = (r: number, v: number, bv: string) =>
      `(local.set $c${r}_${v} ${fma(target, "(local.get $x)", bv, `(local.get $c${r}_${v})`)})`;
    if (rows === 1) {
      // Each B vector is used once: load it inside its multiply-add.
      code.push(`(local.set $x ${splat(0)})`);
      for (let v = 0; v < vecs; v++) code.push(acc(0, v, b(v)));
      return code;
    }
    for (let v = 0; v < vecs; v++) code.push(`(local.set $b${v} ${b(v)})`);
    for (let r = 0; r < rows; r++) {
      code.push(`(local.set $x ${splat(r)})`);
      for (let v = 0; v < vecs; v++) code.push(acc(r, v, `(local.get $b${v})`));
    }
    return code;
  }

  /** Scales, adds the bias, applies the activation and stores the tile's accumulators. */
  private epilogue(rows: number, cols: number): string[] {
    const { p } = this;
    const vecs = Math.ceil(cols / 4);
    const lanes = (v: number) => Math.min(4, cols - 4 * v);
    const code: string[] = [];
    if (p.bias) {
      for (let v = 0; v < vecs; v++) {
        code.push(`(local.set $b${v} ${load(lanes(v), 16 * v, "(local.get $pbias)")})`);
      }
    }
    const alpha = f32x4(p.alpha);
    for (let r = 0; r < rows; r++) {
      for (let v = 0; v < vecs; v++) {
        let e = `(local.get $c${r}_${v})`;
        if (p.alpha !== 1) e = `(f32x4.mul ${e} ${alpha})`;
        if (p.bias) e = `(f32x4.add ${e} (local.get $b${v}))`;
        if (p.helper) e = `(call $${p.helper} ${e})`;
        code.push(...store(lanes(v), 4 * (r * p.ldc + 4 * v), "(local.get $pc)", e));
      }
    }
    return code;
  }
}

/** A memarg offset, omitted when 0. */
function offset(bytes: number): string {
  return bytes ? ` offset=${bytes}` : "";
}

/** A v128 of the `lanes` (1-4) f32 at `addr + off`, zeros above them. */
function load(lanes: number, off: number, addr: string): string {
  switch (lanes) {
    case 1:
      return `(v128.load32_zero${offset(off)} ${addr})`;
    case 2:
      return `(v128.load64_zero${offset(off)} ${addr})`;
    case 3:
      return `(v128.load32_lane${offset(off + 8)} 2 ${addr} (v128.load64_zero${offset(off)} ${addr}))`;
    default:
      return `(v128.load${offset(off)} ${addr})`;
  }
}

/** Stores the low `lanes` (1-4) f32 of `value` at `addr + off`. */
function store(lanes: number, off: number, addr: string, value: string): string[] {
  switch (lanes) {
    case 1:
      return [`(v128.store32_lane${offset(off)} 0 ${addr} ${value})`];
    case 2:
      return [`(v128.store64_lane${offset(off)} 0 ${addr} ${value})`];
    case 3:
      return [
        `(local.set $x ${value})`,
        `(v128.store64_lane${offset(off)} 0 ${addr} (local.get $x))`,
        `(v128.store32_lane${offset(off + 8)} 2 ${addr} (local.get $x))`,
      ];
    default:
      return [`(v128.store${offset(off)} ${addr} ${value})`];
  }
}

/** `(if cond (then ...) (else ...))` around lines of code. */
function ifElse(cond: string, then: string[], otherwise: string[]): string[] {
  return [`(if ${cond}`, `  (then`, ...indent(then, 2), `  )`, `  (else`, ...indent(otherwise, 2), `  ))`];
}

function indent(lines: string[], depth = 1): string[] {
  const pad = "  ".repeat(depth);
  return lines.map((l) => pad + l);
}
