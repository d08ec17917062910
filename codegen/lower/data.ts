/**
 * Lowering of data movement: `reshape` and contiguous `slice` are views (no code), `transpose`
 * is a wasm copy, other slices a TS strided copy; `gather` and `cast` are TS kernels.
 */

import type { Op } from "../../ir/module.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import { Tensor } from "../../ir/tensor.ts";
import { numel } from "../../ir/types.ts";
import { normalizeAxis } from "../../ir/shape.ts";
import { castKernel, gatherKernel, stridedCopyKernel } from "../ts_kernels.ts";
import { transposeKernel } from "../wasm/transpose.ts";
import { attrsOf, CodegenError, type LowerContext } from "./context.ts";

/** `reshape(x)`: the result is x's buffer. */
export function lowerReshape(op: Op, ctx: LowerContext): void {
  ctx.alias(op.result, op.operands[0]);
}

/** `transpose(x) {perm}`: a wasm permuting copy. */
export function lowerTranspose(op: Op, ctx: LowerContext): void {
  const [x] = op.operands;
  const spec = { shape: [...x.type.shape], perm: [...attrsOf(op).ints("perm")] };
  ctx.emit({
    op,
    ops: ["transpose"],
    kind: "wasm",
    wasm: (t) => transposeKernel(spec, t),
    args: [ctx.operand(op, x), { buffer: ctx.bufferOf(op, op.result) }],
    flops: 0,
  });
}

/** Row-major strides of a shape, in elements. */
function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let d = shape.length - 1, acc = 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * `slice(x)`: the slice op itself, run on x's element indices, says which source element each
 * output element is; a run of consecutive indices is a view at an offset, anything else an
 * affine strided copy.
 */
export function lowerSlice(op: Op, ctx: LowerContext): void {
  const [x] = op.operands;
  if (x.type.dtype !== "f32") {
    throw new CodegenError(op.loc, `slice of ${x.type.dtype} has no kernel (f32 only)`);
  }
  const index = Tensor.zeros({ shape: [...x.type.shape], dtype: "i32" });
  index.data.forEach((_, i) => (index.data[i] = i));
  const def = builtinRegistry.get("slice")!;
  const picked = def.interpret([index], attrsOf(op), { ...op.result.type, dtype: "i32" }).data;
  const base = picked.length > 0 ? picked[0] : 0;
  if (picked.every((v, i) => v === base + i)) return ctx.alias(op.result, x, base * 4);
  const shape = op.result.type.shape;
  const outStrides = stridesOf(shape);
  const srcStrides = shape.map((d, i) => (d > 1 ? picked[outStrides[i]] - base : 0));
  const kernel = stridedCopyKernel(shape, srcStrides, outStrides);
  ctx.emit({
    op,
    ops: ["slice"],
    kind: "ts",
    ts: kernel,
    args: [{ buffer: x, byteOffset: base * 4 }, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 0,
  });
}

/** `gather(table, indices) {axis = 0}` of a compile-time f32 table by run-time indices (embedding lookup). */
export function lowerGather(op: Op, ctx: LowerContext): void {
  const [table, indices] = op.operands;
  const axis = normalizeAxis(attrsOf(op).int("axis"), table.type.shape.length);
  const known = ctx.knownValue(table);
  const dtype = indices.type.dtype;
  if (axis !== 0 || !known || known.dtype !== "f32" || (dtype !== "i64" && dtype !== "i32")) {
    throw new CodegenError(
      op.loc,
      "gather has a kernel only for axis 0 of a compile-time f32 table with i32 or i64 indices",
    );
  }
  if (indices.kind !== "arg") {
    throw new CodegenError(
      op.loc,
      "gather indices must be a function input, so the runtime can check their range",
    );
  }
  ctx.limits.set(indices, Math.min(ctx.limits.get(indices) ?? Infinity, table.type.shape[0]));
  const rowLen = numel(table.type.shape.slice(1));
  ctx.emit({
    op,
    ops: ["gather"],
    kind: "ts",
    ts: gatherKernel(numel(indices.type.shape), rowLen, dtype),
    args: [ctx.operand(op, table), { buffer: ctx.bufferOf(op, indices) }, {
      buffer: ctx.bufferOf(op, op.result),
    }],
    flops: 0,
  });
}

/** `cast(x)` between f32, i32 and i64. */
export function lowerCast(op: Op, ctx: LowerContext): void {
  const [x] = op.operands;
  const from = x.type.dtype, to = op.result.type.dtype;
  const ok = (d: string): d is "f32" | "i32" | "i64" => d === "f32" || d === "i32" || d === "i64";
  if (!ok(from) || !ok(to)) throw new CodegenError(op.loc, `cast from ${from} to ${to} has no kernel`);
  ctx.emit({
    op,
    ops: ["cast"],
    kind: "ts",
    ts: castKernel(numel(x.type.shape), from, to),
    args: [{ buffer: ctx.bufferOf(op, x) }, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 0,
  });
}
