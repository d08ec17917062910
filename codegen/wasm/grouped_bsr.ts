/**
 * Row-grouped block-sparse kernels: one kernel per (pattern, shape) for a BSR weight whose block
 * rows share few column patterns (`y = act(x · Wᵀ + bias)`, W `[N, K]` in BSR blocks R x C).
 *
 * The block rows of W are grouped by identical `indices` lists (ir/bsr_pattern.ts
 * `bsrRowGroups`). A group keeps K' columns of x (its blocks' columns) for n output rows (R per
 * block row), so its share of the product is a dense `[M, K'] x [K', n]` GEMM. Per group the
 * kernel
 *
 * 1. gathers the K' columns of x it needs, for all of the call's tokens, into a contiguous panel
 *    `[tokens, lda]` in scratch, once (straight-line code baked from the column list: per 4
 *    panel columns one vector load where they are consecutive in x, else a lane load each, and
 *    one vector store; columns K' up to the next multiple of 4 are zeros), and
 * 2. runs the dense GEMM's register-tiled micro-kernel (codegen/wasm/gemm.ts) over it, token tile
 *    by token tile: tiles of 6 tokens (5 without FMA) by 8 output rows, the group's weights
 *    packed as `[K', n]` in the dense GEMM's panels of 8 columns (codegen/grouped_pack.ts), K'
 *    unrolled by 4. Each K step loads 2 weight vectors and splats one panel element per token:
 *    12 FMAs for 8 loads. A tile's rows of the panel (6 x K') stay in L1 while the group's
 *    weights, contiguous for all its panels, stream through once per tile.
 *
 * Outputs go to their real rows: the epilogue adds the bias, applies the activation (inline, 4
 * vectors at a time interleaved, as the dense GEMM's) and stores each of the tile's 8 output
 * rows at its row's offset, read once per panel from the index (lane stores; whole f32x4 stores
 * when blocks have 4k rows and N is a multiple of 4, so every 4 rows are adjacent). A group
 * whose rows do not fill its last panel of 8 is padded with copies of its last row (weights and
 * offset), which store the same values again: no branch per row.
 *
 * What is baked: the groups' column lists (the gather code) and their sizes (K', n); what is
 * data: the weight values and which rows each group holds (the index). So the kernel is named by
 * the id of that signature (`bsrGroupedSignature`), and weights whose groups keep the same columns
 * share it, across matrices and layers.
 *
 * Threads split token tiles: each thread gathers and computes its own tokens for every group
 * (its rows of the panel are its own), with no barrier and no prepare step. Parameters: x, data,
 * index, [bias,] y, scratch (byte addresses), then tid, nt, like the generic BSR kernels.
 */

import {
  bsrGroupedSignature,
  bsrGroupRows,
  type BsrPattern,
  bsrPatternHash,
  type BsrRowGroup,
  bsrRowGroups,
} from "../../ir/bsr_pattern.ts";
import { type BsrSpec, checkBsrSpec } from "./bsr.ts";
import { kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import { interleave } from "./hoist.ts";
import { type Activation, activationOf } from "./qtile.ts";
import {
  block,
  br,
  br_if,
  br_table,
  type Code,
  comment,
  f32x4,
  i32,
  i32x4,
  if_,
  type Local,
  local,
  loop,
  madd,
  return_,
  type V128,
  v128,
} from "./wat.ts";

/** Output rows per panel of packed weights (the dense GEMM's PACK_WIDTH: two f32x4 vectors). */
export const GROUP_PANEL = 8;

/** One group of block rows sharing a column list, as the kernel and the packing see it. */
export interface GroupLayout extends BsrRowGroup {
  /** The columns of x the group reads, in order (its blocks' columns inside K). */
  kept: number[];
  /** kept.length rounded up to a multiple of 4 (the K loop is unrolled by 4). */
  Kp: number;
  /** The group's output rows, ascending. */
  features: number[];
  /** Panels of GROUP_PANEL output rows (the last one padded). */
  panels: number;
  /** Where the group's packed weights start in the data (floats). */
  dataOffset: number;
  /** Where the group's row offsets start in the index (i32 entries). */
  indexOffset: number;
}

/** A weight in row-grouped form. */
export interface GroupedLayout {
  groups: GroupLayout[];
  /** Elements per row of the gathered panel: the largest Kp (at least 4). */
  lda: number;
  /** Every 4 consecutive outputs of a group are adjacent rows of y (R % 4 = 0, N % 4 = 0). */
  vectorStores: boolean;
  /** Floats of packed weights. */
  dataLength: number;
  /** Entries of the index. */
  indexLength: number;
}

/** The output row each padded slot `f` of a group with `n` rows repeats (`f` itself when f < n). */
export function paddedFeature(f: number, n: number, vectorStores: boolean): number {
  if (f < n) return f;
  return vectorStores ? f - 4 * Math.ceil((f - n + 1) / 4) : n - 1;
}

/** The row-grouped layout of `spec` (groups in `bsrRowGroups` order). */
export function groupedLayout(spec: BsrSpec): GroupedLayout {
  checkBsrSpec(spec);
  const [R, C] = spec.block;
  const groups = bsrRowGroups(spec);
  let data = 0, index = 0, lda = 4;
  const out = groups.map((g): GroupLayout => {
    const kept: number[] = [];
    for (const c of g.columns) for (let j = 0; j < C && c * C + j < spec.K; j++) kept.push(c * C + j);
    const features: number[] = [];
    for (const br of g.rows) for (let r = 0; r < R && br * R + r < spec.N; r++) features.push(br * R + r);
    const Kp = Math.ceil(kept.length / 4) * 4;
    const panels = Math.ceil(features.length / GROUP_PANEL);
    lda = Math.max(lda, Kp);
    const layout = { ...g, kept, Kp, features, panels, dataOffset: data, indexOffset: index };
    data += panels * Kp * GROUP_PANEL;
    index += panels * GROUP_PANEL;
    return layout;
  });
  return {
    groups: out,
    lda,
    vectorStores: R % 4 === 0 && spec.N % 4 === 0,
    dataLength: data,
    indexLength: index,
  };
}

/** Token rows per register tile: 6 with FMA (12 accumulators), 5 with a separate mul and add. */
export function groupedTileRows(target: KernelTarget): number {
  return target.relaxedSimd ? 6 : 5;
}

/** Bytes of the gathered panel: enough token rows for either target's tiles, `lda` columns. */
export function groupedScratchBytes(M: number, layout: GroupedLayout): number {
  const rows = Math.max(Math.ceil(M / 6) * 6, Math.ceil(M / 5) * 5);
  return 4 * rows * layout.lda;
}

/** What a grouped kernel bakes, as a pattern (`bsrGroupedSignature`): the groups' columns and output rows. */
export function groupedSignatureOf(spec: BsrSpec, layout: GroupedLayout = groupedLayout(spec)): BsrPattern {
  const p: BsrPattern = {
    shape: [spec.N, spec.K],
    block: spec.block,
    indptr: spec.indptr,
    indices: spec.indices,
  };
  return bsrGroupedSignature(p, layout.groups, (g) => bsrGroupRows(p, g));
}

/**
 * The gathered panel row in vectors of 4 columns: the x columns of each (at most 4; the last
 * vector's missing lanes are zeros), and whether they are 4 consecutive columns (one vector load).
 */
export function gatherQuads(kept: readonly number[]): { src: number[]; consecutive: boolean }[] {
  return Array.from({ length: Math.ceil(kept.length / 4) }, (_, q) => {
    const src = kept.slice(4 * q, 4 * q + 4);
    return { src, consecutive: src.length === 4 && src[3] === src[0] + 3 };
  });
}

/**
 * Estimated bytes of the kernel's code: the gather (per 4 panel columns, one vector load or a
 * lane load per column) and, with an activation, its inline epilogues; the micro-GEMM is shared.
 * Fitted to the assembled kernels (within about 10% on BERT-base shapes).
 */
export function groupedCodeBytes(spec: BsrSpec, layout: GroupedLayout = groupedLayout(spec)): number {
  let bytes = 4400 + (spec.activation === "none" ? 0 : 6300);
  for (const g of layout.groups) {
    for (const q of gatherQuads(g.kept)) bytes += q.consecutive ? 13 : 3 + 8.5 * q.src.length;
  }
  return Math.round(bytes);
}

const P = {
  x: local.i32("x"),
  data: local.i32("data"),
  index: local.i32("index"),
  bias: local.i32("bias"),
  y: local.i32("y"),
  scratch: local.i32("scratch"),
};

const L = {
  start: local.i32("start"),
  end: local.i32("end"),
  /** The group, the panel, the panels of the group, the token tile, the token. */
  g: local.i32("g"),
  j: local.i32("j"),
  nj: local.i32("nj"),
  t: local.i32("t"),
  m: local.i32("m"),
  mend: local.i32("mend"),
  /** Gather pointers: x's and the panel's row of token $m. */
  px: local.i32("px"),
  pp: local.i32("pp"),
  /** The current token tile's rows of the gathered panel. */
  pp0: local.i32("pp0"),
  /** The group's K' (padded), in bytes of a panel row. */
  kq: local.i32("kq"),
  /** The current panel's weights and row offsets. */
  pw: local.i32("pw"),
  pidx: local.i32("pidx"),
  /** The panel's row offsets while the tile's panels run. */
  pi: local.i32("pi"),
  /** The tile's panel row, weights and y row; where its K loop ends. */
  pa: local.i32("pa"),
  pb: local.i32("pb"),
  pc: local.i32("pc"),
  kend: local.i32("kend"),
};

/** The current panel's output offsets (bytes into a row of y): 8, or 2 with vector stores. */
const OFF = Array.from({ length: GROUP_PANEL }, (_, f) => local.i32(`o${f}`));
const X = local.v128("xs");
const BV = [local.v128("b0"), local.v128("b1")];

const get = local.get;
const set = local.set;
const int = i32.const;
const add = i32.add;

/** The kernel of `spec` in row-grouped form. */
export function groupedBsrKernel(
  spec: BsrSpec,
  target: KernelTarget,
): { kernel: WasmKernel; scratchBytes: number } {
  const layout = groupedLayout(spec);
  const TR = groupedTileRows(target);
  const [R, C] = spec.block;
  const id = spec.groupPattern ?? `p${bsrPatternHash(groupedSignatureOf(spec, layout))}`;
  const parts = [`gbsr_m${spec.M}_n${spec.N}_k${spec.K}_b${R}x${C}_${id}_g${layout.groups.length}`];
  if (spec.bias) parts.push("bias");
  if (spec.activation !== "none") parts.push(spec.activation);
  if (target.relaxedSimd) parts.push("fma");
  const w = new GroupedWriter(spec, layout, target, TR, activationOf(spec.activation, target));
  return {
    kernel: kernel({
      name: parts.join("_"),
      params: [P.x, P.data, P.index, ...(spec.bias ? [P.bias] : []), P.y, P.scratch],
      comment:
        `${layout.groups.length} row groups; per group and ${TR}-token tile: gather its columns, then ${TR}x${GROUP_PANEL} tiles over its rows`,
      locals: w.locals,
      body: w.body(),
    }),
    scratchBytes: Math.max(4, groupedScratchBytes(spec.M, layout)),
  };
}

class GroupedWriter {
  private readonly acc: Local<"v128">[][];
  private readonly nT: number;
  private readonly lastRows: number;

  constructor(
    private readonly s: BsrSpec,
    private readonly layout: GroupedLayout,
    private readonly target: KernelTarget,
    private readonly TR: number,
    private readonly act: Activation | undefined,
  ) {
    this.acc = Array.from({ length: TR }, (_, r) => [0, 1].map((v) => local.v128(`c${r}_${v}`)));
    this.nT = Math.ceil(s.M / TR);
    this.lastRows = s.M - (this.nT - 1) * TR;
  }

  private get offsets(): Local<"i32">[] {
    return this.layout.vectorStores ? [OFF[0], OFF[4]] : OFF;
  }

  get locals(): Local[] {
    return [...Object.values(L), ...this.offsets, X, ...BV, ...this.acc.flat(), ...(this.act?.locals ?? [])];
  }

  body(): Code {
    const { s, layout, TR } = this;
    const G = layout.groups.length;
    // (block $gdone (block $g{G-1} ... (block $g0 (br_table ...)) group 0 (br $gdone)) ...)
    const labels = layout.groups.map((_, i) => `g${i}`);
    let dispatch: Code = br_table(labels, get(L.g));
    layout.groups.forEach((g, i) => {
      dispatch = [block(labels[i], dispatch), this.groupSetup(g), br("gdone")];
    });
    return [
      threadRange(this.nT, L.start, L.end),
      if_(i32.ge_u(get(L.start), get(L.end)), return_()),
      this.act?.setup,
      set(L.g, int(0)),
      loop(
        "groups",
        set(L.m, i32.mul(get(L.start), int(TR))),
        set(L.mend, i32.mul(get(L.end), int(TR))),
        if_(i32.gt_u(get(L.mend), int(s.M)), set(L.mend, int(s.M))),
        set(L.pp0, add(get(P.scratch), i32.mul(get(L.m), int(4 * layout.lda)))),
        block("gdone", dispatch),
        set(L.t, get(L.start)),
        loop(
          "tiles",
          set(L.pp0, add(get(P.scratch), i32.mul(get(L.t), int(4 * TR * layout.lda)))),
          this.panels(),
          set(L.t, add(get(L.t), int(1))),
          br_if("tiles", i32.lt_u(get(L.t), get(L.end))),
        ),
        set(L.g, add(get(L.g), int(1))),
        br_if("groups", i32.lt_u(get(L.g), int(G))),
      ),
    ];
  }

  /** Group `g`'s constants, and the gather of its columns for the call's tokens $m .. $mend - 1. */
  private groupSetup(g: GroupLayout): Code {
    const { s, layout } = this;
    const lda = layout.lda;
    // Per 4 panel columns: one vector load where they are 4 consecutive x columns, else a lane
    // load per column (lanes past the last kept column stay zero); one vector store.
    const copies = gatherQuads(g.kept).map(({ src, consecutive }, i) => {
      const quad = consecutive ? v128.load(get(L.px), { offset: 4 * src[0] }) : src.slice(1).reduce(
        (e: V128, c, l) => v128.load32_lane(l + 1, get(L.px), e, { offset: 4 * c }),
        v128.load32_zero(get(L.px), { offset: 4 * src[0] }),
      );
      return v128.store(get(L.pp), quad, { offset: 16 * i });
    });
    const gather = g.Kp > 0 && [
      set(L.px, add(get(P.x), i32.mul(get(L.m), int(4 * s.K)))),
      set(L.pp, get(L.pp0)),
      loop(
        "gather",
        copies,
        set(L.px, add(get(L.px), int(4 * s.K))),
        set(L.pp, add(get(L.pp), int(4 * lda))),
        set(L.m, add(get(L.m), int(1))),
        br_if("gather", i32.lt_u(get(L.m), get(L.mend))),
      ),
    ];
    return [
      comment(`group: ${g.rows.length} block rows, ${g.features.length} outputs, ${g.kept.length} columns`),
      gather,
      set(L.kq, int(g.Kp)),
      set(L.nj, int(g.panels)),
      set(L.pw, add(get(P.data), int(4 * g.dataOffset))),
      set(L.pidx, add(get(P.index), int(4 * g.indexOffset))),
    ];
  }

  /** Every panel of 8 outputs of the group, for the tile $t (its columns gathered at $pp0). */
  private panels(): Code {
    const { s, TR } = this;
    const offs = this.offsets;
    return [
      set(L.pc, add(get(P.y), i32.mul(get(L.t), int(4 * TR * s.N)))),
      set(L.pb, get(L.pw)),
      set(L.pi, get(L.pidx)),
      set(L.j, int(0)),
      loop(
        "panels",
        offs.map((o) => set(o, i32.load(get(L.pi), { offset: 4 * OFF.indexOf(o) }))),
        set(L.pa, get(L.pp0)),
        this.acc.map((row) => row.map((c) => set(c, i32x4.const(0)))),
        if_(i32.ne(get(L.kq), int(0)), [
          set(L.kend, add(get(L.pa), i32.shl(get(L.kq), int(2)))),
          loop(
            "k",
            [0, 1, 2, 3].map((k) => this.kStep(k)),
            set(L.pa, add(get(L.pa), int(16))),
            set(L.pb, add(get(L.pb), int(16 * GROUP_PANEL))),
            br_if("k", i32.ne(get(L.pa), get(L.kend))),
          ),
        ]),
        this.lastRows === TR
          ? this.epilogue(TR)
          : this.nT === 1
          ? this.epilogue(this.lastRows)
          : if_(i32.eq(get(L.t), int(this.nT - 1)), this.epilogue(this.lastRows), this.epilogue(TR)),
        set(L.pi, add(get(L.pi), int(4 * GROUP_PANEL))),
        set(L.j, add(get(L.j), int(1))),
        br_if("panels", i32.lt_u(get(L.j), get(L.nj))),
      ),
    ];
  }

  /** K step `k` of 4: two weight vectors, one splat per token row, 2 multiply-adds per row. */
  private kStep(k: number): Code {
    const lda = this.layout.lda;
    return [
      BV.map((b, v) => set(b, v128.load(get(L.pb), { offset: 4 * (k * GROUP_PANEL + 4 * v) }))),
      this.acc.map((row, r) => [
        set(X, v128.load32_splat(get(L.pa), { offset: 4 * (r * lda + k) })),
        row.map((c, v) => set(c, madd(this.target, get(X), get(BV[v]), get(c)))),
      ]),
    ];
  }

  /**
   * Bias, activation (inline, 4 vectors at a time interleaved, as the dense GEMM's) and stores of
   * the tile's first `rows` token rows to their output rows.
   */
  private epilogue(rows: number): Code {
    const { s, layout, act } = this;
    const N = s.N;
    const at = (o: Local<"i32">, base: Local<"i32">) => add(get(base), get(o));
    const biasVec = (v: number): V128 => {
      if (layout.vectorStores) return v128.load(at(OFF[4 * v], P.bias));
      let e: V128 = v128.load32_zero(at(OFF[4 * v], P.bias));
      for (let l = 1; l < 4; l++) e = v128.load32_lane(l, at(OFF[4 * v + l], P.bias), e);
      return e;
    };
    const outputs = this.acc.slice(0, rows).flatMap((row, r) => row.map((c, v) => ({ c, v, r })));
    const value = (o: (typeof outputs)[number]): V128 =>
      s.bias ? f32x4.add(get(o.c), get(BV[o.v])) : get(o.c);
    const store = (o: (typeof outputs)[number], e: V128): Code => {
      if (layout.vectorStores) return v128.store(at(OFF[4 * o.v], L.pc), e, { offset: 4 * N * o.r });
      return [
        set(o.c, e),
        [0, 1, 2, 3].map((l) =>
          v128.store32_lane(l, at(OFF[4 * o.v + l], L.pc), get(o.c), { offset: 4 * N * o.r })
        ),
      ];
    };
    const stores = (): Code => {
      if (!act) return outputs.map((o) => store(o, value(o)));
      const n = act.inputs.length;
      return Array.from({ length: Math.ceil(outputs.length / n) }, (_, i) => {
        const group = outputs.slice(i * n, (i + 1) * n);
        const snippets = group.map((_, slot) => act.apply(slot));
        return [
          group.map((o, slot) => set(act.inputs[slot], value(o))),
          interleave(snippets),
          group.map((o, slot) => store(o, snippets[slot].result)),
        ];
      });
    };
    return [s.bias && BV.map((b, v) => set(b, biasVec(v))), stores()];
  }
}
