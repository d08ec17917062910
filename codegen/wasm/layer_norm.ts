/**
 * The layer normalization kernel, over the last axis of a [rows, cols] array:
 * `y = (s - mean) / sqrt(var + epsilon) · gamma + beta` with s = x, or s = x + residual (the
 * `add_layer_norm` op), mean and biased variance over each row of s, as the reference computes
 * them (two passes: the mean, then the mean of squared deviations). Rows are split across
 * threads. With a residual, the first pass stores s into y and the later passes read it back,
 * so x and residual are read once. y may be x (or residual) itself.
 */

import { forRange, kernel, type KernelTarget, nameNumber, threadRange, type WasmKernel } from "./kernel.ts";
import { combineSlots, horizontal, vectorPass } from "./rows.ts";
import type { Local, V128 } from "./wat.ts";
import { comment, f32, f32Lit, f32x4, i32, i32x4, local, madd, v128 } from "./wat.ts";

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
  const [x, res, gamma, beta, y] = ["x", "residual", "gamma", "beta", "y"].map(local.i32);
  const [start, end, row, px, py, o, pr] = ["start", "end", "row", "px", "py", "o", "pr"].map(local.i32);
  const nv = Math.floor(cols / 4);
  const tail = cols % 4;
  const tailBase = nv * 16;
  const tailOffsets = Array.from({ length: tail }, (_, j) => tailBase + 4 * j);
  const slots = Math.max(1, Math.min(UNROLL, nv));
  const acc = Array.from({ length: slots }, (_, k) => local.v128(`acc${k}`));
  const [v, t, mean, rstd] = ["v", "t", "mean", "rstd"].map(local.v128);
  const src = residual ? py : px; // where passes 2 and 3 read s
  const tailMask = i32x4.const(tail > 0 ? -1 : 0, tail > 1 ? -1 : 0, tail > 2 ? -1 : 0, 0); // lanes below `tail`
  const rowStart = (base: Local<"i32">) =>
    i32.add(local.get(base), i32.mul(local.get(row), i32.const(cols * 4)));
  const zeroAcc = acc.map((a) => local.set(a, f32x4.const(0)));
  const add = (a: Local<"v128">, value: V128) => local.set(a, f32x4.add(local.get(a), value));
  const sumSquares = (a: Local<"v128">) =>
    local.set(a, madd(target, local.get(v), local.get(v), local.get(a)));
  const norm = (s: V128) => f32x4.mul(f32x4.sub(s, local.get(mean)), local.get(rstd));

  const rowCode = [
    local.set(px, rowStart(x)),
    local.set(py, rowStart(y)),
    residual && local.set(pr, rowStart(res)),

    comment(
      residual
        ? "pass 1: s = x + residual, stored to y; mean = sum(s) / cols"
        : "pass 1: mean = sum(x) / cols",
    ),
    zeroAcc,
    vectorPass("sum", nv, UNROLL, o, (at, k) =>
      residual
        ? [
          local.set(v, f32x4.add(v128.load(at(px)), v128.load(at(pr)))),
          v128.store(at(py), local.get(v)),
          add(acc[k], local.get(v)),
        ]
        : add(acc[k], v128.load(at(px)))),
    // the ragged end as one vector $t, zero past the end
    tail > 0 && [
      local.set(t, f32x4.const(0)),
      tailOffsets.map((offset, j) => {
        const s = residual
          ? f32.add(f32.load(local.get(px), { offset }), f32.load(local.get(pr), { offset }))
          : f32.load(local.get(px), { offset });
        return [
          local.set(t, f32x4.replace_lane(j, local.get(t), s)),
          residual && f32.store(local.get(py), f32x4.extract_lane(j, local.get(t)), { offset }),
        ];
      }),
      add(acc[0], local.get(t)),
    ],
    combineSlots(f32x4.add, acc),
    horizontal(f32x4.add, local.get(acc[0]), mean),
    local.set(mean, f32x4.mul(local.get(mean), f32x4.const(1 / cols))),

    comment("pass 2: var = sum((s - mean)²) / cols; rstd = 1 / sqrt(var + epsilon)"),
    zeroAcc,
    vectorPass("var", nv, UNROLL, o, (at, k) => [
      local.set(v, f32x4.sub(v128.load(at(src)), local.get(mean))),
      sumSquares(acc[k]),
    ]),
    tail > 0 && [
      local.set(v, v128.and(f32x4.sub(local.get(t), local.get(mean)), tailMask)),
      sumSquares(acc[0]),
    ],
    combineSlots(f32x4.add, acc),
    horizontal(f32x4.add, local.get(acc[0]), rstd),
    local.set(
      rstd,
      f32x4.div(
        f32x4.const(1),
        f32x4.sqrt(madd(target, local.get(rstd), f32x4.const(1 / cols), f32x4.const(epsilon))),
      ),
    ),

    comment(`pass 3: y = (s - mean)·rstd·gamma${hasBeta ? " + beta" : ""}`),
    vectorPass("norm", nv, UNROLL, o, (at) => {
      const scaled = norm(v128.load(at(src)));
      return v128.store(
        at(py),
        hasBeta
          ? madd(target, scaled, v128.load(at(gamma)), v128.load(at(beta)))
          : f32x4.mul(scaled, v128.load(at(gamma))),
      );
    }),
    tail > 0 && [
      local.set(t, norm(local.get(t))),
      tailOffsets.map((offset, j) => {
        const scaled = f32.mul(f32x4.extract_lane(j, local.get(t)), f32.load(local.get(gamma), { offset }));
        const yj = hasBeta ? f32.add(scaled, f32.load(local.get(beta), { offset })) : scaled;
        return f32.store(local.get(py), yj, { offset });
      }),
    ],
  ];
  const body = [threadRange(rows, start, end), forRange(row, start, end, "rows", rowCode)];

  const what = `y = layer_norm(${
    residual ? "x + residual" : "x"
  }) over rows of ${cols}, ${rows} rows, epsilon ${f32Lit(epsilon)}; rows split across threads`;
  return kernel({
    name,
    params: [x, ...(residual ? [res] : []), gamma, ...(hasBeta ? [beta] : []), y],
    comment: what,
    locals: [start, end, row, px, py, o, ...(residual ? [pr] : []), ...acc, v, t, mean, rstd],
    body: rows * cols === 0 ? [] : body,
  });
}
