/**
 * Handlers of the ops that move data without computing on it: Reshape, Flatten, Transpose,
 * Gather, Unsqueeze, Squeeze, Concat, Slice and Expand, and Shape, which reads a static shape.
 */

import type { AttrJs } from "../../../ir/attrs.ts";
import { broadcastShapes } from "../../../ir/shape.ts";
import { formatType, numel, sameShape } from "../../../ir/types.ts";
import { constOf, foldOp, intsConst, isConst, reshapeTarget, splatTensor, typeOf } from "../fold_shapes.ts";
import { axesOf, type Handler, rankOf } from "../node.ts";

/** Handlers of the shape and data-movement ops, by ONNX op type. */
export const SHAPE_HANDLERS: Readonly<Record<string, Handler>> = {
  Reshape(n) {
    const x = n.input(0);
    const spec = n.constInts(1, "shape");
    let shape: number[];
    try {
      shape = reshapeTarget(typeOf(x).shape, spec, n.int("allowzero", 0) !== 0);
    } catch (e) {
      throw n.fail((e as Error).message);
    }
    return n.imp.reshape(n, x, shape);
  },

  Flatten(n) {
    const x = n.input(0);
    const shape = typeOf(x).shape;
    const axis = n.int("axis", 1);
    const a = axis === shape.length ? axis : axesOf(n, [axis], shape.length)[0];
    return n.imp.reshape(n, x, [numel(shape.slice(0, a)), numel(shape.slice(a))]);
  },

  Transpose(n) {
    const x = n.input(0);
    const rank = rankOf(x);
    const perm = n.ints("perm") ?? [...Array(rank).keys()].reverse();
    if (perm.every((p, i) => p === i)) return x;
    if (isConst(x) && rank === 2) {
      // Kept as a constant whatever its size: a MatMul or Gemm takes the original with a flag.
      try {
        return { ...constOf(foldOp("transpose", [x.tensor], { perm }), n.outName()), transposeOf: x };
      } catch (e) {
        throw n.fail((e as Error).message);
      }
    }
    return n.imp.emit(n, "transpose", [x], { perm });
  },

  Gather(n) {
    const axis = n.int("axis", 0);
    return n.imp.emit(n, "gather", [n.input(0), n.input(1)], axis !== 0 ? { axis } : {});
  },

  Unsqueeze(n) {
    const x = n.input(0);
    const axes = n.opset >= 13 ? n.constInts(1, "axes") : n.ints("axes");
    if (!axes) throw n.fail("attribute 'axes' is missing");
    const shape = [...typeOf(x).shape];
    const rank = shape.length + axes.length;
    for (const a of axesOf(n, axes, rank).sort((p, q) => p - q)) shape.splice(a, 0, 1);
    return n.imp.reshape(n, x, shape);
  },

  Squeeze(n) {
    const x = n.input(0);
    const shape = typeOf(x).shape;
    const given = n.opset >= 13 ? (n.has(1) ? n.constInts(1, "axes") : undefined) : n.ints("axes");
    const axes = given ? axesOf(n, given, shape.length) : shape.flatMap((d, i) => d === 1 ? [i] : []);
    for (const a of axes) {
      if (shape[a] !== 1) {
        throw n.fail(`cannot squeeze axis ${a} of ${formatType(typeOf(x))}: its size is not 1`);
      }
    }
    return n.imp.reshape(n, x, shape.filter((_, i) => !axes.includes(i)));
  },

  Concat(n) {
    const inputs = (n.node.input ?? []).map((_, i) => n.input(i));
    if (inputs.length === 1) return inputs[0];
    const axis = n.int("axis", Number.NaN);
    if (Number.isNaN(axis)) throw n.fail("attribute 'axis' is missing");
    return n.imp.emit(n, "concat", inputs, { axis });
  },

  Slice(n) {
    const x = n.input(0);
    const shape = typeOf(x).shape;
    let starts: number[], ends: number[], axes: number[] | undefined, steps: number[] | undefined;
    if (n.opset >= 10) {
      starts = n.constInts(1, "starts");
      ends = n.constInts(2, "ends");
      axes = n.has(3) ? n.constInts(3, "axes") : undefined;
      steps = n.has(4) ? n.constInts(4, "steps") : undefined;
    } else {
      starts = n.ints("starts") ?? [];
      ends = n.ints("ends") ?? [];
      axes = n.ints("axes");
    }
    axes ??= starts.map((_, i) => i);
    steps ??= starts.map(() => 1);
    if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
      throw n.fail("starts, ends, axes and steps must have the same length");
    }
    const norm = axesOf(n, axes, shape.length);
    const s: number[] = [], e: number[] = [];
    norm.forEach((a, i) => {
      const dim = shape[a];
      if (steps![i] <= 0) throw n.fail(`step ${steps![i]} is not supported (only positive steps)`);
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + dim : v, 0), dim);
      s.push(clamp(starts[i]));
      e.push(clamp(ends[i]));
    });
    const whole = norm.every((a, i) => s[i] === 0 && e[i] === shape[a] && steps![i] === 1);
    if (whole) return x;
    const attrs: Record<string, AttrJs> = { starts: s, ends: e, axes: norm };
    if (steps.some((st) => st !== 1)) attrs.steps = steps;
    return n.imp.emit(n, "slice", [x], attrs);
  },

  Expand(n) {
    const x = n.input(0);
    const t = typeOf(x);
    let shape: number[];
    try {
      shape = broadcastShapes(t.shape, n.constInts(1, "shape"));
    } catch (e) {
      throw n.fail((e as Error).message);
    }
    if (sameShape(shape, t.shape)) return x;
    // Broadcasting by adding zeros (by selecting, for bool): the IR has no broadcast op.
    const type = { shape, dtype: t.dtype };
    if (t.dtype === "bool") {
      const yes = constOf(splatTensor(type, 1), n.derived(".true"));
      const no = constOf(splatTensor(type, 0), n.derived(".false"));
      return n.imp.emit(n, "where", [x, yes, no]);
    }
    return n.imp.emit(n, "add", [x, constOf(splatTensor(type, 0), n.derived(".zeros"))]);
  },

  Shape(n) {
    const shape = typeOf(n.input(0)).shape;
    const rank = shape.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
    const start = clamp(n.int("start", 0)), end = clamp(n.int("end", rank));
    return intsConst(shape.slice(start, end), n.outName());
  },
};
