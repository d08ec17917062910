/**
 * Fused element-wise kernels: one expression over inputs that broadcast (numpy rules) to the
 * output shape, evaluated on f32x4 vectors.
 *
 * The output is viewed as [rows, inner], with inner the longest trailing block along which
 * every input is either contiguous (read with v128 loads) or constant (one value per row,
 * splatted once per row, or once per call for scalars and inputs that broadcast along every
 * leading dim). Same-shape inputs give one row of every element; a bias [768] against
 * [1, 128, 768] gives rows of 768; any other broadcast still fits, with shorter rows (down to
 * inner = 1, one element a row, when nothing lines up). Threads split the elements in chunks of
 * 16 (a cache line), each walking its part row by row: full vectors, then single elements.
 *
 * Each op rounds to f32 as the IR's ops do; `add(mul(a, b), c)` is not fused. exp, erf, tanh,
 * gelu and gelu_tanh are math.ts's code inlined into the loop (with FMA on the relaxed-SIMD
 * target, whose kernels are then named `..._fma`); their accuracy is math.ts's. log calls
 * math.ts's `log_f32x4` helper (`_fma` on the relaxed target). pow with a
 * constant exponent is exact for 0, 1, 2, 0.5 and -1 (matching `Math.pow` rounded to f32,
 * including pow(-0, 0.5) = 0 and pow(-inf, 0.5) = inf); other small integer exponents (|n| <= 8)
 * multiply out (within a few ulp); any other pow calls `pow_f32x4` (see math.ts: relative error
 * about (1 + |y·ln x|)·2.5e-7, finite x).
 *
 * Every input of a vector is loaded before its result is stored, so the output may be one of the
 * same-shape inputs (in place).
 */

import { kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import {
  erfInline,
  expInline,
  geluInline,
  geluTanhInline,
  helperFor,
  type Inline,
  tanhInline,
} from "./math.ts";
import { broadcastSteps, rowMajorStrides, stridedOffset } from "./rows.ts";
import type { I32, Instr, V128 } from "./wat.ts";
import {
  block,
  br,
  br_if,
  call,
  comment,
  f32,
  f32Lit,
  f32x4,
  i32,
  if_,
  Local,
  local,
  loop,
  v128,
} from "./wat.ts";

/** An element-wise expression over the kernel's inputs. */
export type ElementwiseExpr =
  | { input: number }
  | { constant: number }
  | { op: "add" | "sub" | "mul" | "div" | "pow" | "max" | "min"; args: [ElementwiseExpr, ElementwiseExpr] }
  | {
    op: "neg" | "sqrt" | "erf" | "tanh" | "gelu" | "gelu_tanh" | "exp" | "log" | "abs";
    args: [ElementwiseExpr];
  };

/** What an element-wise kernel is specialized to. */
export interface ElementwiseSpec {
  /** The output shape. */
  shape: number[];
  /** The inputs' shapes, each broadcastable to `shape`. */
  inputs: { shape: number[] }[];
  /** The value of each output element. */
  expr: ElementwiseExpr;
}

const BINARY: Record<string, (a: V128, b: V128) => V128> = {
  add: f32x4.add,
  sub: f32x4.sub,
  mul: f32x4.mul,
  div: f32x4.div,
  max: f32x4.max,
  min: f32x4.min,
};
const UNARY: Record<string, (a: V128) => V128> = { neg: f32x4.neg, sqrt: f32x4.sqrt, abs: f32x4.abs };
/** The math ops, inlined from math.ts (with FMA on the relaxed-SIMD target). */
const INLINE: Record<string, (x: Local<"v128">, prefix: string, target: KernelTarget) => Inline> = {
  exp: (x, p, target) => expInline(local.get(x), p, target),
  erf: (x, p, target) => erfInline(local.get(x), p, target),
  tanh: (x, p, target) => tanhInline(local.get(x), p, target),
  gelu: geluInline,
  gelu_tanh: geluTanhInline,
};

/** Elements per unit of thread work: a 64-byte cache line, so threads do not share lines. */
const CHUNK = 16;

/** A vector value: in a local, or an expression. */
type Value = Local<"v128"> | V128;

const valueOf = (x: Value): V128 => x instanceof Local ? local.get(x) : x;

/** Turns an expression into code over v128 values, with temporaries for values used twice. */
class ExprGen {
  readonly code: Instr[] = [];
  readonly uses = new Set<string>();
  /** v128 locals of the inlined math ops. */
  readonly mathLocals: Local<"v128">[] = [];
  /** The vector constants it made: cheap to repeat, like locals. */
  private readonly constants = new Set<V128>();
  private temps = 0;
  private sites = 0;

  constructor(private readonly input: (i: number) => Local<"v128">, private readonly target: KernelTarget) {}

  /** The number of v128 temporaries the expression needs. */
  get tempCount(): number {
    return this.temps;
  }

  /** The value of `e`. */
  gen(e: ElementwiseExpr): V128 {
    return valueOf(this.value(e));
  }

  /** `x` as something cheap to repeat: itself if a local or a constant, else a fresh temporary. */
  private shared(x: Value): Value {
    return x instanceof Local || this.constants.has(x) ? x : this.temp(x);
  }

  /** `x` in a local: itself if one, else a fresh temporary. */
  private inLocal(x: Value): Local<"v128"> {
    return x instanceof Local ? x : this.temp(x);
  }

  private constant(v: number): V128 {
    const c = f32x4.const(v);
    this.constants.add(c);
    return c;
  }

  private temp(x: V128): Local<"v128"> {
    const t = local.v128(`t${this.temps++}`);
    this.code.push(local.set(t, x));
    return t;
  }

  private value(e: ElementwiseExpr): Value {
    if ("input" in e) return this.input(e.input);
    if ("constant" in e) return this.constant(e.constant);
    if (e.op === "pow") return this.pow(e.args[0], e.args[1]);
    if (e.op in BINARY) {
      const [a, b] = e.args as [ElementwiseExpr, ElementwiseExpr];
      return BINARY[e.op](this.gen(a), this.gen(b));
    }
    const a = this.value(e.args[0]);
    if (e.op in UNARY) return UNARY[e.op](valueOf(a));
    if (e.op === "log") {
      const fn = helperFor("log_f32x4", this.target);
      this.uses.add(fn);
      return call("v128", fn, valueOf(a));
    }
    const inline = INLINE[e.op];
    if (!inline) throw new Error(`unknown element-wise op '${e.op}'`);
    const m = inline(this.inLocal(a), `${e.op}${this.sites++}_`, this.target);
    this.code.push(comment(e.op), ...m.code);
    this.mathLocals.push(...m.locals);
    return m.result;
  }

  private pow(base: ElementwiseExpr, exponent: ElementwiseExpr): Value {
    const c = "constant" in exponent ? Math.fround(exponent.constant) : undefined;
    if (c === 0) return this.constant(1);
    if (c === 1) return this.value(base);
    if (c === 0.5 || c === -0.5) {
      const x = valueOf(this.shared(this.value(base)));
      // Math.pow(-0, 0.5) = +0 and Math.pow(-inf, 0.5) = inf, unlike sqrt
      const root = v128.bitselect(
        f32x4.const(Infinity),
        f32x4.sqrt(f32x4.add(x, f32x4.const(0))),
        f32x4.eq(x, f32x4.const(-Infinity)),
      );
      return c > 0 ? root : f32x4.div(f32x4.const(1), root);
    }
    if (c !== undefined && Number.isInteger(c) && Math.abs(c) <= 8) {
      // binary powering: x^n by squaring
      let x = this.shared(this.value(base));
      let result: Value | undefined;
      for (let n = Math.abs(c); n > 0; n >>= 1) {
        if (n & 1) result = result === undefined ? x : this.shared(f32x4.mul(valueOf(result), valueOf(x)));
        if (n > 1) x = this.shared(f32x4.mul(valueOf(x), valueOf(x)));
      }
      return c > 0 ? result! : f32x4.div(f32x4.const(1), valueOf(result!));
    }
    this.uses.add("pow_f32x4");
    return call("v128", "pow_f32x4", this.gen(base), this.gen(exponent));
  }
}

/** The expression as one line of text, for the kernel's comment. */
function describe(e: ElementwiseExpr): string {
  if ("input" in e) return `in${e.input}`;
  if ("constant" in e) return f32Lit(e.constant);
  return `${e.op}(${e.args.map(describe).join(", ")})`;
}

/** The ops of the expression, each once, in order of first appearance. */
function opsOf(e: ElementwiseExpr, out: string[] = []): string[] {
  if ("op" in e) {
    if (!out.includes(e.op)) out.push(e.op);
    for (const a of e.args) opsOf(a, out);
  }
  return out;
}

/** The inputs the expression reads. */
function inputsOf(e: ElementwiseExpr, out = new Set<number>()): Set<number> {
  if ("input" in e) out.add(e.input);
  else if ("op" in e) { for (const a of e.args) inputsOf(a, out); }
  return out;
}

/** 32-bit FNV-1a of a string, as 8 hex digits. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

/** How an input is read along a row of the [rows, inner] view. */
type Access = "same" | "contiguous" | "constant";

/**
 * The split of the output into [rows, inner]: the smallest m such that along dims m.. every
 * input is contiguous or constant; and each input's access.
 */
function planRows(shape: readonly number[], steps: readonly number[][]): { m: number; access: Access[] } {
  const outStrides = rowMajorStrides(shape);
  const rank = shape.length;
  for (let m = 0; m <= rank; m++) {
    const access: Access[] = [];
    for (const s of steps) {
      const dims = [...Array(rank - m).keys()].map((k) => k + m).filter((d) => shape[d] > 1);
      if (dims.every((d) => s[d] === outStrides[d])) {
        const same = shape.every((n, d) => n === 1 || s[d] === outStrides[d]);
        access.push(same ? "same" : "contiguous");
      } else if (dims.every((d) => s[d] === 0)) {
        access.push("constant");
      } else break;
    }
    if (access.length === steps.length) return { m, access };
  }
  throw new Error("unreachable: inner = 1 always fits");
}

/** The kernel computing `spec.expr` per element of `spec.shape`. */
export function elementwiseKernel(spec: ElementwiseSpec, target: KernelTarget): WasmKernel {
  const { shape, inputs, expr } = spec;
  for (const i of inputsOf(expr)) {
    if (!Number.isInteger(i) || i < 0 || i >= inputs.length) {
      throw new Error(`expression reads input ${i} of ${inputs.length}`);
    }
  }
  const steps = inputs.map((inp) => broadcastSteps(inp.shape, shape));
  const total = shape.reduce((a, b) => a * b, 1);
  const { m, access } = planRows(shape, steps);
  const inner = shape.slice(m).reduce((a, b) => a * b, 1);
  const used = [...inputsOf(expr)].sort((a, b) => a - b);

  const ops = opsOf(expr);
  const summary = ops.length === 0
    ? "copy"
    : ops.length > 4
    ? [...ops.slice(0, 4), "etc"].join("_")
    : ops.join("_");
  const key = JSON.stringify({ shape, inputs: inputs.map((i) => i.shape), expr });
  // the inlined math ops use FMA on the relaxed target: different code, so a different name
  const fused = target.relaxedSimd && ops.some((o) => o in INLINE || o === "log");
  const name = `eltwise_${summary}_${shape.join("x") || "scalar"}_${fnv1a(key)}${fused ? "_fma" : ""}`;

  const params = [...inputs.map((_, k) => local.i32(`in${k}`)), local.i32("out")];
  const [inp, out] = [params.slice(0, -1), params[params.length - 1]];
  const [start, end, i, e, len] = ["start", "end", "i", "e", "len"].map(local.i32);
  const [vend, o, po, row, j] = ["vend", "o", "po", "row", "j"].map(local.i32);
  const ptr = inputs.map((_, k) => local.i32(`p${k}`));
  // each input's operand: its vector (a) or its splatted value (s, for constant inputs)
  const operand = inputs.map((_, k) => local.v128(`${access[k] === "constant" ? "s" : "a"}${k}`));
  const streamed = used.filter((k) => access[k] !== "constant");

  // Where each input's row starts (in elements), for the [rows, inner] view.
  const rowOffset = steps.map((s) => stridedOffset(local.get(row), shape.slice(0, m), s.slice(0, m)));
  // constant inputs whose value is the same in every row are loaded once
  const hoisted = (k: number) => access[k] === "constant" && rowOffset[k] === undefined;

  const at = (p: Local<"i32">) => i32.add(local.get(p), local.get(o));
  const vecGen = new ExprGen((k) => operand[k], target);
  const vecResult = vecGen.gen(expr);
  const vecBody = [
    streamed.map((k) => local.set(operand[k], v128.load(at(ptr[k])))),
    vecGen.code,
    v128.store(at(po), vecResult),
  ];
  const scalarGen = new ExprGen((k) => operand[k], target);
  const scalarResult = scalarGen.gen(expr);
  const scalarBody = [
    streamed.map((k) => local.set(operand[k], v128.load32_splat(at(ptr[k])))),
    scalarGen.code,
    f32.store(at(po), f32x4.extract_lane(0, scalarResult)),
  ];

  const bytes = (index: I32) => i32.shl(index, i32.const(2));
  const rowCode = [
    m === 0 ? local.set(len, bytes(i32.sub(local.get(e), local.get(i)))) : [
      comment(`row $row of ${inner} elements; this pass covers [i, min(e, row end))`),
      local.set(row, i32.div_u(local.get(i), i32.const(inner))),
      local.set(j, i32.sub(local.get(i), i32.mul(local.get(row), i32.const(inner)))),
      local.set(len, i32.sub(i32.const(inner), local.get(j))),
      if_(
        i32.gt_u(i32.add(local.get(i), local.get(len)), local.get(e)),
        local.set(len, i32.sub(local.get(e), local.get(i))),
      ),
      local.set(len, bytes(local.get(len))),
    ],
    used.map((k) => {
      const off = rowOffset[k];
      if (access[k] === "same") return local.set(ptr[k], i32.add(local.get(inp[k]), bytes(local.get(i))));
      if (access[k] === "contiguous") {
        const first = off ? i32.add(off, local.get(j)) : local.get(j);
        return local.set(ptr[k], i32.add(local.get(inp[k]), bytes(first)));
      }
      return off && local.set(operand[k], v128.load32_splat(i32.add(local.get(inp[k]), bytes(off))));
    }),
    local.set(po, i32.add(local.get(out), bytes(local.get(i)))),
    comment("full vectors, then single elements"),
    local.set(o, i32.const(0)),
    local.set(vend, i32.and(local.get(len), i32.const(-16))),
    block(
      "vdone",
      loop(
        "vec",
        br_if("vdone", i32.ge_u(local.get(o), local.get(vend))),
        vecBody,
        local.set(o, i32.add(local.get(o), i32.const(16))),
        br("vec"),
      ),
    ),
    block(
      "sdone",
      loop(
        "scalar",
        br_if("sdone", i32.ge_u(local.get(o), local.get(len))),
        scalarBody,
        local.set(o, i32.add(local.get(o), i32.const(4))),
        br("scalar"),
      ),
    ),
    local.set(i, i32.add(local.get(i), i32.shr_u(local.get(len), i32.const(2)))),
  ];
  const body = [
    threadRange(Math.ceil(total / CHUNK), start, end),
    comment("this thread's elements: [i, e)"),
    local.set(i, i32.mul(local.get(start), i32.const(CHUNK))),
    local.set(e, i32.mul(local.get(end), i32.const(CHUNK))),
    if_(i32.gt_u(local.get(e), i32.const(total)), local.set(e, i32.const(total))),
    br_if("done", i32.ge_u(local.get(i), local.get(e))),
    used.filter(hoisted).map((k) => local.set(operand[k], v128.load32_splat(local.get(inp[k])))),
    m === 0 ? rowCode : loop("rows", rowCode, br_if("rows", i32.lt_u(local.get(i), local.get(e)))),
  ];

  const temps = Array.from(
    { length: Math.max(vecGen.tempCount, scalarGen.tempCount) },
    (_, t) => local.v128(`t${t}`),
  );
  const mathLocals = new Map([...vecGen.mathLocals, ...scalarGen.mathLocals].map((l) => [l.name, l]));
  const i32Locals = [
    start,
    end,
    i,
    e,
    len,
    vend,
    o,
    po,
    ...(m > 0 ? [row, j] : []),
    ...streamed.map((k) => ptr[k]),
  ];
  const inputText = inputs.map((inp, k) => `in${k}[${inp.shape.join(",")}]`).join(" ");
  return kernel({
    name,
    params,
    comment: `out[${shape.join(",")}] = ${describe(expr)}; ${inputText}; rows of ${inner}; ` +
      `threads split chunks of ${CHUNK}`,
    locals: [...i32Locals, ...used.map((k) => operand[k]), ...temps, ...mathLocals.values()],
    body: total === 0 ? [] : block("done", body),
    uses: [...new Set([...vecGen.uses, ...scalarGen.uses])].sort(),
  });
}
