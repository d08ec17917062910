/** Lowering of element-wise ops: each chain that fusion planned becomes one kernel. */

import type { Op, Value } from "../../ir/module.ts";
import { numel } from "../../ir/types.ts";
import { type ElementwiseExpr, elementwiseKernel } from "../wasm/elementwise.ts";
import { attrsOf, CodegenError, type LowerContext } from "./context.ts";

type ExprOp = Exclude<ElementwiseExpr, { input: number } | { constant: number }>["op"];

/** The kernel's name for an IR element-wise op. */
function exprOp(op: Op): ExprOp {
  if (op.name === "gelu") return attrsOf(op).string("approximation") === "tanh" ? "gelu_tanh" : "gelu";
  return op.name as ExprOp;
}

/** The root op of a chain and the fused ops feeding it, as one kernel. */
export function lowerElementwise(op: Op, ctx: LowerContext): void {
  if (op.result.type.dtype !== "f32") {
    throw new CodegenError(op.loc, `'${op.name}' on ${op.result.type.dtype} has no kernel (f32 only)`);
  }
  const inputs: Value[] = [];
  const ops: string[] = [];
  const exprOf = (v: Value): ElementwiseExpr => {
    const p = v.definingOp;
    if (p && ctx.fused.has(p)) return node(p);
    const t = ctx.knownValue(v);
    if (t && numel(t.shape) === 1) return { constant: t.data[0] };
    if (!inputs.includes(v)) inputs.push(v);
    return { input: inputs.indexOf(v) };
  };
  const node = (o: Op): ElementwiseExpr => {
    ops.push(o.name);
    return { op: exprOp(o), args: o.operands.map(exprOf) } as ElementwiseExpr;
  };
  const expr = node(op);
  const spec = {
    shape: [...op.result.type.shape],
    inputs: inputs.map((v) => ({ shape: [...v.type.shape] })),
    expr,
  };
  ctx.emit({
    op,
    ops: ops.reverse(),
    wasm: (t) => elementwiseKernel(spec, t),
    args: [...inputs.map((v) => ctx.operand(op, v)), { buffer: ctx.bufferOf(op, op.result) }],
    flops: ops.length * numel(op.result.type.shape),
  });
}
