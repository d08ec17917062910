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

import { ConstantPool, interleave } from "./hoist.ts";
import { geluInline, geluTanhInline, type Inline, tanhInline } from "./math.ts";
import type { KernelTarget } from "./kernel.ts";
import {
  type Code,
  f32,
  f32x4,
  i16x8,
  type I32,
  i32,
  i32x4,
  i8x16,
  if_,
  type Instr,
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
 * The block-sparse kernels' i32 locals: the block row's first and past-last block `j`, `jend`, the
 * index array, `pj` into its column entries, `pbend` past the row's block bytes, the tile's first
 * row `row0` and its quantized rows `xrow`.
 */
export const [j, jend, row0, xrow, IDX, pj, pbend] = ["j", "jend", "row0", "xrow", "index", "pj", "pbend"]
  .map(
    local.i32,
  );

/**
 * Points the block-sparse kernels at block row `r` of a BSR weight in R x C blocks (`blockRows`
 * of them, index = row pointers then column entries) for the tile at `row0`: its blocks' bytes
 * `pb` .. `pbend`, their column entries `pj`, the row scales `ps`, the epilogue block `pw`, and y
 * (`ldc` elements a row) at `py`.
 */
export function blockRowPointers(R: number, C: number, blockRows: number, ldc: number): Code {
  return [
    local.set(j, i32.load(i32.add(local.get(IDX), i32.shl(local.get(r), i32.const(2))))),
    local.set(jend, i32.load(i32.add(local.get(IDX), i32.shl(local.get(r), i32.const(2))), { offset: 4 })),
    local.set(pb, i32.add(local.get(W), i32.mul(local.get(j), i32.const(R * C)))),
    local.set(pbend, i32.add(local.get(W), i32.mul(local.get(jend), i32.const(R * C)))),
    local.set(
      pj,
      i32.add(local.get(IDX), i32.shl(i32.add(local.get(j), i32.const(blockRows + 1)), i32.const(2))),
    ),
    local.set(ps, i32.add(local.get(SCALES), i32.shl(local.get(row0), i32.const(2)))),
    local.set(pw, i32.add(local.get(EPI), i32.mul(local.get(r), i32.const(R * 4)))),
    local.set(
      py,
      i32.add(
        local.get(Y),
        i32.add(i32.mul(local.get(row0), i32.const(ldc * 4)), i32.mul(local.get(r), i32.const(R * 4))),
      ),
    ),
  ];
}

/**
 * Outputs whose activations run interleaved, statement by statement: their dependency chains
 * overlap. GELU in a loop (constants hoisted) went from 10.7 to 6.5 ns a vector with 4 at once
 * (AMD EPYC).
 */
const INTERLEAVE = 4;

/**
 * The activation of an epilogue: math.ts's inline snippet (FMA on relaxed SIMD), applied to
 * {@link INTERLEAVE} input locals at once, with its v128 constants moved into locals set once per
 * call (`setup`). V8 builds a v128 constant where it is used; hoisted, GELU in a loop went from
 * 16.3 to 11.2 ns a vector, and inline instead of a call to the math.ts helper without FMA from
 * 24 (AMD EPYC).
 */
export interface Activation {
  /** The snippet on input `slot`, its locals prefixed `act<slot>_`: statements, then its result. */
  apply(slot: number): { code: Instr[]; result: V128 };
  /** The input locals, one per slot. */
  inputs: Local<"v128">[];
  /** Every local of the slots, inputs and constants, for the kernel to declare. */
  locals: Local<"v128">[];
  /** Sets the constants' locals: to run before the kernel's loops. */
  setup: Code;
}

/** `activation` on `target` as an epilogue {@link Activation}, or undefined for none. */
export function activationOf(
  activation: QActivation,
  target: KernelTarget,
): Activation | undefined {
  if (activation === "none") return undefined;
  const inputs = Array.from({ length: INTERLEAVE }, (_, i) => local.v128(`act${i}_in`));
  const snippet = (slot: number): Inline => {
    const x = inputs[slot], prefix = `act${slot}_`;
    switch (activation) {
      case "gelu":
        return geluInline(x, prefix, target);
      case "gelu_tanh":
        return geluTanhInline(x, prefix, target);
      case "tanh":
        return tanhInline(local.get(x), prefix, target);
    }
  };
  const pool = new ConstantPool("act_c");
  const apply = (slot: number) => {
    const s = snippet(slot);
    return { code: pool.code(s.code) as Instr[], result: pool.expr(s.result) };
  };
  // Every slot's locals; applying each once also collects the constants.
  const slotLocals = inputs.flatMap((_, slot) => {
    apply(slot);
    return snippet(slot).locals;
  });
  return { apply, inputs, locals: [...inputs, ...slotLocals, ...pool.locals], setup: pool.setup };
}

/** Byte lanes of i32 lanes [0, 2] of a then b, and [1, 3]: to add the pairs dot_i16x8_s leaves. */
const EVEN = [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27];
const ODD = EVEN.map((b) => b + 4);

/** Accumulators of one output vector: one (relaxed SIMD) or two halves (plain SIMD). */
export type Accumulators = readonly Local<"v128">[];

/**
 * How the relaxed-SIMD dot step is written. `fused`: one `i32x4.relaxed_dot_i8x16_i7x16_add_s`,
 * a single instruction with ARM's dot product (`sdot`) or x86's AVX-VNNI (`vpdpbusd`). `split`:
 * `i16x8.relaxed_dot_i8x16_i7x16_s`, `i32x4.extadd_pairwise_i16x8_s` and an add, 12-16% faster
 * on x64 without AVX-VNNI (AMD EPYC here), where V8 makes the fused form `pmaddubsw`, `pmaddwd` by
 * a constant in a register of its own and `paddd`, and slower where the fused form is one
 * instruction. `probe` (the default): the split form where the engine's fused form is that x64
 * sequence ({@link saturatingDot}), else the fused one. Both are exact on the kernels' 7-bit
 * activations (a pair of products is at most 2 · 127 · 127 in magnitude, which an i16 holds), so
 * the choice is one of speed only.
 */
export type DotForm = "probe" | "fused" | "split";

/**
 * 1 when this engine's `i32x4.relaxed_dot_i8x16_i7x16_add_s` is x64's `pmaddubsw` sequence, which
 * saturates each pair of products to an i16: on bytes 127 and 255 (outside the exact range, where
 * engines differ) its lanes are 2 · 32767, where AVX-VNNI gives 4 · 127 · 255 and ARM, reading 255
 * as -1, -4 · 127. The relaxed-SIMD proposal makes an engine answer the same way every time.
 */
export function saturatingDot(): I32 {
  const dot = i32x4.relaxed_dot_i8x16_i7x16_add_s(
    i8x16.splat_const(127),
    i8x16.splat_const(-1),
    i32x4.const(0),
  );
  return i32.eq(i32x4.extract_lane(0, dot), i32.const(2 * 32767));
}

/** `i16x8.relaxed_dot_i8x16_i7x16_s`: i16 lane i is a[2i]·b[2i] + a[2i+1]·b[2i+1], exact when b's lanes are in [0, 127]. */
const relaxedDotI16 = i16x8.relaxed_dot_i8x16_i7x16_s;
/** `i32x4.extadd_pairwise_i16x8_s`: i32 lane i is a[2i] + a[2i+1] of i16 lanes. */
const extaddPairwise = i32x4.extadd_pairwise_i16x8_s;

/**
 * `acc += w · xs` over 16 int8 lanes (4 channels x 4 inputs), exactly, on `target`; with relaxed
 * SIMD in the {@link DotForm} `form`.
 */
export function dotInto(
  target: KernelTarget,
  form: "fused" | "split",
  acc: Accumulators,
  w: Local<"v128">,
  xs: Local<"v128">,
): Code {
  if (target.relaxedSimd && form === "split") {
    return local.set(
      acc[0],
      i32x4.add(local.get(acc[0]), extaddPairwise(relaxedDotI16(local.get(w), local.get(xs)))),
    );
  }
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

/**
 * The kernel code of each dot form `form` asks for: with relaxed SIMD and `probe`, both forms
 * behind a branch on {@link saturatingDot} (evaluated once per call); else the one form.
 */
export function byDotForm(
  target: KernelTarget,
  form: DotForm,
  code: (form: "fused" | "split") => Code,
): Code {
  if (!target.relaxedSimd || form === "fused") return code("fused");
  if (form === "split") return code("split");
  return if_(saturatingDot(), code("split"), code("fused"));
}

/** The four channels' integer sums of `acc` (plain SIMD: the pairs dot_i16x8_s left, added). */
export function sumOf(acc: Accumulators): V128 {
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

/** One output vector of a tile: its sums, row, channel vector and the lanes of y it stores (0: none). */
export interface TileOutput {
  acc: Accumulators;
  row: number;
  v: number;
  lanes: number;
}

/** The dequantized value of output `o` (pointers `pw`, `ps` at the tile), the bias added. */
function dequantized(e: EpilogueAt, o: TileOutput): V128 {
  const exact = i32x4.sub(sumOf(o.acc), v128.load(local.get(pw), { offset: 16 * o.v }));
  const scale = f32x4.mul(
    f32x4.splat(f32.load(local.get(ps), { offset: 4 * o.row })),
    v128.load(local.get(pw), { offset: e.Np * 4 + 16 * o.v }),
  );
  const y = f32x4.mul(f32x4.convert_i32x4_s(exact), scale);
  return e.bias ? f32x4.add(y, v128.load(local.get(pw), { offset: 2 * e.Np * 4 + 16 * o.v })) : y;
}

/** Stores `y` as output `o`'s lanes of y (pointer `py` at the tile). */
function store(e: EpilogueAt, o: TileOutput, y: V128): Code {
  const at = o.row * e.ldc * 4 + 16 * o.v;
  if (o.lanes === 4) return v128.store(local.get(py), y, { offset: at });
  return [
    local.set(e.tmp, y),
    Array.from(
      { length: o.lanes },
      (_, l) => f32.store(local.get(py), f32x4.extract_lane(l, local.get(e.tmp)), { offset: at + 4 * l }),
    ),
  ];
}

/**
 * The epilogue of a tile: each output dequantized, the bias added, the activation applied
 * ({@link INTERLEAVE} outputs at a time, their snippets interleaved) and stored.
 */
export function epilogue(e: EpilogueAt, outputs: readonly TileOutput[]): Code {
  const live = outputs.filter((o) => o.lanes > 0);
  const act = e.activate;
  if (!act) return live.map((o) => store(e, o, dequantized(e, o)));
  const groups = Array.from(
    { length: Math.ceil(live.length / INTERLEAVE) },
    (_, g) => live.slice(g * INTERLEAVE, (g + 1) * INTERLEAVE),
  );
  return groups.map((group) => {
    const snippets = group.map((_, slot) => act.apply(slot));
    return [
      group.map((o, slot) => local.set(act.inputs[slot], dequantized(e, o))),
      interleave(snippets),
      group.map((o, slot) => store(e, o, snippets[slot].result)),
    ];
  });
}
