/**
 * Lowering of `qdense` (ir/ops/qdense.ts) to the int8 kernels (codegen/wasm/quantize_rows.ts,
 * codegen/wasm/qgemm.ts, codegen/wasm/qbsr.ts): the rows
 * of x are quantized into a temporary (offset bytes and a scale per row), then the int8 GEMM
 * (or its block-sparse form) dequantizes, adds the bias and applies the activation as it stores y. The int8 weight, its
 * scales and bias must be known at compile time; they are packed once (codegen/qpack.ts).
 */

import type { Op, Value } from "../../ir/module.ts";
import { numel } from "../../ir/types.ts";
import { BsrTensor } from "../../ir/tensor.ts";
import { packQBsr, packQWeight } from "../qpack.ts";
import { qbsrKernel, qbsrPanel } from "../wasm/qbsr.ts";
import { qgemmKernel, type QGemmSpec } from "../wasm/qgemm.ts";
import { quantizeRowsKernel } from "../wasm/quantize_rows.ts";
import { attrsOf, CodegenError, type LowerContext, type RuntimeBuffer } from "./context.ts";

/** The quantized activations the relaxed-SIMD kernel reads exactly: 7-bit, so |q| <= 63. */
const MAX_ACT_MAX = 63;

/** The dense `[N, K]` int8 values of a BSR int8 weight. */
function densify(w: BsrTensor, N: number, K: number): Int8Array {
  const [R, C] = w.sparseType.sparse!.block;
  const out = new Int8Array(N * K);
  for (let br = 0; br + 1 < w.indptr.length; br++) {
    for (let b = w.indptr[br]; b < w.indptr[br + 1]; b++) {
      for (let r = 0; r < R && br * R + r < N; r++) {
        for (let c = 0; c < C && w.indices[b] * C + c < K; c++) {
          out[(br * R + r) * K + w.indices[b] * C + c] = w.data[(b * R + r) * C + c];
        }
      }
    }
  }
  return out;
}

/** The quantized activations emitted so far in a lowering, by x and layout. */
const quantized = new WeakMap<
  LowerContext,
  Map<Value, Map<string, { xq: RuntimeBuffer; rowScales: RuntimeBuffer }>>
>();

/** `quantized`'s entry for `ctx`. */
function quantizedOf(ctx: LowerContext) {
  let m = quantized.get(ctx);
  if (!m) quantized.set(ctx, m = new Map());
  return m;
}

/**
 * `qdense(x, wq, w_scale, bias?)`: every leading row of x through the row quantizer, then the int8
 * GEMM, or, for a BSR wq whose blocks are made of 4x4 ones, the int8 block-sparse kernel (other
 * block shapes run dense on the densified weight).
 */
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
  const withScalesAndBias = (block: Int32Array, Np: number) => {
    new Float32Array(block.buffer, Np * 4, N).set(scales.data as Float32Array);
    if (b) new Float32Array(block.buffer, 2 * Np * 4, N).set(b.data as Float32Array);
    return block;
  };
  const epilogueOf = (Np: number, correction: Int32Array) =>
    ctx.constant(
      `qepilogue:${wq.name}:${wScale.name}:${bias?.name ?? ""}`,
      `${wq.ref}: corrections, scales${bias ? ", bias" : ""}`,
      () => {
        const block = new Int32Array((bias ? 3 : 2) * Np);
        block.set(correction);
        return withScalesAndBias(block, Np);
      },
    );
  const activation = attrs.string("activation") as QGemmSpec["activation"];
  const quantize = (ldq: number, Kp: number, panel?: number) => {
    // qdense ops reading the same x with the same layout and scales (attention's query, key and
    // value projections) share one quantization: its temporaries live until the last of them.
    const done = quantizedOf(ctx);
    const key = `${ldq} ${Kp} ${panel ?? 1} ${actMax} ${actScale}`;
    const cached = done.get(x)?.get(key);
    if (cached) return cached;
    // In panels, whole ones: the kernels read the last one's rows past M (and store nothing of them).
    const rows = panel ? Math.ceil(M / panel) * panel : M;
    const xq = ctx.temp(Math.ceil((rows * ldq) / 4) * 4);
    const rowScales = ctx.temp(M * 4);
    if (!done.has(x)) done.set(x, new Map());
    done.get(x)!.set(key, { xq, rowScales });
    ctx.emit({
      op,
      ops: ["qdense (quantize)"],
      wasm: (t) => quantizeRowsKernel({ M, K, Kp, ldq, panel, actMax, actScale }, t),
      args: [ctx.operand(op, x), { buffer: xq }, { buffer: rowScales }],
      flops: 0,
    });
    return { xq, rowScales };
  };
  const block = wq.type.sparse?.block;
  if (w instanceof BsrTensor && block && block[0] % 4 === 0 && block[1] % 4 === 0) {
    // Block-sparse: each stored block is made of the int8 kernels' 4x4 blocks.
    const packed = packQBsr(w.data as Int8Array, w.indptr, w.indices, [N, K], block);
    const weight = ctx.constant(`qbsr:${wq.name}`, `${wq.ref} (int8 BSR, 4x4 sub-blocks)`, () => packed.data);
    const index = ctx.constant(`qbsr-index:${wq.name}`, `${wq.ref} (index)`, () => packed.index);
    const ldq = Math.ceil(K / block[1]) * block[1];
    const { xq, rowScales } = quantize(ldq, Math.ceil(K / 4) * 4, qbsrPanel(block));
    const spec = {
      M,
      N,
      ldq,
      block: [...block] as [number, number],
      blockRows: packed.blockRows,
      ldc: N,
      bias: bias !== undefined,
      activation,
    };
    ctx.emit({
      op,
      ops: ["qdense (bsr)"],
      wasm: (t) => qbsrKernel(spec, t),
      args: [
        { buffer: xq },
        { buffer: rowScales },
        weight,
        index,
        epilogueOf(packed.Np, packed.correction),
        { buffer: ctx.bufferOf(op, op.result) },
      ],
      flops: 2 * M * w.indices.length * block[0] * block[1],
    });
    return;
  }
  // Dense, or blocks that are not made of 4x4 ones: the dense int8 GEMM on the weight's values.
  const values = w instanceof BsrTensor ? densify(w, N, K) : w.data as unknown as Int8Array;
  const packed = packQWeight(values, N, K);
  const { Np, Kp } = packed;
  const weight = ctx.constant(`qpacked:${wq.name}`, `${wq.ref} (int8, 4x4 blocks)`, () => packed.data);
  const epilogue = epilogueOf(Np, packed.correction);
  const { xq, rowScales } = quantize(Kp, Kp);
  const spec: QGemmSpec = {
    M,
    N,
    Np,
    Kp,
    ldc: N,
    bias: bias !== undefined,
    activation,
  };
  ctx.emit({
    op,
    ops: ["qdense"],
    wasm: (t) => qgemmKernel(spec, t),
    args: [{ buffer: xq }, { buffer: rowScales }, weight, epilogue, { buffer: ctx.bufferOf(op, op.result) }],
    flops: 2 * M * N * K,
  });
}
