/**
 * What the int8 GEMM kernels (codegen/wasm/qgemm.ts, codegen/wasm/qbsr.ts) share: their locals,
 * the exact int8 dot step per target, and the epilogue that dequantizes a tile's sums, adds the
 * bias, applies the activation and stores y, in exactly the f32 steps `qdense` defines
 * (ir/ops/qdense.ts).
 *
 * With relaxed SIMD one `i32x4.relaxed_dot_i8x16_i7x16_add_s` takes a 16-byte weight block (4
 * channels x 4 inputs) and 4 activation bytes broadcast to every lane: 16 exact multiply-adds
 * (the activation operand is 7-bit, where the relaxed semantics are exact: VNNI's u8 x s8 on
 * x86). Without relaxed SIMD the same blocks go through `i32x4.dot_i16x8_s` after widening to
 * i16, two channels per half, and the pairs are added at the end. Either way the integer sum
 * minus `64 · Σ_k w` is exact, then `y = f32(acc) · (s · w_scale[n]) + bias[n]`, then the
 * activation.
 */

import { geluInline, geluTanhInline, type Inline, tanhInline } from "./math.ts";
import type { KernelTarget } from "./kernel.ts";
import {
  type Code,
  Expr,
  f32,
  f32x4,
  i16x8,
  i32x4,
  i8x16,
  Instr,
  type Local,
  local,
  type V128,
  v128,
} from "./wat.ts";

/** The activation an int8 GEMM applies last. */
export type QActivation = "none" | "gelu" | "gelu_tanh" | "tanh";

/** Params of the int8 GEMM kernels (byte addresses): quantized x, row scales, weights, epilogue block, y. */
export const [XQ, SCALES, W, EPI, Y] = ["xq", "scales", "w", "epilogue", "y"].map(local.i32);
/**
 * Their i32 locals: the thread's range of tiles, the tile, and pointers: `pa` into xq, `pb` into
 * the weights, `pw` the epilogue block at the tile's first channel, `ps` the row scales at its
 * first row, `py` y at both.
 */
export const [start, end, r, k, kend, it, pa, pb, pw, py, ps] = [
  "start",
  "end",
  "r",
  "k",
  "kend",
  "it",
  "pa",
  "pb",
  "pw",
  "py",
  "ps",
].map(local.i32);

/**
 * The activation of an epilogue: math.ts's inline snippet (FMA on relaxed SIMD) applied to a
 * v128 local, with its v128 constants moved into locals set once per call (`setup`). V8 builds a
 * v128 constant where it is used; hoisted, GELU in a loop went from 16.3 to 11.2 ns a vector, and
 * inline instead of a call to the math.ts helper without FMA from 24 (AMD EPYC).
 */
export interface Activation {
  /** The snippet on local `x` (locals prefixed `act_`): statements, then its result. */
  apply(x: Local<"v128">): { code: Code; result: V128 };
  /** Its locals (the constants' included), for the kernel to declare. */
  locals: Local<"v128">[];
  /** Sets the constants' locals: to run before the kernel's loops. */
  setup: Code;
}

/** `activation` on `target` as an epilogue {@link Activation}, or undefined for none. */
export function activationOf(
  activation: QActivation,
  target: KernelTarget,
): Activation | undefined {
  const snippet = (x: Local<"v128">): Inline => {
    switch (activation) {
      case "gelu":
        return geluInline(x, "act_", target);
      case "gelu_tanh":
        return geluTanhInline(x, "act_", target);
      case "tanh":
        return tanhInline(local.get(x), "act_", target);
      case "none":
        throw new Error("activationOf: no snippet for none");
    }
  };
  if (activation === "none") return undefined;
  const constants = new Map<string, Local<"v128">>();
  const hoist = (text: string) =>
    text.replace(/\(v128\.const [^()]*\)/g, (c) => {
      if (!constants.has(c)) constants.set(c, local.v128(`act_c${constants.size}`));
      return `(local.get $${constants.get(c)!.name})`;
    });
  const apply = (x: Local<"v128">) => {
    const s = snippet(x);
    return {
      code: s.code.map((i) => new Instr(i.lines.map(hoist))),
      result: new Expr("v128", hoist(s.result.text)),
    };
  };
  const probe = local.v128("act_x");
  apply(probe);
  return {
    apply,
    locals: snippet(probe).locals.concat([...constants.values()]),
    setup: [...constants].map(([c, l]) => local.set(l, new Expr("v128", c))),
  };
}

/** Byte lanes of i32 lanes [0, 2] of a then b, and [1, 3]: to add the pairs dot_i16x8_s leaves. */
const EVEN = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
const ODD = EVEN.map((b) => b + 4);

/** Accumulators of one output vector: one (relaxed SIMD) or two halves (plain SIMD). */
type Accumulators = readonly Local<"v128">[];

/** `acc += w · xs` over 16 int8 lanes (4 channels x 4 inputs), exactly, on `target`. */
export function dotInto(target: KernelTarget, acc: Accumulators, w: Local<"v128">, xs: Local<"v128">): Code {
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
export interface EpilogueAt {
  /** Channels the epilogue block holds per part (corrections, scales, biases). */
  Np: number;
  bias: boolean;
  activate?: Activation;
  /** Elements between rows of y. */
  ldc: number;
  /** A v128 scratch local. */
  tmp: Local<"v128">;
}

/**
 * Dequantizes the sums of row `row`, channel vector `v` (pointers `pw`, `ps`, `py` at the tile),
 * adds the bias, applies the activation and stores `lanes` lanes of y.
 */
export function dequantStore(e: EpilogueAt, acc: Accumulators, row: number, v: number, lanes: number): Code {
  const exact = i32x4.sub(sumOf(acc), v128.load(local.get(pw), { offset: 16 * v }));
  const scale = f32x4.mul(
    f32x4.splat(f32.load(local.get(ps), { offset: 4 * row })),
    v128.load(local.get(pw), { offset: e.Np * 4 + 16 * v }),
  );
  let y = f32x4.mul(f32x4.convert_i32x4_s(exact), scale);
  if (e.bias) y = f32x4.add(y, v128.load(local.get(pw), { offset: 2 * e.Np * 4 + 16 * v }));
  const at = row * e.ldc * 4 + 16 * v;
  let pre: Code = [];
  if (e.activate) {
    const snippet = e.activate.apply(e.tmp);
    pre = [local.set(e.tmp, y), snippet.code];
    y = snippet.result;
  }
  if (lanes === 4) return [pre, v128.store(local.get(py), y, { offset: at })];
  return [
    pre,
    local.set(e.tmp, y),
    Array.from(
      { length: lanes },
      (_, l) => f32.store(local.get(py), f32x4.extract_lane(l, local.get(e.tmp)), { offset: at + 4 * l }),
    ),
  ];
}
