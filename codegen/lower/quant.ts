/**
 * Lowering of `qdense` (ir/ops/qdense.ts) to the int8 kernels of codegen/wasm/qgemm.ts: the rows
 * of x are quantized into a temporary (offset bytes and a scale per row), then the int8 GEMM
 * dequantizes, adds the bias and applies the activation as it stores y. The int8 weight, its
 * scales and bias must be known at compile time; they are packed once (codegen/qpack.ts).
 */

import type { Op } from "../../ir/module.ts";
import { numel } from "../../ir/types.ts";
import { packQWeight } from "../qpack.ts";
import { qgemmKernel, type QGemmSpec, quantizeRowsKernel } from "../wasm/qgemm.ts";
import { attrsOf, CodegenError, type LowerContext } from "./context.ts";

/** The quantized activations the relaxed-SIMD kernel reads exactly: 7-bit, so |q| <= 63. */
const MAX_ACT_MAX = 63;

/** `qdense(x, wq, w_scale, bias?)`: every leading row of x through the row quantizer and the int8 GEMM. */
export function lowerQDense(op: Op, ctx: LowerContext): void {
  const [x, wq, wScale, bias] = op.operands;
  const attrs = attrsOf(op);
  const [N, K] = wq.type.shape;
  const M = numel(x.type.shape) / K;
  const actMax = attrs.int("act_max");
  const actScale = attrs.float("act_scale");
  if (actMax > MAX_ACT_MAX) {
    throw new CodegenError(
      op.loc,
      `${op.result.ref}: act_max ${actMax} is over ${MAX_ACT_MAX}; the int8 kernels read 7-bit activations`,
    );
  }
  const [w, scales, b] = [wq, wScale, bias].map((v) => v && ctx.knownValue(v));
  if (!w || !scales || (bias && !b)) {
    throw new CodegenError(
      op.loc,
      `${op.result.ref}: the int8 weight, its scales and the bias must be weights`,
    );
  }
  const packed = packQWeight(w.data as unknown as Int8Array, N, K);
  const { Np, Kp } = packed;
  const weight = ctx.constant(`qpacked:${wq.name}`, `${wq.ref} (int8, 4x4 blocks)`, () => packed.data);
  const epilogue = ctx.constant(
    `qepilogue:${wq.name}:${wScale.name}:${bias?.name ?? ""}`,
    `${wq.ref}: corrections, scales${bias ? ", bias" : ""}`,
    () => {
      const block = new Int32Array((bias ? 3 : 2) * Np);
      block.set(packed.correction);
      new Float32Array(block.buffer, Np * 4, N).set(scales.data as Float32Array);
      if (b) new Float32Array(block.buffer, 2 * Np * 4, N).set(b.data as Float32Array);
      return block;
    },
  );
  const xq = ctx.temp(Math.ceil((M * Kp) / 4) * 4);
  const rowScales = ctx.temp(M * 4);
  ctx.emit({
    op,
    ops: ["qdense (quantize)"],
    wasm: (t) => quantizeRowsKernel({ M, K, Kp, actMax, actScale }, t),
    args: [ctx.operand(op, x), { buffer: xq }, { buffer: rowScales }],
    flops: 0,
  });
  const spec: QGemmSpec = {
    M,
    N,
    Np,
    Kp,
    ldc: N,
    bias: bias !== undefined,
    activation: attrs.string("activation") as QGemmSpec["activation"],
  };
  ctx.emit({
    op,
    ops: ["qdense"],
    wasm: (t) => qgemmKernel(spec, t),
    args: [{ buffer: xq }, { buffer: rowScales }, weight, epilogue, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 2 * M * N * K,
  });
}
