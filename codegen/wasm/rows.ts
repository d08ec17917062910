/**
 * Building blocks of the row-wise kernels (softmax, layer_norm, element-wise, transpose): passes
 * over the vectors of a row, reductions across lanes and accumulator slots, and the index
 * arithmetic of strided and broadcast arrays.
 */

import type { Code, I32, Instr, Local, Mem, V128 } from "./wat.ts";
import { br_if, i32, i8x16, local, loop, mem } from "./wat.ts";

/**
 * Where one vector of a pass lives: `at(ptr)` is the memory operand of the vector at pointer
 * local `ptr` (plus `extra` bytes), for a load or store, e.g. `v128.load(at(px))`.
 */
export type At = (ptr: Local<"i32">, extra?: number) => Mem;

/**
 * Visits `count` consecutive 16-byte vectors: a loop of `unroll` vectors per iteration (over the
 * i32 byte offset in local `o`, which the caller declares), then the left-over vectors
 * straight-line with constant offsets. `body(at, slot)` emits one vector's code; `slot` is its
 * position in the unrolled group (for per-slot accumulators). A single iteration is emitted
 * without a loop.
 */
export function vectorPass(
  label: string,
  count: number,
  unroll: number,
  o: Local<"i32">,
  body: (at: At, slot: number) => Code,
): Code[] {
  const loops = Math.floor(count / unroll);
  const fixed = (base: number): At => (p, extra = 0) => mem(local.get(p), base + extra);
  const out: Code[] = [];
  if (loops === 1) {
    for (let k = 0; k < unroll; k++) out.push(body(fixed(16 * k), k));
  } else if (loops > 1) {
    const group = Array.from(
      { length: unroll },
      (_, k) => body((p, extra = 0) => mem(i32.add(local.get(p), local.get(o)), 16 * k + extra), k),
    );
    out.push(
      local.set(o, i32.const(0)),
      loop(
        label,
        group,
        local.set(o, i32.add(local.get(o), i32.const(16 * unroll))),
        br_if(label, i32.lt_u(local.get(o), i32.const(16 * unroll * loops))),
      ),
    );
  }
  const base = 16 * unroll * loops;
  for (let k = 0; k < count % unroll; k++) out.push(body(fixed(base + 16 * k), k));
  return out;
}

/** Reduces all four lanes of `v` with `op` (e.g. `f32x4.add`) into `tmp`; every lane gets the result. */
export function horizontal(op: (a: V128, b: V128) => V128, v: V128, tmp: Local<"v128">): Instr[] {
  const swap = (lanes: number[]) =>
    local.set(tmp, op(local.get(tmp), i8x16.shuffle(lanes, local.get(tmp), local.get(tmp))));
  return [
    local.set(tmp, v),
    swap([8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]),
    swap([4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11]),
  ];
}

/** Combines per-slot accumulators `acc` into `acc[0]` with `op`, pairwise. */
export function combineSlots(op: (a: V128, b: V128) => V128, acc: readonly Local<"v128">[]): Instr[] {
  const out: Instr[] = [];
  for (let step = 1; step < acc.length; step *= 2) {
    for (let k = 0; k + step < acc.length; k += 2 * step) {
      out.push(local.set(acc[k], op(local.get(acc[k]), local.get(acc[k + step]))));
    }
  }
  return out;
}

/**
 * `Σ_d idx_d · steps[d]`, where `idx` are the row-major indices of the flat index `flat` over
 * `dims` (`flat` < the product of dims); undefined when every term is 0. Size-1 dims and zero
 * steps cost nothing; dims that are contiguous in both are merged first.
 */
export function stridedOffset(flat: I32, dims: readonly number[], steps: readonly number[]): I32 | undefined {
  // Merge: drop size-1 dims; join d with the next when steps[d] = steps[d+1]·dims[d+1].
  const ds: number[] = [];
  const ss: number[] = [];
  for (let d = 0; d < dims.length; d++) {
    if (dims[d] === 1) continue;
    const last = ds.length - 1;
    if (last >= 0 && ss[last] === steps[d] * dims[d]) {
      ds[last] *= dims[d];
      ss[last] = steps[d];
    } else {
      ds.push(dims[d]);
      ss.push(steps[d]);
    }
  }
  const terms: I32[] = [];
  for (let d = 0; d < ds.length; d++) {
    if (ss[d] === 0) continue;
    const inner = ds.slice(d + 1).reduce((a, b) => a * b, 1);
    let idx = inner === 1 ? flat : i32.div_u(flat, i32.const(inner));
    if (d > 0) idx = i32.rem_u(idx, i32.const(ds[d]));
    terms.push(ss[d] === 1 ? idx : i32.mul(idx, i32.const(ss[d])));
  }
  return terms.length ? terms.reduce((a, b) => i32.add(a, b)) : undefined;
}

/** Row-major element strides of `shape`. */
export function rowMajorStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * The element steps with which an array of `shape` is read when broadcast (numpy rules) to
 * `out`: its stride, or 0 along broadcast dims. Throws when `shape` does not broadcast to `out`.
 */
export function broadcastSteps(shape: readonly number[], out: readonly number[]): number[] {
  const lead = out.length - shape.length;
  for (let d = 0; d < -lead; d++) {
    if (shape[d] !== 1) throw new Error(`shape [${shape}] does not broadcast to [${out}]`);
  }
  const trimmed = lead < 0 ? shape.slice(-lead) : shape;
  const strides = rowMajorStrides(trimmed);
  return out.map((n, d) => {
    const k = d - Math.max(lead, 0);
    if (k < 0) return 0;
    if (trimmed[k] === n) return n === 1 ? 0 : strides[k];
    if (trimmed[k] === 1) return 0;
    throw new Error(`shape [${shape}] does not broadcast to [${out}]`);
  });
}
