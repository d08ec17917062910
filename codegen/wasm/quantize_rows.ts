/**
 * The row quantizer of `qdense` (ir/ops/qdense.ts), the first step of the int8 kernels
 * (codegen/wasm/qgemm.ts, codegen/wasm/qbsr.ts): each row of x (f32 `[M, K]`) becomes its scale
 * s (per row: max |x| / act_max, 1 for a zero row; or the static scale) and bytes
 * `round_half_even(x / s)` clamped to ±act_max, stored offset by +64 (codegen/qpack.ts:
 * `ACT_OFFSET`) so that every byte lies in [1, 127] when act_max <= 63: a row of `Kp` bytes, the
 * padding quantized from 0. A row whose whole `qdense` result is NaN (a NaN in it, or with
 * dynamic scales an infinity) gets a NaN scale, which makes every result of the row NaN.
 *
 * Every step is cheap on x64 as V8 lowers it: the row maximum is an integer max of the bit
 * patterns, the clamp `pmin`/`pmax`, the rounding an add of 1.5·2^23, and the constants live in
 * locals set before the loops. The division by s is the op's own step. Together that took a
 * 128x768 row quantization from 157 to 35 µs (AMD EPYC, one thread).
 */

import { ACT_OFFSET } from "../qpack.ts";
import { forRange, kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import {
  br_if,
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
  /** Bytes quantized per row: K rounded up to a multiple of 4. */
  Kp: number;
  /** Bytes between quantized rows (>= Kp; Kp by default): a block-sparse product reads whole block columns. */
  ldq?: number;
  /**
   * Rows per panel, when the bytes are laid out in panels (absent: row after row). Panel p holds
   * rows p·P .. p·P + P - 1 in `P · ldq` bytes, the 4 bytes of input group g (inputs 4g .. 4g + 3)
   * of its row i at `g · 4P + 4i`: the P rows' bytes of a group side by side, which
   * codegen/wasm/qbsr_lanes.ts reads as vectors of 4 rows. The buffer holds whole panels; the
   * rows of the last one past M are left as they are.
   */
  panel?: number;
  /** The largest quantized magnitude, 1 to 63. */
  actMax: number;
  /** The static scale, or 0 for each row's own. */
  actScale: number;
}

const [X, XQ, SCALES] = ["x", "xq", "scales"].map(local.i32);
const [start, end, r, k, kend, px, pq] = ["start", "end", "r", "k", "kend", "px", "pq"].map(local.i32);
const [amax, s] = ["amax", "s"].map(local.f32);
const [vmax, vq, vs, vlo, vhi, vround, vbits, vabs] = [
  "vmax",
  "vq",
  "vs",
  "vlo",
  "vhi",
  "vround",
  "vbits",
  "vabs",
]
  .map(local.v128);

/** `i32x4.max_s` (lane-wise signed maximum). */
const i32x4MaxS = i32x4.max_s;

/** Byte lanes moving i32 lanes [2, 3, 0, 1], then [1, 0, 3, 2]: the steps of a horizontal reduction. */
const SWAP_HALVES = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
const SWAP_PAIRS = [4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11];

/** 1.5·2^23: an f32 sum with it is rounded to an integer (half to even), held in its low mantissa bits. */
const ROUND_MAGIC = 12582912;

/** Sets the quantizer's constant locals: ±A, the rounding constant (with the offset) and its bits, the sign mask. */
function quantizeConstants(A: number): Code {
  return [
    local.set(vabs, i32x4.const(0x7fffffff)),
    local.set(vlo, f32x4.const(-A)),
    local.set(vhi, f32x4.const(A)),
    local.set(vround, f32x4.const(ROUND_MAGIC + ACT_OFFSET)),
    local.set(vbits, i32x4.const(0x4b400000)), // the bits of ROUND_MAGIC
  ];
}

/**
 * Quantizes four f32 lanes by the splatted scale `vs` into i32 lanes q + ACT_OFFSET,
 * q = clamp(round_half_even(x / s), -A, A): the quotient is clamped first (the same, A being an
 * integer), then rounded by adding ROUND_MAGIC + ACT_OFFSET, whose sum's bits minus
 * ROUND_MAGIC's are the offset integer. Cheaper than `nearest` and `trunc_sat`, which V8 lowers
 * to long sequences on x64.
 */
function quantize4(v: V128): V128 {
  const q = f32x4.pmin(f32x4.pmax(f32x4.div(v, local.get(vs)), local.get(vlo)), local.get(vhi));
  return i32x4.sub(f32x4.add(q, local.get(vround)), local.get(vbits));
}

/** Four offset i32 lanes (each in [1, 127]) as bytes in lanes 0-3. */
const bytes4 = (q: V128): V128 => {
  const h = i16x8.narrow_i32x4_s(q, q);
  return i8x16.narrow_i16x8_s(h, h);
};

/** The row quantizer. Params: x, xq, scales (byte addresses), then tid, nt. */
export function quantizeRowsKernel(spec: QuantizeRowsSpec, _target: KernelTarget): WasmKernel {
  const { M, K, Kp, actMax, actScale } = spec;
  const ldq = spec.ldq ?? Kp;
  if (!(actMax >= 1 && actMax <= 63) || Kp !== Math.ceil(K / 4) * 4 || ldq < Kp) {
    throw new Error(`quantizeRowsKernel: bad spec ${JSON.stringify(spec)}`);
  }
  const k16 = Math.floor(K / 16), k4 = Math.floor(K / 4), tail = K % 4;
  // Bytes from one input group of a row to the next: 4 in a row, 4P in a panel.
  const P = spec.panel, group = P ? 4 * P : 4;
  if (P !== undefined && !(Number.isInteger(P) && P >= 1)) {
    throw new Error(`quantizeRowsKernel: bad panel ${P}`);
  }
  const f32Load = (at: number) => f32.load(local.get(px), { offset: at * 4 });
  // a = max |x| over the row, as the max of the bit patterns with the sign cleared: for floats
  // >= 0 they order as the values do, and a NaN's lie above inf. One integer max a vector (a
  // float max is a long NaN-aware sequence on x64).
  const scan: Code = [
    local.set(vmax, i32x4.const(0)),
    k4 > 0 && [
      local.set(k, i32.const(0)),
      loop(
        "scan",
        local.set(
          vmax,
          i32x4MaxS(
            local.get(vmax),
            v128.and(v128.load(i32.add(local.get(px), i32.shl(local.get(k), i32.const(4)))), local.get(vabs)),
          ),
        ),
        local.set(k, i32.add(local.get(k), i32.const(1))),
        br_if("scan", i32.lt_u(local.get(k), i32.const(k4))),
      ),
    ],
    local.set(vmax, i32x4MaxS(local.get(vmax), i8x16.shuffle(SWAP_HALVES, local.get(vmax), local.get(vmax)))),
    local.set(vmax, i32x4MaxS(local.get(vmax), i8x16.shuffle(SWAP_PAIRS, local.get(vmax), local.get(vmax)))),
    local.set(amax, f32x4.extract_lane(0, local.get(vmax))),
    Array.from(
      { length: tail },
      (_, j) => local.set(amax, f32.max(local.get(amax), f32.abs(f32Load(4 * k4 + j)))),
    ),
  ];
  // The scale, NaN where the op's whole result row is NaN: a NaN in the row, or (dynamic) an
  // infinity, whose x / s is NaN. The kernels' bytes for such a row are then meaningless, but
  // every result is NaN through the scale.
  const scale: Code = actScale > 0
    ? [
      local.set(s, f32.const(actScale)),
      if_(i32.eqz(f32.eq(local.get(amax), local.get(amax))), local.set(s, f32.const(NaN))),
    ]
    : [
      local.set(s, f32.div(local.get(amax), f32.const(actMax))),
      if_(f32.eq(local.get(amax), f32.const(0)), local.set(s, f32.const(1))),
      if_(
        i32.eqz(f32.eq(f32.sub(local.get(amax), local.get(amax)), f32.const(0))),
        local.set(s, f32.const(NaN)),
      ),
    ];
  const vec = (i: number) => v128.load(local.get(px), { offset: 16 * i });
  const body: Code = [
    quantizeConstants(actMax),
    threadRange(M, start, end),
    forRange(r, start, end, "rows", [
      local.set(px, i32.add(local.get(X), i32.mul(local.get(r), i32.const(K * 4)))),
      local.set(
        pq,
        i32.add(
          local.get(XQ),
          P
            ? i32.add(
              i32.mul(i32.div_u(local.get(r), i32.const(P)), i32.const(P * ldq)),
              i32.shl(i32.rem_u(local.get(r), i32.const(P)), i32.const(2)),
            )
            : i32.mul(local.get(r), i32.const(ldq)),
        ),
      ),
      scan,
      scale,
      f32.store(i32.add(local.get(SCALES), i32.shl(local.get(r), i32.const(2))), local.get(s)),
      local.set(vs, f32x4.splat(local.get(s))),
      // 16 inputs at a time, then 4, then the last 1-3 with zeros above them (the padding).
      k16 > 0 && [
        local.set(kend, i32.add(local.get(px), i32.const(k16 * 64))),
        loop(
          "q16",
          local.set(
            vq,
            i8x16.narrow_i16x8_s(
              i16x8.narrow_i32x4_s(quantize4(vec(0)), quantize4(vec(1))),
              i16x8.narrow_i32x4_s(quantize4(vec(2)), quantize4(vec(3))),
            ),
          ),
          P
            ? Array.from(
              { length: 4 },
              (_, j) => v128.store32_lane(j, local.get(pq), local.get(vq), { offset: j * group }),
            )
            : v128.store(local.get(pq), local.get(vq)),
          local.set(px, i32.add(local.get(px), i32.const(64))),
          local.set(pq, i32.add(local.get(pq), i32.const(4 * group))),
          br_if("q16", i32.lt_u(local.get(px), local.get(kend))),
        ),
      ],
      Array.from(
        { length: k4 - 4 * k16 },
        (_, j) => v128.store32_lane(0, local.get(pq), bytes4(quantize4(vec(j))), { offset: group * j }),
      ),
      tail > 0 && v128.store32_lane(
        0,
        local.get(pq),
        bytes4(quantize4(
          Array.from({ length: tail }, (_, j) => j).reduce(
            (v, j) => f32x4.replace_lane(j, v, f32Load(4 * (k4 - 4 * k16) + j)),
            f32x4.const(0),
          ),
        )),
        { offset: group * (k4 - 4 * k16) },
      ),
    ]),
  ];
  const kind = actScale > 0 ? `static${String(actScale).replace(/[.+-]/g, "p")}` : "dynamic";
  return kernel({
    name: `quantize_rows_${M}x${K}${ldq !== Kp ? `_ldq${ldq}` : ""}${P ? `_p${P}` : ""}_a${actMax}_${kind}`,
    params: [X, XQ, SCALES],
    comment:
      `${M} rows of ${K} f32 to ${Kp} offset int8 bytes each (|q| <= ${actMax}), scale per row: ${kind}` +
      (P ? `; panels of ${P} rows` : ""),
    locals: [start, end, r, k, kend, px, pq, amax, s, vmax, vq, vs, vlo, vhi, vround, vbits, vabs],
    body,
  });
}
