/**
 * The softmax kernel: `y = softmax(scale·x + mask)` over the last axis of x, the mask (if any)
 * broadcast to x numpy-style. Rows are split across threads. Each row takes three passes over
 * its vectors: the max of z = scale·x + mask, then e = exp(z - max) stored to y with its sum,
 * then y *= 1/sum. A ragged end (last dim not a multiple of 4) is gathered into one vector, so
 * it costs one more exp, not one per element. e^x is inlined (`expInline`, with FMA on the
 * relaxed-SIMD target), four vectors' at a time interleaved, without the clamp at the top (z - max
 * <= 0), and the kernel's v128 constants are locals set once (hoist.ts): at [1,12,128,128] 0.44 ->
 * 0.18 ms on one thread (AMD EPYC). The sum is kept in four partial sums, one per interleaved
 * vector. A mask constant along the row (last dim 1) cancels out and is not added
 * (only its NaN/inf-ness is), which keeps f32 precision. y may be x itself.
 */

import { forRange, kernel, type KernelTarget, nameNumber, threadRange, type WasmKernel } from "./kernel.ts";
import { ConstantPool, interleave } from "./hoist.ts";
import { expInline } from "./math.ts";
import { type At, broadcastSteps, combineSlots, horizontal, stridedOffset, vectorPass } from "./rows.ts";
import type { Code, F32, Local, V128 } from "./wat.ts";
import { br_if, comment, f32, f32Lit, f32x4, i32, local, loop, madd, mem, v128 } from "./wat.ts";

/** What a softmax kernel is specialized to. */
export interface SoftmaxSpec {
  /** Shape of x and y (rank >= 1); softmax runs over the last axis. */
  shape: number[];
  /** Multiplies x before the mask is added (e.g. 1/√d in attention); default 1. */
  scale?: number;
  /** Shape of the additive mask, broadcastable to `shape`; no mask when absent. */
  maskShape?: number[];
}

/**
 * Vectors per iteration of the max and scale passes, and of the exp pass, whose e^x snippets run
 * interleaved statement by statement so that their dependency chains overlap.
 */
const UNROLL = 4;
const UNROLL_EXP = 4;

/**
 * `count` vectors from byte offset 0 in groups of `unroll`: `body` gets each group's addressing
 * (one `At` per vector; `slot` k of a group is its k-th vector), a loop over the full groups
 * indexed by `o`, then one shorter group for the rest.
 */
function vectorGroups(
  label: string,
  count: number,
  unroll: number,
  o: Local<"i32">,
  body: (ats: At[]) => Code,
): Code[] {
  const loops = Math.floor(count / unroll);
  const fixed = (base: number): At => (p, extra = 0) => mem(local.get(p), base + extra);
  const out: Code[] = [];
  if (loops === 1) out.push(body(Array.from({ length: unroll }, (_, k) => fixed(16 * k))));
  else if (loops > 1) {
    const ats = Array.from(
      { length: unroll },
      (_, k): At => (p, extra = 0) => mem(i32.add(local.get(p), local.get(o)), 16 * k + extra),
    );
    out.push(
      local.set(o, i32.const(0)),
      loop(
        label,
        body(ats),
        local.set(o, i32.add(local.get(o), i32.const(16 * unroll))),
        br_if(label, i32.lt_u(local.get(o), i32.const(16 * unroll * loops))),
      ),
    );
  }
  const base = 16 * unroll * loops, rest = count % unroll;
  if (rest > 0) out.push(body(Array.from({ length: rest }, (_, k) => fixed(base + 16 * k))));
  return out;
}

/** The kernel computing `softmax(scale·x + mask)` over the last axis of `spec.shape`. */
export function softmaxKernel(spec: SoftmaxSpec, target: KernelTarget): WasmKernel {
  const shape = spec.shape;
  if (shape.length < 1) throw new Error("softmax needs rank >= 1");
  const scale = spec.scale ?? 1;
  const hasMask = spec.maskShape !== undefined;
  const maskSteps = hasMask ? broadcastSteps(spec.maskShape!, shape) : [];
  const n = shape[shape.length - 1];
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const name = [
    `softmax_${shape.join("x")}`,
    ...(scale !== 1 ? [`s${nameNumber(scale)}`] : []),
    ...(hasMask ? [`mask${spec.maskShape!.join("x") || "scalar"}`] : []),
    ...(target.relaxedSimd ? ["fma"] : []),
  ].join("_");
  const [x, mask, y] = ["x", "mask", "y"].map(local.i32);
  const [start, end, row, px, py, o, pm] = ["start", "end", "row", "px", "py", "o", "pm"].map(local.i32);
  const nv = Math.floor(n / 4); // full vectors per row
  const tail = n % 4;
  const maskRowWise = hasMask && maskSteps[shape.length - 1] === 0; // one mask value per row
  const slots = Math.max(1, Math.min(UNROLL, nv));
  const expSlots = Math.max(1, Math.min(UNROLL_EXP, nv));
  const maxSlot = Array.from({ length: slots }, (_, k) => local.v128(`max${k}`));
  const sumSlot = Array.from({ length: expSlots }, (_, k) => local.v128(`sum${k}`));
  const [max, inv, t, mv] = ["max", "inv", "t", "mv"].map(local.v128);
  const zs = Array.from({ length: expSlots }, (_, k) => local.v128(`z${k}`));
  const z = zs[0];
  // z - max <= 0 (or NaN), so e^x's clamp at the top is not needed
  const exps = zs.map((zk, k) =>
    expInline(f32x4.sub(local.get(zk), local.get(max)), `e${k}_`, target, { low: true, high: false })
  );
  const exp = exps[0];
  const pool = new ConstantPool("c");

  // z = scale·x + mask for the vector at `at`, and for the tail's scalar at byte `offset`
  const zVec = (at: At): V128 => {
    const xv = v128.load(at(px));
    if (!hasMask) return scale === 1 ? xv : f32x4.mul(xv, f32x4.const(scale));
    const m = maskRowWise ? local.get(mv) : v128.load(at(pm));
    return scale === 1 ? f32x4.add(xv, m) : madd(target, xv, f32x4.const(scale), m);
  };
  const zScalar = (offset: number): F32 => {
    const xs = f32.load(local.get(px), { offset });
    const sx = scale === 1 ? xs : f32.mul(xs, f32.const(scale));
    if (!hasMask) return sx;
    const m = maskRowWise ? f32x4.extract_lane(0, local.get(mv)) : f32.load(local.get(pm), { offset });
    return f32.add(sx, m);
  };

  const rowStart = (base: Local<"i32">) =>
    i32.add(local.get(base), i32.mul(local.get(row), i32.const(n * 4)));
  const maskOffset = hasMask &&
    stridedOffset(local.get(row), shape.slice(0, -1), maskSteps.slice(0, -1).map((s) => s * 4));
  // the ragged end as one vector $t: lanes past the end are -inf, so they add nothing
  const tailBase = nv * 16;
  const tailOffsets = Array.from({ length: tail }, (_, j) => tailBase + 4 * j);
  const rowCode = [
    local.set(px, rowStart(x)),
    local.set(py, rowStart(y)),
    hasMask && local.set(pm, maskOffset ? i32.add(local.get(mask), maskOffset) : local.get(mask)),
    // softmax(z + c) = softmax(z) for a finite c: adding only c - c (0, or NaN for ±inf and
    // NaN as the reference gives) keeps z's precision, which z - 10000 in f32 would lose
    maskRowWise && [
      local.set(mv, v128.load32_splat(local.get(pm))),
      local.set(mv, f32x4.sub(local.get(mv), local.get(mv))),
    ],

    comment("pass 1: m = max(scale·x + mask)"),
    maxSlot.map((m) => local.set(m, f32x4.const(-Infinity))),
    vectorPass(
      "max",
      nv,
      UNROLL,
      o,
      (at, k) => local.set(maxSlot[k], f32x4.pmax(local.get(maxSlot[k]), zVec(at))),
    ),
    tail > 0 && [
      local.set(t, f32x4.const(-Infinity)),
      tailOffsets.map((off, j) => local.set(t, f32x4.replace_lane(j, local.get(t), zScalar(off)))),
      local.set(maxSlot[0], f32x4.pmax(local.get(maxSlot[0]), local.get(t))),
    ],
    combineSlots(f32x4.pmax, maxSlot),
    horizontal(f32x4.pmax, local.get(maxSlot[0]), max),

    comment("pass 2: y = e^(z - m), s = sum(y)"),
    sumSlot.map((s) => local.set(s, f32x4.const(0))),
    vectorGroups("exp", nv, UNROLL_EXP, o, (ats) => [
      ats.map((at, k) => local.set(zs[k], zVec(at))),
      interleave(exps.slice(0, ats.length)),
      ats.map((at, k) => [
        local.set(zs[k], exps[k].result),
        v128.store(at(py), local.get(zs[k])),
        local.set(sumSlot[k], f32x4.add(local.get(sumSlot[k]), local.get(zs[k]))),
      ]),
    ]),
    tail > 0 && [
      local.set(z, local.get(t)),
      exp.code,
      local.set(t, exp.result),
      local.set(sumSlot[0], f32x4.add(local.get(sumSlot[0]), local.get(t))),
    ],
    combineSlots(f32x4.add, sumSlot),
    horizontal(f32x4.add, local.get(sumSlot[0]), inv),
    local.set(inv, f32x4.div(f32x4.const(1), local.get(inv))),

    comment("pass 3: y *= 1/s"),
    vectorPass(
      "scale",
      nv,
      UNROLL,
      o,
      (at) => v128.store(at(py), f32x4.mul(v128.load(at(py)), local.get(inv))),
    ),
    tail > 0 && [
      local.set(t, f32x4.mul(local.get(t), local.get(inv))),
      tailOffsets.map((offset, j) =>
        f32.store(local.get(py), f32x4.extract_lane(j, local.get(t)), { offset })
      ),
    ],
  ];
  const rowLoop = pool.code(forRange(row, start, end, "rows", rowCode));
  const body = [threadRange(rows, start, end), pool.setup, rowLoop];

  const what = `y = softmax(${scale === 1 ? "" : `${f32Lit(scale)}·`}x${
    hasMask ? ` + mask[${spec.maskShape!.join(",")}]` : ""
  }) over the last axis of [${shape.join(",")}]; rows split across threads`;
  return kernel({
    name,
    params: hasMask ? [x, mask, y] : [x, y],
    comment: what,
    locals: [
      ...[start, end, row, px, py, o, ...(hasMask ? [pm] : [])],
      ...[...maxSlot, ...sumSlot, max, inv, ...zs, t, ...(maskRowWise ? [mv] : [])],
      ...exps.flatMap((e) => e.locals),
      ...pool.locals,
    ],
    body: rows * n === 0 ? [] : body,
  });
}
