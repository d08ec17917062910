/**
 * The `gelu_grad` op: the cotangent of GELU's input, `dy · gelu'(x)`, for the exact (erf) and
 * the tanh form. The backward of `gelu` and of a fused `gelu`/`gelu_tanh` activation.
 */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { requireFloat, requireSameDtype } from "./common.ts";
import { erfFn } from "./erf_fn.ts";
import { gelu, SQRT_2_OVER_PI } from "./gelu.ts";

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** d/dx of 0.5·x·(1 + erf(x/√2)): 0.5·(1 + erf(x/√2)) + x·φ(x), φ the standard normal density. */
function geluErfPrime(x: number): number {
  return 0.5 * (1 + erfFn(x / Math.SQRT2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** d/dx of 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³). */
function geluTanhPrime(x: number): number {
  const t = Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
}

/**
 * `gelu_grad(dy, x) {approximation}`: `dy · gelu'(x)` elementwise; dy and x have one float type,
 * which the result has. Not differentiable itself.
 */
export const geluGrad: OpDef = {
  name: "gelu_grad",
  summary: "Cotangent of GELU's input: dy · gelu'(x), exact (erf) or tanh form.",
  operands: [{ name: "dy" }, { name: "x" }],
  attrs: { approximation: gelu.attrs.approximation },
  infer([dy, x]): TensorType {
    requireFloat(x, "x");
    requireSameDtype(dy, x);
    check(
      formatType(dy) === formatType(x),
      `operands 'dy' and 'x' differ: ${formatType(dy)} and ${formatType(x)}`,
    );
    return { shape: [...x.shape], dtype: x.dtype };
  },
  interpret([dy, x], attrs, result): Tensor {
    const f = attrs.string("approximation") === "tanh" ? geluTanhPrime : geluErfPrime;
    const out = Tensor.zeros(result);
    for (let i = 0; i < out.data.length; i++) out.data[i] = dy.data[i] * f(x.data[i]);
    return out;
  },
};
