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
 * - `gelu_f32x4`: absolute error < 3e-7 on [-10, 10], relative error < 2e-6 on [-5.5, 10] (one
 *   branch, max(x, 0) + c·Φ(c) with c = -|x|; 2.4e-7 and 1.7e-6 measured on a grid of 400,001
 *   points); finite for any finite input, NaN at -inf as 0.5·x·(1 + erf(x/√2)) is.
 * - `gelu_tanh_f32x4`: absolute error < 6e-7 on [-10, 10] (about one f32 ulp of the result),
 *   relative error < 3.5e-6 on [-5.5, 10]; finite for any finite input.
 * - `log_f32x4`: relative error < 2e-7 for normal positive x; -inf at ±0 (and subnormals),
 *   NaN below 0, inf at inf.
 * - `pow_f32x4` (params `$x`, `$y`): e^(y·ln|x|) with `Math.pow`'s signs and special cases for
 *   finite x (negative x with integer y, ±0, y = 0, NaN); relative error about
 *   (1 + |y·ln x|)·2.5e-7; overflow gives inf, underflow 0 (no subnormals).
 */

import type { KernelTarget } from "./kernel.ts";
import type { Instr, Local, V128 } from "./wat.ts";
import { comment as commentLine, f32x4, func, i32, i32x4, local, madd, v128 } from "./wat.ts";

/** A snippet of straight-line code computing one v128 value. */
export interface Inline {
  /** The v128 locals it sets; whoever places the code declares them. */
  locals: Local<"v128">[];
  /** The statements (and comment lines). */
  code: Instr[];
  /** The result, valid after `code`. */
  result: V128;
}

/** Collects the locals and statements of an inline snippet; local names get a prefix. */
class Emitter {
  constructor(
    readonly prefix: string,
    readonly target: KernelTarget,
    readonly locals: Local<"v128">[] = [],
    readonly code: Instr[] = [],
  ) {}

  /** Declares local `name` (prefixed), once. */
  local(name: string): Local<"v128"> {
    const full = `${this.prefix}${name}`;
    let l = this.locals.find((d) => d.name === full);
    if (!l) this.locals.push(l = local.v128(full));
    return l;
  }

  /** An emitter writing into the same snippet, with a longer prefix. */
  child(prefix: string): Emitter {
    return new Emitter(`${this.prefix}${prefix}`, this.target, this.locals, this.code);
  }

  set(l: Local<"v128">, value: V128): void {
    this.code.push(local.set(l, value));
  }

  comment(text: string): void {
    this.code.push(commentLine(text));
  }

  /** `a · b + c`, fused on the relaxed-SIMD target. */
  madd(a: V128, b: V128, c: V128): V128 {
    return madd(this.target, a, b, c);
  }

  /** Sets `acc` to `coeffs[0]·zⁿ + ... + coeffs[n]` (highest power first), one Horner step a line. */
  horner(acc: Local<"v128">, z: V128, coeffs: readonly number[]): void {
    this.set(acc, this.madd(f32x4.const(coeffs[0]), z, f32x4.const(coeffs[1])));
    for (let i = 2; i < coeffs.length; i++) {
      this.set(acc, this.madd(local.get(acc), z, f32x4.const(coeffs[i])));
    }
  }

  done(result: V128): Inline {
    return { locals: this.locals, code: this.code, result };
  }
}

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
 * Emits e^x of `x` (evaluated once); returns the result. `range` says which clamps x may need:
 * `low` (x may go below -87.34: those lanes give 0) and `high` (x may go above 88.37: clamped
 * there). Callers that know x is in range skip them.
 */
function emitExp(e: Emitter, x: V128, range = { low: true, high: true }): V128 {
  const [r, n, nf, q] = [e.local("r"), e.local("n"), e.local("nf"), e.local("q")];
  const lo = range.low ? e.local("lo") : undefined;
  e.set(r, x);
  if (lo) e.set(lo, f32x4.lt(local.get(r), f32x4.const(EXP_LO)));
  // pmin/pmax with r first keep a NaN r
  if (range.high) e.set(r, f32x4.pmin(local.get(r), f32x4.const(EXP_HI)));
  if (lo) e.set(r, f32x4.pmax(local.get(r), f32x4.const(EXP_LO)));
  e.comment("n = round(x·log2 e): adding 1.5·2^23 rounds, and leaves n in the low bits");
  e.set(n, e.madd(local.get(r), f32x4.const(Math.LOG2E), f32x4.const(ROUND_MAGIC)));
  e.set(nf, f32x4.sub(local.get(n), f32x4.const(ROUND_MAGIC)));
  e.set(r, e.madd(local.get(nf), f32x4.const(-LN2_C1), local.get(r)));
  e.set(r, e.madd(local.get(nf), f32x4.const(-LN2_C2), local.get(r)));
  e.horner(q, local.get(r), EXP_P);
  const r2 = f32x4.mul(local.get(r), local.get(r));
  e.set(q, e.madd(local.get(q), r2, f32x4.add(local.get(r), f32x4.const(1))));
  e.comment(`2^n: (n + 127) << 23 as f32 bits${lo ? "; lanes below the range are 0" : ""}`);
  const pow2 = i32x4.shl(i32x4.add(local.get(n), i32x4.const(127)), i32.const(23));
  const result = f32x4.mul(local.get(q), pow2);
  return lo ? v128.andnot(result, local.get(lo)) : result;
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
  x: V128;
  small: V128;
  erfc: V128;
  isSmall: V128;
}

/** Emits the pieces of erf of `x` (evaluated once), all in locals. */
function emitErfParts(e: Emitter, x: V128): ErfParts {
  const [v, a, t, m, s, small, erfc] = ["v", "a", "t", "m", "s", "small", "erfc"].map((n) => e.local(n));
  e.set(v, x);
  e.set(a, f32x4.abs(local.get(v)));
  e.set(m, f32x4.le(local.get(a), f32x4.const(1)));
  e.comment("|x| <= 1: erf(x) = x·P(x²)");
  e.set(s, f32x4.mul(local.get(v), local.get(v)));
  e.horner(small, local.get(s), ERF_SMALL);
  e.set(small, f32x4.mul(local.get(v), local.get(small)));
  e.comment("|x| > 1: erfc(t) = e^(G(t) - t²), t = min(|x|, 4) (the exponent is in [-17.5, 0]); 0 beyond 4");
  e.set(t, f32x4.pmin(local.get(a), f32x4.const(4)));
  e.horner(erfc, local.get(t), ERFC_G);
  e.set(erfc, f32x4.sub(local.get(erfc), f32x4.mul(local.get(t), local.get(t))));
  const ex = emitExp(e.child("exp_"), local.get(erfc), { low: false, high: false });
  e.set(erfc, v128.andnot(ex, f32x4.gt(local.get(a), f32x4.const(4))));
  return { x: local.get(v), small: local.get(small), erfc: local.get(erfc), isSmall: local.get(m) };
}

/** Emits erf of `x`; returns the result. */
function emitErf(e: Emitter, x: V128): V128 {
  const p = emitErfParts(e, x);
  const big = v128.or(f32x4.sub(f32x4.const(1), p.erfc), v128.and(p.x, f32x4.const(-0)));
  return v128.bitselect(p.small, big, p.isSmall);
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

/** Emits tanh of `x`; returns the result. */
function emitTanh(e: Emitter, x: V128): V128 {
  const [v, big, small] = [e.local("v"), e.local("big"), e.local("small")];
  e.set(v, x);
  e.comment("|x| > 0.8: ±(1 - 2/(e^(2|x|) + 1))");
  const twice = f32x4.add(f32x4.abs(local.get(v)), f32x4.abs(local.get(v)));
  const ex = emitExp(e.child("exp_"), twice, { low: false, high: true });
  e.set(big, f32x4.sub(f32x4.const(1), f32x4.div(f32x4.const(2), f32x4.add(ex, f32x4.const(1)))));
  e.set(big, v128.or(local.get(big), v128.and(local.get(v), f32x4.const(-0))));
  e.comment("|x| <= 0.8: x·P(x²)");
  e.horner(small, f32x4.mul(local.get(v), local.get(v)), TANH_SMALL);
  const isSmall = f32x4.le(f32x4.abs(local.get(v)), f32x4.const(0.8));
  return v128.bitselect(f32x4.mul(local.get(v), local.get(small)), local.get(big), isSmall);
}

// gelu (erf form) as x·Φ(x) = max(x, 0) + c·Φ(c) with c = -|x| (Φ the normal CDF, Φ(x) =
// 1 - Φ(-x)), and Φ(c) = e^(G(c) - c²/2) for c in [-5.5, 0]: G, ln Φ(c) + c²/2, fitted by
// weighted least squares in u = c + 2.75 (absolute error 1.8e-8; 3.2e-7 evaluated in f32), e^y by
// Cephes's range reduction and a degree-6 polynomial fitted on |r| <= ln2/2 (relative error
// 1.9e-9). Below c = -5.5, c·Φ(c) > -1.1e-7 is taken as 0. One branch, no selects: about 34
// vector instructions where erf's two branches took about 44.
const GELU_T = 5.5;
const GELU_G = [
  -1.906909689457063e-9,
  -1.1937952332762049e-8,
  -1.1136387045822966e-8,
  1.571116660815404e-7,
  1.8960840637329535e-6,
  1.777696792747864e-5,
  0.00013768390824995963,
  0.0009453287643155534,
  0.006109460345333503,
  0.03952762633173889,
  0.3017735112364485,
  -2.034661415123503,
];
const GELU_EXP = [
  0.0013836850903242914,
  0.008374810151087618,
  0.04166822503069217,
  0.16666420238179178,
  0.49999992084397943,
  1.0000000363078847,
  1.0000000005537069,
];

/**
 * Emits gelu (erf form), 0.5·x·(1 + erf(x/√2)) = x·Φ(x), of the local `x`, as max(x, 0) + c·Φ(c)
 * with c = -|x|: Φ(c) <= 1/2 is computed with its relative precision, so negative inputs keep
 * theirs, and positive ones lose nothing to the cancellation x - |x|·Φ(-|x|) (Φ(-|x|) <= 1/2).
 */
function emitGelu(e: Emitter, x: Local<"v128">): V128 {
  const [s, c, u, g, y, n, nf, r, q] = ["s", "c", "u", "g", "y", "n", "nf", "r", "q"].map((l) => e.local(l));
  e.comment("c = -|x|, clamped at -5.5 (pmax with c first keeps a NaN)");
  e.set(s, v128.or(local.get(x), f32x4.const(-0)));
  e.set(c, f32x4.pmax(local.get(s), f32x4.const(-GELU_T)));
  e.comment("y = ln Φ(c) = G(c) - c²/2");
  e.set(u, f32x4.add(local.get(c), f32x4.const(GELU_T / 2)));
  e.horner(g, local.get(u), GELU_G);
  e.set(y, e.madd(f32x4.mul(local.get(c), f32x4.const(-0.5)), local.get(c), local.get(g)));
  e.comment("Φ(c) = e^y: y = n·ln2 + r, 2^n from bits; 0 where c was clamped");
  e.set(n, e.madd(local.get(y), f32x4.const(Math.LOG2E), f32x4.const(ROUND_MAGIC)));
  e.set(nf, f32x4.sub(local.get(n), f32x4.const(ROUND_MAGIC)));
  e.set(r, e.madd(local.get(nf), f32x4.const(-LN2_C1), local.get(y)));
  e.set(r, e.madd(local.get(nf), f32x4.const(-LN2_C2), local.get(r)));
  e.horner(q, local.get(r), GELU_EXP);
  const pow2 = i32x4.shl(i32x4.add(local.get(n), i32x4.const(127)), i32.const(23));
  e.set(q, v128.andnot(f32x4.mul(local.get(q), pow2), f32x4.lt(local.get(s), f32x4.const(-GELU_T))));
  e.comment("x·Φ(x) = max(x, 0) + c·Φ(c); max(x, 0) as x - min(x, 0), which keeps -inf's NaN");
  const relu = f32x4.sub(local.get(x), f32x4.pmin(local.get(x), f32x4.const(0)));
  return e.madd(local.get(c), local.get(q), relu);
}

/**
 * Emits gelu (tanh form) of the local `x`: 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³),
 * as the equal x / (1 + e^(-2u)), which has no cancellation for negative x.
 */
function emitGeluTanh(e: Emitter, x: Local<"v128">): V128 {
  const k = Math.sqrt(2 / Math.PI);
  const m2u = e.local("m2u");
  e.comment("-2u = x·(-2k - 2k·0.044715·x²), k = √(2/π)");
  const x2 = f32x4.mul(local.get(x), local.get(x));
  e.set(m2u, f32x4.mul(local.get(x), e.madd(x2, f32x4.const(-2 * k * 0.044715), f32x4.const(-2 * k))));
  const ex = emitExp(e.child("exp_"), local.get(m2u));
  e.comment("-2u > 80 (x below about -9.6, or x³ overflowing): the true value is below 1e-33");
  const quotient = f32x4.div(local.get(x), f32x4.add(f32x4.const(1), ex));
  return v128.andnot(quotient, f32x4.gt(local.get(m2u), f32x4.const(80)));
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

/** Emits ln of `x`; returns the result. */
function emitLog(e: Emitter, x: V128): V128 {
  const [v, ex, f, z, big, y] = ["v", "e", "f", "z", "big", "y"].map((n) => e.local(n));
  const [gv, gf, gz, gy] = [v, f, z, y].map((l) => local.get(l));
  e.set(v, x);
  e.comment("x = f·2^e with f in [0.5, 1); then f in [√½, √2) and f - 1");
  e.set(ex, i32x4.sub(i32x4.shr_u(gv, i32.const(23)), i32x4.const(126)));
  e.set(f, v128.or(v128.and(gv, i32x4.const(0x807fffff)), i32x4.const(0x3f000000)));
  e.set(big, f32x4.ge(gf, f32x4.const(Math.SQRT1_2)));
  e.set(ex, f32x4.convert_i32x4_s(i32x4.add(local.get(ex), v128.andnot(i32x4.const(-1), local.get(big)))));
  e.set(f, f32x4.sub(v128.bitselect(gf, f32x4.add(gf, gf), local.get(big)), f32x4.const(1)));
  e.comment("ln x = f - f²/2 + f³·P(f) + e·ln2");
  e.set(z, f32x4.mul(gf, gf));
  e.horner(y, gf, LOG_P);
  e.set(y, e.madd(f32x4.mul(gf, gz), gy, f32x4.mul(gz, f32x4.const(-0.5))));
  e.set(y, e.madd(local.get(ex), f32x4.const(LN2_C2), gy));
  e.set(y, e.madd(local.get(ex), f32x4.const(LN2_C1), f32x4.add(gf, gy)));
  e.comment("special lanes: 0 and subnormal -> -inf, < 0 -> NaN, inf and NaN -> themselves");
  e.set(y, v128.bitselect(f32x4.const(-Infinity), gy, f32x4.lt(gv, f32x4.const(F32_MIN_NORMAL))));
  e.set(y, v128.bitselect(f32x4.const(NaN), gy, f32x4.lt(gv, f32x4.const(0))));
  const keep = v128.or(f32x4.ne(gv, gv), f32x4.eq(gv, f32x4.const(Infinity)));
  return v128.bitselect(gv, gy, keep);
}

/** Emits pow(x, y) of the locals `x`, `y` for finite x, with `Math.pow`'s signs and special cases. */
function emitPow(e: Emitter, x: Local<"v128">, y: Local<"v128">): V128 {
  const [t, r, yint, odd, sign] = ["t", "r", "yint", "odd", "sign"].map((n) => e.local(n));
  const [gx, gy, gr, gsign] = [x, y, r, sign].map((l) => local.get(l));
  const ln = emitLog(e.child("log_"), f32x4.abs(gx));
  e.set(t, f32x4.mul(gy, ln));
  e.set(r, emitExp(e.child("exp_"), local.get(t)));
  e.comment("y·ln|x| above the exp range: inf");
  e.set(r, v128.bitselect(f32x4.const(Infinity), gr, f32x4.gt(local.get(t), f32x4.const(88.72))));
  e.comment("x < 0: an odd integer y negates, a non-integer y gives NaN (|y| >= 2^24 is even)");
  e.set(yint, f32x4.eq(f32x4.nearest(gy), gy));
  const lowBit = i32x4.eq(v128.and(i32x4.trunc_sat_f32x4_s(gy), i32x4.const(1)), i32x4.const(1));
  const exact = f32x4.lt(f32x4.abs(gy), f32x4.const(16777216));
  e.set(odd, v128.and(v128.and(lowBit, exact), local.get(yint)));
  e.set(sign, v128.and(v128.and(gx, local.get(odd)), f32x4.const(-0)));
  e.set(r, v128.xor(gr, gsign));
  e.set(r, v128.bitselect(f32x4.const(NaN), gr, v128.andnot(f32x4.lt(gx, f32x4.const(0)), local.get(yint))));
  e.comment("x = ±0: ±0 for y > 0, ±inf for y < 0 (the sign only for odd y)");
  const zero = v128.bitselect(gsign, v128.or(gsign, f32x4.const(Infinity)), f32x4.gt(gy, f32x4.const(0)));
  e.set(r, v128.bitselect(zero, gr, f32x4.eq(gx, f32x4.const(0))));
  e.comment("y = 0: 1 (even for NaN x); NaN y: NaN");
  e.set(r, v128.bitselect(f32x4.const(1), gr, f32x4.eq(gy, f32x4.const(0))));
  return v128.bitselect(gy, gr, f32x4.ne(gy, gy));
}

/**
 * e^x of `x` (evaluated once), in locals named `${prefix}…`, with FMA on the relaxed-SIMD target.
 * `range` says which clamps x may need (as for the helpers' e^x: `low` below -87.34, `high` above
 * 88.37); a caller whose x never crosses one (softmax's z - max <= 0) drops it, with the same
 * results, NaN included.
 */
export function expInline(
  x: V128,
  prefix: string,
  target: KernelTarget,
  range = { low: true, high: true },
): Inline {
  const e = new Emitter(prefix, target);
  return e.done(emitExp(e, x, range));
}

/** erf of `x` (evaluated once), in locals named `${prefix}…`, with FMA on the relaxed-SIMD target. */
export function erfInline(x: V128, prefix: string, target: KernelTarget): Inline {
  const e = new Emitter(prefix, target);
  return e.done(emitErf(e, x));
}

/** tanh of `x` (evaluated once), in locals named `${prefix}…`, with FMA on the relaxed-SIMD target. */
export function tanhInline(x: V128, prefix: string, target: KernelTarget): Inline {
  const e = new Emitter(prefix, target);
  return e.done(emitTanh(e, x));
}

/** gelu (erf form) of the local `x`, in locals named `${prefix}…`, with FMA on the relaxed-SIMD target. */
export function geluInline(x: Local<"v128">, prefix: string, target: KernelTarget): Inline {
  const e = new Emitter(prefix, target);
  return e.done(emitGelu(e, x));
}

/** gelu (tanh form) of the local `x`, in locals named `${prefix}…`, with FMA on the relaxed-SIMD target. */
export function geluTanhInline(x: Local<"v128">, prefix: string, target: KernelTarget): Inline {
  const e = new Emitter(prefix, target);
  return e.done(emitGeluTanh(e, x));
}

const [X, Y] = [local.v128("x"), local.v128("y")];

/** The helpers: name, params, comment, body. Each is also built with FMA as `${name}_fma`. */
const HELPER_DEFS: [string, Local<"v128">[], string, (e: Emitter) => V128][] = [
  [
    "exp_f32x4",
    [X],
    "e^x per lane: x = n·ln2 + r, e^r by polynomial, 2^n from exponent bits; 0 below -87.34",
    (e) => emitExp(e, local.get(X)),
  ],
  [
    "erf_f32x4",
    [X],
    "erf(x) per lane: x·P(x²) for |x| <= 1, else ±(1 - e^(G(|x|) - x²)); ±1 beyond 4",
    (e) => emitErf(e, local.get(X)),
  ],
  [
    "tanh_f32x4",
    [X],
    "tanh(x) per lane: x·P(x²) for |x| <= 0.8, else ±(1 - 2/(e^(2|x|) + 1))",
    (e) => emitTanh(e, local.get(X)),
  ],
  ["gelu_f32x4", [X], "gelu(x) = 0.5·x·(1 + erf(x/√2)) per lane", (e) => emitGelu(e, X)],
  [
    "gelu_tanh_f32x4",
    [X],
    "gelu_tanh(x) = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) per lane, as x / (1 + e^(-2u))",
    (e) => emitGeluTanh(e, X),
  ],
  [
    "log_f32x4",
    [X],
    "ln(x) per lane: x = f·2^e, ln f by polynomial; -inf at 0, NaN below 0",
    (e) => emitLog(e, local.get(X)),
  ],
  [
    "pow_f32x4",
    [X, Y],
    "x^y per lane as e^(y·ln|x|), with Math.pow's signs for x < 0, zeros, y = 0 and NaN",
    (e) => emitPow(e, X, Y),
  ],
];

/** Helper function `name` (v128 params, v128 result) whose body `body` emits on `target`. */
function helper(
  name: string,
  params: Local<"v128">[],
  comment: string,
  target: KernelTarget,
  body: (e: Emitter) => V128,
): string {
  const e = new Emitter("", target);
  const result = body(e);
  return func(name, params, e.locals, e.code, { comment, result });
}

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
    [name, helper(name, params, comment, { relaxedSimd: false }, body)],
    [`${name}_fma`, helper(`${name}_fma`, params, `${comment} (with FMA)`, { relaxedSimd: true }, body)],
  ]),
);

/** The helper to call for `name` (e.g. `gelu_f32x4`) on `target`: its `_fma` variant with relaxed SIMD. */
export function helperFor(name: string, target: KernelTarget): string {
  return target.relaxedSimd ? `${name}_fma` : name;
}
