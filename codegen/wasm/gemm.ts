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

/** A matrix product `C = act(alpha · A·B + bias)` for each of `batch` items. */
export interface GemmSpec {
  batch: number;
  M: number;
  N: number;
  K: number;
  /** A is row-major [M, K] per batch item, row stride lda elements (>= K); batch stride in elements (0 = same A for every item). */
  lda: number;
  aBatchStride: number;
  /** B: "packed" = packB's layout (one matrix, shared by every batch item); "rows" = row-major [K, N] with row stride ldb and a batch stride (0 = broadcast). */
  b: { layout: "packed" } | { layout: "rows"; ldb: number; batchStride: number };
  /** C is row-major [M, N] per batch item with row stride ldc, batch stride cBatchStride (elements). */
  ldc: number;
  cBatchStride: number;
  /** A bias [N] is added (after alpha scaling). */
  bias: boolean;
  /** Scale applied to A·B before the bias; default 1. */
  alpha?: number;
  /** Applied after the bias: "none" | "gelu" (erf) | "gelu_tanh" | "tanh". */
  activation: "none" | "gelu" | "gelu_tanh" | "tanh";
}

/** A micro-tile: `rows` rows by `vecs` f32x4 vectors of columns, accumulated in registers. */
export interface Tile {
  rows: number;
  vecs: number;
}

/** The math.ts helper (a `(param v128) (result v128)` function) for each activation. */
const ACTIVATION_HELPERS = { gelu: "gelu_f32x4", gelu_tanh: "gelu_tanh_f32x4", tanh: "tanh_f32x4" } as const;

/** K steps per iteration of the inner loop. */
const UNROLL = 4;

/** The spec with defaults filled in, batch folded into M where the strides allow, B flattened. */
interface Plan {
  batch: number;
  M: number;
  N: number;
  K: number;
  lda: number;
  sa: number;
  packed: boolean;
  ldb: number;
  sb: number;
  ldc: number;
  sc: number;
  bias: boolean;
  alpha: number;
  helper?: string;
}

/**
 * The tile for a product with M rows: 4 rows x 8 columns (8 accumulators, enough to hide the
 * FMA latency, and few enough registers that V8 spills none); one or two rows get wider tiles.
 */
function chooseTile(M: number): Tile {
  if (M === 1) return { rows: 1, vecs: 8 };
  if (M === 2) return { rows: 2, vecs: 4 };
  return { rows: 4, vecs: 2 };
}

/** The kernel computing C = act(alpha * A·B + bias) for every batch item. Params: a, b, [bias,] c (byte addresses), then tid, nt. */
export function gemmKernel(spec: GemmSpec, target: KernelTarget, tile?: Tile): WasmKernel {
  const p = plan(spec);
  const t = tile ?? chooseTile(p.M);
  if (p.packed && t.vecs % (PACK_WIDTH / 4) !== 0) throw new Error(`gemm: tile must span whole packed panels`);
  const name = kernelName(p, target) + (tile ? `_t${t.rows}x${4 * t.vecs}` : "");
  const params = p.bias ? ["a", "b", "bias", "c"] : ["a", "b", "c"];
  const wat = [
    `(func $${name} (export "${name}")`,
    `  ${[...params, "tid", "nt"].map((q) => `(param $${q} i32)`).join(" ")}`,
    ...new GemmWriter(p, t, target).body().map((l) => "  " + l),
    `)`,
  ].join("\n");
  return { name, params, wat, uses: p.helper ? [p.helper] : [] };
}

function plan(s: GemmSpec): Plan {
  const dims = { batch: s.batch, M: s.M, N: s.N, K: s.K, lda: s.lda, ldc: s.ldc };
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v < (k === "batch" ? 1 : 0)) throw new Error(`gemm: bad ${k} ${v}`);
  }
  const packed = s.b.layout === "packed";
  const ldb = s.b.layout === "rows" ? s.b.ldb : PACK_WIDTH;
  const sb = s.b.layout === "rows" ? s.b.batchStride : 0;
  if (s.lda < s.K || s.ldc < s.N || (!packed && ldb < s.N)) throw new Error(`gemm: a row stride is below its row`);
  const helper = s.activation === "none" ? undefined : ACTIVATION_HELPERS[s.activation];
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
    helper,
  };
  // Batch items stacked exactly like rows of one taller matrix, against one B, are that matrix.
  if (p.batch > 1 && sb === 0 && p.sa === p.M * p.lda && p.sc === p.M * p.ldc) {
    return { ...p, M: p.batch * p.M, batch: 1, sa: 0, sc: 0 };
  }
  return p.batch === 1 ? { ...p, sa: 0, sb: 0, sc: 0 } : p;
}

function kernelName(p: Plan, target: KernelTarget): string {
  const batched = p.batch > 1;
  const parts = [`gemm_b${p.batch}_m${p.M}_n${p.N}_k${p.K}_lda${p.lda}`];
  if (batched) parts.push(`sa${p.sa}`);
  parts.push(p.packed ? "packed" : `rows_ldb${p.ldb}`);
  if (batched && !p.packed) parts.push(`sb${p.sb}`);
  parts.push(`ldc${p.ldc}`);
  if (batched) parts.push(`sc${p.sc}`);
  if (p.bias) parts.push("bias");
  if (p.alpha !== 1) parts.push(`alpha${p.alpha}`);
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
  private readonly mTiles: number;
  private readonly nTiles: number;
  /** The tile counters in loop order (outermost first), only those with more than one value. */
  private readonly dims: Dim[];

  constructor(private readonly p: Plan, private readonly tile: Tile, private readonly target: KernelTarget) {
    this.mTiles = Math.ceil(p.M / tile.rows);
    this.nTiles = Math.ceil(p.N / this.cols);
    const bi: Dim = { name: "bi", size: p.batch };
    const jn: Dim = { name: "jn", size: this.nTiles };
    const im: Dim = { name: "im", size: this.mTiles };
    // A packed B is shared by the batch: finish a panel for every batch item before the next.
    this.dims = (p.packed ? [jn, bi, im] : [bi, jn, im]).filter((d) => d.size > 1);
  }

  /** Columns per tile. */
  private get cols(): number {
    return 4 * this.tile.vecs;
  }

  body(): string[] {
    const { p, tile } = this;
    const total = p.batch * this.mTiles * this.nTiles;
    const locals = ["start", "end", ...this.dims.map((d) => d.name), "pa", "pb", "pc", "kend"];
    if (p.bias) locals.push("pbias");
    const vectors = ["x"];
    if (tile.rows > 1 || p.bias) for (let v = 0; v < tile.vecs; v++) vectors.push(`b${v}`);
    for (let r = 0; r < tile.rows; r++) for (let v = 0; v < tile.vecs; v++) vectors.push(`c${r}_${v}`);
    return [
      locals.map((l) => `(local $${l} i32)`).join(" "),
      vectors.map((l) => `(local $${l} v128)`).join(" "),
      `;; ${total} tiles of ${tile.rows}x${this.cols} (batch ${p.batch} x ${this.mTiles} x ${this.nTiles}), split between threads`,
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
        `(local.set $pa ${this.address("a", [["bi", 4 * p.sa], ["im", 4 * tile.rows * p.lda]])})`,
        `(local.set $pb ${
          this.address("b", p.packed ? [["jn", 4 * this.cols * p.K]] : [["bi", 4 * p.sb], ["jn", 4 * this.cols]])
        })`,
        `(local.set $pc ${
          this.address("c", [["bi", 4 * p.sc], ["im", 4 * tile.rows * p.ldc], ["jn", 4 * this.cols]])
        })`,
        ...(p.bias ? [`(local.set $pbias ${this.address("bias", [["jn", 4 * this.cols]])})`] : []),
        ...this.dispatch("jn", this.nTiles, p.N % this.cols, (cols) =>
          this.dispatch("im", this.mTiles, p.M % tile.rows, (rows) => this.tileCode(rows, cols), tile.rows), this.cols),
        ...(this.dims.length ? this.advanceFor(this.dims.length - 1) : []),
        `(local.set $start (i32.add (local.get $start) (i32.const 1)))`,
        `(br_if $tiles (i32.lt_u (local.get $start) (local.get $end)))`,
      ]),
      `)`,
    ];
  }

  /** `base` plus `counter * bytes` for each active counter. */
  private address(base: string, terms: [Dim["name"], number][]): string {
    let e = `(local.get $${base})`;
    for (const [name, bytes] of terms) {
      if (bytes === 0 || !this.dims.some((d) => d.name === name)) continue;
      e = `(i32.add ${e} (i32.mul (local.get $${name}) (i32.const ${bytes})))`;
    }
    return e;
  }

  /** Moves the counters to the next tile: counter `i` and, when it wraps, those outside it. */
  private advanceFor(i: number): string[] {
    const d = this.dims[i];
    const inc = `(local.set $${d.name} (i32.add (local.get $${d.name}) (i32.const 1)))`;
    if (i === 0) return [inc];
    return [
      inc,
      `(if (i32.eq (local.get $${d.name}) (i32.const ${d.size})) (then`,
      ...indent([`(local.set $${d.name} (i32.const 0))`, ...this.advanceFor(i - 1)]),
      `))`,
    ];
  }

  /** The code for `size` tiles along counter `dim` whose last has `edge` elements (0 = full). */
  private dispatch(
    dim: Dim["name"],
    size: number,
    edge: number,
    code: (n: number) => string[],
    full: number,
  ): string[] {
    if (edge === 0) return code(full);
    if (size === 1) return code(edge);
    return [
      `(if (i32.eq (local.get $${dim}) (i32.const ${size - 1}))`,
      `  (then`,
      ...indent(code(edge), 2),
      `  )`,
      `  (else`,
      ...indent(code(full), 2),
      `  ))`,
    ];
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
      const lanes = p.packed ? 4 : Math.min(4, cols - 4 * v);
      const off = p.packed
        ? 4 * ((v >> 1) * p.K * PACK_WIDTH + k * PACK_WIDTH + 4 * (v & 1))
        : 4 * (k * p.ldb + 4 * v);
      return load(lanes, off, "(local.get $pb)");
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
    const alpha = `(v128.const f32x4 ${Array(4).fill(p.alpha).join(" ")})`;
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

function indent(lines: string[], depth = 1): string[] {
  return lines.map((l) => "  ".repeat(depth) + l);
}
