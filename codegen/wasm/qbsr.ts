/**
 * The int8 block-sparse product of `qdense` over an int8 BSR weight whose blocks are made of 4x4
 * ones (`packQBsr`'s layout, codegen/qpack.ts), after the row quantizer
 * (codegen/wasm/quantize_rows.ts), with the int8 GEMM's dot step and epilogue
 * (codegen/wasm/qtile.ts). Blocks of 4 rows go to codegen/wasm/qbsr_lanes.ts, which wants the
 * activations in panels ({@link qbsrPanel}).
 */

import { forRange, kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import { QBSR_PANEL, qbsrLanesKernel } from "./qbsr_lanes.ts";
import {
  activationOf,
  blockRowPointers,
  byDotForm,
  type DotForm,
  dotInto,
  end,
  EPI,
  epilogue,
  type EpilogueAt,
  IDX,
  it,
  j,
  jend,
  pa,
  pb,
  pbend,
  pj,
  ps,
  pw,
  py,
  type QActivation,
  r,
  row0,
  SCALES,
  start,
  W,
  XQ,
  xrow,
  Y,
} from "./qtile.ts";
import { block as block_, br_if, type Code, i32, i32x4, if_, local, loop, v128 } from "./wat.ts";

/** The int8 block-sparse product's shape, block and epilogue. */
export interface QBsrSpec {
  /** Rows (tokens). */
  M: number;
  /** Output channels. */
  N: number;
  /** Bytes between rows of the quantized activations (>= the block grid's inputs). */
  ldq: number;
  /** The block shape, multiples of 4. */
  block: [number, number];
  /** Block rows: ceil(N / R). */
  blockRows: number;
  /** Elements between rows of y (>= N). */
  ldc: number;
  bias: boolean;
  activation: QActivation;
  /** How the relaxed-SIMD dot step is written (qtile.ts); `probe` by default. */
  dot?: DotForm;
}

/**
 * How the activations of a block-sparse product over blocks of `block` must be laid out: in
 * panels of this many rows (quantize_rows.ts's `panel`) for blocks of 4 rows, which
 * codegen/wasm/qbsr_lanes.ts runs; else row after row (undefined).
 */
export function qbsrPanel(block: readonly number[]): number | undefined {
  return block[0] === 4 ? QBSR_PANEL : undefined;
}

/** Rows per tile of the block-sparse kernel: 8 accumulators (and the block row's weights) in registers. */
function qbsrRows(R: number, target: KernelTarget): number {
  return Math.max(1, Math.floor((target.relaxedSimd ? 8 : 4) / (R / 4)));
}

/**
 * The int8 block-sparse product (`qbsr_dense`): for each block row and tile of rows, every
 * stored block, as R/4 x C/4 sub-blocks of 16 bytes, each one dot (or two) per row with 4
 * activation bytes broadcast; blocks of 4 rows by qbsr_lanes.ts, with the activations in panels
 * of {@link qbsrPanel} rows. Params (byte addresses): xq, scales, w (`packQBsr`'s data), index
 * (`packQBsr`'s), the epilogue block (`blockRows · R` channels per part), y; then tid, nt.
 */
export function qbsrKernel(spec: QBsrSpec, target: KernelTarget): WasmKernel {
  const { M, N, ldq, blockRows, ldc, activation, dot = "probe" } = spec;
  const [R, C] = spec.block;
  if (R % 4 !== 0 || C % 4 !== 0 || blockRows !== Math.ceil(N / R) || ldc < N) {
    throw new Error(`qbsrKernel: bad spec ${JSON.stringify(spec)}`);
  }
  if (qbsrPanel(spec.block)) return qbsrLanesKernel(spec, target);
  const MR = qbsrRows(R, target), V = R / 4, tiles = Math.ceil(M / MR), Np = blockRows * R;
  const activate = activationOf(activation, target);
  const halves = target.relaxedSimd ? 1 : 2;
  const acc = Array.from({ length: MR * V * halves }, (_, i) => local.v128(`acc${i}`));
  const accsOf = (row: number, v: number) => acc.slice((row * V + v) * halves, (row * V + v + 1) * halves);
  const wv = Array.from({ length: V }, (_, i) => local.v128(`w${i}`));
  const xs = local.v128("xs");

  const tileCode = (form: "fused" | "split", rows: number, lastBlockRow: boolean): Code => {
    const block: Code = Array.from({ length: C / 4 }, (_, c) => [
      Array.from(
        { length: V },
        (_, v) => local.set(wv[v], v128.load(local.get(pb), { offset: (v * (C / 4) + c) * 16 })),
      ),
      Array.from({ length: rows }, (_, row) => [
        local.set(xs, v128.load32_splat(local.get(pa), { offset: row * ldq + 4 * c })),
        Array.from({ length: V }, (_, v) => dotInto(target, form, accsOf(row, v), wv[v], xs)),
      ]),
    ]);
    const at: EpilogueAt = { Np, bias: spec.bias, activate, ldc, tmp: xs };
    const lanes = (v: number) =>
      lastBlockRow ? Math.max(0, Math.min(4, N - ((blockRows - 1) * R + 4 * v))) : 4;
    return [
      acc.slice(0, rows * V * halves).map((a) => local.set(a, i32x4.const(0))),
      block_("blocks", [
        br_if("blocks", i32.ge_u(local.get(pb), local.get(pbend))),
        loop(
          "b",
          // pa: this tile's first row at the block's first input; pb: the block's bytes; pj: its index entry.
          local.set(pa, i32.add(local.get(xrow), i32.load(local.get(pj)))),
          block,
          local.set(pj, i32.add(local.get(pj), i32.const(4))),
          local.set(pb, i32.add(local.get(pb), i32.const(R * C))),
          br_if("b", i32.lt_u(local.get(pb), local.get(pbend))),
        ),
      ]),
      epilogue(
        at,
        Array.from({ length: rows * V }, (_, i) => {
          const row = Math.floor(i / V), v = i % V;
          return { acc: accsOf(row, v), row, v, lanes: lanes(v) };
        }),
      ),
    ];
  };
  const rowTail = M % MR;
  const byRows = (form: "fused" | "split", last: boolean): Code =>
    rowTail === 0 ? tileCode(form, MR, last) : tiles === 1 ? tileCode(form, rowTail, last) : if_(
      i32.eq(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(tiles - 1)),
      tileCode(form, rowTail, last),
      tileCode(form, MR, last),
    );
  const tilesLoop = (form: "fused" | "split"): Code =>
    forRange(it, start, end, "tiles", [
      // Block row br = it / tiles (in r), first row row0 = (it % tiles) · MR.
      local.set(r, i32.div_u(local.get(it), i32.const(tiles))),
      local.set(row0, i32.mul(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(MR))),
      local.set(xrow, i32.add(local.get(XQ), i32.mul(local.get(row0), i32.const(ldq)))),
      // The block row's blocks j .. jend - 1: their bytes from pb to pbend, their index entries from pj.
      blockRowPointers(R, C, blockRows, ldc),
      N % R === 0 || blockRows === 1 ? byRows(form, N % R !== 0) : if_(
        i32.eq(local.get(r), i32.const(blockRows - 1)),
        byRows(form, true),
        byRows(form, false),
      ),
    ]);
  const body: Code = [
    activate?.setup,
    threadRange(blockRows * tiles, start, end),
    byDotForm(target, dot, tilesLoop),
  ];
  return kernel({
    name: `qbsr_m${M}_n${N}_ldq${ldq}_b${R}x${C}_ldc${ldc}${spec.bias ? "_bias" : ""}${
      activate ? `_${activation}` : ""
    }_${target.relaxedSimd ? `rdot${dot === "probe" ? "" : `_${dot}`}` : "dot16"}`,
    params: [XQ, SCALES, W, IDX, EPI, Y],
    comment: `y[${M}, ${N}] = dequant(xq · wᵀ), w int8 BSR in ${R}x${C} blocks` +
      `${spec.bias ? " + bias" : ""}${activate ? `, ${activation}` : ""}; tiles of ${MR} rows`,
    locals: [
      start,
      end,
      r,
      it,
      pa,
      pb,
      pw,
      py,
      ps,
      j,
      jend,
      row0,
      xrow,
      pj,
      pbend,
      ...acc,
      ...wv,
      xs,
      ...(activate?.locals ?? []),
    ],
    body,
    uses: [],
  });
}
