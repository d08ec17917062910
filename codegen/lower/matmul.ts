/**
 * Lowering of the matrix products, `dense` and `batch_matmul`, to GEMM kernels. A weight
 * known at compile time is repacked once into the GEMM's panel layout; transposed operands
 * that are only known at run time are transposed into a temporary first.
 */

import type { Op, Value } from "../../ir/module.ts";
import { numel } from "../../ir/types.ts";
import { packB } from "../pack.ts";
import { gemmKernel, type GemmSpec } from "../wasm/gemm.ts";
import { transposeKernel } from "../wasm/transpose.ts";
import { type Arg, attrsOf, CodegenError, type LowerContext } from "./context.ts";

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
  const spec: GemmSpec = {
    batch: numel(batch),
    M,
    N,
    K,
    lda: K,
    aBatchStride: batchStride(op, a.type.shape.slice(0, -2), batch, M * K),
    b: { layout: "rows", ldb: N, batchStride: batchStride(op, b.type.shape.slice(0, -2), batch, K * N) },
    ldc: N,
    cBatchStride: M * N,
    bias: false,
    activation: "none",
  };
  const aArg = attrs.bool("transpose_a") ? transposedLastTwo(ctx, op, a) : ctx.operand(op, a);
  const bArg = attrs.bool("transpose_b") ? transposedLastTwo(ctx, op, b) : ctx.operand(op, b);
  ctx.emit({
    op,
    ops: ["batch_matmul"],
    wasm: (t) => gemmKernel(spec, t),
    args: [aArg, bArg, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 2 * spec.batch * M * N * K,
  });
}
