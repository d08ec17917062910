/**
 * The `add_layer_norm` op: a residual add fused into the layer normalization after it,
 * `layer_norm(x + residual)`, so codegen can normalize the sum in one kernel. It is defined as
 * that chain: the sum is taken as the `add` op takes it, then the `layer_norm` op's own rules
 * and reference code run on it, so the fused and the unfused forms cannot drift apart.
 */

import type { OpDef } from "../registry.ts";
import { check } from "../shape.ts";
import { roundToDType, Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { layerNorm, layerNormGrads } from "./layer_norm.ts";

/**
 * `add_layer_norm(x, residual, gamma, beta?) {axis, epsilon}`: `layer_norm(x + residual, gamma,
 * beta)`. x and residual have exactly the same type (no broadcasting); gamma, beta, axis and
 * epsilon follow `layer_norm`. The result has x's type. Gradient: the sum is emitted again
 * (`add`) and `layer_norm`'s rule applies to it; x and residual both get the sum's cotangent.
 */
export const addLayerNorm: OpDef = {
  name: "add_layer_norm",
  summary: "Residual add fused into layer normalization: layer_norm(x + residual, gamma, beta).",
  operands: [{ name: "x" }, { name: "residual" }, { name: "gamma" }, { name: "beta", optional: true }],
  attrs: {
    axis: {
      ...layerNorm.attrs.axis,
      doc: "First normalized dim of x + residual; dims axis..rank-1 are normalized together.",
    },
    epsilon: { ...layerNorm.attrs.epsilon, doc: "Added to the variance before the square root." },
  },
  infer([x, residual, gamma, beta], attrs, declared): TensorType {
    check(
      formatType(x) === formatType(residual),
      `operands 'x' and 'residual' must have the same type, got ${formatType(x)} and ${formatType(residual)}`,
    );
    return layerNorm.infer(beta ? [x, gamma, beta] : [x, gamma], attrs, declared);
  },
  interpret([x, residual, gamma, beta], attrs, result): Tensor {
    // The sum, stored and rounded as the `add` op's result would be.
    const sum = Tensor.zeros({ shape: [...x.shape], dtype: x.dtype });
    for (let i = 0; i < sum.data.length; i++) sum.data[i] = x.data[i] + residual.data[i];
    roundToDType(sum);
    return layerNorm.interpret(beta ? [sum, gamma, beta] : [sum, gamma], attrs, result);
  },
  grad: (e, dy) => {
    const [x, residual, gamma, beta] = e.operands;
    const sum = e.op("add", [x, residual]);
    const needSum = e.needs(0) || e.needs(1);
    const [ds, dgamma, dbeta] = layerNormGrads(e, dy, sum, gamma, [
      needSum,
      e.needs(2),
      !!beta && e.needs(3),
    ]);
    const head = [e.needs(0) ? ds : undefined, e.needs(1) ? ds : undefined, dgamma];
    return beta ? [...head, dbeta] : head;
  },
};
