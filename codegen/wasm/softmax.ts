/**
 * The softmax kernel: `y = softmax(scale·x + mask)` over the last axis of x, the mask (if any)
 * broadcast to x numpy-style. Rows are split across threads. Each row takes three passes over
 * its vectors: the max of z = scale·x + mask, then e = exp(z - max) stored to y with its sum,
 * then y *= 1/sum. A ragged end (last dim not a multiple of 4) is gathered into one vector, so
 * it costs one more exp, not one per element. e^x is inlined (`expInline`, with FMA on the
 * relaxed-SIMD target). A mask constant along the row (last dim 1) cancels out and is not added
 * (only its NaN/inf-ness is), which keeps f32 precision. y may be x itself.
 */

import { kernelFunctionWat, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import {
  broadcastSteps,
  combineSlots,
  expInline,
  f32Lit,
  f32x4,
  horizontal,
  indent,
  memarg,
  nameNumber,
  stridedOffset,
  targetMadd,
  vectorPass,
} from "./math.ts";

/** What a softmax kernel is specialized to. */
export interface SoftmaxSpec {
  /** Shape of x and y (rank >= 1); softmax runs over the last axis. */
  shape: number[];
  /** Multiplies x before the mask is added (e.g. 1/√d in attention); default 1. */
  scale?: number;
  /** Shape of the additive mask, broadcastable to `shape`; no mask when absent. */
  maskShape?: number[];
}

/** Vectors per iteration of the max and scale passes, and of the exp pass. */
const UNROLL = 4;
const UNROLL_EXP = 1;

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
  const params = hasMask ? ["x", "mask", "y"] : ["x", "y"];
  const madd = targetMadd(target);

  const nv = Math.floor(n / 4); // full vectors per row
  const tail = n % 4;
  const maskRowWise = hasMask && maskSteps[shape.length - 1] === 0; // one mask value per row

  // z = scale·x + mask for one vector, and for one scalar of the tail
  const zVec = (x: string, m: string) => {
    if (!hasMask) return scale === 1 ? x : `(f32x4.mul ${x} ${f32x4(scale)})`;
    return scale === 1 ? `(f32x4.add ${x} ${m})` : madd(x, f32x4(scale), m);
  };
  const zScalar = (x: string, m: string) => {
    const sx = scale === 1 ? x : `(f32.mul ${x} (f32.const ${f32Lit(scale)}))`;
    return hasMask ? `(f32.add ${sx} ${m})` : sx;
  };
  const maskVec = (at: (p: string) => string) => maskRowWise ? "(local.get $mv)" : `(v128.load ${at("$pm")})`;
  const maskScalar = (offset: number) =>
    maskRowWise
      ? "(f32x4.extract_lane 0 (local.get $mv))"
      : `(f32.load ${memarg(offset, "(local.get $pm)")})`;

  const body: string[] = [];
  const slots = Math.max(1, Math.min(UNROLL, nv));
  const expSlots = Math.max(1, Math.min(UNROLL_EXP, nv));
  const max = (k: number) => `$max${k}`;
  const sum = (k: number) => `$sum${k}`;
  const exp = expInline("(f32x4.sub (local.get $z) (local.get $max))", "e_", madd);

  body.push(
    ...threadRange(rows).split("\n").map((l) => l.trim()),
    `(local.set $row (local.get $start))`,
    `(block $done`,
    `  (loop $rows`,
    `    (br_if $done (i32.ge_u (local.get $row) (local.get $end)))`,
  );
  const row: string[] = [
    `(local.set $px (i32.add (local.get $x) (i32.mul (local.get $row) (i32.const ${n * 4}))))`,
    `(local.set $py (i32.add (local.get $y) (i32.mul (local.get $row) (i32.const ${n * 4}))))`,
  ];
  if (hasMask) {
    const off = stridedOffset(
      "(local.get $row)",
      shape.slice(0, -1),
      maskSteps.slice(0, -1).map((s) => s * 4),
    );
    const pm = off === "(i32.const 0)" ? "(local.get $mask)" : `(i32.add (local.get $mask) ${off})`;
    row.push(`(local.set $pm ${pm})`);
    if (maskRowWise) {
      // softmax(z + c) = softmax(z) for a finite c: adding only c - c (0, or NaN for ±inf and
      // NaN as the reference gives) keeps z's precision, which z - 10000 in f32 would lose
      row.push(`(local.set $mv (v128.load32_splat (local.get $pm)))`);
      row.push(`(local.set $mv (f32x4.sub (local.get $mv) (local.get $mv)))`);
    }
  }

  // the ragged end as one vector: lanes past the end are -inf, so they add nothing
  const tailBase = nv * 16;
  const tailZ: string[] = [];
  if (tail > 0) {
    tailZ.push(`(local.set $t ${f32x4(-Infinity)})`);
    for (let j = 0; j < tail; j++) {
      const x = `(f32.load ${memarg(tailBase + 4 * j, "(local.get $px)")})`;
      tailZ.push(
        `(local.set $t (f32x4.replace_lane ${j} (local.get $t) ${zScalar(x, maskScalar(tailBase + 4 * j))}))`,
      );
    }
  }

  row.push(`;; pass 1: m = max(scale·x + mask)`);
  for (let k = 0; k < slots; k++) row.push(`(local.set ${max(k)} ${f32x4(-Infinity)})`);
  row.push(...vectorPass("max", nv, UNROLL, (at, k) => [
    `(local.set ${max(k)} (f32x4.pmax (local.get ${max(k)}) ${
      zVec(`(v128.load ${at("$px")})`, maskVec(at))
    }))`,
  ]));
  if (tail > 0) row.push(...tailZ, `(local.set $max0 (f32x4.pmax (local.get $max0) (local.get $t)))`);
  row.push(
    ...combineSlots("f32x4.pmax", max, slots),
    ...horizontal("f32x4.pmax", "(local.get $max0)", "$max"),
  );

  row.push(`;; pass 2: y = e^(z - m), s = sum(y)`);
  for (let k = 0; k < expSlots; k++) row.push(`(local.set ${sum(k)} ${f32x4(0)})`);
  row.push(...vectorPass("exp", nv, UNROLL_EXP, (at, k) => [
    `(local.set $z ${zVec(`(v128.load ${at("$px")})`, maskVec(at))})`,
    ...exp.code,
    `(local.set $z ${exp.result})`,
    `(v128.store ${at("$py")} (local.get $z))`,
    `(local.set ${sum(k)} (f32x4.add (local.get ${sum(k)}) (local.get $z)))`,
  ]));
  if (tail > 0) {
    row.push(
      `(local.set $z (local.get $t))`,
      ...exp.code,
      `(local.set $t ${exp.result})`,
      `(local.set $sum0 (f32x4.add (local.get $sum0) (local.get $t)))`,
    );
  }
  row.push(
    ...combineSlots("f32x4.add", sum, expSlots),
    ...horizontal("f32x4.add", "(local.get $sum0)", "$inv"),
  );
  row.push(`(local.set $inv (f32x4.div ${f32x4(1)} (local.get $inv)))`);

  row.push(`;; pass 3: y *= 1/s`);
  row.push(...vectorPass("scale", nv, UNROLL, (at) => [
    `(v128.store ${at("$py")} (f32x4.mul (v128.load ${at("$py")}) (local.get $inv)))`,
  ]));
  if (tail > 0) {
    row.push(`(local.set $t (f32x4.mul (local.get $t) (local.get $inv)))`);
    for (let j = 0; j < tail; j++) {
      row.push(
        `(f32.store ${memarg(tailBase + 4 * j, "(local.get $py)")} (f32x4.extract_lane ${j} (local.get $t)))`,
      );
    }
  }
  row.push(`(local.set $row (i32.add (local.get $row) (i32.const 1)))`, `(br $rows)`);
  body.push(...indent(row, 2), `  ))`);

  const i32Locals = ["start", "end", "row", "px", "py", "o", ...(hasMask ? ["pm"] : [])];
  const v128Locals = [
    ...Array.from({ length: slots }, (_, k) => `max${k}`),
    ...Array.from({ length: expSlots }, (_, k) => `sum${k}`),
    "max",
    "inv",
    "z",
    "t",
    ...(maskRowWise ? ["mv"] : []),
    ...exp.locals,
  ];
  const what = `y = softmax(${scale === 1 ? "" : `${f32Lit(scale)}·`}x${
    hasMask ? ` + mask[${spec.maskShape!.join(",")}]` : ""
  }) over the last axis of [${shape.join(",")}]; rows split across threads`;
  const wat = kernelFunctionWat({
    name,
    params,
    comment: what,
    i32Locals,
    v128Locals,
    body: rows * n === 0 ? [] : body,
  });
  return { name, params, wat, uses: [] };
}
