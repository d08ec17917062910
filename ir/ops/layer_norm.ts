/**
 * The `layer_norm` op: normalizes x over its trailing dims (from `axis` on) to zero mean and
 * unit population variance, then scales by gamma and shifts by beta.
 */

import type { Value } from "../module.ts";
import type { GradEmitter, OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, sameShape, type TensorType } from "../types.ts";
import { formatList, prod, requireFloat, requireSameDtype } from "./common.ts";

/**
 * The cotangents of a layer normalization of `x` (a value of the backward function; for
 * `add_layer_norm`, the sum) with the op's gamma and attributes: `[dx, dgamma, dbeta]`, each
 * emitted only when `need` says so. dx is `layer_norm_grad(dy, x, gamma)`; dgamma sums
 * `dy · x̂` and dbeta sums dy over the leading (not normalized) dims, x̂ being `layer_norm` of x
 * with gamma 1 and no beta.
 */
export function layerNormGrads(
  e: GradEmitter,
  dy: Value,
  x: Value,
  gamma: Value,
  need: readonly [boolean, boolean, boolean],
): [Value | undefined, Value | undefined, Value | undefined] {
  const attrs = { axis: e.attrs.int("axis"), epsilon: e.attrs.float("epsilon") };
  const axis = normalizeAxis(attrs.axis, x.type.shape.length);
  const lead = Array.from({ length: axis }, (_, i) => i);
  const sumLead = (v: Value) =>
    lead.length > 0 ? e.op("reduce_sum", [v], { axes: lead, keepdims: false }) : v;
  const dx = need[0] ? e.op("layer_norm_grad", [dy, x, gamma], attrs) : undefined;
  let dgamma: Value | undefined;
  if (need[1]) {
    const ones = e.constant(1, x.type.dtype, gamma.type.shape);
    const xhat = e.op("layer_norm", [x, ones], attrs);
    dgamma = sumLead(e.op("mul", [dy, xhat]));
  }
  return [dx, dgamma, need[2] ? sumLead(dy) : undefined];
}

/**
 * `layer_norm(x, gamma, beta?) {axis, epsilon}`: `(x - mean) / sqrt(var + epsilon) * gamma + beta`,
 * with mean and variance over dims `axis..rank-1`; gamma and beta have shape `x.shape[axis:]`.
 * Gradient: see {@link layerNormGrads}.
 */
export const layerNorm: OpDef = {
  name: "layer_norm",
  summary: "Layer normalization over the trailing dims of x from axis on, with scale gamma and shift beta.",
  operands: [{ name: "x" }, { name: "gamma" }, { name: "beta", optional: true }],
  attrs: {
    axis: {
      type: "int",
      default: -1,
      doc: "First normalized dim; dims axis..rank-1 are normalized together.",
    },
    epsilon: { type: "float", default: 1e-12, doc: "Added to the variance before the square root." },
  },
  infer([x, gamma, beta], attrs): TensorType {
    requireFloat(x, "x");
    const axis = normalizeAxis(attrs.int("axis"), x.shape.length);
    check(attrs.float("epsilon") >= 0, `attribute 'epsilon' must be >= 0, got ${attrs.float("epsilon")}`);
    const norm = x.shape.slice(axis);
    for (const [name, t] of [["gamma", gamma], ["beta", beta]] as const) {
      if (!t) continue;
      requireSameDtype(x, t);
      check(
        sameShape(t.shape, norm),
        `operand '${name}' must have shape ${formatList(norm)}, got ${formatType(t)}`,
      );
    }
    return { shape: [...x.shape], dtype: x.dtype };
  },
  interpret([x, gamma, beta], attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const eps = attrs.float("epsilon");
    const axis = normalizeAxis(attrs.int("axis"), x.shape.length);
    const n = prod(x.shape, axis);
    const rows = prod(x.shape, 0, axis);
    for (let r = 0; r < rows; r++) {
      const base = r * n;
      let mean = 0;
      for (let i = 0; i < n; i++) mean += x.data[base + i];
      mean /= n;
      let variance = 0;
      for (let i = 0; i < n; i++) variance += (x.data[base + i] - mean) ** 2;
      variance /= n;
      const scale = 1 / Math.sqrt(variance + eps);
      for (let i = 0; i < n; i++) {
        const y = (x.data[base + i] - mean) * scale * gamma.data[i];
        out.data[base + i] = beta ? y + beta.data[i] : y;
      }
    }
    return out;
  },
  grad: (e, dy) => {
    const [x, gamma, beta] = e.operands;
    const [dx, dgamma, dbeta] = layerNormGrads(e, dy, x, gamma, [
      e.needs(0),
      e.needs(1),
      !!beta && e.needs(2),
    ]);
    return beta ? [dx, dgamma, dbeta] : [dx, dgamma];
  },
};
