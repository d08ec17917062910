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
 * split block rows; every output element is written by exactly one thread.
 */

import { bsrPatternHash } from "../../ir/bsr_pattern.ts";
import { fma, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import { helperFor, indent } from "./math.ts";

/** The cost model (bsr_cost.ts), re-exported for the callers that import it from here. */
export { bsrVariants, defaultBsrVariant, SPECIALIZE_BUDGET_BYTES } from "./bsr_cost.ts";

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
}

/** E.g. `xT.t32.r1.gen`. */
export function variantKey(v: BsrVariant): string {
  return `${v.xT ? "xT" : "x"}.t${4 * v.vecs}.r${v.rows}.${v.specialized ? "spec" : "gen"}${
    v.tilesOuter ? ".to" : ""
  }`;
}

/** Tokens padded to whole tiles: the columns of xᵀ in scratch. */
export function paddedTokens(M: number, v: BsrVariant): number {
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

/**
 * The kernels for `spec` under `variant`. `prepare` (params x, scratch; then tid, nt) transposes
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
  const name = parts.join("_");
  const params = [
    "x",
    "data",
    ...(variant.specialized ? [] : ["index"]),
    ...(spec.bias ? ["bias"] : []),
    "y",
    "scratch",
  ];
  const body = new BsrWriter(spec, variant, target, Mp, helper).body();
  const wat = [
    `(func $${name} (export "${name}")`,
    `  ${[...params, "tid", "nt"].map((q) => `(param $${q} i32)`).join(" ")}`,
    ...indent(body),
    `)`,
  ].join("\n");
  return {
    prepare,
    kernel: { name, params, wat, uses: helper ? [helper] : [] },
    scratchBytes: Kp * Mp * 4,
  };
}

/** `p` and the whole hash of the spec's pattern. */
function defaultPatternId(s: BsrSpec): string {
  return `p${bsrPatternHash({ shape: [s.N, s.K], block: s.block, indptr: s.indptr, indices: s.indices })}`;
}

/** xᵀ [Kp, Mp] = x [M, K] transposed, zero padded; threads split groups of 4 rows of xᵀ. */
function prepareKernel(M: number, K: number, Mp: number, Kp: number): WasmKernel {
  const name = `bsr_prepare_xt_m${M}_k${K}_mp${Mp}_kp${Kp}`;
  const groups = Kp / 4;
  const M4 = Math.floor(M / 4) * 4;
  const lo = "0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23";
  const hi = "8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31";
  const lo64 = "0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23";
  const hi64 = "8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31";
  const g = (n: string) => `(local.get $${n})`;
  // Scalar fill of xᵀ rows [$k, $kend) and token columns [mFrom, Mp): x where inside, else 0.
  const scalar = (mFrom: number) => [
    `(local.set $kk (local.get $k))`,
    `(loop $sk`,
    `  (local.set $m (i32.const ${mFrom}))`,
    `  (loop $sm`,
    `    (f32.store (i32.add ${g("scratch")} (i32.shl (i32.add (i32.mul ${g("kk")} (i32.const ${Mp})) ${
      g("m")
    }) (i32.const 2)))`,
    `      (if (result f32) (i32.and (i32.lt_u ${g("kk")} (i32.const ${K})) (i32.lt_u ${
      g("m")
    } (i32.const ${M})))`,
    `        (then (f32.load (i32.add ${g("x")} (i32.shl (i32.add (i32.mul ${g("m")} (i32.const ${K})) ${
      g("kk")
    }) (i32.const 2)))))`,
    `        (else (f32.const 0))))`,
    `    (local.set $m (i32.add ${g("m")} (i32.const 1)))`,
    `    (br_if $sm (i32.lt_u ${g("m")} (i32.const ${Mp}))))`,
    `  (local.set $kk (i32.add ${g("kk")} (i32.const 1)))`,
    `  (br_if $sk (i32.lt_u ${g("kk")} (local.get $kend))))`,
  ];
  const body = [
    `(local $start i32) (local $end i32) (local $k i32) (local $kend i32) (local $kk i32) (local $m i32) (local $px i32) (local $po i32)`,
    `(local $a v128) (local $b v128) (local $c v128) (local $d v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)`,
    threadRange(groups),
    `(if (i32.ge_u ${g("start")} ${g("end")}) (then (return)))`,
    `(loop $groups`,
    ...indent([
      `(local.set $k (i32.shl ${g("start")} (i32.const 2)))`,
      `(local.set $kend (i32.add ${g("k")} (i32.const 4)))`,
      `(if (i32.le_u ${g("kend")} (i32.const ${K}))`,
      `  (then`,
      ...indent(
        [
          ...(M4 > 0
            ? [
              `(local.set $px (i32.add ${g("x")} (i32.shl ${g("k")} (i32.const 2))))`,
              `(local.set $po (i32.add ${g("scratch")} (i32.mul ${g("k")} (i32.const ${4 * Mp}))))`,
              `(local.set $m (i32.const 0))`,
              `(loop $vm`,
              ...indent([
                `(local.set $a (v128.load ${g("px")}))`,
                `(local.set $b (v128.load offset=${4 * K} ${g("px")}))`,
                `(local.set $c (v128.load offset=${8 * K} ${g("px")}))`,
                `(local.set $d (v128.load offset=${12 * K} ${g("px")}))`,
                `(local.set $t0 (i8x16.shuffle ${lo} ${g("a")} ${g("b")}))`,
                `(local.set $t1 (i8x16.shuffle ${hi} ${g("a")} ${g("b")}))`,
                `(local.set $t2 (i8x16.shuffle ${lo} ${g("c")} ${g("d")}))`,
                `(local.set $t3 (i8x16.shuffle ${hi} ${g("c")} ${g("d")}))`,
                `(v128.store ${g("po")} (i8x16.shuffle ${lo64} ${g("t0")} ${g("t2")}))`,
                `(v128.store offset=${4 * Mp} ${g("po")} (i8x16.shuffle ${hi64} ${g("t0")} ${g("t2")}))`,
                `(v128.store offset=${8 * Mp} ${g("po")} (i8x16.shuffle ${lo64} ${g("t1")} ${g("t3")}))`,
                `(v128.store offset=${12 * Mp} ${g("po")} (i8x16.shuffle ${hi64} ${g("t1")} ${g("t3")}))`,
                `(local.set $px (i32.add ${g("px")} (i32.const ${16 * K})))`,
                `(local.set $po (i32.add ${g("po")} (i32.const 16)))`,
                `(local.set $m (i32.add ${g("m")} (i32.const 4)))`,
                `(br_if $vm (i32.lt_u ${g("m")} (i32.const ${M4})))`,
              ]),
              `)`,
            ]
            : []),
          ...(M4 < Mp ? scalar(M4) : []),
        ],
        2,
      ),
      `  )`,
      `  (else`,
      ...indent(scalar(0), 2),
      `  ))`,
      `(local.set $start (i32.add ${g("start")} (i32.const 1)))`,
      `(br_if $groups (i32.lt_u ${g("start")} ${g("end")}))`,
    ]),
    `)`,
  ];
  const wat = [
    `(func $${name} (export "${name}")`,
    `  (param $x i32) (param $scratch i32) (param $tid i32) (param $nt i32)`,
    ...indent(body),
    `)`,
  ].join("\n");
  return { name, params: ["x", "scratch"], wat, uses: [] };
}

/** Emits the main kernel's body. */
class BsrWriter {
  private readonly R: number;
  private readonly C: number;
  private readonly nbr: number;
  private readonly T: number;
  private readonly nTiles: number;
  private readonly lastRows: number;
  private readonly lastTokens: number;
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
  }

  private fresh(base: string): string {
    return `$${base}${this.label++}`;
  }

  body(): string[] {
    const { v, s } = this;
    const locals = [
      "start",
      "end",
      "br",
      "t",
      "pxt",
      "py",
      "pyrow",
      "pw",
      "pw0",
      "px",
      "pb",
      "pb0",
      "pbend",
      "pbias",
      "jend",
    ];
    const vecLocals = ["w", "e"];
    for (let i = 0; i < v.vecs; i++) vecLocals.push(`x${i}`);
    for (let r = 0; r < v.rows; r++) for (let i = 0; i < v.vecs; i++) vecLocals.push(`c${r}_${i}`);
    const code = [
      locals.map((l) => `(local $${l} i32)`).join(" "),
      vecLocals.map((l) => `(local $${l} v128)`).join(" "),
      threadRange(this.nbr),
      `(if (i32.ge_u (local.get $start) (local.get $end)) (then (return)))`,
      `(local.set $br (local.get $start))`,
      `(loop $rows`,
      ...indent([
        `(local.set $pyrow (i32.add (local.get $y) (i32.mul (local.get $br) (i32.const ${4 * this.R}))))`,
        ...(s.bias
          ? [
            `(local.set $pbias (i32.add (local.get $bias) (i32.mul (local.get $br) (i32.const ${
              4 * this.R
            }))))`,
          ]
          : []),
        ...(v.specialized
          ? this.specializedRows()
          : v.tilesOuter
          ? this.genericRowOneTile()
          : this.genericRow()),
        `(local.set $br (i32.add (local.get $br) (i32.const 1)))`,
        `(br_if $rows (i32.lt_u (local.get $br) (local.get $end)))`,
      ]),
      `)`,
    ];
    if (!v.tilesOuter) return code;
    // Token tiles outermost: the rows loop (everything after the range check) runs once per tile.
    const rowsLoop = code.slice(4);
    return [
      ...code.slice(0, 4),
      `(local.set $t (i32.const 0))`,
      `(loop $tilesOuter`,
      ...indent(rowsLoop),
      `  (local.set $t (i32.add (local.get $t) (i32.const 1)))`,
      `  (br_if $tilesOuter (i32.lt_u (local.get $t) (i32.const ${this.nTiles})))`,
      `)`,
    ];
  }

  /** The addresses of token tile $t: its xᵀ columns ($pxt) and its y rows ($py). */
  private tileAddresses(): string[] {
    return [
      `(local.set $pxt (i32.add (local.get $scratch) (i32.mul (local.get $t) (i32.const ${4 * this.T}))))`,
      `(local.set $py (i32.add (local.get $pyrow) (i32.mul (local.get $t) (i32.const ${
        4 * this.T * this.s.N
      }))))`,
    ];
  }

  /** The token-tile loop around `tile` (code for one tile at $pxt, $py). */
  private tileLoop(tile: string[]): string[] {
    return [
      `(local.set $t (i32.const 0))`,
      `(loop $tiles`,
      ...indent([
        ...this.tileAddresses(),
        ...tile,
        `(local.set $t (i32.add (local.get $t) (i32.const 1)))`,
        `(br_if $tiles (i32.lt_u (local.get $t) (i32.const ${this.nTiles})))`,
      ]),
      `)`,
    ];
  }

  /** Generic: one block row for every token tile, reading the index. */
  private genericRow(): string[] {
    const { setup, chunks } = this.genericParts();
    return [...setup, ...this.tileLoop(chunks)];
  }

  /** Generic, token tiles outermost: one block row for the current tile $t. */
  private genericRowOneTile(): string[] {
    const { setup, chunks } = this.genericParts();
    return [...setup, ...this.tileAddresses(), ...chunks];
  }

  /** The generic block-row code: index setup, and the chunks of rows for one tile at $pxt, $py. */
  private genericParts(): { setup: string[]; chunks: string[] } {
    const { R, C, nbr } = this;
    const idxBase = 4 * (nbr + 1);
    const setup = [
      `(local.set $pb0 (i32.load (i32.add (local.get $index) (i32.shl (local.get $br) (i32.const 2)))))`,
      `(local.set $pbend (i32.load offset=4 (i32.add (local.get $index) (i32.shl (local.get $br) (i32.const 2)))))`,
      `(local.set $pw0 (i32.add (local.get $data) (i32.mul (local.get $pb0) (i32.const ${4 * R * C}))))`,
      `(local.set $pb0 (i32.add (local.get $index) (i32.add (i32.shl (local.get $pb0) (i32.const 2)) (i32.const ${idxBase}))))`,
      `(local.set $pbend (i32.add (local.get $index) (i32.add (i32.shl (local.get $pbend) (i32.const 2)) (i32.const ${idxBase}))))`,
    ];
    const chunks: string[] = [`(local.set $pw (local.get $pw0))`];
    for (let r0 = 0; r0 < R; r0 += this.v.rows) {
      const rc = Math.min(this.v.rows, R - r0);
      chunks.push(`;; rows ${r0}..${r0 + rc - 1}`, ...this.zero(rc));
      const blk = this.fresh("blk"), done = this.fresh("done");
      chunks.push(
        `(local.set $pb (local.get $pb0))`,
        `(block ${done}`,
        `  (br_if ${done} (i32.ge_u (local.get $pb) (local.get $pbend)))`,
        `  (loop ${blk}`,
        ...indent([
          `(local.set $px (i32.add (local.get $pxt) (i32.load (local.get $pb))))`,
          ...this.genericBlock(rc),
          `(local.set $pb (i32.add (local.get $pb) (i32.const 4)))`,
          `(br_if ${blk} (i32.lt_u (local.get $pb) (local.get $pbend)))`,
        ], 2),
        `  ))`,
      );
      const epi = (rows: number) => this.splitTokens((toks) => this.epilogue(r0, rc, rows, toks));
      if (this.lastRows < R) {
        chunks.push(...ifElse(`(i32.eq (local.get $br) (i32.const ${nbr - 1}))`, epi(this.lastRows), epi(R)));
      } else chunks.push(...epi(R));
    }
    return { setup, chunks };
  }

  /** One block's columns at $px (xᵀ) and $pw (weights), advancing $pw past it. */
  private genericBlock(rc: number): string[] {
    const { C, Mp } = this;
    const U = 8;
    if (C <= 16) {
      const code: string[] = [];
      for (let j = 0; j < C; j++) code.push(...this.step(rc, "$px", 4 * Mp * j, "$pw", 4 * rc * j));
      code.push(`(local.set $pw (i32.add (local.get $pw) (i32.const ${4 * rc * C})))`);
      return code;
    }
    const full = Math.floor(C / U) * U;
    const loop = this.fresh("cols");
    const code = [
      `(local.set $jend (i32.add (local.get $pw) (i32.const ${4 * rc * full})))`,
      `(loop ${loop}`,
    ];
    const inner: string[] = [];
    for (let j = 0; j < U; j++) inner.push(...this.step(rc, "$px", 4 * Mp * j, "$pw", 4 * rc * j));
    inner.push(
      `(local.set $px (i32.add (local.get $px) (i32.const ${4 * Mp * U})))`,
      `(local.set $pw (i32.add (local.get $pw) (i32.const ${4 * rc * U})))`,
      `(br_if ${loop} (i32.lt_u (local.get $pw) (local.get $jend)))`,
    );
    code.push(...indent(inner), `)`);
    for (let j = 0; j < C - full; j++) code.push(...this.step(rc, "$px", 4 * Mp * j, "$pw", 4 * rc * j));
    if (C > full) code.push(`(local.set $pw (i32.add (local.get $pw) (i32.const ${4 * rc * (C - full)})))`);
    return code;
  }

  /** Specialized: a br_table dispatch to each block row's own straight-line code. */
  private specializedRows(): string[] {
    const { nbr } = this;
    const labels = Array.from({ length: nbr }, (_, i) => `$row${i}`);
    // (block $done (block $row{n-1} ... (block $row0 (br_table $row0 .. $row{n-1} br)) code0 (br $done)) code1 ...)
    let code: string[] = [`(br_table ${labels.join(" ")} (local.get $br))`];
    for (let br = 0; br < nbr; br++) {
      code = [`(block ${labels[br]}`, ...indent(code), `)`, ...this.specializedRow(br), `(br $rowdone)`];
    }
    return [`(block $rowdone`, ...indent(code), `)`];
  }

  private specializedRow(br: number): string[] {
    const { s, R, C, Mp } = this;
    const p0 = s.indptr[br], p1 = s.indptr[br + 1], cnt = p1 - p0;
    const rows = Math.min(R, s.N - br * R);
    const chunks: string[] = [];
    for (let r0 = 0; r0 < rows; r0 += this.v.rows) {
      const rc = Math.min(this.v.rows, R - r0);
      chunks.push(`;; row ${br}, rows ${r0}..${r0 + rc - 1}`, ...this.zero(rc));
      for (let i = 0; i < cnt; i++) {
        const col0 = s.indices[p0 + i] * C;
        const base = 4 * (p0 * R * C + r0 * cnt * C + i * rc * C);
        for (let j = 0; j < C && col0 + j < s.K; j++) {
          chunks.push(...this.step(rc, "$pxt", 4 * Mp * (col0 + j), "$data", base + 4 * rc * j));
        }
      }
      chunks.push(...this.splitTokens((toks) => this.epilogue(r0, rc, rows, toks)));
    }
    return this.tileLoop(chunks);
  }

  /** `code(tokens)` for the tile $t: all T tokens but the ragged last tile. */
  private splitTokens(code: (tokens: number) => string[]): string[] {
    if (this.lastTokens === this.T) return code(this.T);
    if (this.nTiles === 1) return code(this.lastTokens);
    return ifElse(
      `(i32.eq (local.get $t) (i32.const ${this.nTiles - 1}))`,
      code(this.lastTokens),
      code(this.T),
    );
  }

  private zero(rc: number): string[] {
    const code: string[] = [];
    for (let r = 0; r < rc; r++) {
      for (let i = 0; i < this.v.vecs; i++) code.push(`(local.set $c${r}_${i} (v128.const i32x4 0 0 0 0))`);
    }
    return code;
  }

  /** One column: xᵀ vectors at px + xo, rc weights at pw + wo. */
  private step(rc: number, px: string, xo: number, pw: string, wo: number): string[] {
    const { vecs } = this.v;
    const xl = (i: number) => `(v128.load${off(xo + 16 * i)} (local.get ${px}))`;
    const wl = (r: number) => `(v128.load32_splat${off(wo + 4 * r)} (local.get ${pw}))`;
    const acc = (r: number, i: number, x: string) =>
      `(local.set $c${r}_${i} ${fma(this.target, x, "(local.get $w)", `(local.get $c${r}_${i})`)})`;
    const code: string[] = [];
    if (rc === 1) {
      code.push(`(local.set $w ${wl(0)})`);
      for (let i = 0; i < vecs; i++) code.push(acc(0, i, xl(i)));
      return code;
    }
    for (let i = 0; i < vecs; i++) code.push(`(local.set $x${i} ${xl(i)})`);
    for (let r = 0; r < rc; r++) {
      code.push(`(local.set $w ${wl(r)})`);
      for (let i = 0; i < vecs; i++) code.push(acc(r, i, `(local.get $x${i})`));
    }
    return code;
  }

  /** Bias ($pbias), activation and lane stores (at $py) of chunk rows r0.. (only rows < rows, tokens < tokens). */
  private epilogue(r0: number, rc: number, rows: number, tokens: number): string[] {
    const { s } = this;
    const code: string[] = [];
    for (let r = 0; r < rc && r0 + r < rows; r++) {
      const n = r0 + r;
      if (s.bias) {
        code.push(`(local.set $w (v128.load32_splat${off(4 * n)} (local.get $pbias)))`);
      }
      for (let i = 0; i < this.v.vecs && 4 * i < tokens; i++) {
        let e = `(local.get $c${r}_${i})`;
        if (s.bias) e = `(f32x4.add ${e} (local.get $w))`;
        if (this.helper) e = `(call $${this.helper} ${e})`;
        code.push(`(local.set $e ${e})`);
        for (let l = 0; l < 4 && 4 * i + l < tokens; l++) {
          code.push(
            `(v128.store32_lane${off(4 * ((4 * i + l) * s.N + n))} ${l} (local.get $py) (local.get $e))`,
          );
        }
      }
    }
    return code;
  }
}

function off(bytes: number): string {
  return bytes ? ` offset=${bytes}` : "";
}

function ifElse(cond: string, then: string[], otherwise: string[]): string[] {
  return [`(if ${cond}`, `  (then`, ...indent(then, 2), `  )`, `  (else`, ...indent(otherwise, 2), `  ))`];
}
