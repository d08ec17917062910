/**
 * Block-sparse (BSR) dense layers in wasm SIMD128: `y = act(x · Wᵀ + bias)` with W `[N, K]`
 * (`[out, in]`) stored as SciPy BSR blocks R x C (ir/ops/bsr_dense.ts).
 *
 * Formulation: `yᵀ = W · xᵀ`. A "prepare" kernel first transposes x `[M, K]` into scratch as
 * xᵀ `[Kp, Mp]` (tokens padded with zeros to a whole number of token tiles, rows padded with
 * zeros to whole blocks), so one xᵀ row holds one input feature for every token. The main kernel
 * then vectorizes over tokens: for each block row, each token tile of `4 · vecs` tokens and each
 * chunk of `rows` block rows, it keeps `rows x vecs` f32x4 accumulators in registers; every
 * column j of every block of the row loads the tile's `vecs` xᵀ vectors once and multiplies them
 * by `rows` splatted weights (`v128.load32_splat`), so R > 1 blocks reuse each loaded x vector
 * across rows and 1xC blocks reuse each weight across the token tile. The epilogue adds the
 * (splatted) bias, applies the activation and writes the accumulators' lanes to y `[M, N]` with
 * lane stores (one accumulator is one output feature for 4 tokens). Weights are packed into the
 * exact order the kernel reads them (codegen/bsr_pack.ts), so they are one sequential stream.
 *
 * Variants: "generic" kernels read the block structure from an index array in memory (indptr
 * and per-block xᵀ offsets, from packBsrIndex) and are shared by every weight with the same
 * shapes; "specialized" ones bake every block's offsets into straight-line code (no index, no
 * block loop), named with the pattern's id (ir/bsr_pattern.ts). Which variants are candidates
 * and which one is the default is the cost model's call (codegen/wasm/bsr_cost.ts). Threads
 * split block rows; every output element is written by exactly one thread. The code is written
 * with the WAT builder (wat.ts).
 */

import { bsrPatternHash } from "../../ir/bsr_pattern.ts";
import { groupedBsrKernel } from "./grouped_bsr.ts";
import { kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import { helperFor } from "./math.ts";
import {
  block,
  br,
  br_if,
  br_table,
  call,
  type Code,
  comment,
  f32,
  f32x4,
  i32,
  i32x4,
  i8x16,
  if_,
  ifResult,
  type Local,
  local,
  loop,
  madd,
  return_,
  type V128,
  v128,
} from "./wat.ts";

/** A block-sparse dense layer as one kernel sees it. */
export interface BsrSpec {
  /** Rows of x (tokens); x is row-major [M, K]. */
  M: number;
  /** Output features: W is [N, K]; y is row-major [M, N]. */
  N: number;
  /** Input features. */
  K: number;
  /** Block shape R x C (rows of W, columns of W); N and K need not be multiples. */
  block: [number, number];
  /** SciPy BSR block-row starts over ceil(N / R) block rows (first entry 0). */
  indptr: Int32Array;
  /** SciPy BSR block column of each stored block. */
  indices: Int32Array;
  /** A bias [N] is added. */
  bias: boolean;
  /** Applied after the bias. */
  activation: "none" | "gelu" | "gelu_tanh" | "tanh";
  /**
   * The pattern's id in a specialized kernel's name: different `indptr` and `indices` must get
   * different ids (codegen/lower/bsr.ts takes them from one `BsrPatternIds` table per compile).
   * Default: `p` and the pattern's whole 64-bit hash (ir/bsr_pattern.ts).
   */
  pattern?: string;
  /**
   * The id of what a row-grouped kernel bakes (`bsrGroupedSignature`, codegen/wasm/grouped_bsr.ts),
   * in its name; the same rules as `pattern`. Default: `p` and the signature's whole hash.
   */
  groupPattern?: string;
}

/**
 * How a BSR kernel is generated. Every variant so far transposes x into scratch (`xT: true`,
 * done by the separate prepare kernel); the field exists so a variant reading x as is can be
 * added. `vecs` f32x4 vectors of tokens (token tile `4 · vecs`) by `rows` block rows are the
 * register block (`rows · vecs` accumulators). `specialized`: block offsets and counts baked into
 * unrolled code; else read from the index array in memory.
 */
export interface BsrVariant {
  /** x is transposed to [K, M] in scratch first (the prepare kernel). */
  xT: boolean;
  /** Token vectors per tile (tile = 4 · vecs tokens). */
  vecs: number;
  /** Block rows per register block. */
  rows: number;
  /** Offsets baked into code (true) or read from the index (false). */
  specialized: boolean;
  /**
   * Generic only: loop over token tiles outside the block rows, so one tile's slice of xᵀ stays
   * in cache while the weights stream by (for a large K); else each block row runs every tile.
   */
  tilesOuter?: boolean;
  /**
   * Row-grouped (codegen/wasm/grouped_bsr.ts): block rows with equal column lists are one dense
   * micro-GEMM over gathered columns of x (not transposed; `rows` x `4 · vecs` = tokens x output
   * rows, 6x8 with FMA and 5x8 without). The other fields are then descriptive only.
   */
  grouped?: boolean;
}

/** The row-grouped variant. */
export const GROUPED_VARIANT: BsrVariant = { xT: false, vecs: 2, rows: 6, specialized: false, grouped: true };

/** E.g. `xT.t32.r1.gen`. */
export function variantKey(v: BsrVariant): string {
  if (v.grouped) return "x.grouped.t6x8";
  return `${v.xT ? "xT" : "x"}.t${4 * v.vecs}.r${v.rows}.${v.specialized ? "spec" : "gen"}${
    v.tilesOuter ? ".to" : ""
  }`;
}

/** Tokens padded to whole tiles: the columns of xᵀ in scratch. */
export function paddedTokens(M: number, v: BsrVariant): number {
  if (v.grouped) return Math.ceil(M / 6) * 6;
  const T = 4 * v.vecs;
  return Math.max(1, Math.ceil(M / T)) * T;
}

/** Throws unless the spec's sizes are positive integers and its indptr and indices are well formed. */
export function checkBsrSpec(s: BsrSpec): void {
  const [R, C] = s.block;
  for (const [k, v] of Object.entries({ M: s.M, N: s.N, K: s.K, R, C })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`bsr: bad ${k} ${v}`);
  }
  const nbr = Math.ceil(s.N / R), nbc = Math.ceil(s.K / C);
  if (s.indptr.length !== nbr + 1) {
    throw new Error(`bsr: indptr has ${s.indptr.length} entries, ${nbr + 1} expected`);
  }
  if (s.indptr[0] !== 0 || s.indptr[nbr] !== s.indices.length) {
    throw new Error(`bsr: indptr does not span indices`);
  }
  for (let i = 0; i < nbr; i++) if (s.indptr[i + 1] < s.indptr[i]) throw new Error(`bsr: indptr decreases`);
  for (const c of s.indices) if (c < 0 || c >= nbc) throw new Error(`bsr: block column ${c} outside ${nbc}`);
}

const ACTIVATION_HELPERS = { gelu: "gelu_f32x4", gelu_tanh: "gelu_tanh_f32x4", tanh: "tanh_f32x4" } as const;

/** The kernels' parameters: byte addresses of x, the packed blocks, the index, the bias, y and the xᵀ scratch. */
const P = {
  x: local.i32("x"),
  data: local.i32("data"),
  index: local.i32("index"),
  bias: local.i32("bias"),
  y: local.i32("y"),
  scratch: local.i32("scratch"),
};

/**
 * The kernels for `spec` under `variant` (the row-grouped kernel of grouped_bsr.ts for a
 * grouped variant: no prepare, the same parameters as a generic kernel). `prepare` (params x, scratch; then tid, nt) transposes
 * x into scratch and must run, on all threads, as its own step before `kernel` (with a barrier
 * between). `kernel` params: x, data, [index, for generic variants,] [bias,] y, scratch (byte
 * addresses), then tid, nt. `scratchBytes` is the xᵀ scratch both use.
 */
export function bsrKernel(
  spec: BsrSpec,
  variant: BsrVariant,
  target: KernelTarget,
): { prepare?: WasmKernel; kernel: WasmKernel; scratchBytes: number } {
  checkBsrSpec(spec);
  if (variant.grouped) return groupedBsrKernel(spec, target);
  if (!variant.xT) throw new Error("bsr: only xT variants are implemented");
  const [R, C] = spec.block;
  const Mp = paddedTokens(spec.M, variant);
  const Kp = Math.ceil(Math.ceil(spec.K / C) * C / 4) * 4;
  const prepare = prepareKernel(spec.M, spec.K, Mp, Kp);
  const helper = spec.activation === "none"
    ? undefined
    : helperFor(ACTIVATION_HELPERS[spec.activation], target);
  const parts = [
    `bsr_m${spec.M}_n${spec.N}_k${spec.K}_b${R}x${C}`,
    `t${4 * variant.vecs}r${variant.rows}`,
    variant.specialized ? `${spec.pattern ?? defaultPatternId(spec)}_nnz${spec.indices.length}` : "gen",
  ];
  if (variant.tilesOuter) parts.push("to");
  if (spec.bias) parts.push("bias");
  if (spec.activation !== "none") parts.push(spec.activation);
  if (target.relaxedSimd) parts.push("fma");
  const writer = new BsrWriter(spec, variant, target, Mp, helper);
  const index = variant.specialized ? [] : [P.index];
  return {
    prepare,
    kernel: kernel({
      name: parts.join("_"),
      params: [P.x, P.data, ...index, ...(spec.bias ? [P.bias] : []), P.y, P.scratch],
      locals: writer.locals,
      body: writer.body(),
      uses: helper ? [helper] : [],
    }),
    scratchBytes: Kp * Mp * 4,
  };
}

/** `p` and the whole hash of the spec's pattern. */
function defaultPatternId(s: BsrSpec): string {
  return `p${bsrPatternHash({ shape: [s.N, s.K], block: s.block, indptr: s.indptr, indices: s.indices })}`;
}

/** `a + b` on i32 expressions, shorter to read in address arithmetic. */
const add = i32.add;
/** An i32 constant. */
const int = i32.const;
/** A local's value. */
const get = local.get;
/** Sets a local. */
const set = local.set;

/** xᵀ [Kp, Mp] = x [M, K] transposed, zero padded; threads split groups of 4 rows of xᵀ. */
function prepareKernel(M: number, K: number, Mp: number, Kp: number): WasmKernel {
  const [start, end, kr, kend, kk, m, px, po] = ["start", "end", "k", "kend", "kk", "m", "px", "po"].map(
    local.i32,
  );
  const [a, b, c, d, t0, t1, t2, t3] = ["a", "b", "c", "d", "t0", "t1", "t2", "t3"].map(local.v128);
  const M4 = Math.floor(M / 4) * 4;
  // A 4x4 transpose in two rounds of shuffles: 32-bit lanes of row pairs, then 64-bit halves.
  const lo = [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23];
  const hi = [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31];
  const lo64 = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23];
  const hi64 = [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31];
  /** The byte address of element [row, col] of a row-major f32 array at `base` with `cols` columns. */
  const at = (base: Local<"i32">, row: Local<"i32">, cols: number, col: Local<"i32">) =>
    add(get(base), i32.shl(add(i32.mul(get(row), int(cols)), get(col)), int(2)));
  // Scalar fill of xᵀ rows [k, kend) and token columns [mFrom, Mp): x where inside, else 0.
  const scalar = (mFrom: number): Code => [
    set(kk, get(kr)),
    loop(
      "sk",
      set(m, int(mFrom)),
      loop(
        "sm",
        f32.store(
          at(P.scratch, kk, Mp, m),
          ifResult(
            "f32",
            i32.and(i32.lt_u(get(kk), int(K)), i32.lt_u(get(m), int(M))),
            f32.load(at(P.x, m, K, kk)),
            f32.const(0),
          ),
        ),
        set(m, add(get(m), int(1))),
        br_if("sm", i32.lt_u(get(m), int(Mp))),
      ),
      set(kk, add(get(kk), int(1))),
      br_if("sk", i32.lt_u(get(kk), get(kend))),
    ),
  ];
  // Four rows of x at a time, four tokens per iteration: four loads, a 4x4 transpose, four stores.
  const vectors = M4 > 0 && [
    set(px, add(get(P.x), i32.shl(get(kr), int(2)))),
    set(po, add(get(P.scratch), i32.mul(get(kr), int(4 * Mp)))),
    set(m, int(0)),
    loop(
      "vm",
      [a, b, c, d].map((v, i) => set(v, v128.load(get(px), { offset: 4 * K * i }))),
      set(t0, i8x16.shuffle(lo, get(a), get(b))),
      set(t1, i8x16.shuffle(hi, get(a), get(b))),
      set(t2, i8x16.shuffle(lo, get(c), get(d))),
      set(t3, i8x16.shuffle(hi, get(c), get(d))),
      v128.store(get(po), i8x16.shuffle(lo64, get(t0), get(t2))),
      v128.store(get(po), i8x16.shuffle(hi64, get(t0), get(t2)), { offset: 4 * Mp }),
      v128.store(get(po), i8x16.shuffle(lo64, get(t1), get(t3)), { offset: 8 * Mp }),
      v128.store(get(po), i8x16.shuffle(hi64, get(t1), get(t3)), { offset: 12 * Mp }),
      set(px, add(get(px), int(16 * K))),
      set(po, add(get(po), int(16))),
      set(m, add(get(m), int(4))),
      br_if("vm", i32.lt_u(get(m), int(M4))),
    ),
  ];
  return kernel({
    name: `bsr_prepare_xt_m${M}_k${K}_mp${Mp}_kp${Kp}`,
    params: [P.x, P.scratch],
    locals: [start, end, kr, kend, kk, m, px, po, a, b, c, d, t0, t1, t2, t3],
    body: [
      threadRange(Kp / 4, start, end),
      if_(i32.ge_u(get(start), get(end)), return_()),
      loop(
        "groups",
        set(kr, i32.shl(get(start), int(2))),
        set(kend, add(get(kr), int(4))),
        if_(i32.le_u(get(kend), int(K)), [vectors, M4 < Mp && scalar(M4)], scalar(0)),
        set(start, add(get(start), int(1))),
        br_if("groups", i32.lt_u(get(start), get(end))),
      ),
    ],
  });
}

/** The main kernel's i32 locals: the thread's block rows, the block row, the token tile, and pointers. */
const L = {
  start: local.i32("start"),
  end: local.i32("end"),
  /** The block row. */
  br: local.i32("br"),
  /** The token tile. */
  t: local.i32("t"),
  /** The tile's first column of xᵀ. */
  pxt: local.i32("pxt"),
  /** The tile's first row of y, at the block row's first column. */
  py: local.i32("py"),
  /** Row 0 of y at the block row's first column. */
  pyrow: local.i32("pyrow"),
  /** The next weight to read. */
  pw: local.i32("pw"),
  /** The block row's first weight. */
  pw0: local.i32("pw0"),
  /** The current block's first column of xᵀ in the tile. */
  px: local.i32("px"),
  /** The current block's index entry. */
  pb: local.i32("pb"),
  /** The block row's first and past-last index entries. */
  pb0: local.i32("pb0"),
  pbend: local.i32("pbend"),
  /** The block row's bias. */
  pbias: local.i32("pbias"),
  /** Where a block's unrolled column loop ends ($pw). */
  jend: local.i32("jend"),
};

/** The splatted weight (then bias) and an epilogue's vector. */
const W = local.v128("w"), E = local.v128("e");

/** Emits the main kernel's body. */
class BsrWriter {
  private readonly R: number;
  private readonly C: number;
  private readonly nbr: number;
  private readonly T: number;
  private readonly nTiles: number;
  private readonly lastRows: number;
  private readonly lastTokens: number;
  /** The tile's xᵀ vectors, loaded once per column when several rows use them. */
  private readonly xv: Local<"v128">[];
  /** The accumulators: rows x vecs, one output feature for 4 tokens each. */
  private readonly acc: Local<"v128">[][];
  private label = 0;

  constructor(
    private readonly s: BsrSpec,
    private readonly v: BsrVariant,
    private readonly target: KernelTarget,
    private readonly Mp: number,
    private readonly helper: string | undefined,
  ) {
    [this.R, this.C] = s.block;
    this.nbr = s.indptr.length - 1;
    this.T = 4 * v.vecs;
    this.nTiles = Mp / this.T;
    this.lastRows = s.N - (this.nbr - 1) * this.R;
    this.lastTokens = s.M - (this.nTiles - 1) * this.T;
    this.xv = Array.from({ length: v.vecs }, (_, i) => local.v128(`x${i}`));
    this.acc = Array.from({ length: v.rows }, (_, r) => this.xv.map((_, i) => local.v128(`c${r}_${i}`)));
  }

  /** Every local the body uses. */
  get locals(): Local[] {
    return [...Object.values(L), W, E, ...this.xv, ...this.acc.flat()];
  }

  private fresh(base: string): string {
    return `${base}${this.label++}`;
  }

  body(): Code {
    const { v, s, R } = this;
    const rowsLoop = [
      set(L.br, get(L.start)),
      loop(
        "rows",
        set(L.pyrow, add(get(P.y), i32.mul(get(L.br), int(4 * R)))),
        s.bias && set(L.pbias, add(get(P.bias), i32.mul(get(L.br), int(4 * R)))),
        v.specialized ? this.specializedRows() : v.tilesOuter ? this.genericRowOneTile() : this.genericRow(),
        set(L.br, add(get(L.br), int(1))),
        br_if("rows", i32.lt_u(get(L.br), get(L.end))),
      ),
    ];
    return [
      threadRange(this.nbr, L.start, L.end),
      if_(i32.ge_u(get(L.start), get(L.end)), return_()),
      // Token tiles outermost: the rows loop runs once per tile.
      v.tilesOuter
        ? [
          set(L.t, int(0)),
          loop(
            "tilesOuter",
            rowsLoop,
            set(L.t, add(get(L.t), int(1))),
            br_if("tilesOuter", i32.lt_u(get(L.t), int(this.nTiles))),
          ),
        ]
        : rowsLoop,
    ];
  }

  /** The addresses of token tile $t: its xᵀ columns ($pxt) and its y rows ($py). */
  private tileAddresses(): Code {
    return [
      set(L.pxt, add(get(P.scratch), i32.mul(get(L.t), int(4 * this.T)))),
      set(L.py, add(get(L.pyrow), i32.mul(get(L.t), int(4 * this.T * this.s.N)))),
    ];
  }

  /** The token-tile loop around `tile` (code for one tile at $pxt, $py). */
  private tileLoop(tile: Code): Code {
    return [
      set(L.t, int(0)),
      loop(
        "tiles",
        this.tileAddresses(),
        tile,
        set(L.t, add(get(L.t), int(1))),
        br_if("tiles", i32.lt_u(get(L.t), int(this.nTiles))),
      ),
    ];
  }

  /** Generic: one block row for every token tile, reading the index. */
  private genericRow(): Code {
    const { setup, chunks } = this.genericParts();
    return [setup, this.tileLoop(chunks)];
  }

  /** Generic, token tiles outermost: one block row for the current tile $t. */
  private genericRowOneTile(): Code {
    const { setup, chunks } = this.genericParts();
    return [setup, this.tileAddresses(), chunks];
  }

  /** The generic block-row code: index setup, and the chunks of rows for one tile at $pxt, $py. */
  private genericParts(): { setup: Code; chunks: Code } {
    const { R, C, nbr } = this;
    const idxBase = 4 * (nbr + 1);
    const rowEntry = add(get(P.index), i32.shl(get(L.br), int(2)));
    const entry = (b: Local<"i32">) => add(get(P.index), add(i32.shl(get(b), int(2)), int(idxBase)));
    const setup = [
      set(L.pb0, i32.load(rowEntry)),
      set(L.pbend, i32.load(rowEntry, { offset: 4 })),
      set(L.pw0, add(get(P.data), i32.mul(get(L.pb0), int(4 * R * C)))),
      set(L.pb0, entry(L.pb0)),
      set(L.pbend, entry(L.pbend)),
    ];
    const chunks: Code[] = [set(L.pw, get(L.pw0))];
    for (let r0 = 0; r0 < R; r0 += this.v.rows) {
      const rc = Math.min(this.v.rows, R - r0);
      const blk = this.fresh("blk"), done = this.fresh("done");
      const epi = (rows: number) => this.splitTokens((toks) => this.epilogue(r0, rc, rows, toks));
      chunks.push(
        comment(`rows ${r0}..${r0 + rc - 1}`),
        this.zero(rc),
        set(L.pb, get(L.pb0)),
        block(
          done,
          br_if(done, i32.ge_u(get(L.pb), get(L.pbend))),
          loop(
            blk,
            set(L.px, add(get(L.pxt), i32.load(get(L.pb)))),
            this.genericBlock(rc),
            set(L.pb, add(get(L.pb), int(4))),
            br_if(blk, i32.lt_u(get(L.pb), get(L.pbend))),
          ),
        ),
        this.lastRows < R ? if_(i32.eq(get(L.br), int(nbr - 1)), epi(this.lastRows), epi(R)) : epi(R),
      );
    }
    return { setup, chunks };
  }

  /** One block's columns at $px (xᵀ) and $pw (weights), advancing $pw past it. */
  private genericBlock(rc: number): Code {
    const { C, Mp } = this;
    const U = 8;
    const steps = (n: number) =>
      Array.from({ length: n }, (_, j) => this.step(rc, L.px, 4 * Mp * j, L.pw, 4 * rc * j));
    const advance = (p: Local<"i32">, bytes: number) => set(p, add(get(p), int(bytes)));
    if (C <= 16) return [steps(C), advance(L.pw, 4 * rc * C)];
    const full = Math.floor(C / U) * U;
    const cols = this.fresh("cols");
    return [
      set(L.jend, add(get(L.pw), int(4 * rc * full))),
      loop(
        cols,
        steps(U),
        advance(L.px, 4 * Mp * U),
        advance(L.pw, 4 * rc * U),
        br_if(cols, i32.lt_u(get(L.pw), get(L.jend))),
      ),
      steps(C - full),
      C > full && advance(L.pw, 4 * rc * (C - full)),
    ];
  }

  /** Specialized: a br_table dispatch to each block row's own straight-line code. */
  private specializedRows(): Code {
    const labels = Array.from({ length: this.nbr }, (_, i) => `row${i}`);
    // (block $rowdone (block $row{n-1} ... (block $row0 (br_table $row0 .. $row{n-1} br)) code0 (br $rowdone)) code1 ...)
    let code: Code = br_table(labels, get(L.br));
    for (let row = 0; row < this.nbr; row++) {
      code = [block(labels[row], code), this.specializedRow(row), br("rowdone")];
    }
    return block("rowdone", code);
  }

  private specializedRow(row: number): Code {
    const { s, R, C, Mp } = this;
    const p0 = s.indptr[row], p1 = s.indptr[row + 1], cnt = p1 - p0;
    const rows = Math.min(R, s.N - row * R);
    const chunks: Code[] = [];
    for (let r0 = 0; r0 < rows; r0 += this.v.rows) {
      const rc = Math.min(this.v.rows, R - r0);
      chunks.push(comment(`row ${row}, rows ${r0}..${r0 + rc - 1}`), this.zero(rc));
      for (let i = 0; i < cnt; i++) {
        const col0 = s.indices[p0 + i] * C;
        const base = 4 * (p0 * R * C + r0 * cnt * C + i * rc * C);
        for (let j = 0; j < C && col0 + j < s.K; j++) {
          chunks.push(this.step(rc, L.pxt, 4 * Mp * (col0 + j), P.data, base + 4 * rc * j));
        }
      }
      chunks.push(this.splitTokens((toks) => this.epilogue(r0, rc, rows, toks)));
    }
    return this.tileLoop(chunks);
  }

  /** `code(tokens)` for the tile $t: all T tokens but the ragged last tile. */
  private splitTokens(code: (tokens: number) => Code): Code {
    if (this.lastTokens === this.T) return code(this.T);
    if (this.nTiles === 1) return code(this.lastTokens);
    return if_(i32.eq(get(L.t), int(this.nTiles - 1)), code(this.lastTokens), code(this.T));
  }

  private zero(rc: number): Code {
    return this.acc.slice(0, rc).map((row) => row.map((c) => set(c, i32x4.const(0))));
  }

  /** One column: xᵀ vectors at px + xo, rc weights at pw + wo. */
  private step(rc: number, px: Local<"i32">, xo: number, pw: Local<"i32">, wo: number): Code {
    const xl = (i: number) => v128.load(get(px), { offset: xo + 16 * i });
    const wl = (r: number) => set(W, v128.load32_splat(get(pw), { offset: wo + 4 * r }));
    const acc = (r: number, i: number, x: V128) =>
      set(this.acc[r][i], madd(this.target, x, get(W), get(this.acc[r][i])));
    if (rc === 1) return [wl(0), this.xv.map((_, i) => acc(0, i, xl(i)))];
    return [
      this.xv.map((x, i) => set(x, xl(i))),
      Array.from({ length: rc }, (_, r) => [wl(r), this.xv.map((x, i) => acc(r, i, get(x)))]),
    ];
  }

  /** Bias ($pbias), activation and lane stores (at $py) of chunk rows r0.. (only rows < rows, tokens < tokens). */
  private epilogue(r0: number, rc: number, rows: number, tokens: number): Code {
    const { s } = this;
    const code: Code[] = [];
    for (let r = 0; r < rc && r0 + r < rows; r++) {
      const n = r0 + r;
      if (s.bias) code.push(set(W, v128.load32_splat(get(L.pbias), { offset: 4 * n })));
      for (let i = 0; i < this.v.vecs && 4 * i < tokens; i++) {
        let e: V128 = get(this.acc[r][i]);
        if (s.bias) e = f32x4.add(e, get(W));
        if (this.helper) e = call("v128", this.helper, e);
        code.push(set(E, e));
        for (let l = 0; l < 4 && 4 * i + l < tokens; l++) {
          code.push(v128.store32_lane(l, get(L.py), get(E), { offset: 4 * ((4 * i + l) * s.N + n) }));
        }
      }
    }
    return code;
  }
}
