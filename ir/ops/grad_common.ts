/**
 * Helpers shared by the ops' gradient rules (`OpDef.grad`): summing a broadcast cotangent back
 * to an operand's shape, negation, and the cotangent through a fused activation.
 */

import type { GradEmitter } from "../registry.ts";
import type { Value } from "../module.ts";
import { sameShape } from "../types.ts";

/**
 * `g` summed down to `shape`, undoing numpy broadcasting: a sum over the leading dims `g` has
 * and `shape` lacks, and over the dims where `shape` has 1 and `g` does not (`reduce_sum`, then
 * a `reshape` to drop the leading dims). `g` itself when the shapes are equal.
 */
export function sumToShape(e: GradEmitter, g: Value, shape: readonly number[]): Value {
  const gs = g.type.shape;
  if (sameShape(gs, shape)) return g;
  const lead = gs.length - shape.length;
  const axes = gs.map((_, i) => i).filter((i) => i < lead || (shape[i - lead] === 1 && gs[i] !== 1));
  const summed = axes.length > 0 ? e.op("reduce_sum", [g], { axes, keepdims: true }) : g;
  if (sameShape(summed.type.shape, shape)) return summed;
  return e.op("reshape", [summed], {}, { shape: [...shape], dtype: g.type.dtype });
}

/** `-v`, as `mul v, -1`. */
export function negate(e: GradEmitter, v: Value): Value {
  return e.op("mul", [v, e.constant(-1, v.type.dtype)]);
}

/** `dy · (1 - y²)`: the cotangent of x for `y = tanh(x)`. */
export function tanhGrad(e: GradEmitter, dy: Value, y: Value): Value {
  const one = e.constant(1, y.type.dtype);
  return e.op("mul", [dy, e.op("sub", [one, e.op("mul", [y, y])])]);
}

/**
 * The cotangent before a fused activation (`activation` attribute of `dense` and `bsr_dense`):
 * `dy` itself for `none`; else the op is emitted again without its activation, giving the
 * pre-activation value, and `dy` goes back through the activation (`gelu_grad` or tanh's rule).
 */
export function throughActivation(e: GradEmitter, name: string, dy: Value): Value {
  const activation = e.attrs.string("activation");
  if (activation === "none") return dy;
  if (activation === "tanh") return tanhGrad(e, dy, e.result);
  const pre = e.op(name, e.operands, { ...e.written, activation: "none" });
  return e.op("gelu_grad", [dy, pre], { approximation: activation === "gelu" ? "erf" : "tanh" });
}

/** `make()` when operand `i`'s cotangent is wanted, else undefined. */
export function ifNeeded(e: GradEmitter, i: number, make: () => Value): Value | undefined {
  return e.needs(i) ? make() : undefined;
}

/** `v` reshaped to `shape` (same dtype), or `v` itself when it has that shape already. */
export function reshapeTo(e: GradEmitter, v: Value, shape: readonly number[]): Value {
  if (sameShape(v.type.shape, shape)) return v;
  return e.op("reshape", [v], {}, { shape: [...shape], dtype: v.type.dtype });
}
