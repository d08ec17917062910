/**
 * The int8 GEMM of `qdense` (ir/ops/qdense.ts) over a dense int8 weight in qpack's layout
 * (codegen/qpack.ts), after the row quantizer (codegen/wasm/quantize_rows.ts), with the
 * dequantization, bias and activation in its epilogue (codegen/wasm/qtile.ts). Tiles of rows x
 * (4 · vecs) channels live in registers over K; threads take contiguous ranges of tiles, visited
 * channel panel by panel.
 */

import { forRange, kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import {
  activationOf,
  byDotForm,
  type DotForm,
  dotInto,
  end,
  EPI,
  epilogue,
  type EpilogueAt,
  it,
  k,
  kend,
  pa,
  pb,
  ps,
  pw,
  py,
  type QActivation,
  r,
  SCALES,
  start,
  W,
  XQ,
  Y,
} from "./qtile.ts";
import { br_if, type Code, i32, i32x4, if_, local, loop, v128 } from "./wat.ts";

/** The GEMM's shape and epilogue. */
export interface QGemmSpec {
  /** Rows. */
  M: number;
  /** Output channels, and the padded count the weight layout has. */
  N: number;
  Np: number;
  /** Bytes per quantized row (K padded to a multiple of 4). */
  Kp: number;
  /** Elements between rows of y (>= N). */
  ldc: number;
  /** A bias [N] is added. */
  bias: boolean;
  /** Applied last. */
  activation: QActivation;
  /** How the relaxed-SIMD dot step is written (qtile.ts); `probe` by default. */
  dot?: DotForm;
}

/** Tile shape per target: rows x vecs groups of 4 channels (8 accumulators either way). */
function tileOf(target: KernelTarget): { rows: number; vecs: number } {
  return target.relaxedSimd ? { rows: 4, vecs: 2 } : { rows: 4, vecs: 1 };
}

/**
 * The int8 GEMM. Params (byte addresses): xq, scales, w (qpack's layout), the epilogue block
 * (`Np` i32 corrections, `Np` f32 weight scales, then with a bias `Np` f32 biases), y; then tid, nt.
 */
export function qgemmKernel(spec: QGemmSpec, target: KernelTarget): WasmKernel {
  const { M, N, Np, Kp, ldc, activation, dot = "probe" } = spec;
  if (Np !== Math.ceil(N / 4) * 4 || Kp % 4 !== 0 || Kp < 4 || ldc < N) {
    throw new Error(`qgemmKernel: bad spec ${JSON.stringify(spec)}`);
  }
  const { rows: MR, vecs: NV } = tileOf(target);
  const G = Np / 4, panels = Math.ceil(G / NV), tiles = Math.ceil(M / MR);
  const steps = Kp / 4, unroll = steps % 4 === 0 ? 4 : steps % 2 === 0 ? 2 : 1;
  const activate = activationOf(activation, target);
  const halves = target.relaxedSimd ? 1 : 2;
  const acc = Array.from({ length: MR * NV * halves }, (_, i) => local.v128(`acc${i}`));
  const wv = Array.from({ length: NV }, (_, i) => local.v128(`w${i}`));
  const xs = local.v128("xs");
  const accOf = (row: number, v: number, half = 0) => acc[(row * NV + v) * halves + half];
  const accsOf = (row: number, v: number) => acc.slice((row * NV + v) * halves, (row * NV + v + 1) * halves);

  /** Straight-line code of one tile of `rows` rows and `vecs` groups; the last group stores `lanes` lanes. */
  const tileCode = (form: "fused" | "split", rows: number, vecs: number, lanes: number): Code => {
    const kStep = (j: number): Code => [
      Array.from(
        { length: vecs },
        (_, v) => local.set(wv[v], v128.load(local.get(pb), { offset: v * Kp * 4 + 16 * j })),
      ),
      Array.from({ length: rows }, (_, row) => [
        local.set(xs, v128.load32_splat(local.get(pa), { offset: row * Kp + 4 * j })),
        Array.from({ length: vecs }, (_, v) => dotInto(target, form, accsOf(row, v), wv[v], xs)),
      ]),
    ];
    const at: EpilogueAt = { Np, bias: spec.bias, activate, ldc, tmp: xs };
    return [
      Array.from(
        { length: rows },
        (_, row) =>
          Array.from(
            { length: vecs },
            (_, v) =>
              Array.from({ length: halves }, (_, half) => local.set(accOf(row, v, half), i32x4.const(0))),
          ),
      ),
      local.set(kend, i32.add(local.get(pa), i32.const(Kp))),
      loop(
        "k",
        Array.from({ length: unroll }, (_, j) => kStep(j)),
        local.set(pa, i32.add(local.get(pa), i32.const(4 * unroll))),
        local.set(pb, i32.add(local.get(pb), i32.const(16 * unroll))),
        br_if("k", i32.lt_u(local.get(pa), local.get(kend))),
      ),
      epilogue(
        at,
        Array.from({ length: rows * vecs }, (_, i) => {
          const row = Math.floor(i / vecs), v = i % vecs;
          return { acc: accsOf(row, v), row, v, lanes: v === vecs - 1 ? lanes : 4 };
        }),
      ),
    ];
  };

  // Tile `it`: channel panel it / tiles, row tile it % tiles. The last panel may have fewer groups
  // (and a last group of fewer than 4 channels), the last row tile fewer rows.
  const rowTail = M % MR, groupTail = G % NV, laneTail = N % 4 || 4;
  const byRows = (form: "fused" | "split", vecs: number, lanes: number): Code =>
    rowTail === 0
      ? tileCode(form, MR, vecs, lanes)
      : tiles === 1
      ? tileCode(form, rowTail, vecs, lanes)
      : if_(
        i32.eq(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(tiles - 1)),
        tileCode(form, rowTail, vecs, lanes),
        tileCode(form, MR, vecs, lanes),
      );
  const tilesLoop = (form: "fused" | "split"): Code =>
    forRange(it, start, end, "tiles", [
      // Row r0 = (it % tiles) · MR; group g0 = (it / tiles) · NV.
      local.set(r, i32.mul(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(MR))),
      local.set(k, i32.mul(i32.div_u(local.get(it), i32.const(tiles)), i32.const(NV))),
      local.set(pa, i32.add(local.get(XQ), i32.mul(local.get(r), i32.const(Kp)))),
      local.set(pb, i32.add(local.get(W), i32.mul(local.get(k), i32.const(Kp * 4)))),
      local.set(ps, i32.add(local.get(SCALES), i32.shl(local.get(r), i32.const(2)))),
      // The epilogue block: correction, w_scale and bias back to back, Np entries each; at group g0.
      local.set(pw, i32.add(local.get(EPI), i32.shl(local.get(k), i32.const(4)))),
      local.set(
        py,
        i32.add(
          local.get(Y),
          i32.add(i32.mul(local.get(r), i32.const(ldc * 4)), i32.shl(local.get(k), i32.const(4))),
        ),
      ),
      panels === 1 ? byRows(form, groupTail || NV, laneTail) : if_(
        i32.eq(i32.div_u(local.get(it), i32.const(tiles)), i32.const(panels - 1)),
        byRows(form, groupTail || NV, laneTail),
        byRows(form, NV, 4),
      ),
    ]);
  const body: Code = [
    activate?.setup,
    threadRange(panels * tiles, start, end),
    byDotForm(target, dot, tilesLoop),
  ];
  return kernel({
    name: `qgemm_m${M}_n${N}_kp${Kp}_ldc${ldc}${spec.bias ? "_bias" : ""}${
      activate ? `_${activation}` : ""
    }_${target.relaxedSimd ? `rdot${dot === "probe" ? "" : `_${dot}`}` : "dot16"}`,
    params: [XQ, SCALES, W, EPI, Y],
    comment: `y[${M}, ${N}] = dequant(xq · wᵀ) over ${Kp} int8 inputs` +
      `${spec.bias ? " + bias" : ""}${activate ? `, ${activation}` : ""}; tiles ${MR}x${4 * NV}`,
    locals: [start, end, r, k, kend, it, pa, pb, pw, py, ps, ...acc, ...wv, xs, ...(activate?.locals ?? [])],
    body,
    uses: [],
  });
}
