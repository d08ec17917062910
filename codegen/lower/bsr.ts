/**
 * Lowering of `bsr_dense` to sparse kernels specialized to the weight's pattern. The schedule
 * (variant) for each weight comes from the context's chooser: the tuning log when it has an
 * entry, else the cost-model default (codegen/wasm/bsr_cost.ts).
 *
 * A specialized kernel bakes its weight's `indptr` and `indices` and is named by the pattern's
 * id (ir/bsr_pattern.ts), so ops with equal patterns and signatures share it. The id is the op's
 * `pattern` attribute (set by dedup-patterns) when it has one, else computed; either way one
 * `BsrPatternIds` table per lowering confirms it against the arrays as stored: an id already
 * naming other arrays (a stale attribute, a hash collision) gets a suffix, so two different
 * patterns never share a kernel, and equal arrays reuse the id they got first.
 *
 * A row-grouped kernel (codegen/wasm/grouped_bsr.ts, chosen like any schedule) is named by the
 * id of its `bsrGroupedSignature` in a second table per lowering, so weights whose block rows
 * form the same groups of columns share it across matrices and layers; its row lists and
 * weights are data.
 */

import { BSR_PATTERN_ID, BsrPatternIds, bsrPatternOf } from "../../ir/bsr_pattern.ts";
import { groupedSignatureOf } from "../wasm/grouped_bsr.ts";
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

/** The pattern ids of each lowering's specialized kernels. */
const patternIds = new WeakMap<LowerContext, BsrPatternIds>();

/** The ids of each lowering's row-grouped kernels (of their `bsrGroupedSignature`s). */
const groupIds = new WeakMap<LowerContext, BsrPatternIds>();

/**
 * The id naming `op`'s specialized kernel: its `pattern` attribute when that is a well-formed
 * id, else the computed one, confirmed against `w`'s arrays in `ids`.
 */
function kernelPatternId(ids: BsrPatternIds, op: Op, w: BsrTensor): string {
  const attr = op.attrs.get("pattern");
  const wanted = attr?.kind === "string" && BSR_PATTERN_ID.test(attr.value) ? attr.value : undefined;
  return ids.id(bsrPatternOf(w), wanted);
}

/** `bsr_dense(x, w, bias?)` with a compile-time BSR weight. */
export function lowerBsrDense(op: Op, ctx: LowerContext): void {
  const [x, w, bias] = op.operands;
  const t = ctx.knownValue(w) as BsrTensor | undefined;
  if (!t || !("indptr" in t)) {
    throw new CodegenError(op.loc, "bsr_dense has kernels only for a compile-time BSR weight");
  }
  const ids = patternIds.get(ctx) ?? new BsrPatternIds();
  patternIds.set(ctx, ids);
  let spec: BsrSpec = { ...bsrSpecOf(op, t), pattern: kernelPatternId(ids, op, t) };
  const { variant, why } = ctx.chooseBsr(spec, op);
  if (variant.grouped) {
    // Row-grouped kernels are named by what they bake (the groups' columns and sizes), so
    // weights with the same groups share one whatever rows hold them.
    const gids = groupIds.get(ctx) ?? new BsrPatternIds();
    groupIds.set(ctx, gids);
    spec = { ...spec, groupPattern: gids.id(groupedSignatureOf(spec)) };
  }
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
    // Row-grouped tiles splat x (one token) for 2 weight vectors and load weights for 6 tokens.
    fmaPerXLoad: variant.grouped ? variant.vecs : variant.rows,
    fmaPerWeightLoad: variant.grouped ? variant.rows : variant.vecs,
    tokenPadding: paddedTokens(spec.M, variant) / spec.M,
  });
  if (probe.prepare && !shared) {
    ctx.emit({
      op,
      ops: ["bsr_dense (prepare)"],
      wasm: (tg) => generated(tg).prepare!,
      args: [xArg, { buffer: scratch }],
      flops: 0,
    });
  }
  ctx.emit({
    op,
    ops: ["bsr_dense"],
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
