/** Lowering of element-wise ops: each chain that fusion planned becomes one kernel. */

import type { Op, Value } from "../../ir/module.ts";
import { numel } from "../../ir/types.ts";
import { type ElementwiseExpr, elementwiseKernel } from "../wasm/elementwise.ts";
import { attrsOf, CodegenError, type LowerContext } from "./context.ts";
import { ELEMENTWISE } from "./fusion.ts";

type ExprOp = Exclude<ElementwiseExpr, { input: number } | { constant: number }>["op"];

/** The kernel's name for an IR element-wise op. */
function exprOp(op: Op): ExprOp {
  if (op.name === "gelu") return attrsOf(op).string("approximation") === "tanh" ? "gelu_tanh" : "gelu";
  return op.name as ExprOp;
}

const add = (a: ElementwiseExpr, b: ElementwiseExpr): ElementwiseExpr => ({ op: "add", args: [a, b] });
const mul = (a: ElementwiseExpr, b: ElementwiseExpr): ElementwiseExpr => ({ op: "mul", args: [a, b] });
const num = (constant: number): ElementwiseExpr => ({ constant });

/**
 * `gelu_grad(dy, x)` as an expression of the kernel's ops: dy·gelu'(x), with
 * gelu'(x) = Φ(x) + x·φ(x) = 0.5·(1 + erf(x/√2)) + x·e^(-x²/2)/√(2π) (erf form), or for the tanh
 * form, with t = tanh(k·(x + 0.044715·x³)), k = √(2/π):
 * 0.5·(1 + t) + 0.5·x·(1 - t²)·k·(1 + 3·0.044715·x²). x's expression is repeated (an input, or
 * a fused chain computed again).
 */
function geluGradExpr(tanhForm: boolean, dy: ElementwiseExpr, x: ElementwiseExpr): ElementwiseExpr {
  if (!tanhForm) {
    const cdf = mul(num(0.5), add(num(1), { op: "erf", args: [mul(x, num(Math.SQRT1_2))] }));
    const pdf = mul(num(1 / Math.sqrt(2 * Math.PI)), { op: "exp", args: [mul(num(-0.5), mul(x, x))] });
    return mul(dy, add(cdf, mul(x, pdf)));
  }
  const k = Math.sqrt(2 / Math.PI);
  const x2 = mul(x, x);
  const t = (): ElementwiseExpr => ({
    op: "tanh",
    args: [mul(num(k), add(x, mul(num(0.044715), mul(x2, x))))],
  });
  const slope = mul(num(k), add(num(1), mul(num(3 * 0.044715), x2)));
  const second = mul(mul(num(0.5), x), mul({ op: "sub", args: [num(1), mul(t(), t())] }, slope));
  return mul(dy, add(mul(num(0.5), add(num(1), t())), second));
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
    if (p && ctx.fused.has(p) && ELEMENTWISE.has(p.name)) return node(p);
    const t = ctx.knownValue(v);
    if (t && numel(t.shape) === 1) return { constant: t.data[0] };
    if (!inputs.includes(v)) inputs.push(v);
    return { input: inputs.indexOf(v) };
  };
  const node = (o: Op): ElementwiseExpr => {
    ops.push(o.name);
    if (o.name === "gelu_grad") {
      const [dy, x] = o.operands.map(exprOf);
      return geluGradExpr(attrsOf(o).string("approximation") === "tanh", dy, x);
    }
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
