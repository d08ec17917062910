/**
 * Lowering of the ops backward functions use (ir/autodiff.ts) and of what training needs beyond
 * inference: `reduce_sum`, `scatter_add`, `slice_grad`, `softmax_grad`, `layer_norm_grad`,
 * `cross_entropy`, `cross_entropy_grad` (kernels in codegen/wasm/grad_kernels.ts), `gather` from a
 * run-time table (an embedding table passed as an argument, `weightsAsParams`), and `dense` and
 * one-matrix `batch_matmul` by a run-time B, packed at run time for the GEMM (grad_pack.ts).
 * `gelu_grad`, `exp` and `log` are element-wise and fuse (elementwise.ts).
 */

import type { Op, Value } from "../../ir/module.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import { normalizeAxis } from "../../ir/shape.ts";
import { Tensor } from "../../ir/tensor.ts";
import { numel } from "../../ir/types.ts";
import { gatherKernel, stridedCopyKernel } from "../wasm/data_movement.ts";
import { elementwiseKernel } from "../wasm/elementwise.ts";
import {
  crossEntropyGradKernel,
  crossEntropyKernel,
  layerNormGradKernel,
  reduceSumKernel,
  scatterAddKernel,
  softmaxGradKernel,
} from "../wasm/grad_kernels.ts";
import { packedLength } from "../pack.ts";
import { gemmKernel, type GemmSpec } from "../wasm/gemm.ts";
import { packKernel } from "../wasm/grad_pack.ts";
import { type Arg, attrsOf, CodegenError, type LowerContext } from "./context.ts";
import { lowerGather } from "./data.ts";
import { lowerBatchMatmul, lowerDense, transposedLastTwo } from "./matmul.ts";

/** An integer operand read by index: i32 or i64, else a CodegenError. */
function indexDtype(op: Op, v: Value): "i32" | "i64" {
  const d = v.type.dtype;
  if (d !== "i32" && d !== "i64") throw new CodegenError(op.loc, `${v.ref} must be i32 or i64 to compile`);
  return d;
}

/** Index operands must be function inputs, so the runtime checks their range before a run. */
function requireInput(op: Op, v: Value, bound: number, ctx: LowerContext): void {
  if (v.kind !== "arg") {
    throw new CodegenError(
      op.loc,
      `${op.name} (${op.result.ref}): ${v.ref} must be a function input, so the runtime can check its range`,
    );
  }
  ctx.limits.set(v, Math.min(ctx.limits.get(v) ?? Infinity, bound));
}

/** Only f32 has kernels. */
function requireF32(op: Op): void {
  if (op.result.type.dtype !== "f32") {
    throw new CodegenError(op.loc, `'${op.name}' on ${op.result.type.dtype} has no kernel (f32 only)`);
  }
}

/**
 * `gather(table, indices)`: with a run-time f32 table (a weight turned into an argument) and
 * run-time indices on axis 0, the gather kernel reads the table where it lies in the arena;
 * every other case is `data.ts`'s.
 */
export function lowerGatherAny(op: Op, ctx: LowerContext): void {
  const [table, indices] = op.operands;
  const axis = normalizeAxis(attrsOf(op).int("axis"), table.type.shape.length);
  if (ctx.knownValue(table) || ctx.knownValue(indices) || axis !== 0 || table.type.dtype !== "f32") {
    return lowerGather(op, ctx);
  }
  const dtype = indexDtype(op, indices);
  requireInput(op, indices, table.type.shape[0], ctx);
  const count = numel(indices.type.shape), rowLen = numel(table.type.shape.slice(1));
  ctx.emit({
    op,
    ops: ["gather"],
    wasm: () => gatherKernel(count, rowLen, dtype),
    args: [ctx.operand(op, table), { buffer: ctx.bufferOf(op, indices) }, {
      buffer: ctx.bufferOf(op, op.result),
    }],
    flops: 0,
  });
}

/**
 * `reduce_sum(x) {axes}`: x viewed as `[outer, reduced, inner]` after dropping size-1 dims, the
 * reduced dims adjacent (bias gradients over the leading dims, sums over the last).
 */
export function lowerReduceSum(op: Op, ctx: LowerContext): void {
  requireF32(op);
  const [x] = op.operands;
  const shape = x.type.shape;
  const axes = new Set(attrsOf(op).ints("axes").map((a) => normalizeAxis(a, shape.length)));
  const groups: { reduced: boolean; size: number }[] = [];
  shape.forEach((d, i) => {
    if (d === 1) return;
    const reduced = axes.has(i);
    const last = groups.at(-1);
    if (last && last.reduced === reduced) last.size *= d;
    else groups.push({ reduced, size: d });
  });
  const at = groups.findIndex((g) => g.reduced);
  if (groups.filter((g) => g.reduced).length > 1) {
    throw new CodegenError(
      op.loc,
      `reduce_sum (${op.result.ref}) over axes that are not adjacent in [${shape}] has no kernel`,
    );
  }
  const reduced = at < 0 ? 1 : groups[at].size;
  const outer = numel(groups.slice(0, at < 0 ? groups.length : at).map((g) => g.size));
  const inner = at < 0 ? 1 : numel(groups.slice(at + 1).map((g) => g.size));
  ctx.emit({
    op,
    ops: ["reduce_sum"],
    wasm: () => reduceSumKernel(outer, reduced, inner),
    args: [ctx.operand(op, x), { buffer: ctx.bufferOf(op, op.result) }],
    flops: numel(shape),
  });
}

/** `scatter_add(updates, indices) {axis}`: zeros plus the updates added at their indices. */
export function lowerScatterAdd(op: Op, ctx: LowerContext): void {
  requireF32(op);
  const [updates, indices] = op.operands;
  const shape = op.result.type.shape;
  const axis = normalizeAxis(attrsOf(op).int("axis"), shape.length);
  const n = shape[axis];
  const spec = {
    outer: numel(shape.slice(0, axis)),
    n,
    count: numel(indices.type.shape),
    inner: numel(shape.slice(axis + 1)),
    indexDtype: indexDtype(op, indices),
  };
  if (!ctx.knownValue(indices)) requireInput(op, indices, n, ctx);
  ctx.emit({
    op,
    ops: ["scatter_add"],
    wasm: () => scatterAddKernel(spec),
    args: [ctx.operand(op, updates), ctx.operand(op, indices), { buffer: ctx.bufferOf(op, op.result) }],
    flops: numel(updates.type.shape),
  });
}

/** Row-major strides of a shape, in elements. */
function rowMajor(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  for (let d = shape.length - 1, acc = 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

/**
 * `slice_grad(dy)`: two steps, a zero fill of the result and a strided copy of dy to where
 * `slice` (same attributes) takes its elements. Where those are is found by running `slice` on
 * the result's element indices, as data.ts does for `slice`.
 */
export function lowerSliceGrad(op: Op, ctx: LowerContext): void {
  requireF32(op);
  const [dy] = op.operands;
  const shape = op.result.type.shape;
  const index = Tensor.zeros({ shape: [...shape], dtype: "i32" });
  index.data.forEach((_, i) => (index.data[i] = i));
  const picked = builtinRegistry.get("slice")!.interpret([index], attrsOf(op), {
    shape: [...dy.type.shape],
    dtype: "i32",
  }).data;
  const dShape = dy.type.shape;
  const dStrides = rowMajor(dShape);
  const base = picked.length > 0 ? picked[0] : 0;
  const outStrides = dShape.map((d, i) => (d > 1 ? picked[dStrides[i]] - base : 0));
  for (let i = 0; i < picked.length; i++) {
    let at = base;
    for (let d = 0, r = i; d < dShape.length; d++) {
      at += Math.floor(r / dStrides[d]) * outStrides[d];
      r %= dStrides[d];
    }
    if (picked[i] !== at) {
      throw new CodegenError(op.loc, `slice_grad (${op.result.ref}) places dy in no strided pattern`);
    }
  }
  const out = ctx.bufferOf(op, op.result);
  const fill = { shape: [...shape], inputs: [], expr: { constant: 0 } };
  ctx.emit({
    op,
    ops: ["slice_grad"],
    wasm: (t) => elementwiseKernel(fill, t),
    args: [{ buffer: out }],
    flops: 0,
  });
  if (picked.length === 0) return;
  const copy = stridedCopyKernel(dShape, dStrides, outStrides);
  ctx.emit({
    op,
    ops: ["slice_grad"],
    wasm: () => copy,
    args: [ctx.operand(op, dy), { buffer: out, byteOffset: base * 4 }],
    flops: 0,
  });
}

/** `softmax_grad(dy, y)` over the last axis. */
export function lowerSoftmaxGrad(op: Op, ctx: LowerContext): void {
  requireF32(op);
  const [dy, y] = op.operands;
  const shape = y.type.shape;
  if (normalizeAxis(attrsOf(op).int("axis"), shape.length) !== shape.length - 1) {
    throw new CodegenError(op.loc, "softmax_grad has a kernel only for the last axis");
  }
  const n = shape[shape.length - 1], rows = numel(shape) / Math.max(1, n);
  ctx.emit({
    op,
    ops: ["softmax_grad"],
    wasm: () => softmaxGradKernel(n === 0 ? 0 : rows, n),
    args: [ctx.operand(op, dy), ctx.operand(op, y), { buffer: ctx.bufferOf(op, op.result) }],
    flops: 4 * numel(shape),
  });
}

/** `layer_norm_grad(dy, x, gamma)`: rows × the normalized dims. */
export function lowerLayerNormGrad(op: Op, ctx: LowerContext): void {
  requireF32(op);
  const [dy, x, gamma] = op.operands;
  const attrs = attrsOf(op);
  const shape = x.type.shape;
  const cols = numel(shape.slice(normalizeAxis(attrs.int("axis"), shape.length)));
  const rows = cols === 0 ? 0 : numel(shape) / cols;
  const eps = attrs.float("epsilon");
  ctx.emit({
    op,
    ops: ["layer_norm_grad"],
    wasm: () => layerNormGradKernel(rows, cols, eps),
    args: [ctx.operand(op, dy), ctx.operand(op, x), ctx.operand(op, gamma), {
      buffer: ctx.bufferOf(op, op.result),
    }],
    flops: 12 * numel(shape),
  });
}

/** `cross_entropy(logits, labels)` and `cross_entropy_grad(dy, logits, labels)`. */
export function lowerCrossEntropy(op: Op, ctx: LowerContext): void {
  requireF32(op);
  const grad = op.name === "cross_entropy_grad";
  const [logits, labels] = grad ? op.operands.slice(1) : op.operands;
  const [B, C] = logits.type.shape;
  const dtype = indexDtype(op, labels);
  if (!ctx.knownValue(labels)) requireInput(op, labels, C, ctx);
  const operands = op.operands.map((v) => ctx.operand(op, v));
  ctx.emit({
    op,
    ops: [op.name],
    wasm: (t) => grad ? crossEntropyGradKernel(B, C, dtype, t) : crossEntropyKernel(B, C, dtype, t),
    args: [...operands, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 6 * B * C,
  });
}

/** Emits the packing of run-time B (`[K, N]`, or `[N, K]` when `trans`) into a temporary in the GEMM's panel layout. */
function packed(ctx: LowerContext, op: Op, b: Value, K: number, N: number, trans: boolean): Arg {
  const out = ctx.temp(packedLength(K, N) * 4);
  const kernel = packKernel(K, N, trans);
  ctx.emit({ op, ops: ["pack"], wasm: () => kernel, args: [ctx.operand(op, b), { buffer: out }], flops: 0 });
  return { buffer: out };
}

/**
 * `dense(x, w, bias?)` with a run-time weight (a training step's, `weightsAsParams`): w is packed
 * into the GEMM's panel layout at run time (one pass), then one GEMM with the bias and activation
 * in its epilogue, as for a compile-time weight. Other cases are matmul.ts's.
 */
export function lowerDenseAny(op: Op, ctx: LowerContext): void {
  const [x, w, bias] = op.operands;
  const attrs = attrsOf(op);
  if (ctx.knownValue(w) || (attrs.bool("transpose_a") && x.type.shape.length >= 2)) {
    return lowerDense(op, ctx);
  }
  const transB = attrs.bool("transpose_b");
  const [K, N] = transB ? [w.type.shape[1], w.type.shape[0]] : [w.type.shape[0], w.type.shape[1]];
  const M = numel(x.type.shape) / K;
  const a = ctx.operand(op, x);
  const b = packed(ctx, op, w, K, N, transB);
  const spec: GemmSpec = {
    batch: 1,
    M,
    N,
    K,
    lda: K,
    aBatchStride: 0,
    b: { layout: "packed" },
    ldc: N,
    cBatchStride: 0,
    bias: bias !== undefined,
    activation: attrs.string("activation") as GemmSpec["activation"],
  };
  ctx.emit({
    op,
    ops: ["dense"],
    wasm: (t) => gemmKernel(spec, t),
    args: [a, b, ...(bias ? [ctx.operand(op, bias)] : []), { buffer: ctx.bufferOf(op, op.result) }],
    flops: 2 * M * N * K,
  });
}

/**
 * `batch_matmul(a, b)` of one matrix pair (every batch dim 1: the weight gradients `dyᵀ·x` a
 * backward function computes over the flattened rows): b packed at run time, a transposed into a
 * temporary when `transpose_a`, one GEMM. Batched products are matmul.ts's.
 */
export function lowerBatchMatmulAny(op: Op, ctx: LowerContext): void {
  const [a, b] = op.operands;
  const out = op.result.type.shape;
  if (numel(out.slice(0, -2)) !== 1 || ctx.knownValue(b) || out.length < 2) return lowerBatchMatmul(op, ctx);
  const attrs = attrsOf(op);
  const [M, N] = out.slice(-2);
  const K = attrs.bool("transpose_a") ? a.type.shape.at(-2)! : a.type.shape.at(-1)!;
  const aArg = attrs.bool("transpose_a") ? transposedLastTwo(ctx, op, a) : ctx.operand(op, a);
  const bArg = packed(ctx, op, b, K, N, attrs.bool("transpose_b"));
  const spec: GemmSpec = {
    batch: 1,
    M,
    N,
    K,
    lda: K,
    aBatchStride: 0,
    b: { layout: "packed" },
    ldc: N,
    cBatchStride: 0,
    bias: false,
    activation: "none",
  };
  ctx.emit({
    op,
    ops: ["batch_matmul"],
    wasm: (t) => gemmKernel(spec, t),
    args: [aArg, bArg, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 2 * M * N * K,
  });
}
