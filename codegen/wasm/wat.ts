/**
 * A small typed builder for WebAssembly text (WAT), the one place kernel code is written.
 *
 * Functions are named after the instructions they print (`i32.add`, `f32x4.mul`, `v128.load`,
 * `local.get`, `br_if`, ...) and take their operands as typed expressions, so an operand of the
 * wrong value type or a missing one is a type error. An expression (`Expr<T>`, T its value type)
 * prints as one folded S-expression; a statement (`Instr`) is one or more lines, and structured
 * control (`block`, `loop`, `if_`) indents its body. `func` and `module` print the whole text,
 * which wabt assembles (assemble.ts) and `--emit-kernels` shows as it runs.
 *
 * Names of locals, labels and functions are given without `$`. Immediates that the text format
 * writes before the operands (lane indices, shuffle lanes) come first here too; memory offsets
 * come last (`v128.load(addr, { offset: 16 })`) or with the address (`v128.load(mem(addr, 16))`).
 *
 * `madd` is where a multiply-add becomes `f32x4.relaxed_madd` (FMA) or a multiply then an add,
 * for all of Sparrow's kernels.
 */

import type { KernelTarget } from "./kernel.ts";

/** The wasm value types the kernels use. */
export type ValType = "i32" | "i64" | "f32" | "v128";

/** An expression leaving one value of type T, printed as a folded S-expression. */
export class Expr<T extends ValType> {
  /** Built by the instruction functions below; `text` is the expression's WAT. */
  constructor(readonly type: T, readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

/** An i32 expression. */
export type I32 = Expr<"i32">;
/** An i64 expression. */
export type I64 = Expr<"i64">;
/** An f32 expression. */
export type F32 = Expr<"f32">;
/** A v128 expression (f32x4, i32x4 or i8x16 lanes alike). */
export type V128 = Expr<"v128">;

/** A local variable or parameter of a function: `(local $name type)`. */
export class Local<T extends ValType = ValType> {
  constructor(readonly name: string, readonly type: T) {}
}

/** A statement: instructions that leave no value, as lines of text. */
export class Instr {
  constructor(readonly lines: readonly string[]) {}
}

/** Statements in order; nested arrays are spliced, and `false`/`undefined` (a skipped `cond && ...`) print nothing. */
export type Code = Instr | readonly Code[] | false | undefined;

/** The lines of `code`, each indented by `pad`. */
function linesOf(code: Code, pad = "", out: string[] = []): string[] {
  if (code instanceof Instr) { for (const l of code.lines) out.push(pad + l); }
  else if (Array.isArray(code)) { for (const c of code) linesOf(c, pad, out); }
  return out;
}

/** `(name args...)` as an expression of type `type`; numbers and strings are immediates. */
function op<T extends ValType>(type: T, name: string, ...args: (Expr<ValType> | number | string)[]): Expr<T> {
  return new Expr(type, args.length ? `(${name} ${args.join(" ")})` : `(${name})`);
}

/** `(name args...)` as a one-line statement. */
function stmt(name: string, ...args: (Expr<ValType> | number | string)[]): Instr {
  return new Instr([args.length ? `(${name} ${args.join(" ")})` : `(${name})`]);
}

// ---------------------------------------------------------------------------------------------
// Literals

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

/** An i32 literal: an integer in [-2^31, 2^32) (the text format reads the upper half as negative). */
function i32Lit(v: number): string {
  if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 32) throw new Error(`not an i32: ${v}`);
  return String(v);
}

/** Four lanes given as one value for all four or as four values. */
type Lanes = [number] | [number, number, number, number];

function lanes(v: Lanes, lit: (x: number) => string): string {
  return (v.length === 1 ? [v[0], v[0], v[0], v[0]] : v).map(lit).join(" ");
}

// ---------------------------------------------------------------------------------------------
// Memory operands

/** The memarg immediates of a load or store. */
export interface MemArg {
  /** Bytes added to the address (the instruction's `offset=`); omitted when 0. */
  offset?: number;
  /** Alignment in bytes (`align=`); the natural alignment when absent. */
  align?: number;
}

/** An address with a constant byte offset: what a load or store reads as `offset=K addr`. */
export interface Mem {
  readonly addr: I32;
  readonly offset: number;
}

/** `addr + offset` as a memory operand, the offset going into the instruction's memarg. */
export function mem(addr: I32, offset = 0): Mem {
  return { addr, offset };
}

/** Where a load or store goes: an i32 address, or an address with an offset. */
export type Address = I32 | Mem;

/** A memory instruction's arguments: its memarg (`offset=K align=A`, the offsets of `at` and `m` added), lane, address, other operands. */
function memArgs(
  at: Address,
  m: MemArg = {},
  lane?: number,
  ...operands: Expr<ValType>[]
): (Expr<ValType> | string | number)[] {
  const [addr, base] = at instanceof Expr ? [at, 0] : [at.addr, at.offset];
  const offset = base + (m.offset ?? 0);
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`bad memory offset ${offset}`);
  const imm = [offset ? `offset=${offset}` : "", m.align ? `align=${m.align}` : ""].filter((s) => s);
  return [...imm, ...(lane === undefined ? [] : [lane]), addr, ...operands];
}

function load<T extends ValType>(type: T, name: string) {
  return (at: Address, m?: MemArg): Expr<T> => op(type, name, ...memArgs(at, m, undefined));
}

function store<T extends ValType>(name: string) {
  return (at: Address, value: Expr<T>, m?: MemArg): Instr => stmt(name, ...memArgs(at, m, undefined, value));
}

// ---------------------------------------------------------------------------------------------
// Numeric instructions

const i32Binary = (name: string) => (a: I32, b: I32): I32 => op("i32", `i32.${name}`, a, b);
const f32Binary = (name: string) => (a: F32, b: F32): F32 => op("f32", `f32.${name}`, a, b);
const f32Unary = (name: string) => (a: F32): F32 => op("f32", `f32.${name}`, a);
const v128Binary = (name: string) => (a: V128, b: V128): V128 => op("v128", name, a, b);
const v128Unary = (name: string) => (a: V128): V128 => op("v128", name, a);
const v128Shift = (name: string) => (a: V128, bits: I32): V128 => op("v128", name, a, bits);

/** i32 instructions. Comparisons give an i32 0 or 1. */
export const i32 = {
  const: (v: number): I32 => op("i32", "i32.const", i32Lit(v)),
  add: i32Binary("add"),
  sub: i32Binary("sub"),
  mul: i32Binary("mul"),
  div_u: i32Binary("div_u"),
  rem_u: i32Binary("rem_u"),
  and: i32Binary("and"),
  or: i32Binary("or"),
  shl: i32Binary("shl"),
  shr_u: i32Binary("shr_u"),
  eq: i32Binary("eq"),
  ne: i32Binary("ne"),
  lt_u: i32Binary("lt_u"),
  le_u: i32Binary("le_u"),
  gt_u: i32Binary("gt_u"),
  ge_u: i32Binary("ge_u"),
  eqz: (a: I32): I32 => op("i32", "i32.eqz", a),
  /** The low 32 bits of an i64. */
  wrap_i64: (a: I64): I32 => op("i32", "i32.wrap_i64", a),
  /** An f32 truncated toward zero, saturating at the i32 range (NaN gives 0). */
  trunc_sat_f32_s: (a: F32): I32 => op("i32", "i32.trunc_sat_f32_s", a),
  load: load("i32", "i32.load"),
  /** A signed byte, sign-extended. */
  load8_s: load("i32", "i32.load8_s"),
  store: store<"i32">("i32.store"),
};

/** i64 instructions (the kernels only move and convert i64 values). */
export const i64 = {
  const: (v: bigint): I64 => op("i64", "i64.const", v.toString()),
  /** A signed i32 widened. */
  extend_i32_s: (a: I32): I64 => op("i64", "i64.extend_i32_s", a),
  /** An f32 truncated toward zero, saturating at the i64 range (NaN gives 0). */
  trunc_sat_f32_s: (a: F32): I64 => op("i64", "i64.trunc_sat_f32_s", a),
  load: load("i64", "i64.load"),
  store: store<"i64">("i64.store"),
};

/** f32 instructions. */
export const f32 = {
  const: (v: number): F32 => op("f32", "f32.const", f32Lit(v)),
  add: f32Binary("add"),
  sub: f32Binary("sub"),
  mul: f32Binary("mul"),
  div: f32Binary("div"),
  min: f32Binary("min"),
  max: f32Binary("max"),
  abs: f32Unary("abs"),
  neg: f32Unary("neg"),
  sqrt: f32Unary("sqrt"),
  /** 1 when a ≥ b (0 when either is NaN). */
  ge: (a: F32, b: F32): I32 => op("i32", "f32.ge", a, b),
  /** 1 when a = b (0 when either is NaN). */
  eq: (a: F32, b: F32): I32 => op("i32", "f32.eq", a, b),
  /** A signed i32 as the nearest f32. */
  convert_i32_s: (a: I32): F32 => op("f32", "f32.convert_i32_s", a),
  /** A signed i64 as the nearest f32. */
  convert_i64_s: (a: I64): F32 => op("f32", "f32.convert_i64_s", a),
  load: load("f32", "f32.load"),
  store: store<"f32">("f32.store"),
};

/** v128 instructions: memory access and bitwise operations on all 128 bits. */
export const v128 = {
  load: load("v128", "v128.load"),
  store: store<"v128">("v128.store"),
  /** One 32-bit value into all four lanes. */
  load32_splat: load("v128", "v128.load32_splat"),
  /** One 32-bit value into lane 0, zeros above. */
  load32_zero: load("v128", "v128.load32_zero"),
  /** 64 bits into lanes 0-1, zeros above. */
  load64_zero: load("v128", "v128.load64_zero"),
  /** `vec` with 32-bit lane `lane` loaded from memory. */
  load32_lane: (lane: number, at: Address, vec: V128, m?: MemArg): V128 =>
    op("v128", "v128.load32_lane", ...memArgs(at, m, lane, vec)),
  /** Stores 32-bit lane `lane` of `vec`. */
  store32_lane: (lane: number, at: Address, vec: V128, m?: MemArg): Instr =>
    stmt("v128.store32_lane", ...memArgs(at, m, lane, vec)),
  /** Stores 64-bit lane `lane` of `vec`. */
  store64_lane: (lane: number, at: Address, vec: V128, m?: MemArg): Instr =>
    stmt("v128.store64_lane", ...memArgs(at, m, lane, vec)),
  and: v128Binary("v128.and"),
  or: v128Binary("v128.or"),
  xor: v128Binary("v128.xor"),
  /** `a & ~b`. */
  andnot: v128Binary("v128.andnot"),
  not: v128Unary("v128.not"),
  /** Bits of `a` where `mask` is 1, of `b` where it is 0. */
  bitselect: (a: V128, b: V128, mask: V128): V128 => op("v128", "v128.bitselect", a, b, mask),
};

/** f32x4 instructions. Comparisons give all-ones or all-zeros lanes. */
export const f32x4 = {
  /** A v128 constant of f32 lanes: one value for all four, or four. */
  const: (...v: Lanes): V128 => op("v128", "v128.const", "f32x4", lanes(v, f32Lit)),
  splat: (x: F32): V128 => op("v128", "f32x4.splat", x),
  extract_lane: (lane: number, v: V128): F32 => op("f32", "f32x4.extract_lane", lane, v),
  replace_lane: (lane: number, v: V128, x: F32): V128 => op("v128", "f32x4.replace_lane", lane, v, x),
  add: v128Binary("f32x4.add"),
  sub: v128Binary("f32x4.sub"),
  mul: v128Binary("f32x4.mul"),
  div: v128Binary("f32x4.div"),
  min: v128Binary("f32x4.min"),
  max: v128Binary("f32x4.max"),
  /** `b < a ? b : a`: a NaN `a` stays. */
  pmin: v128Binary("f32x4.pmin"),
  /** `a < b ? b : a`: a NaN `a` stays. */
  pmax: v128Binary("f32x4.pmax"),
  abs: v128Unary("f32x4.abs"),
  neg: v128Unary("f32x4.neg"),
  sqrt: v128Unary("f32x4.sqrt"),
  nearest: v128Unary("f32x4.nearest"),
  eq: v128Binary("f32x4.eq"),
  ne: v128Binary("f32x4.ne"),
  lt: v128Binary("f32x4.lt"),
  le: v128Binary("f32x4.le"),
  gt: v128Binary("f32x4.gt"),
  ge: v128Binary("f32x4.ge"),
  convert_i32x4_s: v128Unary("f32x4.convert_i32x4_s"),
};

/** i32x4 instructions. */
export const i32x4 = {
  /** A v128 constant of i32 lanes: one value for all four, or four. */
  const: (...v: Lanes): V128 => op("v128", "v128.const", "i32x4", lanes(v, i32Lit)),
  splat: (x: I32): V128 => op("v128", "i32x4.splat", x),
  add: v128Binary("i32x4.add"),
  sub: v128Binary("i32x4.sub"),
  mul: v128Binary("i32x4.mul"),
  eq: v128Binary("i32x4.eq"),
  shl: v128Shift("i32x4.shl"),
  shr_u: v128Shift("i32x4.shr_u"),
  shr_s: v128Shift("i32x4.shr_s"),
  /** Lane-wise signed maximum. */
  max_s: v128Binary("i32x4.max_s"),
  /** Lane `lane` (0-3) as an i32. */
  extract_lane: (lane: number, v: V128): I32 => op("i32", "i32x4.extract_lane", lane, v),
  /** Lane i: `a[2i] + a[2i+1]` of i16 lanes, exact. */
  extadd_pairwise_i16x8_s: v128Unary("i32x4.extadd_pairwise_i16x8_s"),
  trunc_sat_f32x4_s: v128Unary("i32x4.trunc_sat_f32x4_s"),
  /** Lane i: `a[2i]·b[2i] + a[2i+1]·b[2i+1]` of i16 lanes, exact. */
  dot_i16x8_s: v128Binary("i32x4.dot_i16x8_s"),
  /**
   * Lane i: `c[i] + Σ_j a[4i+j]·b[4i+j]` of i8 lanes, exact when every lane of `b` is in [0, 127]
   * (else the engine may read b's lanes as signed or unsigned): relaxed SIMD.
   */
  relaxed_dot_i8x16_i7x16_add_s: (a: V128, b: V128, c: V128): V128 =>
    op("v128", "i32x4.relaxed_dot_i8x16_i7x16_add_s", a, b, c),
};

/** i16x8 instructions. */
export const i16x8 = {
  /** Lanes 0-7 of an i8x16, sign-extended. */
  extend_low_i8x16_s: v128Unary("i16x8.extend_low_i8x16_s"),
  /** Lanes 8-15 of an i8x16, sign-extended. */
  extend_high_i8x16_s: v128Unary("i16x8.extend_high_i8x16_s"),
  /** The i32 lanes of a, then of b, saturated to i16. */
  narrow_i32x4_s: v128Binary("i16x8.narrow_i32x4_s"),
  /**
   * Lane i: `a[2i]·b[2i] + a[2i+1]·b[2i+1]` of i8 lanes, exact when every lane of `b` is in
   * [0, 127] (else the engine may read b's lanes as signed or unsigned, and may saturate the sum
   * to i16): relaxed SIMD.
   */
  relaxed_dot_i8x16_i7x16_s: v128Binary("i16x8.relaxed_dot_i8x16_i7x16_s"),
};

/** i8x16 instructions. */
export const i8x16 = {
  /** A v128 constant of sixteen equal i8 lanes. */
  splat_const: (v: number): V128 => op("v128", "v128.const", "i8x16", Array(16).fill(i32Lit(v)).join(" ")),
  add: v128Binary("i8x16.add"),
  /** The i16 lanes of a, then of b, saturated to i8. */
  narrow_i16x8_s: v128Binary("i8x16.narrow_i16x8_s"),
  /** Byte i of the result is byte `lanes[i]` of a (0-15) or b (16-31). */
  shuffle: (byteLanes: readonly number[], a: V128, b: V128): V128 => {
    if (byteLanes.length !== 16 || byteLanes.some((l) => !Number.isInteger(l) || l < 0 || l > 31)) {
      throw new Error(`bad i8x16.shuffle lanes ${byteLanes}`);
    }
    return op("v128", "i8x16.shuffle", byteLanes.join(" "), a, b);
  },
};

/**
 * `a · b + c` on f32x4 lanes: `f32x4.relaxed_madd` (one rounding, or two where the engine has
 * no FMA) on the relaxed-SIMD target, else `f32x4.mul` then `f32x4.add`. The only place either
 * is chosen.
 */
export function madd(target: KernelTarget, a: V128, b: V128, c: V128): V128 {
  return target.relaxedSimd ? op("v128", "f32x4.relaxed_madd", a, b, c) : f32x4.add(f32x4.mul(a, b), c);
}

/** Bulk memory instructions. */
export const memory = {
  /** Copies `bytes` bytes from `src` to `dst` (the ranges may overlap). */
  copy: (dst: I32, src: I32, bytes: I32): Instr => stmt("memory.copy", dst, src, bytes),
};

// ---------------------------------------------------------------------------------------------
// Locals, calls and control

/** Local variables: declaring them (`local.i32("row")`) and the get/set/tee instructions. */
export const local = {
  i32: (name: string): Local<"i32"> => new Local(name, "i32"),
  f32: (name: string): Local<"f32"> => new Local(name, "f32"),
  v128: (name: string): Local<"v128"> => new Local(name, "v128"),
  get: <T extends ValType>(l: Local<T>): Expr<T> => op(l.type, "local.get", `$${l.name}`),
  set: <T extends ValType>(l: Local<T>, value: Expr<NoInfer<T>>): Instr =>
    stmt("local.set", `$${l.name}`, value),
  /** Sets `l` and leaves the value. */
  tee: <T extends ValType>(l: Local<T>, value: Expr<NoInfer<T>>): Expr<T> =>
    op(l.type, "local.tee", `$${l.name}`, value),
};

/** A call of function `fn` returning a `type` value. */
export function call<T extends ValType>(type: T, fn: string, ...args: Expr<ValType>[]): Expr<T> {
  return op(type, "call", `$${fn}`, ...args);
}

/** A `;; text` comment line (one per line of `text`). */
export function comment(text: string): Instr {
  return new Instr(text.split("\n").map((l) => `;; ${l}`));
}

/** A block: `br label` inside it jumps to its end. */
export function block(label: string, ...body: Code[]): Instr {
  return new Instr([`(block $${label}`, ...linesOf(body, "  "), `)`]);
}

/** A loop: `br label` inside it jumps back to its start. */
export function loop(label: string, ...body: Code[]): Instr {
  return new Instr([`(loop $${label}`, ...linesOf(body, "  "), `)`]);
}

/** `then` when `cond` is not 0, else `otherwise`. A lone one-line `then` prints on one line. */
export function if_(cond: I32, then: Code, otherwise?: Code): Instr {
  const t = linesOf(then);
  const e = otherwise === undefined ? undefined : linesOf(otherwise);
  if (e === undefined && t.length <= 1) {
    return new Instr([`(if ${cond} (then${t.map((l) => ` ${l}`).join("")}))`]);
  }
  const lines = [`(if ${cond} (then`, ...t.map((l) => `  ${l}`)];
  if (e !== undefined) lines.push(`) (else`, ...e.map((l) => `  ${l}`));
  lines.push(`))`);
  return new Instr(lines);
}

/** An `if` with a result: `then` when `cond` is not 0, else `otherwise` (only one is evaluated). */
export function ifResult<T extends ValType>(type: T, cond: I32, then: Expr<T>, otherwise: Expr<T>): Expr<T> {
  return new Expr(type, `(if (result ${type}) ${cond} (then ${then}) (else ${otherwise}))`);
}

/** Jumps to `label` (a block's end or a loop's start). */
export function br(label: string): Instr {
  return stmt("br", `$${label}`);
}

/** Jumps to `label` when `cond` is not 0. */
export function br_if(label: string, cond: I32): Instr {
  return stmt("br_if", `$${label}`, cond);
}

/** Jumps to `labels[index]`, or to the last label when `index` is past the others. */
export function br_table(labels: readonly string[], index: I32): Instr {
  return stmt("br_table", ...labels.map((l) => `$${l}`), index);
}

/** Returns from the function (one without a result). */
export function return_(): Instr {
  return stmt("return");
}

// ---------------------------------------------------------------------------------------------
// Functions and modules

/** What `func` prints besides the name, params, locals and body. */
export interface FuncOptions {
  /** Export the function under its name. */
  export?: boolean;
  /** A `;;` comment under the signature saying what the function computes. */
  comment?: string;
  /** The value the function returns, evaluated after `body`; its type is the result type. */
  result?: Expr<ValType>;
}

/** The WAT text of function `name`: signature, comment, local declarations (a line per type run), body, result. */
export function func(
  name: string,
  params: readonly Local[],
  locals: readonly Local[],
  body: Code,
  opts: FuncOptions = {},
): string {
  const sig = [`(func $${name}`];
  if (opts.export) sig.push(`(export "${name}")`);
  for (const p of params) sig.push(`(param $${p.name} ${p.type})`);
  if (opts.result) sig.push(`(result ${opts.result.type})`);
  const decls: string[] = [];
  locals.forEach((l, i) => {
    const d = `(local $${l.name} ${l.type})`;
    if (i > 0 && locals[i - 1].type === l.type) decls[decls.length - 1] += ` ${d}`;
    else decls.push(d);
  });
  return [
    sig.join(" "),
    ...(opts.comment === undefined ? [] : comment(opts.comment).lines.map((l) => `  ${l}`)),
    ...decls.map((d) => `  ${d}`),
    ...linesOf(body, "  "),
    ...(opts.result ? [`  ${opts.result}`] : []),
    `)`,
  ].join("\n");
}

/** The import of a memory of `pages` 64 KiB pages (initial = maximum) as `module`.`name`. */
export function importMemory(module: string, name: string, pages: number, opts: { shared: boolean }): string {
  return `(import "${module}" "${name}" (memory ${pages} ${pages}${opts.shared ? " shared" : ""}))`;
}

/** The WAT text of a module of `fields` (imports, functions), each indented under `(module`. */
export function module(fields: readonly string[]): string {
  const body = fields.flatMap((f) => f.split("\n").map((l) => `  ${l}`));
  return [`(module`, ...body, `)`].join("\n") + "\n";
}
