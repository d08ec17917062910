/**
 * Kernels of the ops only backward functions use (the autodiff ops of `ir/ops/`): `reduce_sum`,
 * `scatter_add`, `softmax_grad`, `layer_norm_grad`, `cross_entropy` and `cross_entropy_grad`.
 * `gelu_grad`, `exp` and `log` are element-wise and fuse (codegen/lower/elementwise.ts);
 * `slice_grad` is a zero fill and a strided copy (codegen/lower/grad.ts).
 *
 * Every kernel splits its work between threads so that no two threads write the same bytes:
 * rows for the row-wise ops, output columns for `reduce_sum` and `scatter_add` (whose threads
 * then each add every update into their own columns, so repeated indices cannot race). Sums are
 * f32 (the interpreter's are f64): the error grows with the square root of the count, about
 * 1e-6 relative for the thousands of rows of a batch.
 */

import { kernel, type KernelTarget, nameNumber, threadRange, type WasmKernel } from "./kernel.ts";
import { helperFor } from "./math.ts";
import { horizontal } from "./rows.ts";
import type { Code, F32, I32, Local } from "./wat.ts";
import { block, br, br_if, call, f32, f32x4, i32, if_, local, loop, v128 } from "./wat.ts";

/** A loop running `body` for `i` = `from` … `to - 1`, labelled `label` (unique per kernel). */
function each(i: Local<"i32">, from: I32, to: I32, label: string, body: Code): Code {
  return [
    local.set(i, from),
    block(
      `${label}_done`,
      loop(
        label,
        br_if(`${label}_done`, i32.ge_u(local.get(i), to)),
        body,
        local.set(i, i32.add(local.get(i), i32.const(1))),
        br(label),
      ),
    ),
  ];
}

const c = (v: number): I32 => i32.const(v);
/** `base + index·bytes`. */
const addr = (base: Local<"i32">, index: I32, bytes: number): I32 =>
  i32.add(local.get(base), i32.mul(index, c(bytes)));

/** e^x and ln x of an f32, through the shared f32x4 helpers (lane 0). */
function expF(x: F32, target: KernelTarget): F32 {
  return f32x4.extract_lane(0, call("v128", helperFor("exp_f32x4", target), f32x4.splat(x)));
}
function logF(x: F32, target: KernelTarget): F32 {
  return f32x4.extract_lane(0, call("v128", helperFor("log_f32x4", target), f32x4.splat(x)));
}

/**
 * `reduce_sum` of x viewed as `[outer, reduced, inner]` into `[outer, inner]` (any reduction
 * whose reduced dims are adjacent after dropping size-1 dims). Threads split the output
 * elements, 4 columns (one vector) at a time when `inner` is a multiple of 4.
 */
export function reduceSumKernel(outer: number, reduced: number, inner: number): WasmKernel {
  const vec = inner % 4 === 0 ? 4 : 1;
  const perRow = inner / vec;
  const units = outer * perRow;
  const [x, out, start, end, u, r, src, dst] = ["x", "out", "start", "end", "u", "r", "src", "dst"].map(
    local.i32,
  );
  const acc = local.v128("acc");
  const accF = local.f32("accf");
  const aIdx = i32.div_u(local.get(u), c(perRow));
  const bIdx = i32.mul(i32.rem_u(local.get(u), c(perRow)), c(vec));
  const body: Code = [
    threadRange(units, start, end),
    each(u, local.get(start), local.get(end), "units", [
      local.set(src, addr(x, i32.add(i32.mul(aIdx, c(reduced * inner)), bIdx), 4)),
      local.set(dst, addr(out, i32.add(i32.mul(aIdx, c(inner)), bIdx), 4)),
      vec === 4
        ? [
          local.set(acc, f32x4.const(0)),
          each(r, c(0), c(reduced), "sum", [
            local.set(acc, f32x4.add(local.get(acc), v128.load(local.get(src)))),
            local.set(src, i32.add(local.get(src), c(inner * 4))),
          ]),
          v128.store(local.get(dst), local.get(acc)),
        ]
        : [
          local.set(accF, f32.const(0)),
          each(r, c(0), c(reduced), "sum", [
            local.set(accF, f32.add(local.get(accF), f32.load(local.get(src)))),
            local.set(src, i32.add(local.get(src), c(inner * 4))),
          ]),
          f32.store(local.get(dst), local.get(accF)),
        ],
    ]),
  ];
  return kernel({
    name: `reduce_sum_${outer}x${reduced}x${inner}`,
    params: [x, out],
    comment: `out[a, b] = Σ_r x[a, r, b] over x [${outer}, ${reduced}, ${inner}]; threads split the outputs`,
    locals: [start, end, u, r, src, dst, acc, accF],
    body: units === 0 ? [] : body,
  });
}

/** What a scatter_add kernel is specialized to: the result `[outer, n, inner]`, updates `[outer, count, inner]`. */
export interface ScatterAddSpec {
  outer: number;
  n: number;
  count: number;
  inner: number;
  indexDtype: "i32" | "i64";
}

/**
 * `scatter_add`: zeros, then each update row added at its index. Threads split the `inner`
 * columns (a vector of 4 at a time when `inner` is a multiple of 4): each zeroes its columns of
 * every result row, then adds its columns of every update, so a repeated index is never written
 * by two threads. Indices are read by their low word (the runtime checks them against `n`);
 * negative ones count from the end as the op says.
 */
export function scatterAddKernel(spec: ScatterAddSpec): WasmKernel {
  const { outer, n, count, inner, indexDtype } = spec;
  const vec = inner % 4 === 0 ? 4 : 1;
  const units = inner / vec;
  const [updates, indices, out, start, end, col0, col1, row, j, o, k, p, q, cc] = [
    "updates",
    "indices",
    "out",
    "start",
    "end",
    "col0",
    "col1",
    "row",
    "j",
    "o",
    "k",
    "p",
    "q",
    "cc",
  ].map(local.i32);
  const colBytes = (x: Local<"i32">) => i32.mul(local.get(x), c(4));
  const zeroRow = each(cc, local.get(col0), local.get(col1), "zcols", [
    vec === 4
      ? v128.store(i32.add(local.get(p), colBytes(cc)), f32x4.const(0))
      : f32.store(i32.add(local.get(p), colBytes(cc)), f32.const(0)),
    vec === 4 && local.set(cc, i32.add(local.get(cc), c(3))),
  ]);
  const addRow = each(cc, local.get(col0), local.get(col1), "acols", [
    vec === 4
      ? v128.store(
        i32.add(local.get(p), colBytes(cc)),
        f32x4.add(
          v128.load(i32.add(local.get(p), colBytes(cc))),
          v128.load(i32.add(local.get(q), colBytes(cc))),
        ),
      )
      : f32.store(
        i32.add(local.get(p), colBytes(cc)),
        f32.add(f32.load(i32.add(local.get(p), colBytes(cc))), f32.load(i32.add(local.get(q), colBytes(cc)))),
      ),
    vec === 4 && local.set(cc, i32.add(local.get(cc), c(3))),
  ]);
  const body: Code = [
    threadRange(units, start, end),
    local.set(col0, i32.mul(local.get(start), c(vec))),
    local.set(col1, i32.mul(local.get(end), c(vec))),
    br_if("done", i32.ge_u(local.get(col0), local.get(col1))),
    each(row, c(0), c(outer * n), "zrows", [local.set(p, addr(out, local.get(row), inner * 4)), zeroRow]),
    each(j, c(0), c(count), "updates", [
      local.set(k, i32.load(addr(indices, local.get(j), indexDtype === "i64" ? 8 : 4))),
      if_(i32.ge_u(local.get(k), c(n)), local.set(k, i32.add(local.get(k), c(n)))),
      each(o, c(0), c(outer), "outer", [
        local.set(p, addr(out, i32.add(i32.mul(local.get(o), c(n)), local.get(k)), inner * 4)),
        local.set(q, addr(updates, i32.add(i32.mul(local.get(o), c(count)), local.get(j)), inner * 4)),
        addRow,
      ]),
    ]),
  ];
  return kernel({
    name: `scatter_add_${outer}x${n}x${inner}_${count}_${indexDtype}`,
    params: [updates, indices, out],
    comment: `out = zeros [${outer}, ${n}, ${inner}]; out[o, idx[j], :] += updates[o, j, :] for ${count} ` +
      `${indexDtype} indices; threads split the columns`,
    locals: [start, end, col0, col1, row, j, o, k, p, q, cc],
    body: units === 0 || outer * n === 0 ? [] : block("done", body),
  });
}

/**
 * A pass over a row of `n` f32 at byte offset `o` from the row pointers: full vectors (`vec`, o
 * stepping by 16), then the scalar tail (`scalar`, o stepping by 4); either may be left out (a
 * pass of only the tail starts at it). `at(p)` is pointer p plus o.
 */
function rowPass(
  o: Local<"i32">,
  n: number,
  label: string,
  vec: ((at: (p: Local<"i32">) => I32) => Code) | undefined,
  scalar: ((at: (p: Local<"i32">) => I32) => Code) | undefined,
): Code {
  const at = (p: Local<"i32">) => i32.add(local.get(p), local.get(o));
  const loopTo = (end: number, step: number, name: string, body: Code) =>
    block(
      `${name}_done`,
      loop(
        name,
        br_if(`${name}_done`, i32.ge_u(local.get(o), c(end))),
        body,
        local.set(o, i32.add(local.get(o), c(step))),
        br(name),
      ),
    );
  const nv = Math.floor(n / 4);
  return [
    local.set(o, c(vec ? 0 : nv * 16)),
    vec && nv > 0 && loopTo(nv * 16, 16, `${label}_v`, vec(at)),
    scalar && n % 4 > 0 && loopTo(n * 4, 4, `${label}_s`, scalar(at)),
  ];
}

/** Sets the f32 local `to` to the sum of the lanes of v128 local `v` (using `tmp`). */
function laneSum(v: Local<"v128">, tmp: Local<"v128">, to: Local<"f32">): Code {
  return [horizontal(f32x4.add, local.get(v), tmp), local.set(to, f32x4.extract_lane(0, local.get(tmp)))];
}

/**
 * `softmax_grad` over the last axis of `[rows, n]`: out = y·(dy - Σ dy·y) per row, on f32x4
 * vectors with a scalar tail. Rows split across threads.
 */
export function softmaxGradKernel(rows: number, n: number): WasmKernel {
  const [dy, y, out, start, end, row, o, pd, py, po] = [
    "dy",
    "y",
    "out",
    "start",
    "end",
    "row",
    "o",
    "pd",
    "py",
    "po",
  ]
    .map(local.i32);
  const dot = local.f32("dot");
  const [dv, tmp] = ["dv", "tmp"].map(local.v128);
  const body: Code = [
    threadRange(rows, start, end),
    each(row, local.get(start), local.get(end), "rows", [
      local.set(pd, addr(dy, local.get(row), n * 4)),
      local.set(py, addr(y, local.get(row), n * 4)),
      local.set(po, addr(out, local.get(row), n * 4)),
      local.set(dv, f32x4.const(0)),
      rowPass(o, n, "dot", (at) => [
        local.set(dv, f32x4.add(local.get(dv), f32x4.mul(v128.load(at(pd)), v128.load(at(py))))),
      ], undefined),
      laneSum(dv, tmp, dot),
      rowPass(o, n, "dot_tail", undefined, (at) => [
        local.set(dot, f32.add(local.get(dot), f32.mul(f32.load(at(pd)), f32.load(at(py))))),
      ]),
      local.set(dv, f32x4.splat(local.get(dot))),
      rowPass(
        o,
        n,
        "out",
        (at) => v128.store(at(po), f32x4.mul(v128.load(at(py)), f32x4.sub(v128.load(at(pd)), local.get(dv)))),
        (at) => f32.store(at(po), f32.mul(f32.load(at(py)), f32.sub(f32.load(at(pd)), local.get(dot)))),
      ),
    ]),
  ];
  return kernel({
    name: `softmax_grad_${rows}x${n}`,
    params: [dy, y, out],
    comment: `out = y·(dy - Σ dy·y) over rows of ${n}, ${rows} rows split across threads`,
    locals: [start, end, row, o, pd, py, po, dot, dv, tmp],
    body: rows * n === 0 ? [] : body,
  });
}

/**
 * `layer_norm_grad` over `[rows, n]` (n the normalized elements of a row), gamma `[n]`:
 * x̂ = (x - mean)·s, s = 1/√(var + ε), g = dy·gamma, out = s·(g - mean(g) - x̂·mean(g·x̂)). Rows
 * split across threads; mean and variance take two passes, as the forward kernel; f32x4 vectors
 * with a scalar tail.
 */
export function layerNormGradKernel(rows: number, n: number, epsilon: number): WasmKernel {
  const [dy, x, gamma, out, start, end, row, o, pd, px, po] = [
    "dy",
    "x",
    "gamma",
    "out",
    "start",
    "end",
    "row",
    "o",
    "pd",
    "px",
    "po",
  ].map(local.i32);
  const [mean, vr, s, mg, mgx, g] = ["mean", "vr", "s", "mg", "mgx", "g"].map(local.f32);
  const [acc, acc2, tmp, vmean, vs, vg, vxh] = ["acc", "acc2", "tmp", "vmean", "vs", "vg", "vxh"].map(
    local.v128,
  );
  const inv = f32.const(1 / n);
  const gOf = (at: (p: Local<"i32">) => I32) => f32.mul(f32.load(at(pd)), f32.load(at(gamma)));
  const xhatOf = (at: (p: Local<"i32">) => I32) =>
    f32.mul(f32.sub(f32.load(at(px)), local.get(mean)), local.get(s));
  const body: Code = [
    threadRange(rows, start, end),
    each(row, local.get(start), local.get(end), "rows", [
      local.set(pd, addr(dy, local.get(row), n * 4)),
      local.set(px, addr(x, local.get(row), n * 4)),
      local.set(po, addr(out, local.get(row), n * 4)),
      // mean
      local.set(acc, f32x4.const(0)),
      rowPass(o, n, "mean", (at) => local.set(acc, f32x4.add(local.get(acc), v128.load(at(px)))), undefined),
      laneSum(acc, tmp, mean),
      rowPass(o, n, "mean_t", undefined, (at) => local.set(mean, f32.add(local.get(mean), f32.load(at(px))))),
      local.set(mean, f32.mul(local.get(mean), inv)),
      local.set(vmean, f32x4.splat(local.get(mean))),
      // variance
      local.set(acc, f32x4.const(0)),
      rowPass(o, n, "var", (at) => [
        local.set(tmp, f32x4.sub(v128.load(at(px)), local.get(vmean))),
        local.set(acc, f32x4.add(local.get(acc), f32x4.mul(local.get(tmp), local.get(tmp)))),
      ], undefined),
      laneSum(acc, tmp, vr),
      rowPass(o, n, "var_t", undefined, (at) => [
        local.set(g, f32.sub(f32.load(at(px)), local.get(mean))),
        local.set(vr, f32.add(local.get(vr), f32.mul(local.get(g), local.get(g)))),
      ]),
      local.set(s, f32.div(f32.const(1), f32.sqrt(f32.add(f32.mul(local.get(vr), inv), f32.const(epsilon))))),
      local.set(vs, f32x4.splat(local.get(s))),
      // mean(g) and mean(g·x̂)
      local.set(acc, f32x4.const(0)),
      local.set(acc2, f32x4.const(0)),
      rowPass(o, n, "sums", (at) => [
        local.set(vg, f32x4.mul(v128.load(at(pd)), v128.load(at(gamma)))),
        local.set(vxh, f32x4.mul(f32x4.sub(v128.load(at(px)), local.get(vmean)), local.get(vs))),
        local.set(acc, f32x4.add(local.get(acc), local.get(vg))),
        local.set(acc2, f32x4.add(local.get(acc2), f32x4.mul(local.get(vg), local.get(vxh)))),
      ], undefined),
      laneSum(acc, tmp, mg),
      laneSum(acc2, tmp, mgx),
      rowPass(o, n, "sums_t", undefined, (at) => [
        local.set(g, gOf(at)),
        local.set(mg, f32.add(local.get(mg), local.get(g))),
        local.set(mgx, f32.add(local.get(mgx), f32.mul(local.get(g), xhatOf(at)))),
      ]),
      local.set(mg, f32.mul(local.get(mg), inv)),
      local.set(mgx, f32.mul(local.get(mgx), inv)),
      local.set(acc, f32x4.splat(local.get(mg))),
      local.set(acc2, f32x4.splat(local.get(mgx))),
      // out
      rowPass(o, n, "out", (at) => [
        local.set(vg, f32x4.mul(v128.load(at(pd)), v128.load(at(gamma)))),
        local.set(vxh, f32x4.mul(f32x4.sub(v128.load(at(px)), local.get(vmean)), local.get(vs))),
        v128.store(
          at(po),
          f32x4.mul(
            local.get(vs),
            f32x4.sub(f32x4.sub(local.get(vg), local.get(acc)), f32x4.mul(local.get(vxh), local.get(acc2))),
          ),
        ),
      ], (at) =>
        f32.store(
          at(po),
          f32.mul(
            local.get(s),
            f32.sub(f32.sub(gOf(at), local.get(mg)), f32.mul(xhatOf(at), local.get(mgx))),
          ),
        )),
    ]),
  ];
  return kernel({
    name: `layer_norm_grad_${rows}x${n}_e${nameNumber(epsilon)}`,
    params: [dy, x, gamma, out],
    comment: `out = dx of layer_norm (ε = ${epsilon}) over rows of ${n}, ${rows} rows split across threads`,
    locals: [start, end, row, o, pd, px, po, mean, vr, s, mg, mgx, g, acc, acc2, tmp, vmean, vs, vg, vxh],
    body: rows * n === 0 ? [] : body,
  });
}

/** The row's max, and Σ e^(z - max), of the logits row at `pl` (locals set by the code). */
function rowStats(
  pl: Local<"i32">,
  C: number,
  i: Local<"i32">,
  max: Local<"f32">,
  sum: Local<"f32">,
  target: KernelTarget,
) {
  const at = i32.add(local.get(pl), i32.mul(local.get(i), c(4)));
  return [
    local.set(max, f32.const(-Infinity)),
    each(i, c(0), c(C), "max", [local.set(max, f32.max(local.get(max), f32.load(at)))]),
    local.set(sum, f32.const(0)),
    each(i, c(0), c(C), "sum", [
      local.set(sum, f32.add(local.get(sum), expF(f32.sub(f32.load(at), local.get(max)), target))),
    ]),
  ];
}

/**
 * `cross_entropy`: the mean over B rows of `max + ln Σ e^(z - max) - z[label]`, a scalar. The
 * batch is small (a few dozen rows of a few logits): thread 0 computes it.
 */
export function crossEntropyKernel(
  B: number,
  C: number,
  indexDtype: "i32" | "i64",
  target: KernelTarget,
): WasmKernel {
  const [logits, labels, out, b, i, pl, lab] = ["logits", "labels", "out", "b", "i", "pl", "lab"].map(
    local.i32,
  );
  const [max, sum, total] = ["max", "sum", "total"].map(local.f32);
  const tid = local.i32("tid");
  const body: Code = [
    br_if("done", i32.ne(local.get(tid), c(0))),
    local.set(total, f32.const(0)),
    each(b, c(0), c(B), "rows", [
      local.set(pl, addr(logits, local.get(b), C * 4)),
      rowStats(pl, C, i, max, sum, target),
      local.set(lab, i32.load(addr(labels, local.get(b), indexDtype === "i64" ? 8 : 4))),
      local.set(
        total,
        f32.add(
          local.get(total),
          f32.sub(
            f32.add(local.get(max), logF(local.get(sum), target)),
            f32.load(addr(pl, local.get(lab), 4)),
          ),
        ),
      ),
    ]),
    f32.store(local.get(out), B > 0 ? f32.div(local.get(total), f32.const(B)) : f32.const(0)),
  ];
  return kernel({
    name: `cross_entropy_${B}x${C}_${indexDtype}${target.relaxedSimd ? "_fma" : ""}`,
    params: [logits, labels, out],
    comment: `out = mean over ${B} rows of logsumexp(row) - row[label]; thread 0 only`,
    locals: [b, i, pl, lab, max, sum, total],
    body: block("done", body),
    uses: [helperFor("exp_f32x4", target), helperFor("log_f32x4", target)],
  });
}

/**
 * `cross_entropy_grad`: out = dy/B · (softmax(row) - onehot(label)) for each of B rows of C
 * logits; rows split across threads.
 */
export function crossEntropyGradKernel(
  B: number,
  C: number,
  indexDtype: "i32" | "i64",
  target: KernelTarget,
): WasmKernel {
  const [dy, logits, labels, out, start, end, b, i, pl, po, lab] = [
    "dy",
    "logits",
    "labels",
    "out",
    "start",
    "end",
    "b",
    "i",
    "pl",
    "po",
    "lab",
  ].map(local.i32);
  const [max, sum, scale, p] = ["max", "sum", "scale", "p"].map(local.f32);
  const body: Code = [
    threadRange(B, start, end),
    local.set(scale, f32.div(f32.load(local.get(dy)), f32.const(B))),
    each(b, local.get(start), local.get(end), "rows", [
      local.set(pl, addr(logits, local.get(b), C * 4)),
      local.set(po, addr(out, local.get(b), C * 4)),
      rowStats(pl, C, i, max, sum, target),
      local.set(lab, i32.load(addr(labels, local.get(b), indexDtype === "i64" ? 8 : 4))),
      each(i, c(0), c(C), "out", [
        local.set(
          p,
          f32.div(expF(f32.sub(f32.load(addr(pl, local.get(i), 4)), local.get(max)), target), local.get(sum)),
        ),
        if_(i32.eq(local.get(i), local.get(lab)), local.set(p, f32.sub(local.get(p), f32.const(1)))),
        f32.store(addr(po, local.get(i), 4), f32.mul(local.get(scale), local.get(p))),
      ]),
    ]),
  ];
  return kernel({
    name: `cross_entropy_grad_${B}x${C}_${indexDtype}${target.relaxedSimd ? "_fma" : ""}`,
    params: [dy, logits, labels, out],
    comment: `out = dy/${B}·(softmax(row) - onehot(label)) over ${B} rows of ${C}; rows split across threads`,
    locals: [start, end, b, i, pl, po, lab, max, sum, scale, p],
    body: B * C === 0 ? [] : body,
    uses: [helperFor("exp_f32x4", target)],
  });
}
