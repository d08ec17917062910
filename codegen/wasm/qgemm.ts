/**
 * The int8 kernels of `qdense` (ir/ops/qdense.ts): a row quantizer and an int8 GEMM with the
 * dequantization, bias and activation in its epilogue.
 *
 * `quantize_rows` turns each row of x (f32 `[M, K]`) into its scale s (per row: max |x| / act_max,
 * 1 for a zero row; or the static scale) and bytes `round_half_even(x / s)` clamped to
 * ±act_max, stored offset by +64 (codegen/qpack.ts: `ACT_OFFSET`) so that every byte lies in
 * [0, 127] when act_max <= 63: a row of `Kp` bytes, the padding quantized from 0.
 *
 * `qgemm` multiplies those bytes by the int8 weight in qpack's layout. With relaxed SIMD one
 * `i32x4.relaxed_dot_i8x16_i7x16_add_s` takes a 16-byte weight block (4 channels x 4 inputs) and
 * 4 activation bytes broadcast to every lane: 16 exact multiply-adds (the activation operand is
 * 7-bit, where the relaxed semantics are exact: VNNI's u8 x s8 on x86). Without relaxed SIMD the
 * same blocks go through `i32x4.dot_i16x8_s` after widening to i16, two channels per half, and
 * the pairs are added at the end. Either way the integer sum minus `64 · Σ_k w` is exact, then
 * `y = f32(acc) · (s · w_scale[n]) + bias[n]`, the activation, as the op defines it. Tiles of
 * rows x (4 · vecs) channels live in registers over K; threads take contiguous ranges of tiles,
 * visited channel panel by panel.
 */

import { ACT_OFFSET } from "../qpack.ts";
import { forRange, kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import {
  block as block_,
  br_if,
  call,
  type Code,
  f32,
  f32x4,
  i16x8,
  i32,
  i32x4,
  i8x16,
  if_,
  type Local,
  local,
  loop,
  type V128,
  v128,
} from "./wat.ts";

/** The row quantizer's shape and scale. */
export interface QuantizeRowsSpec {
  /** Rows of x. */
  M: number;
  /** Elements per row of x. */
  K: number;
  /** Bytes quantized per row: K rounded up to a multiple of 4. */
  Kp: number;
  /** Bytes between quantized rows (>= Kp; Kp by default): a block-sparse product reads whole block columns. */
  ldq?: number;
  /** The largest quantized magnitude, 1 to 63. */
  actMax: number;
  /** The static scale, or 0 for each row's own. */
  actScale: number;
}

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
  activation: "none" | "gelu" | "gelu_tanh" | "tanh";
}

/** The math.ts helper of each activation. */
const HELPERS = { gelu: "gelu_f32x4", gelu_tanh: "gelu_tanh_f32x4", tanh: "tanh_f32x4" } as const;

const [X, XQ, SCALES, W, EPI, Y] = ["x", "xq", "scales", "w", "epilogue", "y"].map(local.i32);
const [start, end, r, k, kend, px, pq, it, pa, pb, pw, py, ps] = [
  "start",
  "end",
  "r",
  "k",
  "kend",
  "px",
  "pq",
  "it",
  "pa",
  "pb",
  "pw",
  "py",
  "ps",
].map(local.i32);
const [amax, s] = ["amax", "s"].map(local.f32);
const [vmax, vs] = ["vmax", "vs"].map(local.v128);

/** Quantizes four f32 lanes by the splatted scale `vs` into i32 lanes in [-A, A]. */
function quantize4(v: V128, A: number): V128 {
  const q = f32x4.nearest(f32x4.div(v, local.get(vs)));
  return i32x4.trunc_sat_f32x4_s(f32x4.min(f32x4.max(q, f32x4.const(-A)), f32x4.const(A)));
}

/** Four i32 lanes (each in [-63, 63]) as offset bytes in lanes 0-3. */
const bytes4 = (q: V128): V128 => {
  const h = i16x8.narrow_i32x4_s(q, q);
  return i8x16.add(i8x16.narrow_i16x8_s(h, h), i8x16.splat_const(ACT_OFFSET));
};

/** The row quantizer. Params: x, xq, scales (byte addresses), then tid, nt. */
export function quantizeRowsKernel(spec: QuantizeRowsSpec, _target: KernelTarget): WasmKernel {
  const { M, K, Kp, actMax, actScale } = spec;
  const ldq = spec.ldq ?? Kp;
  if (!(actMax >= 1 && actMax <= 63) || Kp !== Math.ceil(K / 4) * 4 || ldq < Kp) {
    throw new Error(`quantizeRowsKernel: bad spec ${JSON.stringify(spec)}`);
  }
  const k16 = Math.floor(K / 16), k4 = Math.floor(K / 4), tail = K % 4;
  const f32Load = (at: number) => f32.load(local.get(px), { offset: at * 4 });
  const scan: Code = actScale > 0 ? local.set(s, f32.const(actScale)) : [
    local.set(vmax, f32x4.const(0)),
    k4 > 0 && [
      local.set(k, i32.const(0)),
      loop(
        "scan",
        local.set(
          vmax,
          f32x4.max(
            local.get(vmax),
            f32x4.abs(v128.load(i32.add(local.get(px), i32.shl(local.get(k), i32.const(4))))),
          ),
        ),
        local.set(k, i32.add(local.get(k), i32.const(1))),
        br_if("scan", i32.lt_u(local.get(k), i32.const(k4))),
      ),
    ],
    local.set(
      amax,
      f32.max(
        f32.max(f32x4.extract_lane(0, local.get(vmax)), f32x4.extract_lane(1, local.get(vmax))),
        f32.max(f32x4.extract_lane(2, local.get(vmax)), f32x4.extract_lane(3, local.get(vmax))),
      ),
    ),
    Array.from(
      { length: tail },
      (_, j) => local.set(amax, f32.max(local.get(amax), f32.abs(f32Load(4 * k4 + j)))),
    ),
    local.set(s, f32.div(local.get(amax), f32.const(actMax))),
    if_(f32.eq(local.get(amax), f32.const(0)), local.set(s, f32.const(1))),
  ];
  const vec = (i: number) => v128.load(local.get(px), { offset: 16 * i });
  const body: Code = [
    threadRange(M, start, end),
    forRange(r, start, end, "rows", [
      local.set(px, i32.add(local.get(X), i32.mul(local.get(r), i32.const(K * 4)))),
      local.set(pq, i32.add(local.get(XQ), i32.mul(local.get(r), i32.const(ldq)))),
      scan,
      f32.store(i32.add(local.get(SCALES), i32.shl(local.get(r), i32.const(2))), local.get(s)),
      local.set(vs, f32x4.splat(local.get(s))),
      // 16 inputs at a time, then 4, then the last 1-3 with zeros above them (the padding).
      k16 > 0 && [
        local.set(kend, i32.add(local.get(px), i32.const(k16 * 64))),
        loop(
          "q16",
          v128.store(
            local.get(pq),
            i8x16.add(
              i8x16.narrow_i16x8_s(
                i16x8.narrow_i32x4_s(quantize4(vec(0), actMax), quantize4(vec(1), actMax)),
                i16x8.narrow_i32x4_s(quantize4(vec(2), actMax), quantize4(vec(3), actMax)),
              ),
              i8x16.splat_const(ACT_OFFSET),
            ),
          ),
          local.set(px, i32.add(local.get(px), i32.const(64))),
          local.set(pq, i32.add(local.get(pq), i32.const(16))),
          br_if("q16", i32.lt_u(local.get(px), local.get(kend))),
        ),
      ],
      Array.from(
        { length: k4 - 4 * k16 },
        (_, j) => v128.store32_lane(0, local.get(pq), bytes4(quantize4(vec(j), actMax)), { offset: 4 * j }),
      ),
      tail > 0 && v128.store32_lane(
        0,
        local.get(pq),
        bytes4(quantize4(
          Array.from({ length: tail }, (_, j) => j).reduce(
            (v, j) => f32x4.replace_lane(j, v, f32Load(4 * (k4 - 4 * k16) + j)),
            f32x4.const(0),
          ),
          actMax,
        )),
        { offset: 4 * (k4 - 4 * k16) },
      ),
    ]),
  ];
  const kind = actScale > 0 ? `static${String(actScale).replace(/[.+-]/g, "p")}` : "dynamic";
  return kernel({
    name: `quantize_rows_${M}x${K}${ldq !== Kp ? `_ldq${ldq}` : ""}_a${actMax}_${kind}`,
    params: [X, XQ, SCALES],
    comment:
      `${M} rows of ${K} f32 to ${Kp} offset int8 bytes each (|q| <= ${actMax}), scale per row: ${kind}`,
    locals: [start, end, r, k, kend, px, pq, amax, s, vmax, vs],
    body,
  });
}

/** Tile shape per target: rows x vecs groups of 4 channels (8 accumulators either way). */
function tileOf(target: KernelTarget): { rows: number; vecs: number } {
  return target.relaxedSimd ? { rows: 4, vecs: 2 } : { rows: 4, vecs: 1 };
}

/** Byte lanes of i32 lanes [0, 2] of a then b, and [1, 3]: to add the pairs dot_i16x8_s leaves. */
const EVEN = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
const ODD = EVEN.map((b) => b + 4);

/** Accumulators of one output vector: one (relaxed SIMD) or two halves (plain SIMD). */
type Accumulators = readonly Local<"v128">[];

/** `acc += w · xs` over 16 int8 lanes (4 channels x 4 inputs), exactly, on `target`. */
function dotInto(target: KernelTarget, acc: Accumulators, w: Local<"v128">, xs: Local<"v128">): Code {
  if (target.relaxedSimd) {
    return local.set(
      acc[0],
      i32x4.relaxed_dot_i8x16_i7x16_add_s(local.get(w), local.get(xs), local.get(acc[0])),
    );
  }
  const x16 = i16x8.extend_low_i8x16_s(local.get(xs));
  return [
    local.set(
      acc[0],
      i32x4.add(local.get(acc[0]), i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(local.get(w)), x16)),
    ),
    local.set(
      acc[1],
      i32x4.add(local.get(acc[1]), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(local.get(w)), x16)),
    ),
  ];
}

/** The four channels' integer sums of `acc` (plain SIMD: the pairs dot_i16x8_s left, added). */
function sumOf(acc: Accumulators): V128 {
  if (acc.length === 1) return local.get(acc[0]);
  return i32x4.add(
    i8x16.shuffle(EVEN, local.get(acc[0]), local.get(acc[1])),
    i8x16.shuffle(ODD, local.get(acc[0]), local.get(acc[1])),
  );
}

/** Where the epilogue reads and writes: the epilogue block at the tile's first channel, the row scales at its first row, y at both. */
interface EpilogueAt {
  /** Channels the epilogue block holds per part (corrections, scales, biases). */
  Np: number;
  bias: boolean;
  helper?: string;
  /** Elements between rows of y. */
  ldc: number;
  /** A v128 scratch local. */
  tmp: Local<"v128">;
}

/**
 * Dequantizes the sums of row `row`, channel vector `v` (pointers `pw`, `ps`, `py` at the tile),
 * adds the bias, applies the activation and stores `lanes` lanes of y.
 */
function dequantStore(e: EpilogueAt, acc: Accumulators, row: number, v: number, lanes: number): Code {
  const exact = i32x4.sub(sumOf(acc), v128.load(local.get(pw), { offset: 16 * v }));
  const scale = f32x4.mul(
    f32x4.splat(f32.load(local.get(ps), { offset: 4 * row })),
    v128.load(local.get(pw), { offset: e.Np * 4 + 16 * v }),
  );
  let y = f32x4.mul(f32x4.convert_i32x4_s(exact), scale);
  if (e.bias) y = f32x4.add(y, v128.load(local.get(pw), { offset: 2 * e.Np * 4 + 16 * v }));
  if (e.helper) y = call("v128", e.helper, y);
  const at = row * e.ldc * 4 + 16 * v;
  if (lanes === 4) return v128.store(local.get(py), y, { offset: at });
  return [
    local.set(e.tmp, y),
    Array.from(
      { length: lanes },
      (_, l) => f32.store(local.get(py), f32x4.extract_lane(l, local.get(e.tmp)), { offset: at + 4 * l }),
    ),
  ];
}

/**
 * The int8 GEMM. Params (byte addresses): xq, scales, w (qpack's layout), the epilogue block
 * (`Np` i32 corrections, `Np` f32 weight scales, then with a bias `Np` f32 biases), y; then tid, nt.
 */
export function qgemmKernel(spec: QGemmSpec, target: KernelTarget): WasmKernel {
  const { M, N, Np, Kp, ldc, activation } = spec;
  if (Np !== Math.ceil(N / 4) * 4 || Kp % 4 !== 0 || Kp < 4 || ldc < N) {
    throw new Error(`qgemmKernel: bad spec ${JSON.stringify(spec)}`);
  }
  const { rows: MR, vecs: NV } = tileOf(target);
  const G = Np / 4, panels = Math.ceil(G / NV), tiles = Math.ceil(M / MR);
  const steps = Kp / 4, unroll = steps % 4 === 0 ? 4 : steps % 2 === 0 ? 2 : 1;
  const helper = activation === "none" ? undefined : HELPERS[activation];
  const halves = target.relaxedSimd ? 1 : 2;
  const acc = Array.from({ length: MR * NV * halves }, (_, i) => local.v128(`acc${i}`));
  const wv = Array.from({ length: NV }, (_, i) => local.v128(`w${i}`));
  const xs = local.v128("xs");
  const accOf = (row: number, v: number, half = 0) => acc[(row * NV + v) * halves + half];
  const accsOf = (row: number, v: number) => acc.slice((row * NV + v) * halves, (row * NV + v + 1) * halves);

  /** Straight-line code of one tile of `rows` rows and `vecs` groups; the last group stores `lanes` lanes. */
  const tileCode = (rows: number, vecs: number, lanes: number): Code => {
    const kStep = (j: number): Code => [
      Array.from(
        { length: vecs },
        (_, v) => local.set(wv[v], v128.load(local.get(pb), { offset: v * Kp * 4 + 16 * j })),
      ),
      Array.from({ length: rows }, (_, row) => [
        local.set(xs, v128.load32_splat(local.get(pa), { offset: row * Kp + 4 * j })),
        Array.from({ length: vecs }, (_, v) => dotInto(target, accsOf(row, v), wv[v], xs)),
      ]),
    ];
    const at: EpilogueAt = { Np, bias: spec.bias, helper, ldc, tmp: xs };
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
      Array.from(
        { length: rows },
        (_, row) =>
          Array.from(
            { length: vecs },
            (_, v) => dequantStore(at, accsOf(row, v), row, v, v === vecs - 1 ? lanes : 4),
          ),
      ),
    ];
  };

  // Tile `it`: channel panel it / tiles, row tile it % tiles. The last panel may have fewer groups
  // (and a last group of fewer than 4 channels), the last row tile fewer rows.
  const rowTail = M % MR, groupTail = G % NV, laneTail = N % 4 || 4;
  const byRows = (vecs: number, lanes: number): Code =>
    rowTail === 0 ? tileCode(MR, vecs, lanes) : tiles === 1 ? tileCode(rowTail, vecs, lanes) : if_(
      i32.eq(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(tiles - 1)),
      tileCode(rowTail, vecs, lanes),
      tileCode(MR, vecs, lanes),
    );
  const lastPanel = byRows(groupTail || NV, laneTail);
  const body: Code = [
    threadRange(panels * tiles, start, end),
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
      panels === 1 ? lastPanel : if_(
        i32.eq(i32.div_u(local.get(it), i32.const(tiles)), i32.const(panels - 1)),
        lastPanel,
        byRows(NV, 4),
      ),
    ]),
  ];
  return kernel({
    name: `qgemm_m${M}_n${N}_kp${Kp}_ldc${ldc}${spec.bias ? "_bias" : ""}${helper ? `_${activation}` : ""}_${
      target.relaxedSimd ? "rdot" : "dot16"
    }`,
    params: [XQ, SCALES, W, EPI, Y],
    comment: `y[${M}, ${N}] = dequant(xq · wᵀ) over ${Kp} int8 inputs` +
      `${spec.bias ? " + bias" : ""}${helper ? `, ${activation}` : ""}; tiles ${MR}x${4 * NV}`,
    locals: [start, end, r, k, kend, it, pa, pb, pw, py, ps, ...acc, ...wv, xs],
    body,
    uses: helper ? [helper] : [],
  });
}

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
  activation: QGemmSpec["activation"];
}

/** Rows per tile of the block-sparse kernel: 8 accumulators (and the block row's weights) in registers. */
function qbsrRows(R: number, target: KernelTarget): number {
  return Math.max(1, Math.floor((target.relaxedSimd ? 8 : 4) / (R / 4)));
}

/**
 * The int8 block-sparse product (`qbsr_dense`): for each block row and tile of rows, every
 * stored block, as R/4 x C/4 sub-blocks of 16 bytes, each one dot (or two) per row with 4
 * activation bytes broadcast. Params (byte addresses): xq, scales, w (`packQBsr`'s data), index
 * (`packQBsr`'s), the epilogue block (`blockRows · R` channels per part), y; then tid, nt.
 */
export function qbsrKernel(spec: QBsrSpec, target: KernelTarget): WasmKernel {
  const { M, N, ldq, blockRows, ldc, activation } = spec;
  const [R, C] = spec.block;
  if (R % 4 !== 0 || C % 4 !== 0 || blockRows !== Math.ceil(N / R) || ldc < N) {
    throw new Error(`qbsrKernel: bad spec ${JSON.stringify(spec)}`);
  }
  const MR = qbsrRows(R, target), V = R / 4, tiles = Math.ceil(M / MR), Np = blockRows * R;
  const helper = activation === "none" ? undefined : HELPERS[activation];
  const halves = target.relaxedSimd ? 1 : 2;
  const acc = Array.from({ length: MR * V * halves }, (_, i) => local.v128(`acc${i}`));
  const accsOf = (row: number, v: number) => acc.slice((row * V + v) * halves, (row * V + v + 1) * halves);
  const wv = Array.from({ length: V }, (_, i) => local.v128(`w${i}`));
  const xs = local.v128("xs");
  const [j, jend, row0, xrow, IDX] = ["j", "jend", "row0", "xrow", "index"].map(local.i32);

  const tileCode = (rows: number, lastBlockRow: boolean): Code => {
    const block: Code = Array.from({ length: C / 4 }, (_, c) => [
      Array.from(
        { length: V },
        (_, v) => local.set(wv[v], v128.load(local.get(pb), { offset: (v * (C / 4) + c) * 16 })),
      ),
      Array.from({ length: rows }, (_, row) => [
        local.set(xs, v128.load32_splat(local.get(pa), { offset: row * ldq + 4 * c })),
        Array.from({ length: V }, (_, v) => dotInto(target, accsOf(row, v), wv[v], xs)),
      ]),
    ]);
    const at: EpilogueAt = { Np, bias: spec.bias, helper, ldc, tmp: xs };
    const lanes = (v: number) =>
      lastBlockRow ? Math.max(0, Math.min(4, N - ((blockRows - 1) * R + 4 * v))) : 4;
    return [
      acc.slice(0, rows * V * halves).map((a) => local.set(a, i32x4.const(0))),
      block_("blocks", [
        br_if("blocks", i32.ge_u(local.get(j), local.get(jend))),
        loop(
          "b",
          // pa: this tile's first row at the block's first input; pb: the block's bytes.
          local.set(
            pa,
            i32.add(
              local.get(xrow),
              i32.load(i32.add(local.get(IDX), i32.shl(local.get(j), i32.const(2))), {
                offset: (blockRows + 1) * 4,
              }),
            ),
          ),
          local.set(pb, i32.add(local.get(W), i32.mul(local.get(j), i32.const(R * C)))),
          block,
          local.set(j, i32.add(local.get(j), i32.const(1))),
          br_if("b", i32.lt_u(local.get(j), local.get(jend))),
        ),
      ]),
      Array.from(
        { length: rows },
        (_, row) =>
          Array.from(
            { length: V },
            (_, v) => lanes(v) > 0 && dequantStore(at, accsOf(row, v), row, v, lanes(v)),
          ),
      ),
    ];
  };
  const rowTail = M % MR;
  const byRows = (last: boolean): Code =>
    rowTail === 0 ? tileCode(MR, last) : tiles === 1 ? tileCode(rowTail, last) : if_(
      i32.eq(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(tiles - 1)),
      tileCode(rowTail, last),
      tileCode(MR, last),
    );
  const body: Code = [
    threadRange(blockRows * tiles, start, end),
    forRange(it, start, end, "tiles", [
      // Block row br = it / tiles (in r), first row row0 = (it % tiles) · MR.
      local.set(r, i32.div_u(local.get(it), i32.const(tiles))),
      local.set(row0, i32.mul(i32.rem_u(local.get(it), i32.const(tiles)), i32.const(MR))),
      local.set(xrow, i32.add(local.get(XQ), i32.mul(local.get(row0), i32.const(ldq)))),
      local.set(j, i32.load(i32.add(local.get(IDX), i32.shl(local.get(r), i32.const(2))))),
      local.set(jend, i32.load(i32.add(local.get(IDX), i32.shl(local.get(r), i32.const(2))), { offset: 4 })),
      local.set(ps, i32.add(local.get(SCALES), i32.shl(local.get(row0), i32.const(2)))),
      local.set(pw, i32.add(local.get(EPI), i32.mul(local.get(r), i32.const(R * 4)))),
      local.set(
        py,
        i32.add(
          local.get(Y),
          i32.add(i32.mul(local.get(row0), i32.const(ldc * 4)), i32.mul(local.get(r), i32.const(R * 4))),
        ),
      ),
      N % R === 0 || blockRows === 1 ? byRows(N % R !== 0) : if_(
        i32.eq(local.get(r), i32.const(blockRows - 1)),
        byRows(true),
        byRows(false),
      ),
    ]),
  ];
  return kernel({
    name: `qbsr_m${M}_n${N}_ldq${ldq}_b${R}x${C}_ldc${ldc}${spec.bias ? "_bias" : ""}${
      helper ? `_${activation}` : ""
    }_${target.relaxedSimd ? "rdot" : "dot16"}`,
    params: [XQ, SCALES, W, IDX, EPI, Y],
    comment: `y[${M}, ${N}] = dequant(xq · wᵀ), w int8 BSR in ${R}x${C} blocks` +
      `${spec.bias ? " + bias" : ""}${helper ? `, ${activation}` : ""}; tiles of ${MR} rows`,
    locals: [start, end, r, it, pa, pb, pw, py, ps, j, jend, row0, xrow, ...acc, ...wv, xs],
    body,
    uses: helper ? [helper] : [],
  });
}
