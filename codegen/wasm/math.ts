/**
 * Vector math for the wasm kernels: e^x, erf, tanh, the two GELUs, ln and pow on f32x4 lanes,
 * as WAT helper functions the kernels call (`WASM_HELPERS`), and as inline snippets (`expInline`
 * and friends) for kernels that want the code in their own loop, optionally with FMA.
 *
 * Each helper is self-contained (it calls no other helper), so a kernel lists in `uses` exactly
 * the helpers it calls. The helpers use plain SIMD128 only, so they are the same for both
 * targets; each also has an `_fma` variant using relaxed-SIMD FMA (`helperFor` picks one).
 * Accuracy measured on f32 inputs against the f64 reference functions of ir/ops, for both
 * variants (tests/codegen/math_test.ts):
 *
 * - `exp_f32x4`: relative error < 2.5e-7; 0 for x < -87.34 (and -inf); above 88.37 it gives
 *   e^88.37 ≈ 2.4e38, never inf; NaN stays NaN.
 * - `erf_f32x4`: absolute error < 1.2e-7; erf(±0) = ±0, odd, exactly ±1 beyond |x| = 4.
 * - `tanh_f32x4`: absolute error < 1e-7 (relative < 1.2e-7 below |x| = 1); ±1 far out.
 * - `gelu_f32x4`, `gelu_tanh_f32x4`: absolute error < 6e-7 on [-10, 10] (about one f32 ulp of
 *   the result), relative error < 3.5e-6 on [-5.5, 10]; finite for any finite input.
 * - `log_f32x4`: relative error < 2e-7 for normal positive x; -inf at ±0 (and subnormals),
 *   NaN below 0, inf at inf.
 * - `pow_f32x4` (params `$x`, `$y`): e^(y·ln|x|) with `Math.pow`'s signs and special cases for
 *   finite x (negative x with integer y, ±0, y = 0, NaN); relative error about
 *   (1 + |y·ln x|)·2.5e-7; overflow gives inf, underflow 0 (no subnormals).
 */

import { fma as fmaTarget, type KernelTarget } from "./kernel.ts";

/** The shortest WAT literal that rounds to the same f32 as `v` (`inf`, `-inf`, `nan` too). */
export function f32Lit(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (v === Infinity) return "inf";
  if (v === -Infinity) return "-inf";
  if (Object.is(v, -0)) return "-0.0";
  const f = Math.fround(v);
  for (let digits = 1; digits < 17; digits++) {
    const s = String(Number(f.toPrecision(digits)));
    if (Math.fround(Number(s)) === f) return s;
  }
  return String(f);
}

/** A v128 constant with `v` in all four f32 lanes. */
export function f32x4(v: number): string {
  const l = f32Lit(v);
  return `(v128.const f32x4 ${l} ${l} ${l} ${l})`;
}

/** A v128 constant with `v` in all four i32 lanes. */
export function i32x4(v: number): string {
  return `(v128.const i32x4 ${v} ${v} ${v} ${v})`;
}

/** Multiply-add builder: `a * b + c` on f32x4 expressions. */
export type Madd = (a: string, b: string, c: string) => string;

/** Separate multiply and add: what the shared helpers use. */
export const plainMadd: Madd = (a, b, c) => `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`;

/** The multiply-add of a target: fused with relaxed SIMD. */
export function targetMadd(target: KernelTarget): Madd {
  return (a, b, c) => fmaTarget(target, a, b, c);
}

/** A snippet of straight-line WAT computing one v128 value. */
export interface Inline {
  /** The v128 locals it sets (names without `$`); whoever places the code declares them. */
  locals: string[];
  /** The statements (and `;;` comment lines), one per line. */
  code: string[];
  /** An expression for the result, valid after `code`. */
  result: string;
}

/** Collects the locals and statements of an inline snippet; local names get a prefix. */
class Emitter {
  constructor(
    readonly prefix: string,
    readonly madd: Madd,
    readonly locals: string[] = [],
    readonly code: string[] = [],
  ) {}

  /** Declares local `name` (prefixed) and returns its `$name`. */
  local(name: string): string {
    const full = `${this.prefix}${name}`;
    if (!this.locals.includes(full)) this.locals.push(full);
    return `$${full}`;
  }

  /** An emitter writing into the same snippet, with a longer prefix. */
  child(prefix: string): Emitter {
    return new Emitter(`${this.prefix}${prefix}`, this.madd, this.locals, this.code);
  }

  set(local: string, expr: string): void {
    this.code.push(`(local.set ${local} ${expr})`);
  }

  comment(text: string): void {
    this.code.push(`;; ${text}`);
  }

  /** Sets `acc` to `coeffs[0]·zⁿ + ... + coeffs[n]` (highest power first), one Horner step a line. */
  horner(acc: string, z: string, coeffs: readonly number[]): void {
    this.set(acc, this.madd(f32x4(coeffs[0]), z, f32x4(coeffs[1])));
    for (let i = 2; i < coeffs.length; i++) this.set(acc, this.madd(get(acc), z, f32x4(coeffs[i])));
  }

  done(result: string): Inline {
    return { locals: this.locals, code: this.code, result };
  }
}

const get = (local: string) => `(local.get ${local})`;

// e^x: Cephes expf. x = n·ln2 + r with n = round(x·log2 e) and r computed in two steps
// (ln2 = C1 + C2, C1 exact in few bits); e^r = 1 + r + r²·P(r) on |r| <= ln2/2; 2^n from bits.
const EXP_HI = 88.37; // n <= 127, so e^88.37 ≈ 2.4e38 stays finite
const EXP_LO = -87.33654; // ≈ ln(2^-126): below it the result is 0
const LN2_C1 = 0.693359375;
const LN2_C2 = -2.12194440e-4;
const ROUND_MAGIC = 12582912; // 1.5·2^23
const EXP_P = [
  1.9875691500e-4,
  1.3981999507e-3,
  8.3334519073e-3,
  4.1665795894e-2,
  1.6666665459e-1,
  5.0000001201e-1,
];

/**
 * Emits e^x of the expression `x` (evaluated once); returns the result expression. `range` says
 * which clamps x may need: `low` (x may go below -87.34: those lanes give 0) and `high` (x may go
 * above 88.37: clamped there). Callers that know x is in range skip them.
 */
function emitExp(e: Emitter, x: string, range = { low: true, high: true }): string {
  const [r, n, nf, q] = [e.local("r"), e.local("n"), e.local("nf"), e.local("q")];
  const lo = range.low ? e.local("lo") : "";
  e.set(r, x);
  if (range.low) e.set(lo, `(f32x4.lt ${get(r)} ${f32x4(EXP_LO)})`);
  // pmin/pmax with r first keep a NaN r
  if (range.high) e.set(r, `(f32x4.pmin ${get(r)} ${f32x4(EXP_HI)})`);
  if (range.low) e.set(r, `(f32x4.pmax ${get(r)} ${f32x4(EXP_LO)})`);
  e.comment("n = round(x·log2 e): adding 1.5·2^23 rounds, and leaves n in the low bits");
  e.set(n, e.madd(get(r), f32x4(Math.LOG2E), f32x4(ROUND_MAGIC)));
  e.set(nf, `(f32x4.sub ${get(n)} ${f32x4(ROUND_MAGIC)})`);
  e.set(r, e.madd(get(nf), f32x4(-LN2_C1), get(r)));
  e.set(r, e.madd(get(nf), f32x4(-LN2_C2), get(r)));
  e.horner(q, get(r), EXP_P);
  e.set(q, e.madd(get(q), `(f32x4.mul ${get(r)} ${get(r)})`, `(f32x4.add ${get(r)} ${f32x4(1)})`));
  e.comment(`2^n: (n + 127) << 23 as f32 bits${range.low ? "; lanes below the range are 0" : ""}`);
  const pow2 = `(i32x4.shl (i32x4.add ${get(n)} ${i32x4(127)}) (i32.const 23))`;
  const result = `(f32x4.mul ${get(q)} ${pow2})`;
  return range.low ? `(v128.andnot ${result} ${get(lo)})` : result;
}

// erf and erfc, fitted by weighted least squares (then checked in f32 by math_test.ts): for
// |x| <= 1, erf(x) = x·P(x²) (relative error 4e-8); for 1 < t <= 4, erfc(t) = e^(G(t) - t²)
// (relative error 3.3e-7, so 1 + erf(x) keeps its precision for negative x); beyond 4,
// erfc(t) < 1.6e-8 is taken as 0.
const ERF_SMALL = [
  -0.0005660143308180058,
  0.004924786538954871,
  -0.0267177048093663,
  0.11280411514195637,
  -0.3761235566814383,
  1.128379128568048,
];
const ERFC_G = [
  -0.00001334538919089819,
  0.00031818802286072775,
  -0.00344123828470507,
  0.02263860415612219,
  -0.1033554402444024,
  0.3609527245234073,
  -1.1259568906287019,
  -0.0007484356482035609,
];

/** The pieces of erf(x): x, erf(x) valid where |x| <= 1, erfc(|x|), the mask of |x| <= 1. */
interface ErfParts {
  x: string;
  small: string;
  erfc: string;
  isSmall: string;
}

/** Emits the pieces of erf of the expression `x` (evaluated once), all in locals. */
function emitErfParts(e: Emitter, x: string): ErfParts {
  const [v, a, t, m, s, small, erfc] = ["v", "a", "t", "m", "s", "small", "erfc"].map((n) => e.local(n));
  e.set(v, x);
  e.set(a, `(f32x4.abs ${get(v)})`);
  e.set(m, `(f32x4.le ${get(a)} ${f32x4(1)})`);
  e.comment("|x| <= 1: erf(x) = x·P(x²)");
  e.set(s, `(f32x4.mul ${get(v)} ${get(v)})`);
  e.horner(small, get(s), ERF_SMALL);
  e.set(small, `(f32x4.mul ${get(v)} ${get(small)})`);
  e.comment("|x| > 1: erfc(t) = e^(G(t) - t²), t = min(|x|, 4) (the exponent is in [-17.5, 0]); 0 beyond 4");
  e.set(t, `(f32x4.pmin ${get(a)} ${f32x4(4)})`);
  e.horner(erfc, get(t), ERFC_G);
  e.set(erfc, `(f32x4.sub ${get(erfc)} (f32x4.mul ${get(t)} ${get(t)}))`);
  const ex = emitExp(e.child("exp_"), get(erfc), { low: false, high: false });
  e.set(erfc, `(v128.andnot ${ex} (f32x4.gt ${get(a)} ${f32x4(4)}))`);
  return { x: get(v), small: get(small), erfc: get(erfc), isSmall: get(m) };
}

/** Emits erf of `x`; returns the result expression. */
function emitErf(e: Emitter, x: string): string {
  const p = emitErfParts(e, x);
  const big = `(v128.or (f32x4.sub ${f32x4(1)} ${p.erfc}) (v128.and ${p.x} ${f32x4(-0)}))`;
  return `(v128.bitselect ${p.small} ${big} ${p.isSmall})`;
}

// tanh: for |x| <= 0.8, x·P(x²) (fitted, relative error 3e-9); else ±(1 - 2/(e^(2|x|) + 1)).
const TANH_SMALL = [
  0.001576097444446368,
  -0.007390321206427656,
  0.02128644447459265,
  -0.05384544862718705,
  0.1333208077584047,
  -0.33333285048331207,
  0.999999996953891,
];

/** Emits tanh of `x`; returns the result expression. */
function emitTanh(e: Emitter, x: string): string {
  const [v, big, small] = [e.local("v"), e.local("big"), e.local("small")];
  e.set(v, x);
  e.comment("|x| > 0.8: ±(1 - 2/(e^(2|x|) + 1))");
  const ex = emitExp(e.child("exp_"), `(f32x4.add (f32x4.abs ${get(v)}) (f32x4.abs ${get(v)}))`, {
    low: false,
    high: true,
  });
  e.set(big, `(f32x4.sub ${f32x4(1)} (f32x4.div ${f32x4(2)} (f32x4.add ${ex} ${f32x4(1)})))`);
  e.set(big, `(v128.or ${get(big)} (v128.and ${get(v)} ${f32x4(-0)}))`);
  e.comment("|x| <= 0.8: x·P(x²)");
  e.horner(small, `(f32x4.mul ${get(v)} ${get(v)})`, TANH_SMALL);
  return `(v128.bitselect (f32x4.mul ${get(v)} ${get(small)}) ${get(big)} (f32x4.le (f32x4.abs ${get(v)}) ${
    f32x4(0.8)
  }))`;
}

/**
 * Emits gelu (erf form), 0.5·x·(1 + erf(x/√2)), of the local `x`. Below x/√2 = -1 it takes
 * 1 + erf(z) as erfc(|z|) directly, so negative inputs keep their relative precision.
 */
function emitGelu(e: Emitter, x: string): string {
  const p = emitErfParts(e, `(f32x4.mul ${get(x)} ${f32x4(Math.SQRT1_2)})`);
  e.comment("1 + erf(z): 1 + small for |z| <= 1, 2 - erfc(z) above, erfc(-z) below");
  const big = `(v128.bitselect (f32x4.sub ${f32x4(2)} ${p.erfc}) ${p.erfc} (f32x4.gt ${p.x} ${f32x4(0)}))`;
  const h = `(v128.bitselect (f32x4.add ${f32x4(1)} ${p.small}) ${big} ${p.isSmall})`;
  return `(f32x4.mul (f32x4.mul ${get(x)} ${f32x4(0.5)}) ${h})`;
}

/**
 * Emits gelu (tanh form) of the local `x`: 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³),
 * as the equal x / (1 + e^(-2u)), which has no cancellation for negative x.
 */
function emitGeluTanh(e: Emitter, x: string): string {
  const k = Math.sqrt(2 / Math.PI);
  const m2u = e.local("m2u");
  e.comment("-2u = x·(-2k - 2k·0.044715·x²), k = √(2/π)");
  e.set(
    m2u,
    `(f32x4.mul ${get(x)} ${
      e.madd(`(f32x4.mul ${get(x)} ${get(x)})`, f32x4(-2 * k * 0.044715), f32x4(-2 * k))
    })`,
  );
  const ex = emitExp(e.child("exp_"), get(m2u));
  e.comment("-2u > 80 (x below about -9.6, or x³ overflowing): the true value is below 1e-33");
  return `(v128.andnot (f32x4.div ${get(x)} (f32x4.add ${f32x4(1)} ${ex})) (f32x4.gt ${get(m2u)} ${
    f32x4(80)
  }))`;
}

// ln x: Cephes logf. x = m·2^e with m in [√½, √2); ln m = f - f²/2 + f³·P(f), f = m - 1.
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
const F32_MIN_NORMAL = 1.1754943508222875e-38;

/** Emits ln of `x`; returns the result expression. */
function emitLog(e: Emitter, x: string): string {
  const [v, ex, f, z, big, y] = ["v", "e", "f", "z", "big", "y"].map((n) => e.local(n));
  e.set(v, x);
  e.comment("x = f·2^e with f in [0.5, 1); then f in [√½, √2) and f - 1");
  e.set(ex, `(i32x4.sub (i32x4.shr_u ${get(v)} (i32.const 23)) ${i32x4(126)})`);
  e.set(f, `(v128.or (v128.and ${get(v)} ${i32x4(0x807fffff)}) ${i32x4(0x3f000000)})`);
  e.set(big, `(f32x4.ge ${get(f)} ${f32x4(Math.SQRT1_2)})`);
  e.set(ex, `(f32x4.convert_i32x4_s (i32x4.add ${get(ex)} (v128.andnot ${i32x4(-1)} ${get(big)})))`);
  e.set(f, `(f32x4.sub (v128.bitselect ${get(f)} (f32x4.add ${get(f)} ${get(f)}) ${get(big)}) ${f32x4(1)})`);
  e.comment("ln x = f - f²/2 + f³·P(f) + e·ln2");
  e.set(z, `(f32x4.mul ${get(f)} ${get(f)})`);
  e.horner(y, get(f), LOG_P);
  e.set(y, e.madd(`(f32x4.mul ${get(f)} ${get(z)})`, get(y), `(f32x4.mul ${get(z)} ${f32x4(-0.5)})`));
  e.set(y, e.madd(get(ex), f32x4(LN2_C2), get(y)));
  e.set(y, e.madd(get(ex), f32x4(LN2_C1), `(f32x4.add ${get(f)} ${get(y)})`));
  e.comment("special lanes: 0 and subnormal -> -inf, < 0 -> NaN, inf and NaN -> themselves");
  e.set(y, `(v128.bitselect ${f32x4(-Infinity)} ${get(y)} (f32x4.lt ${get(v)} ${f32x4(F32_MIN_NORMAL)}))`);
  e.set(y, `(v128.bitselect ${f32x4(NaN)} ${get(y)} (f32x4.lt ${get(v)} ${f32x4(0)}))`);
  const keep = `(v128.or (f32x4.ne ${get(v)} ${get(v)}) (f32x4.eq ${get(v)} ${f32x4(Infinity)}))`;
  return `(v128.bitselect ${get(v)} ${get(y)} ${keep})`;
}

/** Emits pow(x, y) of the locals `x`, `y` for finite x, with `Math.pow`'s signs and special cases. */
function emitPow(e: Emitter, x: string, y: string): string {
  const [t, r, yint, odd, sign] = ["t", "r", "yint", "odd", "sign"].map((n) => e.local(n));
  const ln = emitLog(e.child("log_"), `(f32x4.abs ${get(x)})`);
  e.set(t, `(f32x4.mul ${get(y)} ${ln})`);
  e.set(r, emitExp(e.child("exp_"), get(t)));
  e.comment("y·ln|x| above the exp range: inf");
  e.set(r, `(v128.bitselect ${f32x4(Infinity)} ${get(r)} (f32x4.gt ${get(t)} ${f32x4(88.72)}))`);
  e.comment("x < 0: an odd integer y negates, a non-integer y gives NaN (|y| >= 2^24 is even)");
  e.set(yint, `(f32x4.eq (f32x4.nearest ${get(y)}) ${get(y)})`);
  const lowBit = `(i32x4.eq (v128.and (i32x4.trunc_sat_f32x4_s ${get(y)}) ${i32x4(1)}) ${i32x4(1)})`;
  e.set(
    odd,
    `(v128.and (v128.and ${lowBit} (f32x4.lt (f32x4.abs ${get(y)}) ${f32x4(16777216)})) ${get(yint)})`,
  );
  e.set(sign, `(v128.and (v128.and ${get(x)} ${get(odd)}) ${f32x4(-0)})`);
  e.set(r, `(v128.xor ${get(r)} ${get(sign)})`);
  e.set(
    r,
    `(v128.bitselect ${f32x4(NaN)} ${get(r)} (v128.andnot (f32x4.lt ${get(x)} ${f32x4(0)}) ${get(yint)}))`,
  );
  e.comment("x = ±0: ±0 for y > 0, ±inf for y < 0 (the sign only for odd y)");
  const zero = `(v128.bitselect ${get(sign)} (v128.or ${get(sign)} ${f32x4(Infinity)}) (f32x4.gt ${get(y)} ${
    f32x4(0)
  }))`;
  e.set(r, `(v128.bitselect ${zero} ${get(r)} (f32x4.eq ${get(x)} ${f32x4(0)}))`);
  e.comment("y = 0: 1 (even for NaN x); NaN y: NaN");
  e.set(r, `(v128.bitselect ${f32x4(1)} ${get(r)} (f32x4.eq ${get(y)} ${f32x4(0)}))`);
  return `(v128.bitselect ${get(y)} ${get(r)} (f32x4.ne ${get(y)} ${get(y)}))`;
}

/** e^x of the f32x4 expression `x` (evaluated once), in locals named `${prefix}…`. */
export function expInline(x: string, prefix: string, madd: Madd = plainMadd): Inline {
  const e = new Emitter(prefix, madd);
  return e.done(emitExp(e, x));
}

/** erf of the f32x4 expression `x` (evaluated once), in locals named `${prefix}…`. */
export function erfInline(x: string, prefix: string, madd: Madd = plainMadd): Inline {
  const e = new Emitter(prefix, madd);
  return e.done(emitErf(e, x));
}

/** tanh of the f32x4 expression `x` (evaluated once), in locals named `${prefix}…`. */
export function tanhInline(x: string, prefix: string, madd: Madd = plainMadd): Inline {
  const e = new Emitter(prefix, madd);
  return e.done(emitTanh(e, x));
}

/** gelu (erf form) of the v128 local `$x` (name without `$`), in locals named `${prefix}…`. */
export function geluInline(x: string, prefix: string, madd: Madd = plainMadd): Inline {
  const e = new Emitter(prefix, madd);
  return e.done(emitGelu(e, `$${x}`));
}

/** gelu (tanh form) of the v128 local `$x` (name without `$`), in locals named `${prefix}…`. */
export function geluTanhInline(x: string, prefix: string, madd: Madd = plainMadd): Inline {
  const e = new Emitter(prefix, madd);
  return e.done(emitGeluTanh(e, `$${x}`));
}

/** A helper function `$name` over params `params` (v128 each) with `body` emitting its result. */
function helper(
  name: string,
  params: string[],
  comment: string,
  madd: Madd,
  body: (e: Emitter) => string,
): string {
  const e = new Emitter("", madd);
  const result = body(e);
  const paramList = params.map((p) => `(param $${p} v128)`).join(" ");
  return [
    `  (func $${name} ${paramList} (result v128)`,
    `    ;; ${comment}`,
    `    ${e.locals.map((l) => `(local $${l} v128)`).join(" ")}`,
    ...e.code.map((c) => `    ${c}`),
    `    ${result})`,
  ].join("\n");
}

/** The helpers: name, params, comment, body. Each is also built with FMA as `${name}_fma`. */
const HELPER_DEFS: [string, string[], string, (e: Emitter) => string][] = [
  [
    "exp_f32x4",
    ["x"],
    "e^x per lane: x = n·ln2 + r, e^r by polynomial, 2^n from exponent bits; 0 below -87.34",
    (e) => emitExp(e, "(local.get $x)"),
  ],
  [
    "erf_f32x4",
    ["x"],
    "erf(x) per lane: x·P(x²) for |x| <= 1, else ±(1 - e^(G(|x|) - x²)); ±1 beyond 4",
    (e) => emitErf(e, "(local.get $x)"),
  ],
  [
    "tanh_f32x4",
    ["x"],
    "tanh(x) per lane: x·P(x²) for |x| <= 0.8, else ±(1 - 2/(e^(2|x|) + 1))",
    (e) => emitTanh(e, "(local.get $x)"),
  ],
  ["gelu_f32x4", ["x"], "gelu(x) = 0.5·x·(1 + erf(x/√2)) per lane", (e) => emitGelu(e, "$x")],
  [
    "gelu_tanh_f32x4",
    ["x"],
    "gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) per lane, as x / (1 + e^(-2u))",
    (e) => emitGeluTanh(e, "$x"),
  ],
  [
    "log_f32x4",
    ["x"],
    "ln(x) per lane: x = f·2^e, ln f by polynomial; -inf at 0, NaN below 0",
    (e) => emitLog(e, "(local.get $x)"),
  ],
  [
    "pow_f32x4",
    ["x", "y"],
    "x^y per lane as e^(y·ln|x|), with Math.pow's signs for x < 0, zeros, y = 0 and NaN",
    (e) => emitPow(e, "$x", "$y"),
  ],
];

const relaxedMadd: Madd = (a, b, c) => `(f32x4.relaxed_madd ${a} ${b} ${c})`;

/**
 * The shared helper functions, keyed by name without `$`. Each is
 * `(func $NAME (param $x v128) (result v128) ...)` on f32x4 lanes, except `pow_f32x4`, which
 * takes `(param $x v128) (param $y v128)`. The plain names (`exp_f32x4`, `erf_f32x4`,
 * `tanh_f32x4`, `gelu_f32x4`, `gelu_tanh_f32x4`, `log_f32x4`, `pow_f32x4`) use SIMD128 only;
 * each also exists as `NAME_fma`, the same code with `f32x4.relaxed_madd` (for the relaxed-SIMD
 * target; `helperFor` picks the name).
 */
export const WASM_HELPERS: Readonly<Record<string, string>> = Object.fromEntries(
  HELPER_DEFS.flatMap(([name, params, comment, body]) => [
    [name, helper(name, params, comment, plainMadd, body)],
    [`${name}_fma`, helper(`${name}_fma`, params, `${comment} (with FMA)`, relaxedMadd, body)],
  ]),
);

/** The helper to call for `name` (e.g. `gelu_f32x4`) on `target`: its `_fma` variant with relaxed SIMD. */
export function helperFor(name: string, target: KernelTarget): string {
  return target.relaxedSimd ? `${name}_fma` : name;
}

// ---------------------------------------------------------------------------------------------
// Emission utilities shared by the kernel generators (softmax, layer_norm, elementwise, transpose).

/** A number as it appears in a kernel name: `0.125` -> `0p125`, `-2` -> `m2`, `1e-12` -> `1em12`. */
export function nameNumber(v: number): string {
  return f32Lit(v).replace(/\./g, "p").replace(/-/g, "m").replace(/\+/g, "");
}

/** Indents every line of `lines` by `depth` two-space steps. */
export function indent(lines: readonly string[], depth = 1): string[] {
  const pad = "  ".repeat(depth);
  return lines.map((l) => pad + l);
}

/**
 * Memory operand of a vector access: `at("$px")` gives `offset=K (address)` to write after a
 * load or store opcode, e.g. `(v128.load ${at("$px")})`. `extra` adds bytes to the offset.
 */
export type At = (ptr: string, extra?: number) => string;

/** `offset=K addr`, leaving out a zero offset. */
export function memarg(offset: number, addr: string): string {
  return offset ? `offset=${offset} ${addr}` : addr;
}

/**
 * Visits `count` consecutive 16-byte vectors: a loop of `unroll` vectors per iteration (over an
 * i32 byte offset in local `$o`, which the caller declares), then the left-over vectors
 * straight-line with constant offsets. `body(at, slot)` emits one vector's code; `slot` is its
 * position in the unrolled group (for per-slot accumulators). A single iteration is emitted
 * without a loop.
 */
export function vectorPass(
  label: string,
  count: number,
  unroll: number,
  body: (at: At, slot: number) => string[],
): string[] {
  const loops = Math.floor(count / unroll);
  const out: string[] = [];
  if (loops === 1) {
    for (let k = 0; k < unroll; k++) {
      out.push(...body((p, extra = 0) => memarg(16 * k + extra, `(local.get ${p})`), k));
    }
  } else if (loops > 1) {
    const group: string[] = [];
    for (let k = 0; k < unroll; k++) {
      group.push(
        ...body((p, extra = 0) => memarg(16 * k + extra, `(i32.add (local.get ${p}) (local.get $o))`), k),
      );
    }
    out.push(
      `(local.set $o (i32.const 0))`,
      `(loop $${label}`,
      ...indent(group),
      `  (local.set $o (i32.add (local.get $o) (i32.const ${16 * unroll})))`,
      `  (br_if $${label} (i32.lt_u (local.get $o) (i32.const ${16 * unroll * loops}))))`,
    );
  }
  const base = 16 * unroll * loops;
  for (let k = 0; k < count % unroll; k++) {
    out.push(...body((p, extra = 0) => memarg(base + 16 * k + extra, `(local.get ${p})`), k));
  }
  return out;
}

/** Reduces all four lanes of the v128 expression `v` with `op` (e.g. `f32x4.add`); every lane gets the result. */
export function horizontal(op: string, v: string, tmp: string): string[] {
  return [
    `(local.set ${tmp} ${v})`,
    `(local.set ${tmp} (${op} (local.get ${tmp}) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get ${tmp}) (local.get ${tmp}))))`,
    `(local.set ${tmp} (${op} (local.get ${tmp}) (i8x16.shuffle 4 5 6 7 0 1 2 3 12 13 14 15 8 9 10 11 (local.get ${tmp}) (local.get ${tmp}))))`,
  ];
}

/** Combines per-slot accumulators `acc0..acc{n-1}` into `acc0` with `op`, pairwise. */
export function combineSlots(op: string, acc: (slot: number) => string, n: number): string[] {
  const out: string[] = [];
  for (let step = 1; step < n; step *= 2) {
    for (let k = 0; k + step < n; k += 2 * step) {
      out.push(`(local.set ${acc(k)} (${op} (local.get ${acc(k)}) (local.get ${acc(k + step)})))`);
    }
  }
  return out;
}

/**
 * An i32 expression for `Σ_d idx_d · steps[d]`, where `idx` are the row-major indices of the
 * flat index in i32 expression `flat` over `dims` (`flat` < the product of dims). Size-1 dims and
 * zero steps cost nothing; dims that are contiguous in both are merged first.
 */
export function stridedOffset(flat: string, dims: readonly number[], steps: readonly number[]): string {
  // Merge: drop size-1 dims; join d with the next when steps[d] = steps[d+1]·dims[d+1].
  const ds: number[] = [];
  const ss: number[] = [];
  for (let d = 0; d < dims.length; d++) {
    if (dims[d] === 1) continue;
    const last = ds.length - 1;
    if (last >= 0 && ss[last] === steps[d] * dims[d]) {
      ds[last] *= dims[d];
      ss[last] = steps[d];
    } else {
      ds.push(dims[d]);
      ss.push(steps[d]);
    }
  }
  const terms: string[] = [];
  for (let d = 0; d < ds.length; d++) {
    if (ss[d] === 0) continue;
    const inner = ds.slice(d + 1).reduce((a, b) => a * b, 1);
    let idx = inner === 1 ? flat : `(i32.div_u ${flat} (i32.const ${inner}))`;
    if (d > 0) idx = `(i32.rem_u ${idx} (i32.const ${ds[d]}))`;
    terms.push(ss[d] === 1 ? idx : `(i32.mul ${idx} (i32.const ${ss[d]}))`);
  }
  if (terms.length === 0) return "(i32.const 0)";
  return terms.reduce((a, b) => `(i32.add ${a} ${b})`);
}

/** Row-major element strides of `shape`. */
export function rowMajorStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * The element steps with which an array of `shape` is read when broadcast (numpy rules) to
 * `out`: its stride, or 0 along broadcast dims. Throws when `shape` does not broadcast to `out`.
 */
export function broadcastSteps(shape: readonly number[], out: readonly number[]): number[] {
  const lead = out.length - shape.length;
  for (let d = 0; d < -lead; d++) {
    if (shape[d] !== 1) throw new Error(`shape [${shape}] does not broadcast to [${out}]`);
  }
  const trimmed = lead < 0 ? shape.slice(-lead) : shape;
  const strides = rowMajorStrides(trimmed);
  return out.map((n, d) => {
    const k = d - Math.max(lead, 0);
    if (k < 0) return 0;
    if (trimmed[k] === n) return n === 1 ? 0 : strides[k];
    if (trimmed[k] === 1) return 0;
    throw new Error(`shape [${shape}] does not broadcast to [${out}]`);
  });
}
