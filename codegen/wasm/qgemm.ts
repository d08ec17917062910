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
  /** Bytes per quantized row: K rounded up to a multiple of 4. */
  Kp: number;
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
  if (!(actMax >= 1 && actMax <= 63) || Kp !== Math.ceil(K / 4) * 4) {
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
      local.set(pq, i32.add(local.get(XQ), i32.mul(local.get(r), i32.const(Kp)))),
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
    name: `quantize_rows_${M}x${K}_a${actMax}_${kind}`,
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

  /** Straight-line code of one tile of `rows` rows and `vecs` groups; the last group stores `lanes` lanes. */
  const tileCode = (rows: number, vecs: number, lanes: number): Code => {
    const kStep = (j: number): Code => [
      Array.from(
        { length: vecs },
        (_, v) => local.set(wv[v], v128.load(local.get(pb), { offset: v * Kp * 4 + 16 * j })),
      ),
      Array.from({ length: rows }, (_, row) => [
        local.set(xs, v128.load32_splat(local.get(pa), { offset: row * Kp + 4 * j })),
        Array.from({ length: vecs }, (_, v) =>
          target.relaxedSimd
            ? local.set(
              accOf(row, v),
              i32x4.relaxed_dot_i8x16_i7x16_add_s(local.get(wv[v]), local.get(xs), local.get(accOf(row, v))),
            )
            : [0, 1].map((half) =>
              local.set(
                accOf(row, v, half),
                i32x4.add(
                  local.get(accOf(row, v, half)),
                  i32x4.dot_i16x8_s(
                    half === 0
                      ? i16x8.extend_low_i8x16_s(local.get(wv[v]))
                      : i16x8.extend_high_i8x16_s(local.get(wv[v])),
                    i16x8.extend_low_i8x16_s(local.get(xs)),
                  ),
                ),
              )
            )),
      ]),
    ];
    const sum = (row: number, v: number): V128 =>
      target.relaxedSimd ? local.get(accOf(row, v)) : i32x4.add(
        i8x16.shuffle(EVEN, local.get(accOf(row, v, 0)), local.get(accOf(row, v, 1))),
        i8x16.shuffle(ODD, local.get(accOf(row, v, 0)), local.get(accOf(row, v, 1))),
      );
    const epilogue = (row: number, v: number): Code => {
      const exact = i32x4.sub(sum(row, v), v128.load(local.get(pw), { offset: 16 * v }));
      const scale = f32x4.mul(
        f32x4.splat(f32.load(local.get(ps), { offset: 4 * row })),
        v128.load(local.get(pw), { offset: Np * 4 + 16 * v }),
      );
      let y = f32x4.mul(f32x4.convert_i32x4_s(exact), scale);
      if (spec.bias) y = f32x4.add(y, v128.load(local.get(pw), { offset: 2 * Np * 4 + 16 * v }));
      if (helper) y = call("v128", helper, y);
      const at = row * ldc * 4 + 16 * v;
      const n = v === vecs - 1 ? lanes : 4;
      if (n === 4) return v128.store(local.get(py), y, { offset: at });
      return [
        local.set(xs, y),
        Array.from(
          { length: n },
          (_, l) => f32.store(local.get(py), f32x4.extract_lane(l, local.get(xs)), { offset: at + 4 * l }),
        ),
      ];
    };
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
      Array.from({ length: rows }, (_, row) => Array.from({ length: vecs }, (_, v) => epilogue(row, v))),
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
