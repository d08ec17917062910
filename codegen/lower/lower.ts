/**
 * Lowers a verified function to kernel calls: folds what is known at compile time (with
 * `evaluateOp`, as the interpreter computes it), plans fusion, then lowers every remaining op
 * with its op's lowering.
 */

import { evaluateOp } from "../../ir/evaluate.ts";
import type { Func, Module, Op, Value } from "../../ir/module.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import type { WeightStore } from "../../ir/weights.ts";
import { CodegenError, LowerContext, type Lowering } from "./context.ts";
import { lowerElementwise } from "./elementwise.ts";
import { ELEMENTWISE, planFusion } from "./fusion.ts";
import { lowerCast, lowerQGather, lowerReshape, lowerSlice, lowerTranspose } from "./data.ts";
import { lowerBsrDense } from "./bsr.ts";
import { lowerQDense } from "./quant.ts";
import { lowerLayerNorm, lowerSoftmax } from "./norm.ts";
import {
  lowerBatchMatmulAny,
  lowerCrossEntropy,
  lowerDenseAny,
  lowerGatherAny,
  lowerLayerNormGrad,
  lowerReduceSum,
  lowerScatterAdd,
  lowerSliceGrad,
  lowerSoftmaxGrad,
} from "./grad.ts";

/** The lowering of each op that has kernels. */
const LOWERINGS: Readonly<Record<string, Lowering>> = {
  dense: lowerDenseAny,
  batch_matmul: lowerBatchMatmulAny,
  bsr_dense: lowerBsrDense,
  qdense: lowerQDense,
  softmax: lowerSoftmax,
  layer_norm: lowerLayerNorm,
  add_layer_norm: lowerLayerNorm,
  reshape: lowerReshape,
  transpose: lowerTranspose,
  slice: lowerSlice,
  gather: lowerGatherAny,
  qgather: lowerQGather,
  cast: lowerCast,
  reduce_sum: lowerReduceSum,
  scatter_add: lowerScatterAdd,
  slice_grad: lowerSliceGrad,
  softmax_grad: lowerSoftmaxGrad,
  layer_norm_grad: lowerLayerNormGrad,
  cross_entropy: lowerCrossEntropy,
  cross_entropy_grad: lowerCrossEntropy,
  ...Object.fromEntries([...ELEMENTWISE].map((name) => [name, lowerElementwise])),
};

/** Counts each value's uses and lists the ops using it (a returned value counts once per return). */
function useCounts(f: Func): { uses: Map<Value, number>; users: Map<Value, Op[]> } {
  const uses = new Map<Value, number>();
  const users = new Map<Value, Op[]>();
  for (const op of f.body) {
    for (const v of op.operands) {
      uses.set(v, (uses.get(v) ?? 0) + 1);
      if (!users.get(v)?.includes(op)) users.set(v, [...(users.get(v) ?? []), op]);
    }
  }
  for (const v of f.returns) uses.set(v, (uses.get(v) ?? 0) + 1);
  return { uses, users };
}

/** Lowers `f` of module `m`, whose weights are in `weights`. Throws CodegenError naming the op it cannot lower. */
export function lowerFunction(
  m: Module,
  f: Func,
  weights: WeightStore,
  chooseBsr?: LowerContext["chooseBsr"],
): LowerContext {
  const { uses, users } = useCounts(f);
  const ctx = new LowerContext(uses, users);
  if (chooseBsr) ctx.chooseBsr = chooseBsr;
  for (const op of f.body) {
    for (const v of op.operands) {
      if (v.kind === "weight" && !ctx.known.has(v)) ctx.known.set(v, weights.get(m.weights.get(v.name)!));
    }
    if (op.operands.every((v) => ctx.known.has(v))) {
      if (!builtinRegistry.get(op.name)) {
        throw new CodegenError(op.loc, `'${op.name}' is not a built-in op; codegen has no kernel for it`);
      }
      const inputs = op.operands.map((v) => ctx.known.get(v)!);
      try {
        ctx.known.set(op.result, evaluateOp(op, inputs, builtinRegistry));
      } catch (e) {
        throw new CodegenError(
          op.loc,
          `cannot compute '${op.name}' (${op.result.ref}) at compile time: ${(e as Error).message}`,
        );
      }
    }
  }
  planFusion(ctx, f.body);
  for (const op of f.body) {
    if (ctx.known.has(op.result) || ctx.fused.has(op)) continue;
    const lowering = LOWERINGS[op.name];
    if (!lowering) {
      throw new CodegenError(op.loc, `no kernel for op '${op.name}' (${op.result.ref})`);
    }
    lowering(op, ctx);
  }
  return ctx;
}
