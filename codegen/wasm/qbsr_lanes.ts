/**
 * The int8 block-sparse product (codegen/wasm/qbsr.ts) for blocks of 4 rows (4 x C, C a multiple
 * of 4), with the tokens in the lanes. The activations come in panels of {@link QBSR_PANEL} rows
 * (codegen/wasm/quantize_rows.ts, `panel`), so a block column's 4 inputs of 4 rows are one vector,
 * and each of the block's 4 channels has its 4 weights broadcast. Per 4x4 block and 8 rows that is
 * 2 activation loads, 4 weight broadcasts and 8 dots, where broadcasting each row's activations
 * takes 8 loads and one weight load: 15-16% faster at BERT-base shapes (AMD EPYC, one thread). The
 * accumulators hold one channel's sums for 4 rows; the epilogue transposes each 4x4 of them into
 * rows of 4 channels and goes on as codegen/wasm/qtile.ts's does.
 */

import { forRange, kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import type { QBsrSpec } from "./qbsr.ts";
import {
  activationOf,
  blockRowPointers,
  byDotForm,
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
  r,
  row0,
  SCALES,
  start,
  sumOf,
  W,
  XQ,
  xrow,
  Y,
} from "./qtile.ts";
import {
  block as block_,
  br_if,
  type Code,
  i32,
  i32x4,
  i8x16,
  if_,
  type Local,
  local,
  loop,
  v128,
} from "./wat.ts";

/** Rows per panel of the activations this kernel reads. */
export const QBSR_PANEL = 8;

/** Byte lanes of a shuffle taking i32 lanes `lanes` (0-3 of a, 4-7 of b). */
const i32Lanes = (lanes: readonly number[]) => lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);

/**
 * The product for blocks of 4 rows. Params as qbsr.ts's (xq in panels of {@link QBSR_PANEL} rows,
 * `ldq` bytes a row); then tid, nt.
 */
export function qbsrLanesKernel(spec: QBsrSpec, target: KernelTarget): WasmKernel {
  const { M, N, ldq, blockRows, ldc, activation, dot = "probe" } = spec;
  const [R, C] = spec.block;
  if (R !== 4 || C % 4 !== 0 || blockRows !== Math.ceil(N / R) || ldc < N || ldq % C !== 0) {
    throw new Error(`qbsrLanesKernel: bad spec ${JSON.stringify(spec)}`);
  }
  // Rows per tile: two vectors of 4 (8 accumulators: 4 channels x 2) with relaxed SIMD; one with
  // plain SIMD, whose dot keeps two halves per vector.
  const groups = target.relaxedSimd ? 2 : 1, MT = 4 * groups, tiles = Math.ceil(M / MT), Np = blockRows * R;
  const activate = activationOf(activation, target);
  const halves = target.relaxedSimd ? 1 : 2;
  /** The accumulators of channel n, rows 4g .. 4g + 3 (after the transposition: row 4g + n, 4 channels). */
  const acc = Array.from({ length: 4 * groups * halves }, (_, i) => local.v128(`acc${i}`));
  const accsOf = (n: number, g: number) =>
    acc.slice((n * groups + g) * halves, (n * groups + g + 1) * halves);
  const xv = Array.from({ length: groups }, (_, g) => local.v128(`x${g}`));
  const ws = local.v128("ws");
  const t = Array.from({ length: 4 }, (_, i) => local.v128(`t${i}`));

  /** Rows 4g .. 4g + 3 of 4 channels each, from channel sums of 4 rows each: a 4x4 transposition (in place). */
  const transpose = (g: number): Code => {
    const [a0, a1, a2, a3] = [0, 1, 2, 3].map((n) => accsOf(n, g)[0]);
    const sh = (a: Local<"v128">, b: Local<"v128">, lanes: number[]) =>
      i8x16.shuffle(i32Lanes(lanes), local.get(a), local.get(b));
    return [
      // Plain SIMD: the halves' pairs added first.
      halves === 2 && [0, 1, 2, 3].map((n) => local.set(accsOf(n, g)[0], sumOf(accsOf(n, g)))),
      local.set(t[0], sh(a0, a1, [0, 4, 1, 5])),
      local.set(t[1], sh(a2, a3, [0, 4, 1, 5])),
      local.set(t[2], sh(a0, a1, [2, 6, 3, 7])),
      local.set(t[3], sh(a2, a3, [2, 6, 3, 7])),
      local.set(a0, sh(t[0], t[1], [0, 1, 4, 5])),
      local.set(a1, sh(t[0], t[1], [2, 3, 6, 7])),
      local.set(a2, sh(t[2], t[3], [0, 1, 4, 5])),
      local.set(a3, sh(t[2], t[3], [2, 3, 6, 7])),
    ];
  };

  const tileCode = (form: "fused" | "split", rows: number, lastBlockRow: boolean): Code => {
    const block: Code = Array.from({ length: C / 4 }, (_, c) => [
      xv.map((x, g) => local.set(x, v128.load(local.get(pa), { offset: 4 * QBSR_PANEL * c + 16 * g }))),
      Array.from({ length: 4 }, (_, n) => [
        local.set(ws, v128.load32_splat(local.get(pb), { offset: 16 * c + 4 * n })),
        // The relaxed dot's second operand must be the 7-bit activations; plain SIMD widens the
        // first one's halves, which must then be the 4 rows' activations.
        xv.map((x, g) =>
          target.relaxedSimd
            ? dotInto(target, form, accsOf(n, g), ws, x)
            : dotInto(target, form, accsOf(n, g), x, ws)
        ),
      ]),
    ]);
    const at: EpilogueAt = { Np, bias: spec.bias, activate, ldc, tmp: ws };
    const lanes = lastBlockRow ? Math.min(4, N - (blockRows - 1) * R) : 4;
    return [
      acc.map((a) => local.set(a, i32x4.const(0))),
      block_("blocks", [
        br_if("blocks", i32.ge_u(local.get(pb), local.get(pbend))),
        loop(
          "b",
          // pa: the tile's rows at the block's first input group (input · 4P / 4 bytes into the panel).
          local.set(pa, i32.add(local.get(xrow), i32.mul(i32.load(local.get(pj)), i32.const(QBSR_PANEL)))),
          block,
          local.set(pj, i32.add(local.get(pj), i32.const(4))),
          local.set(pb, i32.add(local.get(pb), i32.const(R * C))),
          br_if("b", i32.lt_u(local.get(pb), local.get(pbend))),
        ),
      ]),
      Array.from({ length: groups }, (_, g) => 4 * g < rows && transpose(g)),
      epilogue(
        at,
        Array.from(
          { length: rows },
          (_, row) => ({ acc: accsOf(row % 4, row >> 2).slice(0, 1), row, v: 0, lanes }),
        ),
      ),
    ];
  };
  const rowTail = M % MT;
  const byRows = (form: "fused" | "split", last: boolean): Code =>
    rowTail === 0 ? tileCode(form, MT, last) : tiles === 1 ? tileCode(form, rowTail, last) : if_(
      i32.eq(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(tiles - 1)),
      tileCode(form, rowTail, last),
      tileCode(form, MT, last),
    );
  const tilesLoop = (form: "fused" | "split"): Code =>
    forRange(it, start, end, "tiles", [
      // Block row br = it / tiles (in r), first row row0 = (it % tiles) · MT, at byte
      // (row0 / P) · P · ldq + (row0 % P) · 4 of xq.
      local.set(r, i32.div_u(local.get(it), i32.const(tiles))),
      local.set(row0, i32.mul(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(MT))),
      local.set(
        xrow,
        i32.add(
          local.get(XQ),
          i32.add(
            i32.mul(i32.div_u(local.get(row0), i32.const(QBSR_PANEL)), i32.const(QBSR_PANEL * ldq)),
            i32.shl(i32.rem_u(local.get(row0), i32.const(QBSR_PANEL)), i32.const(2)),
          ),
        ),
      ),
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
    name: `qbsr_lanes_m${M}_n${N}_ldq${ldq}_b${R}x${C}_ldc${ldc}${spec.bias ? "_bias" : ""}${
      activate ? `_${activation}` : ""
    }_${target.relaxedSimd ? `rdot${dot === "probe" ? "" : `_${dot}`}` : "dot16"}`,
    params: [XQ, SCALES, W, IDX, EPI, Y],
    comment: `y[${M}, ${N}] = dequant(xq · wᵀ), w int8 BSR in ${R}x${C} blocks` +
      `${spec.bias ? " + bias" : ""}${
        activate ? `, ${activation}` : ""
      }; tokens in lanes, tiles of ${MT} rows`,
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
      ...xv,
      ws,
      ...t,
      ...(activate?.locals ?? []),
    ],
    body,
    uses: [],
  });
}
