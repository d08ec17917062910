/** Lowering of the normalizations: `softmax` (with a fused scale) and `layer_norm` / `add_layer_norm`. */

import type { Op } from "../../ir/module.ts";
import { normalizeAxis } from "../../ir/shape.ts";
import { numel } from "../../ir/types.ts";
import { layerNormKernel } from "../wasm/layer_norm.ts";
import { softmaxKernel } from "../wasm/softmax.ts";
import { attrsOf, CodegenError, type LowerContext } from "./context.ts";
import { scalarFactor } from "./fusion.ts";

/** `softmax(x, mask?)` over the last axis; a fused `mul` (or `div`) by a scalar becomes the kernel's scale. */
export function lowerSoftmax(op: Op, ctx: LowerContext): void {
  let [x] = op.operands;
  const mask = op.operands[1];
  const shape = x.type.shape;
  if (normalizeAxis(attrsOf(op).int("axis"), shape.length) !== shape.length - 1) {
    throw new CodegenError(op.loc, "softmax has a kernel only for the last axis");
  }
  let scale = 1;
  const ops = ["softmax"];
  const producer = x.definingOp;
  if (producer && ctx.fused.has(producer) && scalarFactor(ctx, producer)) {
    const factor = scalarFactor(ctx, producer)!;
    scale = factor.scale;
    x = factor.x;
    ops.unshift(producer.name);
  }
  const spec = { shape: [...shape], scale, maskShape: mask ? [...mask.type.shape] : undefined };
  ctx.emit({
    op,
    ops,
    wasm: (t) => softmaxKernel(spec, t),
    args: [ctx.operand(op, x), ...(mask ? [ctx.operand(op, mask)] : []), {
      buffer: ctx.bufferOf(op, op.result),
    }],
    flops: 5 * numel(shape),
  });
}

/** `layer_norm(x, gamma, beta?)` and `add_layer_norm(x, residual, gamma, beta?)`, rows × normalized dims. */
export function lowerLayerNorm(op: Op, ctx: LowerContext): void {
  const residual = op.name === "add_layer_norm";
  const [x, ...rest] = op.operands;
  const [res, gamma, beta] = residual ? rest : [undefined, ...rest];
  const attrs = attrsOf(op);
  const shape = x.type.shape;
  const axis = normalizeAxis(attrs.int("axis"), shape.length);
  const cols = numel(shape.slice(axis));
  const spec = { rows: numel(shape) / cols, cols, epsilon: attrs.float("epsilon"), residual };
  const betaArg = beta
    ? ctx.operand(op, beta)
    : ctx.constant(`zeros:${cols}`, `zeros [${cols}] (no beta)`, () => new Float32Array(cols));
  ctx.emit({
    op,
    ops: [op.name],
    wasm: (t) => layerNormKernel(spec, t),
    args: [
      ctx.operand(op, x),
      ...(res ? [ctx.operand(op, res)] : []),
      ctx.operand(op, gamma!),
      betaArg,
      { buffer: ctx.bufferOf(op, op.result) },
    ],
    flops: 8 * numel(shape),
  });
}
