/**
 * Lowering of data movement: `reshape`, and `slice` and `gather` by compile-time indices that
 * pick a contiguous run, are views (no code); `transpose` is a wasm copy, other such selections a
 * strided copy; embedding `gather` and `cast` have kernels of their own (codegen/wasm/data_movement.ts).
 */

import type { Op, Value } from "../../ir/module.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import { Tensor } from "../../ir/tensor.ts";
import { numel } from "../../ir/types.ts";
import { normalizeAxis } from "../../ir/shape.ts";
import { castKernel, gatherKernel, qgatherKernel, stridedCopyKernel } from "../wasm/data_movement.ts";
import { transposeKernel } from "../wasm/transpose.ts";
import { attrsOf, CodegenError, elementBytes, type LowerContext } from "./context.ts";

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

/** The source element each result element of a data-movement op is, as flat indices of x. */
function pickedElements(op: Op, ctx: LowerContext, x: Value): ArrayLike<number> {
  const index = Tensor.zeros({ shape: [...x.type.shape], dtype: "i32" });
  index.data.forEach((_, i) => (index.data[i] = i));
  const operands = op.operands.map((v) => v === x ? index : ctx.knownValue(v)!);
  const def = builtinRegistry.get(op.name)!;
  try {
    return def.interpret(operands, attrsOf(op), { ...op.result.type, dtype: "i32" }).data;
  } catch (e) {
    throw new CodegenError(op.loc, `${op.name} (${op.result.ref}): ${(e as Error).message}`);
  }
}

/**
 * Lowers an op whose result elements are a fixed selection of x's elements (`picked`, flat
 * indices of x): a run of consecutive indices is a view at an offset (any dtype), a selection
 * with constant strides (negative ones too: a reversal) an f32 strided copy; anything else has
 * no kernel.
 */
function lowerSelection(op: Op, ctx: LowerContext, x: Value, picked: ArrayLike<number>): void {
  const base = picked.length > 0 ? picked[0] : 0;
  let contiguous = true;
  for (let i = 0; i < picked.length && contiguous; i++) contiguous = picked[i] === base + i;
  const source = ctx.bufferOf(op, x);
  if (contiguous) return ctx.alias(op.result, x, base * elementBytes(x.type.dtype));
  if (x.type.dtype !== "f32") {
    throw new CodegenError(
      op.loc,
      `${op.name} (${op.result.ref}) of ${x.type.dtype} copies data; it has a kernel for f32 only`,
    );
  }
  const shape = op.result.type.shape;
  const outStrides = stridesOf(shape);
  const srcStrides = shape.map((d, i) => (d > 1 ? picked[outStrides[i]] - base : 0));
  let affine = true;
  for (let i = 0; i < picked.length && affine; i++) {
    let at = base;
    for (let d = 0, r = i; d < shape.length; d++) {
      at += Math.floor(r / outStrides[d]) * srcStrides[d];
      r %= outStrides[d];
    }
    affine = picked[i] === at;
  }
  if (!affine) {
    throw new CodegenError(
      op.loc,
      `${op.name} (${op.result.ref}) picks elements in no strided pattern; it has no kernel`,
    );
  }
  const kernel = stridedCopyKernel(shape, srcStrides, outStrides);
  ctx.emit({
    op,
    ops: [op.name],
    wasm: () => kernel,
    args: [{ buffer: source, byteOffset: base * 4 }, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 0,
  });
}

/**
 * `slice(x)`: the slice op itself, run on x's element indices, says which source element each
 * output element is; a run of consecutive indices is a view at an offset, anything else an
 * affine strided copy.
 */
export function lowerSlice(op: Op, ctx: LowerContext): void {
  const [x] = op.operands;
  lowerSelection(op, ctx, x, pickedElements(op, ctx, x));
}

/**
 * `gather(table, indices) {axis}`. With compile-time indices into a run-time table (the
 * pooler's `hidden[:, 0]`, a Gather on axis 1 with a constant index) it is a selection like
 * `slice`: a view when the picked elements are consecutive, else a strided copy. With run-time
 * indices into a compile-time f32 table on axis 0 (embedding lookup) it is a gather kernel.
 */
export function lowerGather(op: Op, ctx: LowerContext): void {
  const [table, indices] = op.operands;
  if (ctx.knownValue(indices) && !ctx.knownValue(table)) {
    return lowerSelection(op, ctx, table, pickedElements(op, ctx, table));
  }
  const axis = normalizeAxis(attrsOf(op).int("axis"), table.type.shape.length);
  const known = ctx.knownValue(table);
  const dtype = indices.type.dtype;
  if (axis !== 0 || !known || known.dtype !== "f32" || (dtype !== "i64" && dtype !== "i32")) {
    throw new CodegenError(
      op.loc,
      `gather (${op.result.ref}) has kernels for compile-time indices (a view or a copy) and for ` +
        "run-time i32 or i64 indices into axis 0 of a compile-time f32 table",
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
    wasm: () => gatherKernel(numel(indices.type.shape), rowLen, dtype),
    args: [ctx.operand(op, table), { buffer: ctx.bufferOf(op, indices) }, {
      buffer: ctx.bufferOf(op, op.result),
    }],
    flops: 0,
  });
}

/**
 * `qgather(table, scale, indices)`: run-time indices (a function input, so the runtime checks their
 * range) into a compile-time int8 table and its scales: one kernel (the table stored as bytes).
 */
export function lowerQGather(op: Op, ctx: LowerContext): void {
  const [table, scale, indices] = op.operands;
  const [t, s] = [ctx.knownValue(table), ctx.knownValue(scale)];
  if (!t || !s) {
    throw new CodegenError(
      op.loc,
      `qgather (${op.result.ref}): the int8 table and its scales must be weights`,
    );
  }
  if (indices.kind !== "arg") {
    throw new CodegenError(
      op.loc,
      "qgather indices must be a function input, so the runtime can check their range",
    );
  }
  const [rows, rowLen] = table.type.shape;
  ctx.limits.set(indices, Math.min(ctx.limits.get(indices) ?? Infinity, rows));
  const bytes = () => {
    const words = new Int32Array(Math.ceil((rows * rowLen) / 4));
    new Int8Array(words.buffer).set(t.data as Int8Array);
    return words;
  };
  ctx.emit({
    op,
    ops: ["qgather"],
    wasm: () => qgatherKernel(numel(indices.type.shape), rowLen, indices.type.dtype as "i32" | "i64"),
    args: [
      ctx.constant(`qtable:${table.name}`, `${table.ref} (int8 bytes)`, bytes),
      ctx.operand(op, scale),
      { buffer: ctx.bufferOf(op, indices) },
      { buffer: ctx.bufferOf(op, op.result) },
    ],
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
    wasm: () => castKernel(numel(x.type.shape), from, to),
    args: [{ buffer: ctx.bufferOf(op, x) }, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 0,
  });
}
