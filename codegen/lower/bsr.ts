/**
 * Lowering of `bsr_dense` to sparse kernels specialized to the weight's pattern. The schedule
 * (variant) for each weight comes from the context's chooser: the tuning log when it has an
 * entry, else the cost-model default (see codegen/wasm/bsr.ts).
 */

import type { Op } from "../../ir/module.ts";
import type { BsrTensor } from "../../ir/tensor.ts";
import { numel } from "../../ir/types.ts";
import { bsrKernel, type BsrSpec, paddedTokens, variantKey } from "../wasm/bsr.ts";
import { packBsrData, packBsrIndex } from "../bsr_pack.ts";
import { attrsOf, CodegenError, type LowerContext } from "./context.ts";

/** The sparse product `bsr_dense` computes, as the kernel generator takes it. */
export function bsrSpecOf(op: Op, w: BsrTensor): BsrSpec {
  const [x, , bias] = op.operands;
  const [N, K] = w.sparseType.shape;
  return {
    M: numel(x.type.shape) / K,
    N,
    K,
    block: [...w.sparseType.sparse!.block] as [number, number],
    indptr: w.indptr,
    indices: w.indices,
    bias: bias !== undefined,
    activation: attrsOf(op).string("activation") as BsrSpec["activation"],
  };
}

/** `bsr_dense(x, w, bias?)` with a compile-time BSR weight. */
export function lowerBsrDense(op: Op, ctx: LowerContext): void {
  const [x, w, bias] = op.operands;
  const t = ctx.knownValue(w) as BsrTensor | undefined;
  if (!t || !("indptr" in t)) {
    throw new CodegenError(op.loc, "bsr_dense has kernels only for a compile-time BSR weight");
  }
  const spec = bsrSpecOf(op, t);
  const { variant, why } = ctx.chooseBsr(spec, op);
  const key = variantKey(variant);
  const generated = (target: Parameters<typeof bsrKernel>[2]) => bsrKernel(spec, variant, target);
  const probe = bsrKernel(spec, variant, { relaxedSimd: true });
  // Products of the same x with the same prepare kernel (Q, K and V) share one transposed copy.
  const shareKey = probe.prepare && `${x.ref}:${probe.prepare.name}`;
  const shared = shareKey ? ctx.preparedInputs.get(shareKey) : undefined;
  const scratch = shared ?? ctx.temp(Math.max(probe.scratchBytes, 4));
  if (shareKey && !shared) ctx.preparedInputs.set(shareKey, scratch);
  const xArg = ctx.operand(op, x);
  const data = ctx.constant(
    `bsr:${w.name}:${key}`,
    `${w.ref} (BSR blocks, ${key})`,
    () => packBsrData(spec, variant, t.data as Float32Array),
  );
  const index = packBsrIndex(spec, variant);
  const indexArg = index &&
    ctx.constant(`bsr-index:${w.name}:${key}`, `${w.ref} (BSR index, ${key})`, () => index);
  const [R, C] = spec.block;
  ctx.schedules.push({
    value: op.result.ref,
    weight: w.ref,
    variant: key,
    why,
    density: (t.indices.length * R * C) / (spec.N * spec.K),
    fmaPerXLoad: variant.rows,
    fmaPerWeightLoad: variant.vecs,
    tokenPadding: paddedTokens(spec.M, variant) / spec.M,
  });
  if (probe.prepare && !shared) {
    ctx.emit({
      op,
      ops: ["bsr_dense (prepare)"],
      kind: "wasm",
      wasm: (tg) => generated(tg).prepare!,
      args: [xArg, { buffer: scratch }],
      flops: 0,
    });
  }
  ctx.emit({
    op,
    ops: ["bsr_dense"],
    kind: "wasm",
    wasm: (tg) => generated(tg).kernel,
    args: [
      xArg,
      data,
      ...(indexArg ? [indexArg] : []),
      ...(bias ? [ctx.operand(op, bias)] : []),
      { buffer: ctx.bufferOf(op, op.result) },
      { buffer: scratch },
    ],
    flops: 2 * spec.M * t.indices.length * R * C,
  });
}
