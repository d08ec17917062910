/**
 * Handlers of the ops that only ever compute at import time: Constant and ConstantOfShape, and
 * the comparisons, Not and Range on constants (position ids, masks computed from shapes).
 */

import { Tensor } from "../../../ir/tensor.ts";
import { constOf, foldBroadcast, foldRange, intsConst, isConst, splatTensor } from "../fold_shapes.ts";
import type { Handler, NodeCtx } from "../node.ts";
import { toNumber as num } from "../proto.ts";

/** The inputs of a node that only ever computes on constants (index and mask arithmetic). */
function constInputs(n: NodeCtx): Tensor[] {
  return (n.node.input ?? []).map((_, i) => {
    const k = n.input(i);
    if (!isConst(k)) {
      throw n.fail(
        `is supported only on constants, and input ${i} ('${
          n.node.input![i]
        }') depends on the model's inputs`,
      );
    }
    return k.tensor;
  });
}

/** A comparison evaluated at import time. */
function compare(fn: (x: number, y: number) => boolean): Handler {
  return (n) => {
    const [a, b] = constInputs(n);
    try {
      return constOf(foldBroadcast(a, b, "bool", (x, y) => fn(x, y) ? 1 : 0), n.outName());
    } catch (e) {
      throw n.fail((e as Error).message);
    }
  };
}

/** Handlers of the constant ops, by ONNX op type. */
export const CONSTANT_HANDLERS: Readonly<Record<string, Handler>> = {
  Constant(n) {
    const name = n.outName();
    const t = n.tensor("value");
    if (t) return constOf(t, name);
    const f = n.attrs.get("value_float"), fs = n.attrs.get("value_floats");
    const i = n.attrs.get("value_int"), is = n.attrs.get("value_ints");
    if (f) return constOf(Tensor.from([], "f32", [f.f ?? 0]), name);
    if (fs) return constOf(Tensor.from([fs.floats?.length ?? 0], "f32", fs.floats ?? []), name);
    if (i) return constOf(Tensor.from([], "i64", [num(i.i)]), name);
    if (is) return intsConst((is.ints ?? []).map(num), name);
    const kind = [...n.attrs.keys()][0] ?? "none";
    throw n.fail(`a constant given by attribute '${kind}' is not supported`);
  },

  ConstantOfShape(n) {
    const shape = n.constInts(0, "shape");
    const value = n.tensor("value") ?? Tensor.from([1], "f32", [0]);
    if (value.data.length !== 1) throw n.fail("attribute 'value' must have one element");
    if (shape.some((d) => d < 0)) throw n.fail(`shape [${shape.join(", ")}] has a negative dim`);
    return constOf(splatTensor({ shape, dtype: value.dtype }, value.data[0]), n.outName());
  },

  // Only on constants (position ids, masks computed from shapes).
  Equal: compare((x, y) => x === y),
  Less: compare((x, y) => x < y),
  Greater: compare((x, y) => x > y),
  Not(n) {
    const [x] = constInputs(n);
    return constOf(Tensor.from(x.shape, "bool", Array.from(x.data, (v) => v ? 0 : 1)), n.outName());
  },
  Range(n) {
    const [start, limit, delta] = constInputs(n);
    try {
      return constOf(foldRange(start, limit, delta), n.outName());
    } catch (e) {
      throw n.fail((e as Error).message);
    }
  },
};
