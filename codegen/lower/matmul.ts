/**
 * Lowering of the matrix products, `dense` and `batch_matmul`, to GEMM kernels. A weight
 * known at compile time is repacked once into the GEMM's panel layout; transposed operands
 * that are only known at run time are transposed into a temporary first.
 *
 * A batched `batch_matmul` reads an operand made by a `transpose` that keeps the last axis (e.g.
 * attention's heads split out of `[1, S, heads, d]` as `[1, heads, S, d]`) in the transpose's
 * source, through row and batch strides, and writes its result straight into such a transpose's
 * result when that transpose is its only user (the heads merged back): those transposes
 * (fusion.ts marks them) get no kernel and no buffer.
 */

import type { Op, Value } from "../../ir/module.ts";
import { numel } from "../../ir/types.ts";
import { packB } from "../pack.ts";
import { gemmKernel, type GemmSpec } from "../wasm/gemm.ts";
import { rowMajorStrides } from "../wasm/rows.ts";
import { transposeKernel } from "../wasm/transpose.ts";
import { type Arg, attrsOf, CodegenError, type LowerContext } from "./context.ts";

/** A batch of matrices inside a larger buffer: its row stride and its batch stride, in elements. */
export interface StridedMatrices {
  ld: number;
  batchStride: number;
}

/**
 * How the matrices of an array of `shape` (batch dims, rows, columns) lie in a buffer where dim
 * i steps by `strides[i]` elements, if a GEMM can address them: the columns contiguous and the
 * batch dims one uniform step (those of size 1 aside).
 */
function stridedMatrices(shape: readonly number[], strides: readonly number[]): StridedMatrices | undefined {
  const r = shape.length;
  if (r < 3 || strides[r - 1] !== 1) return undefined;
  const batchDims = shape.slice(0, -2).map((n, i) => ({ n, step: strides[i] })).filter((d) => d.n > 1);
  for (let i = 0; i + 1 < batchDims.length; i++) {
    if (batchDims[i].step !== batchDims[i + 1].step * batchDims[i + 1].n) return undefined;
  }
  return { ld: strides[r - 2], batchStride: batchDims.at(-1)?.step ?? 0 };
}

/** The batch count of `batch_matmul` op's result. */
function batchCount(op: Op): number {
  return numel(op.result.type.shape.slice(0, -2));
}

/**
 * The `transpose` making operand `i` (0 = a, 1 = b) of `batch_matmul` `op` whose GEMM can read
 * its source in place, with the strides: a batched product, the operand not transposed by the
 * op's attributes, of the result's batch dims, used only here, and the transpose keeping the last
 * axis.
 */
export function transposedOperand(
  ctx: LowerContext,
  op: Op,
  i: 0 | 1,
): { transpose: Op; source: Value; view: StridedMatrices } | undefined {
  if (op.name !== "batch_matmul" || batchCount(op) <= 1) return undefined;
  if (attrsOf(op).bool(i === 0 ? "transpose_a" : "transpose_b")) return undefined;
  const v = op.operands[i];
  const t = v.definingOp;
  const out = op.result.type.shape;
  if (t?.name !== "transpose" || ctx.uses.get(v) !== 1 || ctx.knownValue(v) || v.type.dtype !== "f32") {
    return undefined;
  }
  if (v.type.shape.length !== out.length || v.type.shape.slice(0, -2).some((n, d) => n !== out[d])) {
    return undefined;
  }
  const source = t.operands[0];
  if (ctx.knownValue(source)) return undefined;
  const perm = attrsOf(t).ints("perm");
  const from = rowMajorStrides(source.type.shape);
  const view = stridedMatrices(v.type.shape, perm.map((p) => from[p]));
  return view && { transpose: t, source, view };
}

/**
 * The `transpose` that is the only user of `batch_matmul` `op`'s result, if the product can
 * write its result into the transpose's directly: a batched product and the transpose keeping
 * the last axis.
 */
export function transposedResult(
  ctx: LowerContext,
  op: Op,
): { transpose: Op; view: StridedMatrices } | undefined {
  if (op.name !== "batch_matmul" || batchCount(op) <= 1 || op.result.type.dtype !== "f32") return undefined;
  if (ctx.uses.get(op.result) !== 1) return undefined;
  const t = ctx.users.get(op.result)?.[0];
  if (t?.name !== "transpose") return undefined;
  const perm = attrsOf(t).ints("perm");
  const inverse = perm.map((_, d) => perm.indexOf(d));
  const to = rowMajorStrides(t.result.type.shape);
  const view = stridedMatrices(op.result.type.shape, inverse.map((d) => to[d]));
  return view && { transpose: t, view };
}

/** Emits a transpose of the last two dims of `v` (`[batch, r, c]` → `[batch, c, r]`) into a temporary. */
export function transposedLastTwo(ctx: LowerContext, op: Op, v: Value): Arg {
  const [r, c] = v.type.shape.slice(-2);
  const batch = numel(v.type.shape) / (r * c);
  const out = ctx.temp(numel(v.type.shape) * 4);
  const src = ctx.operand(op, v);
  ctx.emit({
    op,
    ops: ["transpose"],
    wasm: (t) => transposeKernel({ shape: [batch, r, c], perm: [0, 2, 1] }, t),
    args: [src, { buffer: out }],
    flops: 0,
  });
  return { buffer: out };
}

/** `dense(x, w, bias?)`: leading dims of x are rows of one GEMM; a known w is packed. */
export function lowerDense(op: Op, ctx: LowerContext): void {
  const [x, w, bias] = op.operands;
  const attrs = attrsOf(op);
  const rank = x.type.shape.length;
  const transA = attrs.bool("transpose_a") && rank >= 2;
  const transB = attrs.bool("transpose_b");
  const [K, N] = transB ? [w.type.shape[1], w.type.shape[0]] : [w.type.shape[0], w.type.shape[1]];
  const M = numel(x.type.shape) / K;
  const a = transA ? transposedLastTwo(ctx, op, x) : ctx.operand(op, x);
  const known = ctx.knownValue(w);
  let b: Arg;
  let bLayout: GemmSpec["b"];
  if (known) {
    b = ctx.constant(
      `packed:${w.name}:${transB}`,
      `${w.ref} (packed for GEMM)`,
      () => packB(known.data as Float32Array, K, N, transB),
    );
    bLayout = { layout: "packed" };
  } else {
    b = transB ? transposedLastTwo(ctx, op, w) : ctx.operand(op, w);
    bLayout = { layout: "rows", ldb: N, batchStride: 0 };
  }
  const spec: GemmSpec = {
    batch: 1,
    M,
    N,
    K,
    lda: K,
    aBatchStride: 0,
    b: bLayout,
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

/** The batch stride of an operand whose batch dims are `dims` against the result's `batch` dims. */
function batchStride(op: Op, dims: readonly number[], batch: readonly number[], matrix: number): number {
  const count = numel(dims);
  if (count === 1) return 0;
  const padded = [...Array(batch.length - dims.length).fill(1), ...dims];
  if (padded.every((d, i) => d === batch[i])) return matrix;
  throw new CodegenError(
    op.loc,
    `batch_matmul with partly broadcast batch dims [${dims}] against [${batch}] has no kernel`,
  );
}

/** `batch_matmul(a, b)`: one batched GEMM; b is read row-major (`[K, N]` per batch item). */
export function lowerBatchMatmul(op: Op, ctx: LowerContext): void {
  const [a, b] = op.operands;
  const attrs = attrsOf(op);
  const out = op.result.type.shape;
  const [M, N] = out.slice(-2);
  const K = attrs.bool("transpose_a") ? a.type.shape.at(-2)! : a.type.shape.at(-1)!;
  const batch = out.slice(0, -2);
  // operands and result read and written in place of transposes fusion.ts folded in
  const fusedIn = ([0, 1] as const).map((i) => {
    const f = transposedOperand(ctx, op, i);
    return f && ctx.fused.has(f.transpose) ? f : undefined;
  });
  const fusedOut = (() => {
    const f = transposedResult(ctx, op);
    return f && ctx.fused.has(f.transpose) ? f : undefined;
  })();
  const [inA, inB] = fusedIn;
  const spec: GemmSpec = {
    batch: numel(batch),
    M,
    N,
    K,
    lda: inA?.view.ld ?? K,
    aBatchStride: inA?.view.batchStride ?? batchStride(op, a.type.shape.slice(0, -2), batch, M * K),
    b: {
      layout: "rows",
      ldb: inB?.view.ld ?? N,
      batchStride: inB?.view.batchStride ?? batchStride(op, b.type.shape.slice(0, -2), batch, K * N),
    },
    ldc: fusedOut?.view.ld ?? N,
    cBatchStride: fusedOut?.view.batchStride ?? M * N,
    bias: false,
    activation: "none",
  };
  const operand = (v: Value, i: 0 | 1, transposed: boolean): Arg => {
    const f = fusedIn[i];
    if (f) return ctx.operand(op, f.source);
    return transposed ? transposedLastTwo(ctx, op, v) : ctx.operand(op, v);
  };
  const aArg = operand(a, 0, attrs.bool("transpose_a"));
  const bArg = operand(b, 1, attrs.bool("transpose_b"));
  const ops = [...(inA ? ["transpose"] : []), ...(inB ? ["transpose"] : []), "batch_matmul"];
  if (fusedOut) ops.push("transpose");
  const result = fusedOut ? fusedOut.transpose.result : op.result;
  ctx.emit({
    op,
    ops,
    wasm: (t) => gemmKernel(spec, t),
    args: [aArg, bArg, { buffer: ctx.bufferOf(op, result) }],
    flops: 2 * spec.batch * M * N * K,
  });
}
