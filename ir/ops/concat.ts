/** The `concat` op: joins tensors of one rank and dtype along an axis. */

import type { OpDef } from "../registry.ts";
import { check, normalizeAxis } from "../shape.ts";
import { Tensor } from "../tensor.ts";
import { formatType, type TensorType } from "../types.ts";
import { prod, requireSameDtype } from "./common.ts";
import { ifNeeded } from "./grad_common.ts";

/**
 * `concat(inputs...) {axis}`: the inputs have one rank and dtype and equal dims except along
 * `axis`, where the result's dim is their sum. Gradient: each input's part of dy, by `slice`.
 */
export const concat: OpDef = {
  name: "concat",
  summary: "Joins the inputs along axis; other dims must agree.",
  operands: [{ name: "inputs", variadic: true }],
  attrs: {
    axis: { type: "int", doc: "The axis to join along; negative counts from the end." },
  },
  infer(inputs, attrs): TensorType {
    const first = inputs[0];
    const rank = first.shape.length;
    const axis = normalizeAxis(attrs.int("axis"), rank);
    const shape = [...first.shape];
    inputs.slice(1).forEach((t, i) => {
      requireSameDtype(first, t);
      const fits = t.shape.length === rank && t.shape.every((d, j) => j === axis || d === first.shape[j]);
      const pair = `${formatType(t)} and ${formatType(first)}`;
      check(fits, `operand 'inputs' #${i + 1} must match #0 in all dims but ${axis}, got ${pair}`);
      shape[axis] += t.shape[axis];
    });
    return { shape, dtype: first.dtype };
  },
  interpret(inputs, attrs, result): Tensor {
    const out = Tensor.zeros(result);
    const axis = normalizeAxis(attrs.int("axis"), result.shape.length);
    // Each input is [outer, chunk] with chunk = dims from axis on; rows interleave in the result.
    const outer = prod(result.shape, 0, axis);
    const outChunk = prod(result.shape, axis);
    let at = 0;
    for (const t of inputs) {
      const chunk = prod(t.shape, axis);
      for (let o = 0; o < outer; o++) {
        out.data.set(t.data.subarray(o * chunk, (o + 1) * chunk), o * outChunk + at);
      }
      at += chunk;
    }
    return out;
  },
  grad: (e, dy) => {
    const axis = normalizeAxis(e.attrs.int("axis"), dy.type.shape.length);
    let at = 0;
    return e.operands.map((v, i) => {
      const start = at;
      at += v.type.shape[axis];
      return ifNeeded(e, i, () => e.op("slice", [dy], { starts: [start], ends: [at], axes: [axis] }));
    });
  },
};
