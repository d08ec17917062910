/**
 * The layer normalization kernel, over the last axis of a [rows, cols] array:
 * `y = (s - mean) / sqrt(var + epsilon) · gamma + beta` with s = x, or s = x + residual (the
 * `add_layer_norm` op), mean and biased variance over each row of s, as the reference computes
 * them (two passes: the mean, then the mean of squared deviations). Rows are split across
 * threads. With a residual, the first pass stores s into y and the later passes read it back,
 * so x and residual are read once. y may be x (or residual) itself.
 */

import { kernelFunctionWat, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import { combineSlots, f32Lit, f32x4, horizontal, indent, memarg, nameNumber, vectorPass } from "./math.ts";
import { fma } from "./kernel.ts";

/** What a layer_norm kernel is specialized to. */
export interface LayerNormSpec {
  /** Rows normalized independently (the product of the leading dims). */
  rows: number;
  /** Length of each row (the normalized last axis); gamma and beta have this length. */
  cols: number;
  /** Added to the variance before the square root. */
  epsilon: number;
  /** The input is x + residual (`add_layer_norm`): a `residual` param follows `x`. */
  residual: boolean;
  /** There is a beta param (default true); without it the shift is 0. */
  beta?: boolean;
}

/** Vectors per loop iteration (and independent accumulators). */
const UNROLL = 4;

/** The kernel for `layer_norm` (or `add_layer_norm`) over rows of `spec.cols`. */
export function layerNormKernel(spec: LayerNormSpec, target: KernelTarget): WasmKernel {
  const { rows, cols, epsilon, residual } = spec;
  const hasBeta = spec.beta ?? true;
  const name = [
    residual ? "add_layer_norm" : "layer_norm",
    `${rows}x${cols}`,
    `eps${nameNumber(epsilon)}`,
    ...(hasBeta ? [] : ["nobeta"]),
    ...(target.relaxedSimd ? ["fma"] : []),
  ].join("_");
  const params = ["x", ...(residual ? ["residual"] : []), "gamma", ...(hasBeta ? ["beta"] : []), "y"];

  const nv = Math.floor(cols / 4);
  const tail = cols % 4;
  const tailBase = nv * 16;
  const slots = Math.max(1, Math.min(UNROLL, nv));
  const acc = (k: number) => `$acc${k}`;
  const src = residual ? "$py" : "$px"; // where passes 2 and 3 read s
  const tailMask = `(v128.const i32x4 ${[0, 1, 2, 3].map((j) => j < tail ? -1 : 0).join(" ")})`;

  const row: string[] = [
    `(local.set $px (i32.add (local.get $x) (i32.mul (local.get $row) (i32.const ${cols * 4}))))`,
    `(local.set $py (i32.add (local.get $y) (i32.mul (local.get $row) (i32.const ${cols * 4}))))`,
  ];
  if (residual) {
    row.push(
      `(local.set $pr (i32.add (local.get $residual) (i32.mul (local.get $row) (i32.const ${cols * 4}))))`,
    );
  }
  const zeroAcc = () => Array.from({ length: slots }, (_, k) => `(local.set ${acc(k)} ${f32x4(0)})`);

  row.push(
    residual
      ? ";; pass 1: s = x + residual, stored to y; mean = sum(s) / cols"
      : ";; pass 1: mean = sum(x) / cols",
  );
  row.push(...zeroAcc());
  row.push(...vectorPass("sum", nv, UNROLL, (at, k) => {
    if (!residual) {
      return [`(local.set ${acc(k)} (f32x4.add (local.get ${acc(k)}) (v128.load ${at("$px")})))`];
    }
    return [
      `(local.set $v (f32x4.add (v128.load ${at("$px")}) (v128.load ${at("$pr")})))`,
      `(v128.store ${at("$py")} (local.get $v))`,
      `(local.set ${acc(k)} (f32x4.add (local.get ${acc(k)}) (local.get $v)))`,
    ];
  }));
  if (tail > 0) {
    // the ragged end as one vector $t, zero past the end
    row.push(`(local.set $t ${f32x4(0)})`);
    for (let j = 0; j < tail; j++) {
      const load = (p: string) => `(f32.load ${memarg(tailBase + 4 * j, `(local.get ${p})`)})`;
      const s = residual ? `(f32.add ${load("$px")} ${load("$pr")})` : load("$px");
      row.push(`(local.set $t (f32x4.replace_lane ${j} (local.get $t) ${s}))`);
      if (residual) {
        row.push(
          `(f32.store ${
            memarg(tailBase + 4 * j, "(local.get $py)")
          } (f32x4.extract_lane ${j} (local.get $t)))`,
        );
      }
    }
    row.push(`(local.set $acc0 (f32x4.add (local.get $acc0) (local.get $t)))`);
  }
  row.push(
    ...combineSlots("f32x4.add", acc, slots),
    ...horizontal("f32x4.add", "(local.get $acc0)", "$mean"),
    `(local.set $mean (f32x4.mul (local.get $mean) ${f32x4(1 / cols)}))`,
  );

  row.push(";; pass 2: var = sum((s - mean)²) / cols; rstd = 1 / sqrt(var + epsilon)");
  row.push(...zeroAcc());
  row.push(...vectorPass("var", nv, UNROLL, (at, k) => [
    `(local.set $v (f32x4.sub (v128.load ${at(src)}) (local.get $mean)))`,
    `(local.set ${acc(k)} ${fma(target, "(local.get $v)", "(local.get $v)", `(local.get ${acc(k)})`)})`,
  ]));
  if (tail > 0) {
    row.push(
      `(local.set $v (v128.and (f32x4.sub (local.get $t) (local.get $mean)) ${tailMask}))`,
      `(local.set $acc0 ${fma(target, "(local.get $v)", "(local.get $v)", "(local.get $acc0)")})`,
    );
  }
  row.push(
    ...combineSlots("f32x4.add", acc, slots),
    ...horizontal("f32x4.add", "(local.get $acc0)", "$rstd"),
    `(local.set $rstd (f32x4.div ${f32x4(1)} (f32x4.sqrt ${
      fma(target, "(local.get $rstd)", f32x4(1 / cols), f32x4(epsilon))
    })))`,
  );

  row.push(`;; pass 3: y = (s - mean)·rstd·gamma${hasBeta ? " + beta" : ""}`);
  const norm = (s: string) => `(f32x4.mul (f32x4.sub ${s} (local.get $mean)) (local.get $rstd))`;
  row.push(...vectorPass("norm", nv, UNROLL, (at) => {
    const scaled = hasBeta
      ? fma(
        target,
        norm(`(v128.load ${at(src)})`),
        `(v128.load ${at("$gamma")})`,
        `(v128.load ${at("$beta")})`,
      )
      : `(f32x4.mul ${norm(`(v128.load ${at(src)})`)} (v128.load ${at("$gamma")}))`;
    return [`(v128.store ${at("$py")} ${scaled})`];
  }));
  if (tail > 0) {
    row.push(`(local.set $t ${norm("(local.get $t)")})`);
    for (let j = 0; j < tail; j++) {
      const at = (p: string) => memarg(tailBase + 4 * j, `(local.get ${p})`);
      let y = `(f32.mul (f32x4.extract_lane ${j} (local.get $t)) (f32.load ${at("$gamma")}))`;
      if (hasBeta) y = `(f32.add ${y} (f32.load ${at("$beta")}))`;
      row.push(`(f32.store ${at("$py")} ${y})`);
    }
  }
  row.push(`(local.set $row (i32.add (local.get $row) (i32.const 1)))`, `(br $rows)`);

  const body = [
    ...threadRange(rows).split("\n").map((l) => l.trim()),
    `(local.set $row (local.get $start))`,
    `(block $done`,
    `  (loop $rows`,
    `    (br_if $done (i32.ge_u (local.get $row) (local.get $end)))`,
    ...indent(row, 2),
    `  ))`,
  ];
  const i32Locals = ["start", "end", "row", "px", "py", "o", ...(residual ? ["pr"] : [])];
  const v128Locals = [...Array.from({ length: slots }, (_, k) => `acc${k}`), "v", "t", "mean", "rstd"];
  const what = `y = layer_norm(${
    residual ? "x + residual" : "x"
  }) over rows of ${cols}, ${rows} rows, epsilon ${f32Lit(epsilon)}; rows split across threads`;
  const wat = kernelFunctionWat({
    name,
    params,
    comment: what,
    i32Locals,
    v128Locals,
    body: rows * cols === 0 ? [] : body,
  });
  return { name, params, wat, uses: [] };
}
