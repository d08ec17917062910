/**
 * The `layer_norm` op: normalizes x over its trailing dims (from `axis` on) to zero mean and
 * unit population variance, then scales by gamma and shifts by beta.
 */

import type { OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, sameShape, type TensorType } from "../types.ts";
import { formatList, prod, requireFloat, requireSameDtype } from "./common.ts";

/**
 * `layer_norm(x, gamma, beta?) {axis, epsilon}`: `(x - mean) / sqrt(var + epsilon) * gamma + beta`,
 * with mean and variance over dims `axis..rank-1`; gamma and beta have shape `x.shape[axis:]`.
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
};
