/**
 * Fusion decisions, made before any op is lowered: which ops fold into the kernel of the op
 * that uses them, so they get no kernel (and no buffer) of their own.
 *
 * - An element-wise op whose result has one use, by an element-wise op of the same result
 *   shape, joins that op's fused chain, up to {@link MAX_FUSED_OPS} ops per kernel.
 * - A `mul` by a compile-time scalar (or a `div` by one) whose one use is a `softmax` becomes the
 *   softmax's scale.
 * - A `transpose` keeping the last axis, feeding a batched `batch_matmul` (only there) or being
 *   the only user of one's result, becomes that product's strided addressing (matmul.ts:
 *   `transposedOperand`, `transposedResult`): attention's head splits and merge cost no copy.
 */

import type { Op, Value } from "../../ir/module.ts";
import { numel, sameShape } from "../../ir/types.ts";
import type { LowerContext } from "./context.ts";
import { transposedOperand, transposedResult } from "./matmul.ts";

/** Element-wise f32 ops a fused chain can hold. */
export const ELEMENTWISE = new Set([
  "add",
  "sub",
  "mul",
  "div",
  "pow",
  "sqrt",
  "erf",
  "tanh",
  "gelu",
  "exp",
  "log",
  "gelu_grad",
]);

/** The single op that uses `v` (one use, not returned), if any. */
function onlyUser(ctx: LowerContext, v: Value): Op | undefined {
  return ctx.uses.get(v) === 1 ? ctx.users.get(v)?.[0] : undefined;
}

/**
 * The compile-time scalar factor of a `mul` by a scalar, or of a `div` by a non-zero scalar
 * (torch exports `scores / sqrt(d)`), and the other operand, if it has one.
 */
export function scalarFactor(ctx: LowerContext, op: Op): { scale: number; x: Value } | undefined {
  if (op.name !== "mul" && op.name !== "div") return undefined;
  for (const [i, v] of op.operands.entries()) {
    const t = ctx.knownValue(v);
    const other = op.operands[1 - i];
    if (
      t && numel(t.shape) === 1 && !ctx.knownValue(other) && sameShape(other.type.shape, op.result.type.shape)
    ) {
      if (op.name === "mul") return { scale: t.data[0], x: other };
      if (i === 1 && t.data[0] !== 0) return { scale: 1 / t.data[0], x: other };
    }
  }
  return undefined;
}

/**
 * The most ops one fused element-wise kernel computes: a longer chain is cut into several kernels
 * (a chain of hundreds would make one huge function, and its expression deep recursion).
 */
export const MAX_FUSED_OPS = 32;

/** Marks the ops of `body` that fold into a user's kernel (ctx.fused). */
export function planFusion(ctx: LowerContext, body: readonly Op[]): void {
  // Per op: the ops already fused into it (its producers' trees).
  const fusedInto = new Map<Op, number>();
  for (const op of body) {
    if (ctx.knownValue(op.result) || op.result.type.dtype !== "f32") continue;
    const user = onlyUser(ctx, op.result);
    if (!user) continue;
    const tree = 1 + (fusedInto.get(op) ?? 0);
    const chain = ELEMENTWISE.has(op.name) && ELEMENTWISE.has(user.name) &&
      sameShape(op.result.type.shape, user.result.type.shape) &&
      1 + (fusedInto.get(user) ?? 0) + tree <= MAX_FUSED_OPS;
    const softmaxScale = user.name === "softmax" && user.operands[0] === op.result &&
      scalarFactor(ctx, op) !== undefined;
    if (chain || softmaxScale) {
      ctx.fused.add(op);
      if (chain) fusedInto.set(user, (fusedInto.get(user) ?? 0) + tree);
    }
  }
  for (const op of body) {
    if (op.name !== "batch_matmul" || ctx.knownValue(op.result)) continue;
    for (const i of [0, 1] as const) {
      const t = transposedOperand(ctx, op, i)?.transpose;
      if (t) ctx.fused.add(t);
    }
    const t = transposedResult(ctx, op)?.transpose;
    if (t) ctx.fused.add(t);
  }
}
