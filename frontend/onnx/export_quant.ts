/**
 * ONNX export of `qdense` (ir/ops/qdense.ts): the op's computation written with standard ONNX
 * ops (opset 17), so that onnxruntime runs an INT8 model as the interpreter does. For x `[..., K]`:
 *
 * ```
 * a   = ReduceMax(Abs(x), axes = [-1], keepdims = 1)           [..., 1]
 * s   = Where(a == 0, 1, a / act_max)                          (act_scale > 0: the constant act_scale)
 * q   = Cast<INT8>(Clip(Round(x / s), -act_max, act_max))      Round is half to even
 * acc = Cast<FLOAT>(Cast<DOUBLE>(MatMulInteger(q, wqᵀ)))       wqᵀ: an int8 [K, N] initializer
 * y   = acc · (s · w_scale) (+ bias), then the activation
 * ```
 *
 * With the export option `quantization: "onnxruntime"`, the form onnxruntime's dynamic
 * quantization writes instead (DynamicQuantizeLinear, MatMulInteger, the scales), for its speed.
 *
 * `s · w_scale` is multiplied first and `acc` by it, which is the op's f32 rounding order, so the
 * exported model can match the interpreter exactly. The int8 weight is written transposed, as
 * `<wq>.T`, MatMulInteger's `[K, N]` B (a BSR wq densified first).
 */

import type { AttrReader } from "../../ir/attrs.ts";
import type { Op, Value } from "../../ir/module.ts";
import { denseInt8 } from "../../ir/ops/qdense.ts";
import type { Tensor } from "../../ir/tensor.ts";
import type { DType, TensorType } from "../../ir/types.ts";
import { elemTypeOf, type Onnx, onnx } from "./proto.ts";

/** What the qdense exporter uses of export.ts's graph writer. */
export interface QuantGraph {
  /** The ONNX name of a value or weight (a weight's initializer is written on first use). */
  name(v: Value): string;
  /** Appends a node and returns its output's name. */
  node(opType: string, inputs: readonly string[], dtype: DType, attrs?: Onnx.IAttributeProto[]): string;
  /** Appends a node with `count` outputs and returns their names. */
  nodeOutputs(opType: string, inputs: readonly string[], dtype: DType, count: number): string[];
  /** The export's options (`quantization` decides the form written). */
  readonly options: { readonly quantization?: "exact" | "onnxruntime" };
  /** A shared scalar initializer. */
  scalar(value: number, dtype: DType): string;
  /** Writes an initializer under a fresh name based on `name`; returns the name. */
  initializer(name: string, type: TensorType, data: ArrayLike<number>): string;
  /** The data of a weight. */
  weightData(v: Value): Tensor;
  /** Memoizes a tensor name under `key`. */
  memo(key: string, make: () => string): string;
  /** Refuses the current op, naming it and its place. */
  refuse(why: string): never;
}

const AT = onnx.AttributeProto.AttributeType;

/** The int8 `[K, N]` initializer of an i8 `[N, K]` weight, written once. */
function transposedInt8(g: QuantGraph, w: Value): string {
  return g.memo(`qT:${w.ref}`, () => {
    if (w.kind !== "weight") {
      return g.refuse(`the int8 weight ${w.ref} is computed; ONNX export needs a weight`);
    }
    const [n, k] = w.type.shape;
    const data = denseInt8(g.weightData(w)); // a BSR wq densified
    const t = new Int8Array(n * k);
    for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) t[j * n + i] = data[i * k + j];
    return g.initializer(`${w.name}.T`, { shape: [k, n], dtype: "i8" }, t);
  });
}

/**
 * Exports one `qdense` op and returns the name of its result; `activation` writes the fused
 * activation after the bias (export.ts passes its own, which `dense` uses).
 */
export function exportQdense<G extends QuantGraph>(
  op: Op,
  g: G,
  a: AttrReader,
  activation: (g: G, x: string, name: string, d: DType) => string,
): string {
  const [x, wq, wScale, bias] = op.operands;
  const actMax = a.int("act_max");
  const actScale = a.float("act_scale");
  const f = "f32";
  const xn = g.name(x);
  if (g.options.quantization === "onnxruntime") {
    // onnxruntime's own dynamic quantization: its optimizer fuses this into DynamicQuantizeMatMul.
    const [q, qScale, qZero] = g.nodeOutputs("DynamicQuantizeLinear", [xn], f, 3);
    const acc = g.node("MatMulInteger", [q, transposedInt8(g, wq), qZero], "u8");
    const accF = g.node("Cast", [acc], "i32", [{ name: "to", type: AT.INT, i: elemTypeOf(f) }]);
    const y = g.node("Mul", [accF, g.node("Mul", [qScale, g.name(wScale)], f)], f);
    const out = bias ? g.node("Add", [y, g.name(bias)], f) : y;
    return activation(g, out, a.string("activation"), f);
  }
  let s: string;
  if (actScale > 0) {
    s = g.scalar(Math.fround(actScale), f);
  } else {
    const absMax = g.node("ReduceMax", [g.node("Abs", [xn], f)], f, [
      { name: "axes", type: AT.INTS, ints: [-1] },
      { name: "keepdims", type: AT.INT, i: 1 },
    ]);
    const zero = g.node("Equal", [absMax, g.scalar(0, f)], f);
    s = g.node("Where", [zero, g.scalar(1, f), g.node("Div", [absMax, g.scalar(actMax, f)], f)], f);
  }
  const rounded = g.node("Round", [g.node("Div", [xn, s], f)], f);
  const clipped = g.node("Clip", [rounded, g.scalar(-actMax, f), g.scalar(actMax, f)], f);
  const q = g.node("Cast", [clipped], f, [{ name: "to", type: AT.INT, i: elemTypeOf("i8") }]);
  const acc = g.node("MatMulInteger", [q, transposedInt8(g, wq)], "i8");
  // int32 -> f64 (exact) -> f32 rounds as fround(acc) does. A direct int32 -> f32 Cast lets
  // onnxruntime (1.30, extended optimizations) fuse MatMulInteger, Cast, Mul and Add into
  // MatMulIntegerToFloat, whose results differ from the unfused graph's (by an ulp without a
  // bias, far more with one and per-row scales): the exactness test in tests/quantize_onnx_test.ts
  // fails with a direct Cast.
  const acc64 = g.node("Cast", [acc], "i32", [{ name: "to", type: AT.INT, i: elemTypeOf("f64") }]);
  const accF = g.node("Cast", [acc64], "f64", [{ name: "to", type: AT.INT, i: elemTypeOf(f) }]);
  const scale = g.node("Mul", [s, g.name(wScale)], f);
  const y = g.node("Mul", [accF, scale], f);
  const out = bias ? g.node("Add", [y, g.name(bias)], f) : y;
  return activation(g, out, a.string("activation"), f);
}

/**
 * Exports one `qgather` (ir/ops/qgather.ts): `Gather` of the int8 table, `Cast` to f32, times the
 * row scales gathered from a `[V, 1]` copy of the scale weight (so they broadcast over H): one f32
 * multiply per element, as the op defines it.
 */
export function exportQgather(op: Op, g: QuantGraph): string {
  const [table, scale, ids] = op.operands;
  const f = "f32";
  const axis0 = [{ name: "axis", type: AT.INT, i: 0 }];
  const q = g.node("Gather", [g.name(table), g.name(ids)], "i8", axis0);
  const qf = g.node("Cast", [q], "i8", [{ name: "to", type: AT.INT, i: elemTypeOf(f) }]);
  const column = g.memo(`scaleColumn:${scale.ref}`, () => {
    if (scale.kind !== "weight") {
      return g.refuse(`the scales ${scale.ref} are computed; ONNX export needs a weight`);
    }
    const data = g.weightData(scale).data;
    return g.initializer(`${scale.name}.column`, { shape: [data.length, 1], dtype: f }, data);
  });
  const s = g.node("Gather", [column, g.name(ids)], f, axis0);
  return g.node("Mul", [qf, s], f);
}
