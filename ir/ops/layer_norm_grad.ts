/** The `layer_norm_grad` op: the cotangent of layer normalization's input x. */

import type { OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { prod } from "./common.ts";
import { layerNorm } from "./layer_norm.ts";

/**
 * `layer_norm_grad(dy, x, gamma) {axis, epsilon}`: for `y = layer_norm(x, gamma, beta)` over dims
 * `axis..`, the cotangent of x: with `x̂ = (x - mean)·r`, `r = 1/sqrt(var + epsilon)` and
 * `g = dy·gamma`, `dx = r·(g - mean(g) - x̂·mean(g·x̂))` per normalized row (sums in f64).
 * dy has x's type; x and gamma follow `layer_norm`'s rules. The result has x's type.
 */
export const layerNormGrad: OpDef = {
  name: "layer_norm_grad",
  summary: "Cotangent of layer normalization's input x, from dy, x and gamma.",
  operands: [{ name: "dy" }, { name: "x" }, { name: "gamma" }],
  attrs: layerNorm.attrs,
  infer([dy, x, gamma], attrs, declared): TensorType {
    check(
      formatType(dy) === formatType(x),
      `operands 'dy' and 'x' differ: ${formatType(dy)} and ${formatType(x)}`,
    );
    return layerNorm.infer([x, gamma], attrs, declared);
  },
  interpret([dy, x, gamma], attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const eps = attrs.float("epsilon");
    const axis = normalizeAxis(attrs.int("axis"), x.shape.length);
    const n = prod(x.shape, axis);
    const rows = prod(x.shape, 0, axis);
    const xhat = new Float64Array(n);
    const g = new Float64Array(n);
    for (let r = 0; r < rows; r++) {
      const base = r * n;
      let mean = 0;
      for (let i = 0; i < n; i++) mean += x.data[base + i];
      mean /= n;
      let variance = 0;
      for (let i = 0; i < n; i++) variance += (x.data[base + i] - mean) ** 2;
      variance /= n;
      const scale = 1 / Math.sqrt(variance + eps);
      let meanG = 0, meanGX = 0;
      for (let i = 0; i < n; i++) {
        xhat[i] = (x.data[base + i] - mean) * scale;
        g[i] = dy.data[base + i] * gamma.data[i];
        meanG += g[i];
        meanGX += g[i] * xhat[i];
      }
      meanG /= n;
      meanGX /= n;
      for (let i = 0; i < n; i++) out.data[base + i] = scale * (g[i] - meanG - xhat[i] * meanGX);
    }
    return out;
  },
};
