/**
 * ONNX export of the ops autodiff adds (docs/autodiff.md): each written with standard ONNX ops
 * (opset 17) exactly as its reference semantics in `ir/ops/<name>.ts` define it, so onnxruntime
 * runs a backward function as the interpreter does (up to f32 rounding: the interpreter sums in
 * f64).
 *
 * | op | ONNX |
 * | --- | --- |
 * | `exp` `log` `reduce_sum` | `Exp`, `Log`, `ReduceSum` (axes an input) |
 * | `cross_entropy` | `-ReduceMean(GatherElements(LogSoftmax(logits), labels as [B, 1]))` |
 * | `cross_entropy_grad` | `(Softmax(logits) - Cast(Equal(labels as [B, 1], 0..C-1))) · (dy / B)` |
 * | `scatter_add` | `ScatterND(zeros, indices as [n, 1], updates, reduction = add)`, the axis moved first |
 * | `slice_grad` | `Pad` with zeros (unit steps), else `ScatterND` of dy at its flat offsets in zeros |
 * | `softmax_grad` | `y · (dy - ReduceSum(dy · y))` |
 * | `layer_norm_grad` | `r · (g - mean(g) - x̂ · mean(g · x̂))`, from ReduceMean, Sqrt and elementwise ops |
 * | `gelu_grad` | `dy · gelu'(x)` from Erf and Exp (exact) or Tanh (tanh form) |
 * | `bsr_dense_grad_x` | `MatMul(dy, W)`, W the densified weight (as `bsr_dense` exports it) |
 * | `bsr_dense_grad_w` | `dyᵀ · x` over the flattened rows, then `Gather` of the stored blocks' entries |
 */

import type { AttrReader } from "../../ir/attrs.ts";
import type { Op, Value } from "../../ir/module.ts";
import { prod, stridedOffsets } from "../../ir/ops/common.ts";
import { resolve } from "../../ir/ops/slice.ts";
import { normalizeAxis } from "../../ir/shape.ts";
import { BsrTensor, strides, type Tensor } from "../../ir/tensor.ts";
import { type DType, numel, type TensorType } from "../../ir/types.ts";
import { elemTypeOf, type Onnx, onnx, tensorProto } from "./proto.ts";

/** What the exporters here use of export.ts's graph writer. */
export interface GradGraph {
  /** The ONNX name of a value or weight (a weight's initializer is written on first use). */
  name(v: Value): string;
  /** Appends a node computing on `dtype` (checked against onnxruntime's kernels); its output. */
  node(opType: string, inputs: readonly string[], dtype: DType, attrs?: Onnx.IAttributeProto[]): string;
  /** A shared scalar initializer. */
  scalar(value: number, dtype: DType): string;
  /** A shared 1-D INT64 initializer. */
  int64s(wanted: string, values: readonly number[]): string;
  /** Writes an initializer under a fresh name based on `name`; returns the name. */
  initializer(name: string, type: TensorType, data: ArrayLike<number>): string;
  /** Memoizes a tensor name under `key`. */
  memo(key: string, make: () => string): string;
  /** The data of a weight. */
  weightData(v: Value): Tensor;
  /** The densified `[N, K]` initializer of a BSR weight (the one `bsr_dense` uses). */
  bsrMatrix(w: Value): string;
  /** Refuses the current op, naming it and its place. */
  refuse(why: string): never;
}

/** Exports one op: writes its nodes and returns the name of the tensor holding its result. */
export type GradExporter = (op: Op, g: GradGraph, a: AttrReader) => string;

const AT = onnx.AttributeProto.AttributeType;
const intAttr = (name: string, i: number): Onnx.IAttributeProto => ({ name, type: AT.INT, i });
const intsAttr = (name: string, ints: readonly number[]): Onnx.IAttributeProto => ({
  name,
  type: AT.INTS,
  ints: [...ints],
});
const dt = (op: Op): DType => op.result.type.dtype;
const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

/** `x` reshaped to `shape` (a shared INT64 shape initializer). */
function reshape(g: GradGraph, x: string, shape: readonly number[], d: DType): string {
  const allowZero = shape.includes(0) ? [intAttr("allowzero", 1)] : [];
  return g.node("Reshape", [x, g.int64s(`shape.${shape.join("x") || "scalar"}`, shape)], d, allowZero);
}

/** ReduceMean over `axes`, keeping them (axes are an attribute in opset 17). */
const mean = (g: GradGraph, x: string, axes: readonly number[], d: DType) =>
  g.node("ReduceMean", [x], d, [intsAttr("axes", axes), intAttr("keepdims", 1)]);

/** Zeros of `type`: ConstantOfShape (no initializer of the result's size). */
function zeros(g: GradGraph, type: TensorType): string {
  const value = {
    name: "value",
    type: AT.TENSOR,
    t: tensorProto("value", { shape: [1], dtype: type.dtype }, [0]),
  };
  return g.node("ConstantOfShape", [g.int64s(`shape.${type.shape.join("x")}`, type.shape)], type.dtype, [
    value,
  ]);
}

/** Integer indices as INT64 (ScatterND takes no other). */
const int64 = (g: GradGraph, v: Value) =>
  v.type.dtype === "i64"
    ? g.name(v)
    : g.node("Cast", [g.name(v)], v.type.dtype, [intAttr("to", elemTypeOf("i64"))]);

/** The autodiff ops' exporters, registered in export.ts's EXPORTERS. */
export const GRAD_EXPORTERS: Readonly<Record<string, GradExporter>> = {
  exp: (op, g) => g.node("Exp", [g.name(op.operands[0])], dt(op)),
  log: (op, g) => g.node("Log", [g.name(op.operands[0])], dt(op)),
  reduce_sum(op, g, a) {
    const rank = op.operands[0].type.shape.length;
    const axes = a.ints("axes").map((x) => normalizeAxis(x, rank));
    const keep = intAttr("keepdims", a.bool("keepdims") ? 1 : 0);
    return g.node("ReduceSum", [g.name(op.operands[0]), g.int64s(`axes.${axes.join(".")}`, axes)], dt(op), [
      keep,
    ]);
  },
  cross_entropy(op, g) {
    const [logits, labels] = op.operands;
    const d = dt(op);
    const logp = g.node("LogSoftmax", [g.name(logits)], d, [intAttr("axis", 1)]);
    const column = reshape(g, g.name(labels), [logits.type.shape[0], 1], labels.type.dtype);
    const picked = g.node("GatherElements", [logp, column], d, [intAttr("axis", 1)]);
    const avg = g.node("ReduceMean", [picked], d, [intsAttr("axes", [0, 1]), intAttr("keepdims", 0)]);
    return g.node("Neg", [avg], d);
  },
  cross_entropy_grad(op, g) {
    const [dy, logits, labels] = op.operands;
    const d = dt(op), li = labels.type.dtype;
    const [B, C] = logits.type.shape;
    const p = g.node("Softmax", [g.name(logits)], d, [intAttr("axis", 1)]);
    const classes = g.memo(
      `classes:${li}:${C}`,
      () => g.initializer(`classes.${C}`, { shape: [C], dtype: li }, range(0, C)),
    );
    const hit = g.node("Equal", [reshape(g, g.name(labels), [B, 1], li), classes], li);
    const onehot = g.node("Cast", [hit], "bool", [intAttr("to", elemTypeOf(d))]);
    const scale = g.node("Div", [g.name(dy), g.scalar(B, d)], d);
    return g.node("Mul", [g.node("Sub", [p, onehot], d), scale], d);
  },
  scatter_add(op, g, a) {
    const [updates, indices] = op.operands;
    const t = op.result.type, d = dt(op), rank = t.shape.length;
    const axis = normalizeAxis(a.int("axis"), rank);
    const ri = indices.type.shape.length, n = numel(indices.type.shape);
    // Move the indexed axis first: updates [outer, indices..., inner] -> [indices..., outer, inner].
    const rest = [...t.shape.slice(0, axis), ...t.shape.slice(axis + 1)];
    let u = g.name(updates);
    if (axis > 0 && ri > 0) {
      const perm = [...range(axis, axis + ri), ...range(0, axis), ...range(axis + ri, rank - 1 + ri)];
      u = g.node("Transpose", [u], d, [intsAttr("perm", perm)]);
    }
    u = reshape(g, u, [n, ...rest], d);
    const at = reshape(g, int64(g, indices), [n, 1], "i64");
    const data = zeros(g, { shape: [t.shape[axis], ...rest], dtype: d });
    const reduction = { name: "reduction", type: AT.STRING, s: new TextEncoder().encode("add") };
    const sum = g.node("ScatterND", [data, at, u], d, [reduction]);
    if (axis === 0) return sum;
    return g.node("Transpose", [sum], d, [
      intsAttr("perm", [...range(1, axis + 1), 0, ...range(axis + 1, rank)]),
    ]);
  },
  slice_grad(op, g, a) {
    const dy = op.operands[0];
    const t = op.result.type, d = dt(op);
    const dims = resolve(t.shape, a);
    if (dims.every((s) => s.step === 1)) {
      const pads = [...dims.map((s) => s.start), ...dims.map((s, i) => t.shape[i] - s.start - s.count)];
      return g.node("Pad", [g.name(dy), g.int64s(`${op.result.name}.pads`, pads)], d);
    }
    // Strided: dy's elements go to their flat offsets in the result, as `interpret` places them.
    const st = strides(t.shape);
    const base = dims.reduce((sum, s, i) => sum + s.start * st[i], 0);
    const to = stridedOffsets(dy.type.shape, dims.map((s, i) => s.step * st[i]), base);
    const at = g.initializer(`${op.result.name}.offsets`, { shape: [to.length, 1], dtype: "i64" }, to);
    const flat = reshape(g, g.name(dy), [to.length], d);
    const placed = g.node("ScatterND", [zeros(g, { shape: [numel(t.shape)], dtype: d }), at, flat], d);
    return reshape(g, placed, t.shape, d);
  },
  softmax_grad(op, g, a) {
    const [dy, y] = op.operands.map((v) => g.name(v));
    const d = dt(op);
    const axis = normalizeAxis(a.int("axis"), op.result.type.shape.length);
    const dot = g.node("ReduceSum", [g.node("Mul", [dy, y], d), g.int64s(`axes.${axis}`, [axis])], d, [
      intAttr("keepdims", 1),
    ]);
    return g.node("Mul", [y, g.node("Sub", [dy, dot], d)], d);
  },
  layer_norm_grad(op, g, a) {
    const [dy, x, gamma] = op.operands.map((v) => g.name(v));
    const d = dt(op), rank = op.result.type.shape.length;
    const axes = range(normalizeAxis(a.int("axis"), rank), rank);
    const xc = g.node("Sub", [x, mean(g, x, axes, d)], d);
    const variance = mean(g, g.node("Mul", [xc, xc], d), axes, d);
    const std = g.node("Sqrt", [g.node("Add", [variance, g.scalar(a.float("epsilon"), d)], d)], d);
    const r = g.node("Div", [g.scalar(1, d), std], d);
    const xhat = g.node("Mul", [xc, r], d);
    const gy = g.node("Mul", [dy, gamma], d);
    const meanG = mean(g, gy, axes, d);
    const meanGX = mean(g, g.node("Mul", [gy, xhat], d), axes, d);
    const inner = g.node("Sub", [g.node("Sub", [gy, meanG], d), g.node("Mul", [xhat, meanGX], d)], d);
    return g.node("Mul", [r, inner], d);
  },
  gelu_grad(op, g, a) {
    const [dy, x] = op.operands.map((v) => g.name(v));
    const d = dt(op);
    const mul = (p: string, q: string) => g.node("Mul", [p, q], d);
    const add = (p: string, q: string) => g.node("Add", [p, q], d);
    const c = (v: number) => g.scalar(v, d);
    const x2 = mul(x, x);
    let prime: string;
    if (a.string("approximation") === "tanh") {
      // 0.5·(1 + t) + 0.5·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(√(2/π)·(x + 0.044715·x³))
      const k = Math.sqrt(2 / Math.PI);
      const t = g.node("Tanh", [mul(add(x, mul(mul(x2, x), c(0.044715))), c(k))], d);
      const slope = mul(g.node("Sub", [c(1), mul(t, t)], d), add(c(1), mul(x2, c(3 * 0.044715))));
      prime = add(mul(add(c(1), t), c(0.5)), mul(mul(x, slope), c(0.5 * k)));
    } else {
      // 0.5·(1 + erf(x/√2)) + x·φ(x), φ(x) = exp(-x²/2)/√(2π)
      const cdf = mul(add(c(1), g.node("Erf", [g.node("Div", [x, c(Math.SQRT2)], d)], d)), c(0.5));
      const pdf = mul(g.node("Exp", [mul(x2, c(-0.5))], d), c(1 / Math.sqrt(2 * Math.PI)));
      prime = add(cdf, mul(x, pdf));
    }
    return mul(dy, prime);
  },
  bsr_dense_grad_x: (op, g) =>
    g.node("MatMul", [g.name(op.operands[0]), g.bsrMatrix(op.operands[1])], dt(op)),
  bsr_dense_grad_w(op, g) {
    const [dy, x, w] = op.operands;
    const d = dt(op);
    const bsr = g.weightData(w);
    if (!(bsr instanceof BsrTensor)) return g.refuse(`weight ${w.ref} is not stored as BSR`);
    const [N, K] = w.type.shape;
    const [R, C] = w.type.sparse!.block;
    const rows = prod(dy.type.shape, 0, dy.type.shape.length - 1);
    // The dense gradient dyᵀ·x [N, K], flattened, with a 0 after it for the padding of edge blocks.
    const dyT = g.node("Transpose", [reshape(g, g.name(dy), [rows, N], d)], d, [intsAttr("perm", [1, 0])]);
    const full = g.node("MatMul", [dyT, reshape(g, g.name(x), [rows, K], d)], d);
    const zero = g.memo(`zero1:${d}`, () => g.initializer(`const.${d}.zero1`, { shape: [1], dtype: d }, [0]));
    const flat = g.node("Concat", [reshape(g, full, [N * K], d), zero], d, [intAttr("axis", 0)]);
    // Entry (k, i, j) of the stored blocks is W[n, m] = flat[n·K + m], or the 0 in padding.
    const at = g.memo(`blockEntries:${w.ref}`, () => {
      const index = new Array<number>(bsr.data.length).fill(N * K);
      for (let br = 0; br + 1 < bsr.indptr.length; br++) {
        for (let k = bsr.indptr[br]; k < bsr.indptr[br + 1]; k++) {
          const col0 = bsr.indices[k] * C;
          for (let i = 0; i < R && br * R + i < N; i++) {
            for (let j = 0; j < C && col0 + j < K; j++) {
              index[(k * R + i) * C + j] = (br * R + i) * K + col0 + j;
            }
          }
        }
      }
      return g.initializer(
        `${w.name}.block_entries`,
        { shape: [...op.result.type.shape], dtype: "i64" },
        index,
      );
    });
    return g.node("Gather", [flat, at], d, [intAttr("axis", 0)]);
  },
};
