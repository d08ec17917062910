/**
 * The transpose kernel: `out = x.transpose(perm)` (numpy semantics) for f32 arrays of rank 1..6.
 *
 * The permutation is first simplified: size-1 dims are dropped and output dims that stay
 * adjacent in x are merged, so e.g. [1, 128, 12, 64] by [0, 2, 1, 3] becomes [128, 12, 64] by
 * [1, 0, 2]. Then, by what is left:
 *
 * - nothing moves: a plain copy (`memory.copy`), split across threads in 64-byte chunks;
 * - the last axis stays last: runs of contiguous elements are copied with v128 loads and stores
 *   (`memory.copy` for runs over 64 bytes), threads splitting the runs;
 * - the last two output dims swap x's innermost dim with another ([B, P, Q] read from x's
 *   [B, Q, P]): 4×4 tiles, four v128 loads, a register transpose, four v128 stores, with the
 *   ragged edges done element by element; threads split the (b, 4-row) tiles;
 * - anything else: element by element along each output row (stores contiguous, loads strided),
 *   threads splitting the rows.
 */

import { forRange, kernel, type KernelTarget, threadRange, type WasmKernel } from "./kernel.ts";
import { rowMajorStrides, stridedOffset, vectorPass } from "./rows.ts";
import type { Code, I32, Instr, Local } from "./wat.ts";
import { br_if, comment, f32, i32, i8x16, if_, local, loop, memory, v128 } from "./wat.ts";

/** What a transpose kernel is specialized to. */
export interface TransposeSpec {
  /** Shape of x (rank 1..6). */
  shape: number[];
  /** Output dim i is x's dim `perm[i]`. */
  perm: number[];
}

/** Runs longer than this many bytes are copied with `memory.copy` (measured faster than v128 loops from 128 bytes). */
const MEMCOPY_BYTES = 64;

// The params and locals: $r is the unit of work (a row, run or tile), $ps and $pd its source and
// destination pointers, $k a countdown.
const [x, out] = ["x", "out"].map(local.i32);
const [start, end, r, ps, pd, o, k] = ["start", "end", "r", "ps", "pd", "o", "k"].map(local.i32);
const [bi, row, bs, bd] = ["bi", "row", "bs", "bd"].map(local.i32);
const [a, b, c, d, t0, t1, t2, t3] = ["a", "b", "c", "d", "t0", "t1", "t2", "t3"].map(local.v128);

/** The output dims after dropping size-1 dims and merging dims adjacent in both x and out, with x's element steps. */
function simplify(shape: readonly number[], perm: readonly number[]): { dims: number[]; steps: number[] } {
  const xStrides = rowMajorStrides(shape);
  const dims: number[] = [];
  const steps: number[] = [];
  for (const p of perm) {
    if (shape[p] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && steps[last] === xStrides[p] * shape[p]) {
      dims[last] *= shape[p];
      steps[last] = xStrides[p];
    } else {
      dims.push(shape[p]);
      steps.push(xStrides[p]);
    }
  }
  return { dims, steps };
}

/** Sets the unit's source and destination pointers to x + `src` and out + `dst` bytes. */
function unitPointers(src: I32, dst: I32): Instr[] {
  return [local.set(ps, i32.add(local.get(x), src)), local.set(pd, i32.add(local.get(out), dst))];
}

/** `l += by`. */
const increment = (l: Local<"i32">, by: number) => local.set(l, i32.add(local.get(l), i32.const(by)));

/** A loop over `$r` in [start, end) around `body`. */
const overRange = (label: string, body: Code) => forRange(r, start, end, label, body);

/** Copies the f32 at `$ps` + `from` bytes to `$pd` + `to` bytes. */
function copyF32(to: number, from: number): Instr {
  return f32.store(local.get(pd), f32.load(local.get(ps), { offset: from }), { offset: to });
}

/**
 * Element-by-element copy of `count` elements from `$ps` (step `srcStep` bytes) to `$pd` (step 4
 * bytes): a loop of 4 per iteration with constant offsets, then the rest straight-line.
 */
function stridedRow(label: string, count: number, srcStep: number): Code {
  const loops = Math.floor(count / 4);
  const group = [
    [0, 1, 2, 3].map((j) => copyF32(4 * j, srcStep * j)),
    increment(ps, 4 * srcStep),
    increment(pd, 16),
  ];
  const rest = Array.from({ length: count % 4 }, (_, j) => copyF32(4 * j, srcStep * j));
  if (loops <= 1) return [loops === 1 && group, rest];
  return [
    local.set(k, i32.const(loops)),
    loop(label, group, local.set(k, i32.sub(local.get(k), i32.const(1))), br_if(label, local.get(k))),
    rest,
  ];
}

// 4×4 transpose: rows a, b, c, d -> columns (a_i, b_i, c_i, d_i); byte lanes of i8x16.shuffle
const LANES = (...l: number[]) => l.flatMap((v) => [0, 1, 2, 3].map((j) => 4 * v + j));
const INTERLEAVE_LO = LANES(0, 4, 1, 5); // a0 b0 a1 b1
const INTERLEAVE_HI = LANES(2, 6, 3, 7); // a2 b2 a3 b3
const HALVES_LO = LANES(0, 1, 4, 5); // t0 t1 u0 u1
const HALVES_HI = LANES(2, 3, 6, 7); // t2 t3 u2 u3

/** The kernel copying x of `spec.shape` into `out` transposed by `spec.perm`. */
export function transposeKernel(spec: TransposeSpec, _target: KernelTarget): WasmKernel {
  const { shape, perm } = spec;
  const rank = shape.length;
  const isPerm = perm.length === rank && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
  if (rank < 1 || rank > 6 || !isPerm) throw new Error(`bad transpose: shape [${shape}], perm [${perm}]`);
  const name = `transpose_${shape.join("x")}_p${perm.join("")}`;
  const total = shape.reduce((a, b) => a * b, 1);
  const { dims, steps } = simplify(shape, perm);
  const last = dims.length - 1;
  // the byte offset in x of the row (or batch) `index` of the output dims before `end`
  const sourceOffset = (index: Local<"i32">, endDim: number) =>
    stridedOffset(local.get(index), dims.slice(0, endDim), steps.slice(0, endDim).map((s) => s * 4)) ??
      i32.const(0);

  let kind: string;
  let body: Code;
  const locals: Local[] = [start, end, r, ps, pd, o, k];
  if (total === 0) {
    kind = "nothing to copy";
    body = [];
  } else if (last < 0 || (last === 0 && steps[0] === 1)) {
    kind = "a plain copy, threads split 64-byte chunks";
    const bytes = total * 4;
    body = [
      threadRange(Math.ceil(bytes / 64), start, end),
      local.set(start, i32.shl(local.get(start), i32.const(6))),
      local.set(end, i32.shl(local.get(end), i32.const(6))),
      if_(i32.gt_u(local.get(end), i32.const(bytes)), local.set(end, i32.const(bytes))),
      if_(
        i32.lt_u(local.get(start), local.get(end)),
        memory.copy(
          i32.add(local.get(out), local.get(start)),
          i32.add(local.get(x), local.get(start)),
          i32.sub(local.get(end), local.get(start)),
        ),
      ),
    ];
  } else if (steps[last] === 1) {
    const run = dims[last];
    const runs = total / run;
    kind = `runs of ${run} contiguous elements, threads split the ${runs} runs`;
    const base = Math.floor(run / 4) * 16;
    const copy = run * 4 > MEMCOPY_BYTES ? memory.copy(local.get(pd), local.get(ps), i32.const(run * 4)) : [
      vectorPass("run", Math.floor(run / 4), 4, o, (at) => v128.store(at(pd), v128.load(at(ps)))),
      Array.from({ length: run % 4 }, (_, j) => copyF32(base + 4 * j, base + 4 * j)),
    ];
    body = [
      threadRange(runs, start, end),
      overRange("runs", [
        unitPointers(sourceOffset(r, last), i32.mul(local.get(r), i32.const(run * 4))),
        copy,
      ]),
    ];
  } else if (last >= 1 && steps[last - 1] === 1 && dims[last - 1] >= 4 && dims[last] >= 4) {
    // out [B, P, Q] with out[b, p, q] = x[b·sB + p + q·sQ]
    const [P, Q, sQ] = [dims[last - 1], dims[last], steps[last]];
    const batch = total / (P * Q);
    const tilesP = Math.ceil(P / 4);
    const units = batch * tilesP;
    kind =
      `4×4 tiles of [${batch}, ${P}, ${Q}] read from [${batch}, ${Q}, ${P}], threads split the ${units} (batch, 4-row) tiles`;
    locals.push(bi, row, ...(P % 4 ? [bs, bd] : []), a, b, c, d, t0, t1, t2, t3);
    const load = (j: number) => v128.load(local.get(ps), { offset: j * sQ * 4 });
    const store = (i: number, lanes: number[], u: Local<"v128">, v: Local<"v128">) =>
      v128.store(local.get(pd), i8x16.shuffle(lanes, local.get(u), local.get(v)), { offset: i * Q * 4 });
    const tile = [
      [a, b, c, d].map((l, j) => local.set(l, load(j))),
      local.set(t0, i8x16.shuffle(INTERLEAVE_LO, local.get(a), local.get(b))),
      local.set(t1, i8x16.shuffle(INTERLEAVE_HI, local.get(a), local.get(b))),
      local.set(t2, i8x16.shuffle(INTERLEAVE_LO, local.get(c), local.get(d))),
      local.set(t3, i8x16.shuffle(INTERLEAVE_HI, local.get(c), local.get(d))),
      store(0, HALVES_LO, t0, t2),
      store(1, HALVES_HI, t0, t2),
      store(2, HALVES_LO, t1, t3),
      store(3, HALVES_HI, t1, t3),
      increment(ps, 16 * sQ),
      increment(pd, 16),
    ];
    const full = [
      local.set(k, i32.const(Math.floor(Q / 4))),
      loop("tiles", tile, local.set(k, i32.sub(local.get(k), i32.const(1))), br_if("tiles", local.get(k))),
      [0, 1, 2, 3].map((i) =>
        Array.from({ length: Q % 4 }, (_, j) => copyF32(i * Q * 4 + j * 4, i * 4 + j * sQ * 4))
      ),
    ];
    // the tile's first row within its batch item
    const rowInBatch = i32.sub(local.get(row), i32.mul(local.get(bi), i32.const(P)));
    const unit = [
      comment(`b = r / ${tilesP}, rows p = 4·(r % ${tilesP}) .. +3`),
      local.set(bi, i32.div_u(local.get(r), i32.const(tilesP))),
      local.set(
        row,
        i32.add(
          i32.mul(local.get(bi), i32.const(P)),
          i32.shl(i32.sub(local.get(r), i32.mul(local.get(bi), i32.const(tilesP))), i32.const(2)),
        ),
      ),
      unitPointers(
        i32.add(sourceOffset(bi, last - 1), i32.shl(rowInBatch, i32.const(2))),
        i32.mul(local.get(row), i32.const(Q * 4)),
      ),
    ];
    if (P % 4 === 0) body = [threadRange(units, start, end), overRange("units", [unit, full])];
    else {
      // the last row tile of each batch has P % 4 rows: element by element, from the tile's start
      const partial = Array.from({ length: P % 4 }, (_, i) => [
        local.set(ps, i ? i32.add(local.get(bs), i32.const(4 * i)) : local.get(bs)),
        local.set(pd, i ? i32.add(local.get(bd), i32.const(i * Q * 4)) : local.get(bd)),
        stridedRow(`part${i}`, Q, sQ * 4),
      ]);
      body = [
        threadRange(units, start, end),
        overRange("units", [
          unit,
          local.set(bs, local.get(ps)),
          local.set(bd, local.get(pd)),
          if_(i32.gt_u(i32.sub(i32.const(P), rowInBatch), i32.const(3)), full, partial),
        ]),
      ];
    }
  } else {
    const cols = dims[last];
    const rows = total / cols;
    kind = `element by element, ${rows} output rows of ${cols} (source step ${
      steps[last]
    }), threads split the rows`;
    body = [
      threadRange(rows, start, end),
      overRange("rows", [
        unitPointers(sourceOffset(r, last), i32.mul(local.get(r), i32.const(cols * 4))),
        stridedRow("cols", cols, steps[last] * 4),
      ]),
    ];
  }

  const outShape = perm.map((p) => shape[p]);
  return kernel({
    name,
    params: [x, out],
    comment: `out[${outShape.join(",")}] = x[${shape.join(",")}] transposed by [${perm.join(",")}]: ${kind}`,
    locals,
    body,
  });
}
