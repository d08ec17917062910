/**
 * Handlers of the reductions and normalizations: ReduceMean, LayerNormalization and Softmax
 * (with the pre-opset-13 Softmax over all dims from its axis on).
 */

import { numel } from "../../../ir/types.ts";
import { type Known, typeOf } from "../fold_shapes.ts";
import { axesOf, type Handler, rankOf } from "../node.ts";

/** Handlers of the reductions and normalizations, by ONNX op type. */
export const NORM_HANDLERS: Readonly<Record<string, Handler>> = {
  ReduceMean(n) {
    const x = n.input(0);
    const rank = rankOf(x);
    let axes = n.opset >= 18 ? (n.has(1) ? n.constInts(1, "axes") : undefined) : n.ints("axes");
    if (!axes || axes.length === 0) {
      if (n.int("noop_with_empty_axes", 0) !== 0) return x;
      axes = [...Array(rank).keys()];
    }
    return n.imp.emit(n, "reduce_mean", [x], { axes, keepdims: n.int("keepdims", 1) !== 0 });
  },

  LayerNormalization(n) {
    n.requireUnused(1);
    const x = n.input(0), scale = n.input(1), bias = n.optional(2);
    const axis = n.int("axis", -1);
    const norm = typeOf(x).shape.slice(axesOf(n, [axis], rankOf(x))[0]);
    const fit = (k: Known, suffix: string) =>
      numel(typeOf(k).shape) === numel(norm) ? n.imp.reshape(n, k, norm, suffix) : k;
    const operands = [x, fit(scale, ".scale"), ...(bias ? [fit(bias, ".bias")] : [])];
    return n.imp.emit(n, "layer_norm", operands, { axis, epsilon: n.float("epsilon", 1e-5) });
  },

  Softmax(n) {
    const x = n.input(0);
    const shape = typeOf(x).shape;
    const axis = axesOf(n, [n.int("axis", n.opset >= 13 ? -1 : 1)], shape.length)[0];
    if (n.opset >= 13 || axis === shape.length - 1) {
      return n.imp.emit(n, "softmax", [x], { axis: axis === shape.length - 1 ? -1 : axis });
    }
    // Before opset 13, Softmax normalizes over all dims from axis on, as one.
    const flat = n.imp.reshape(n, x, [numel(shape.slice(0, axis)), numel(shape.slice(axis))], ".flat");
    const y = n.imp.emit(n, "softmax", [flat], { axis: -1 }, { suffix: ".2d" });
    return n.imp.reshape(n, y, shape);
  },
};
