/** The `gelu` op: the Gaussian error linear unit, exact (erf) or with the tanh approximation. */

import type { OpDef } from "../registry.ts";
import { Tensor } from "../tensor.ts";
import type { TensorType } from "../types.ts";
import { requireFloat } from "./common.ts";
import { erfFn } from "./erf_fn.ts";

/** √(2/π), the tanh approximation's scale (shared with `gelu_grad`). */
export const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GELU with erf: 0.5·x·(1 + erf(x/√2)). */
function geluErf(x: number): number {
  return 0.5 * x * (1 + erfFn(x / Math.SQRT2));
}

/** GELU with tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
}

/**
 * `gelu(x) {approximation}`: elementwise GELU of a float tensor; the result has x's type.
 * Gradient: `gelu_grad(dy, x)` with the same approximation.
 */
export const gelu: OpDef = {
  name: "gelu",
  summary: "Elementwise GELU activation, exact (erf) or tanh-approximated.",
  operands: [{ name: "x" }],
  attrs: {
    approximation: {
      type: "enum",
      values: ["erf", "tanh"],
      default: "erf",
      doc: "erf: 0.5x(1 + erf(x/√2)) (BERT); tanh: 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).",
    },
  },
  infer([x]): TensorType {
    requireFloat(x, "x");
    return { shape: [...x.shape], dtype: x.dtype };
  },
  interpret([x], attrs, result): Tensor {
    const f = attrs.string("approximation") === "tanh" ? geluTanh : geluErf;
    const out = Tensor.zeros(result);
    for (let i = 0; i < out.data.length; i++) out.data[i] = f(x.data[i]);
    return out;
  },
  grad: (e, dy) => [
    e.op("gelu_grad", [dy, e.operands[0]], { approximation: e.attrs.string("approximation") }),
  ],
};
