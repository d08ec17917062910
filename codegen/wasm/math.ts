/**
 * Vector math helpers for the wasm kernels: e^x, erf, tanh and the two GELUs on f32x4 lanes,
 * as WAT functions the kernels call (`WASM_HELPERS`), plus the same code as inline snippets
 * (`expInline`) for kernels that want it in their own loop.
 *
 * Each helper is self-contained (it calls no other helper), so a kernel lists in `uses` exactly
 * the helpers it calls. The helpers use plain SIMD128 only, so they are the same for both
 * targets. Measured accuracy on f32 inputs (tests/codegen/math_test.ts), against the f64
 * reference functions of ir/ops:
 *
 * - `exp_f32x4`: relative error < 2.5e-7; 0 for x < -87.33 (and -inf); inputs above 88.37
 *   give e^88.37 ≈ 2.4e38, never inf; NaN stays NaN.
 * - `erf_f32x4`: absolute error < 2e-7; erf(0) = 0 exactly, odd, ±1 beyond |x| = 4.
 * - `tanh_f32x4`: absolute error < 2e-7 (relative < 3e-7 below |x| = 1); ±1 beyond |x| = 9.
 * - `gelu_f32x4`, `gelu_tanh_f32x4`: absolute error < 1e-6 on [-10, 10], finite for any finite input.
 * - `log_f32x4`: relative error < 2e-7 for normal positive x; NaN below 0, -inf at 0.
 * - `pow_f32x4` (two params, x and y): e^(y·ln|x|) with the signs and special cases of `Math.pow`
 *   for finite x (negative x with integer y, zeros, y = 0); relative error about (1 + |y·ln x|)·2e-7.
 */

import { fma as fmaTarget, type KernelTarget } from "./kernel.ts";

/** The WAT literal of an f32 value (`inf`, `-inf`, `nan` for the non-finite ones). */
export function f32Lit(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  if (Object.is(v, -0)) return "-0.0";
  return String(v);
}

/** A v128 constant with `v` in all four f32 lanes. */
export function f32x4(v: number): string {
  const l = f32Lit(v);
  return `(v128.const f32x4 ${l} ${l} ${l} ${l})`;
}

/** A v128 constant with `v` in all four i32 lanes. */
function i32x4(v: number): string {
  return `(v128.const i32x4 ${v} ${v} ${v} ${v})`;
}

/** Multiply-add builder: `a * b + c` on f32x4 expressions. */
export type Madd = (a: string, b: string, c: string) => string;

/** Separate multiply and add: what the shared helpers use. */
const plainMadd: Madd = (a, b, c) => `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`;

/** The multiply-add of a target: fused with relaxed SIMD. */
export function targetMadd(target: KernelTarget): Madd {
  return (a, b, c) => fmaTarget(target, a, b, c);
}

/** Horner evaluation of `coeffs[0]·zⁿ + coeffs[1]·zⁿ⁻¹ + ... + coeffs[n]` (highest power first). */
function horner(z: string, coeffs: readonly number[], madd: Madd): string {
  let acc = madd(f32x4(coeffs[0]), z, f32x4(coeffs[1]));
  for (let i = 2; i < coeffs.length; i++) acc = madd(acc, z, f32x4(coeffs[i]));
  return acc;
}

/** A snippet of straight-line WAT computing one v128 value into a local. */
export interface Inline {
  /** v128 locals it sets (names without `$`); the caller declares them. */
  locals: string[];
  /** The statements, one per line. */
  code: string[];
  /** An expression for the result, valid after `code`. */
  result: string;
}

// e^x: Cephes expf. x = n·ln2 + r with n = round(x·log2 e), r computed in two steps (ln2 = C1 + C2
// with C1 exact in few bits), e^r = 1 + r + r²·P(r) on |r| <= ln2/2, 2^n from exponent bits.
const EXP_HI = 88.37; // n <= 127: e^88.37 ≈ 2.4e38 is finite
const EXP_LO = -87.33654; // ≈ ln(2^-126): below, the result is 0
const LOG2E = 1.44269504088896341;
const LN2_C1 = 0.693359375;
const LN2_C2 = -2.12194440e-4;
const EXP_P = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1];

/**
 * e^x of the f32x4 expression `x` (evaluated once), using locals named `${p}…`. Lanes below
 * -87.34 give 0; lanes above 88.37 give e^88.37; NaN stays NaN.
 */
export function expInline(x: string, p: string, madd: Madd = plainMadd): Inline {
  const [lo, r, n, q] = [`${p}lo`, `${p}r`, `${p}n`, `${p}q`];
  const get = (l: string) => `(local.get $${l})`;
  return {
    locals: [lo, r, n, q],
    code: [
      `(local.set $${r} ${x})`,
      `(local.set $${lo} (f32x4.lt ${get(r)} ${f32x4(EXP_LO)}))`,
      `(local.set $${r} (f32x4.max (f32x4.min ${get(r)} ${f32x4(EXP_HI)}) ${f32x4(EXP_LO)}))`,
      `(local.set $${n} (f32x4.nearest (f32x4.mul ${get(r)} ${f32x4(LOG2E)})))`,
      `(local.set $${r} ${madd(get(n), f32x4(-LN2_C2), madd(get(n), f32x4(-LN2_C1), get(r)))})`,
      `(local.set $${q} ${horner(get(r), EXP_P, madd)})`,
      `(local.set $${q} ${madd(get(q), `(f32x4.mul ${get(r)} ${get(r)})`, `(f32x4.add ${get(r)} ${f32x4(1)})`)})`,
    ],
    // 2^n: (n + 127) << 23 as f32 bits; n is in [-126, 127] after the clamp.
    result: `(v128.andnot (f32x4.mul ${get(q)} (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s ${
      get(n)
    }) ${i32x4(127)}) (i32.const 23))) ${get(lo)})`,
  };
}

// erf and erfc (fitted here by weighted least squares, then checked in f32 by math_test.ts):
// for |x| <= 1, erf(x) = x·P(x²) (relative error 4e-8); for 1 < t = |x| <= 4,
// erfc(t) = e^(G(t) - t²) (absolute error 1.5e-8), and erfc(t) < 1.6e-8 is taken as 0 beyond 4.
const ERF_SMALL = [
  -0.0005660143308180058,
  0.004924786538954871,
  -0.0267177048093663,
  0.11280411514195637,
  -0.3761235566814383,
  1.128379128568048,
];
const ERFC_G = [
  -0.0011504388082396405,
  0.014778243951567585,
  -0.0886345346634068,
  0.3455115666713327,
  -1.1174388418586363,
  -0.0026716036811853076,
];

/**
 * The pieces of erf(x) for the f32x4 expression `x` (evaluated once), in locals named `${p}…`:
 * `${p}x` holds x, `${p}small` erf(x) where |x| <= 1, `${p}e` erfc(|x|) (0 beyond |x| = 4),
 * `${p}m` the mask of lanes with |x| <= 1.
 */
function erfParts(x: string, p: string, madd: Madd): Inline {
  const [v, t, m, small, e] = [`${p}x`, `${p}t`, `${p}m`, `${p}small`, `${p}e`];
  const get = (l: string) => `(local.get $${l})`;
  const ex = expInline(
    madd(get(t), `(f32x4.neg ${get(t)})`, horner(get(t), ERFC_G, madd)),
    `${p}exp_`,
    madd,
  );
  return {
    locals: [v, t, m, small, e, ...ex.locals],
    code: [
      `(local.set $${v} ${x})`,
      `(local.set $${t} (f32x4.abs ${get(v)}))`,
      `(local.set $${m} (f32x4.le ${get(t)} ${f32x4(1)}))`,
      `(local.set $${small} (f32x4.mul ${get(v)} ${horner(`(f32x4.mul ${get(v)} ${get(v)})`, ERF_SMALL, madd)}))`,
      `(local.set $${t} (f32x4.min ${get(t)} ${f32x4(4)}))`,
      ...ex.code,
      `(local.set $${e} (v128.andnot ${ex.result} (f32x4.gt (f32x4.abs ${get(v)}) ${f32x4(4)})))`,
    ],
    result: get(e),
  };
}

/** erf of the f32x4 expression `x` (evaluated once), using locals named `${p}…`. */
export function erfInline(x: string, p: string, madd: Madd = plainMadd): Inline {
  const parts = erfParts(x, p, madd);
  const get = (l: string) => `(local.get $${p}${l})`;
  // |x| > 1: copysign(1 - erfc(|x|), x)
  const big = `(v128.or (f32x4.sub ${f32x4(1)} ${get("e")}) (v128.and ${get("x")} ${f32x4(-0)}))`;
  return { ...parts, result: `(v128.bitselect ${get("small")} ${big} ${get("m")})` };
}

// tanh: for |x| <= 0.8, x·P(x²) (relative error 3e-9), else copysign(1 - 2/(e^(2|x|) + 1), x).
const TANH_SMALL = [
  0.001576097444446368,
  -0.007390321206427656,
  0.02128644447459265,
  -0.05384544862718705,
  0.1333208077584047,
  -0.33333285048331207,
  0.999999996953891,
];

/** tanh of the f32x4 expression `x` (evaluated once), using locals named `${p}…`. */
export function tanhInline(x: string, p: string, madd: Madd = plainMadd): Inline {
  const [v, t] = [`${p}x`, `${p}t`];
  const get = (l: string) => `(local.get $${l})`;
  const ex = expInline(`(f32x4.add ${get(t)} ${get(t)})`, `${p}exp_`, madd);
  const big = `(f32x4.sub ${f32x4(1)} (f32x4.div ${f32x4(2)} (f32x4.add ${ex.result} ${f32x4(1)})))`;
  return {
    locals: [v, t, ...ex.locals],
    code: [
      `(local.set $${v} ${x})`,
      `(local.set $${t} (f32x4.abs ${get(v)}))`,
      ...ex.code,
      `(local.set $${t} (v128.or ${big} (v128.and ${get(v)} ${f32x4(-0)})))`,
    ],
    result: `(v128.bitselect (f32x4.mul ${get(v)} ${
      horner(`(f32x4.mul ${get(v)} ${get(v)})`, TANH_SMALL, madd)
    }) ${get(t)} (f32x4.le (f32x4.abs ${get(v)}) ${f32x4(0.8)}))`,
  };
}

/**
 * gelu (erf form), 0.5·x·(1 + erf(x/√2)), of the f32x4 local `x`, using locals named `${p}…`.
 * For x/√2 < -1 it uses 1 + erf(z) = erfc(|z|) directly, so negative inputs keep their
 * relative precision.
 */
export function geluInline(x: string, p: string, madd: Madd = plainMadd): Inline {
  const get = `(local.get $${x})`;
  const parts = erfParts(`(f32x4.mul ${get} ${f32x4(Math.SQRT1_2)})`, p, madd);
  const part = (l: string) => `(local.get $${p}${l})`;
  // 1 + erf(z): 1 + small for |z| <= 1; 2 - erfc for z > 1; erfc for z < -1
  const big = `(v128.bitselect (f32x4.sub ${f32x4(2)} ${part("e")}) ${part("e")} (f32x4.gt ${part("x")} ${
    f32x4(0)
  }))`;
  const h = `(v128.bitselect (f32x4.add ${f32x4(1)} ${part("small")}) ${big} ${part("m")})`;
  return { ...parts, result: `(f32x4.mul (f32x4.mul ${get} ${f32x4(0.5)}) ${h})` };
}

/**
 * gelu (tanh form) of the f32x4 local `x`: 0.5·x·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³),
 * computed as the equal x / (1 + e^(-2u)), which has no cancellation for negative x.
 */
export function geluTanhInline(x: string, p: string, madd: Madd = plainMadd): Inline {
  const get = `(local.get $${x})`;
  const k = Math.sqrt(2 / Math.PI);
  // -2u = x·(-2k - 2k·0.044715·x²)
  const m2u = `(f32x4.mul ${get} ${madd(`(f32x4.mul ${get} ${get})`, f32x4(-2 * k * 0.044715), f32x4(-2 * k))})`;
  const e = expInline(m2u, p, madd);
  return { locals: e.locals, code: e.code, result: `(f32x4.div ${get} (f32x4.add ${f32x4(1)} ${e.result}))` };
}

// ln x: Cephes logf. x = m·2^e with m in [√½, √2), ln m = f - f²/2 + f³·P(f), f = m - 1.
const SQRT_HALF = 0.707106781186547524;
const LOG_P = [
  7.0376836292e-2,
  -1.1514610310e-1,
  1.1676998740e-1,
  -1.2420140846e-1,
  1.4249322787e-1,
  -1.6668057665e-1,
  2.0000714765e-1,
  -2.4999993993e-1,
  3.3333331174e-1,
];

/**
 * ln of the f32x4 expression `x` (evaluated once), using locals named `${p}…`: exact for
 * normal positive x; -inf at ±0, NaN below 0, inf at inf, NaN for NaN. Subnormals are flushed to 0.
 */
export function logInline(x: string, p: string, madd: Madd = plainMadd): Inline {
  const [v, e, f, z, big] = [`${p}v`, `${p}e`, `${p}f`, `${p}z`, `${p}big`];
  const get = (l: string) => `(local.get $${l})`;
  return {
    locals: [v, e, f, z, big],
    code: [
      `(local.set $${v} ${x})`,
      // e = exponent + 1 (as i32 lanes); f = mantissa in [0.5, 1)
      `(local.set $${e} (i32x4.sub (i32x4.shr_u ${get(v)} (i32.const 23)) ${i32x4(126)}))`,
      `(local.set $${f} (v128.or (v128.and ${get(v)} ${i32x4(0x807fffff)}) ${i32x4(0x3f000000)}))`,
      // below √½: m = 2f, e -= 1
      `(local.set $${big} (f32x4.ge ${get(f)} ${f32x4(SQRT_HALF)}))`,
      `(local.set $${e} (f32x4.convert_i32x4_s (i32x4.add ${get(e)} (v128.andnot ${i32x4(-1)} ${get(big)}))))`,
      `(local.set $${f} (f32x4.sub (v128.bitselect ${get(f)} (f32x4.add ${get(f)} ${get(f)}) ${get(big)}) ${
        f32x4(1)
      }))`,
      `(local.set $${z} (f32x4.mul ${get(f)} ${get(f)}))`,
      // ln m = f - z/2 + f·z·P(f); ln x = ln m + e·ln2 (ln2 = C1 + C2)
      `(local.set $${z} ${
        madd(
          get(e),
          f32x4(LN2_C2),
          madd(`(f32x4.mul ${get(f)} ${get(z)})`, horner(get(f), LOG_P, madd), `(f32x4.mul ${get(z)} ${f32x4(-0.5)})`),
        )
      })`,
      `(local.set $${z} ${madd(get(e), f32x4(LN2_C1), `(f32x4.add ${get(f)} ${get(z)})`)})`,
      // special lanes: x <= 0 or subnormal -> -inf (0) / NaN (< 0); inf -> inf; NaN -> NaN
      `(local.set $${z} (v128.bitselect ${f32x4(-Infinity)} ${get(z)} (f32x4.lt ${get(v)} ${f32x4(1.1754943508222875e-38)})))`,
      `(local.set $${z} (v128.bitselect ${f32x4(NaN)} ${get(z)} (f32x4.lt ${get(v)} ${f32x4(0)})))`,
    ],
    result: `(v128.bitselect ${get(v)} ${get(z)} (v128.or (f32x4.ne ${get(v)} ${get(v)}) (f32x4.eq ${get(v)} ${
      f32x4(Infinity)
    })))`,
  };
}

/** Wraps an inline snippet of `$x` as a helper function `$name`. */
function helper(name: string, comment: string, body: Inline): string {
  const locals = body.locals.map((l) => `(local $${l} v128)`).join(" ");
  return [
    `  (func $${name} (param $x v128) (result v128)`,
    `    ;; ${comment}`,
    `    ${locals}`,
    ...body.code.map((c) => `    ${c}`),
    `    ${body.result})`,
  ].join("\n");
}

/** pow(x, y) per lane for finite x, with `Math.pow`'s signs and special cases. */
function powHelper(): string {
  const get = (l: string) => `(local.get $${l})`;
  const ln = logInline(`(f32x4.abs ${get("x")})`, "l_");
  const ex = expInline(get("t"), "e_");
  const locals = [...ln.locals, ...ex.locals, "t", "r", "yint", "odd"].map((l) => `(local $${l} v128)`).join(" ");
  return [
    `  (func $pow_f32x4 (param $x v128) (param $y v128) (result v128)`,
    `    ;; x^y per lane as e^(y·ln|x|), with Math.pow's sign for x < 0 and its zeros and y = 0`,
    `    ${locals}`,
    ...ln.code.map((c) => `    ${c}`),
    `    (local.set $t (f32x4.mul ${get("y")} ${ln.result}))`,
    ...ex.code.map((c) => `    ${c}`),
    `    (local.set $r ${ex.result})`,
    `    ;; y·ln|x| above the exp range: inf`,
    `    (local.set $r (v128.bitselect ${f32x4(Infinity)} ${get("r")} (f32x4.gt ${get("t")} ${f32x4(88.72)})))`,
    `    ;; x < 0: y an odd integer negates, a non-integer gives NaN (|y| >= 2^24 is even)`,
    `    (local.set $yint (f32x4.eq (f32x4.nearest ${get("y")}) ${get("y")}))`,
    `    (local.set $odd (v128.and (v128.and (i32x4.eq (v128.and (i32x4.trunc_sat_f32x4_s ${get("y")}) ${
      i32x4(1)
    }) ${i32x4(1)}) (f32x4.lt (f32x4.abs ${get("y")}) ${f32x4(16777216)})) ${get("yint")}))`,
    `    (local.set $r (v128.xor ${get("r")} (v128.and (v128.and ${get("odd")} (f32x4.lt ${get("x")} ${
      f32x4(0)
    })) ${i32x4(-0x80000000)})))`,
    `    (local.set $r (v128.bitselect ${f32x4(NaN)} ${get("r")} (v128.andnot (f32x4.lt ${get("x")} ${
      f32x4(0)
    }) ${get("yint")})))`,
    `    ;; x = ±0: 0 for y > 0, inf for y < 0 (signed for odd y)`,
    `    (local.set $r (v128.bitselect (v128.bitselect (v128.and ${get("x")} (v128.and ${get("odd")} ${
      i32x4(-0x80000000)
    })) (v128.or (v128.and ${get("x")} (v128.and ${get("odd")} ${i32x4(-0x80000000)})) ${
      f32x4(Infinity)
    }) (f32x4.gt ${get("y")} ${f32x4(0)})) ${get("r")} (f32x4.eq ${get("x")} ${f32x4(0)})))`,
    `    ;; y = 0: 1 (even for NaN x); NaN y: NaN`,
    `    (local.set $r (v128.bitselect ${f32x4(1)} ${get("r")} (f32x4.eq ${get("y")} ${f32x4(0)})))`,
    `    (v128.bitselect ${get("y")} ${get("r")} (f32x4.ne ${get("y")} ${get("y")})))`,
  ].join("\n");
}

/**
 * The shared helper functions, keyed by name without `$`. Each but `pow_f32x4` is
 * `(func $NAME (param $x v128) (result v128))`; `pow_f32x4` takes `$x` and `$y`.
 */
export const WASM_HELPERS: Readonly<Record<string, string>> = {
  exp_f32x4: helper(
    "exp_f32x4",
    "e^x per lane: x = n·ln2 + r, e^r by polynomial, 2^n from exponent bits; 0 below -87.34",
    expInline("(local.get $x)", "e_"),
  ),
  erf_f32x4: helper(
    "erf_f32x4",
    "erf(x) per lane: x·P(x²) for |x| <= 1, else ±(1 - e^(G(|x|) - x²)); ±1 beyond 4",
    erfInline("(local.get $x)", "e_"),
  ),
  tanh_f32x4: helper(
    "tanh_f32x4",
    "tanh(x) per lane: x·P(x²) for |x| <= 0.8, else ±(1 - 2/(e^(2|x|) + 1))",
    tanhInline("(local.get $x)", "t_"),
  ),
  gelu_f32x4: helper("gelu_f32x4", "gelu(x) = 0.5·x·(1 + erf(x/√2)) per lane", geluInline("x", "e_")),
  gelu_tanh_f32x4: helper(
    "gelu_tanh_f32x4",
    "gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) per lane, as x / (1 + e^(-2u))",
    geluTanhInline("x", "e_"),
  ),
  log_f32x4: helper(
    "log_f32x4",
    "ln(x) per lane: x = m·2^e, ln m by polynomial; -inf at 0, NaN below 0",
    logInline("(local.get $x)", "l_"),
  ),
  pow_f32x4: powHelper(),
};
