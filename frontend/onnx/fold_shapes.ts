/**
 * Compile-time values of the ONNX importer: the constants and initializers a graph holds, and
 * the small evaluator that folds the `Shape → Gather → Unsqueeze → Concat → Reshape` subgraphs
 * exporters write, so that every shape is a constant once the dynamic dims are fixed.
 *
 * Ops the IR has are folded with `evaluateOp` (their reference semantics, exactly what the
 * interpreter computes, rounded to the dtype); the few ONNX ops that only ever compute
 * shapes (`Shape`, `ConstantOfShape`) are evaluated here directly.
 */

import type { AttrJs } from "../../ir/attrs.ts";
import { createOp } from "../../ir/builder.ts";
import { evaluateOp } from "../../ir/evaluate.ts";
import { Value } from "../../ir/module.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import { broadcastOffsets } from "../../ir/ops/common.ts";
import { broadcastShapes } from "../../ir/shape.ts";
import { Tensor } from "../../ir/tensor.ts";
import { type DType, isFloat, numel, type TensorType } from "../../ir/types.ts";

/** A value known at import time: a constant, an initializer or something folded from them. */
export interface Const {
  /** Tag of the union. */
  readonly kind: "const";
  /** The data. */
  readonly tensor: Tensor;
  /** The ONNX name of the value, for naming it in the IR. */
  readonly name: string;
  /** Set when this is an initializer, unchanged: its name is kept as the weight's name. */
  readonly initializer?: string;
  /** Set when this is the transpose of a 2-D constant: MatMul and Gemm then use that one. */
  readonly transposeOf?: Const;
}

/** A value computed at run time: an IR value. */
export interface Dynamic {
  /** Tag of the union. */
  readonly kind: "value";
  /** The IR value. */
  readonly value: Value;
}

/** What an ONNX value name stands for during the import. */
export type Known = Const | Dynamic;

/** The type of a known value. */
export function typeOf(k: Known): TensorType {
  return k.kind === "const" ? k.tensor.type : k.value.type;
}

/** Whether a known value is a constant. */
export function isConst(k: Known): k is Const {
  return k.kind === "const";
}

/** A constant holding `tensor`. */
export function constOf(tensor: Tensor, name: string): Const {
  return { kind: "const", tensor, name };
}

/** A 1-D i64 constant, e.g. a shape. */
export function intsConst(values: readonly number[], name: string): Const {
  return constOf(Tensor.from([values.length], "i64", values), name);
}

/** A tensor of `type` with every element `v`. */
export function splatTensor(type: TensorType, v: number): Tensor {
  const t = Tensor.zeros(type);
  t.data.fill(v);
  return t;
}

/** Whether every element of the data is the same (true for a single element). */
export function allEqual(t: Tensor): boolean {
  const d = t.data;
  for (let i = 1; i < d.length; i++) {
    if (!Object.is(d[i], d[0])) return false;
  }
  return d.length > 0;
}

/**
 * Evaluates an IR op on constant inputs with `evaluateOp`, as the interpreter would (with
 * f16/bf16 rounding). Throws an Error with the op's message when a rule is broken.
 */
export function foldOp(
  op: string,
  inputs: readonly Tensor[],
  attrs: Readonly<Record<string, AttrJs>>,
  type?: TensorType,
): Tensor {
  const operands = inputs.map((t) => new Value("c", t.type, "result"));
  const created = createOp(builtinRegistry, op, operands, attrs, "c", type);
  try {
    return evaluateOp(created, inputs, builtinRegistry);
  } catch (e) {
    throw new Error(`'${op}': ${(e as Error).message}`);
  }
}

/** The result type an IR op would have on inputs of these types (throws like `foldOp`). */
export function inferOp(
  op: string,
  inputs: readonly TensorType[],
  attrs: Readonly<Record<string, AttrJs>>,
  type?: TensorType,
): TensorType {
  const operands = inputs.map((t) => new Value("c", t, "result"));
  return createOp(builtinRegistry, op, operands, attrs, "c", type).result.type;
}

/**
 * The target shape of ONNX `Reshape`: `0` copies the input's dim (unless `allowZero`), one
 * `-1` is inferred. Throws an Error describing what does not fit.
 */
export function reshapeTarget(
  from: readonly number[],
  spec: readonly number[],
  allowZero: boolean,
): number[] {
  const out = spec.map((d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= from.length) throw new Error(`shape entry ${i} is 0 but the input has rank ${from.length}`);
      return from[i];
    }
    return d;
  });
  const unknown = out.filter((d) => d === -1).length;
  if (unknown > 1) throw new Error(`shape [${spec.join(", ")}] has more than one -1`);
  if (out.some((d) => d < -1)) throw new Error(`shape [${spec.join(", ")}] has a negative entry`);
  const total = numel(from);
  if (unknown === 1) {
    const known = out.reduce((n, d) => d === -1 ? n : n * d, 1);
    if (known === 0 || total % known !== 0) {
      throw new Error(`cannot reshape [${from.join(", ")}] to [${spec.join(", ")}]`);
    }
    out[out.indexOf(-1)] = total / known;
  }
  if (numel(out) !== total) {
    throw new Error(`cannot reshape [${from.join(", ")}] (${total} elements) to [${out.join(", ")}]`);
  }
  return out;
}

/** The data of a constant as plain integers (for shapes, axes, indices). */
export function intsOf(t: Tensor): number[] {
  return Array.from(t.data, Number);
}

/** The tensor literal of a constant: a splat when all elements are equal. */
export function literalOf(t: Tensor): { shape: number[]; values: number[]; float: boolean } {
  return allEqual(t)
    ? { shape: [], values: [t.data[0]], float: isFloat(t.dtype) }
    : { shape: [...t.shape], values: Array.from(t.data), float: isFloat(t.dtype) };
}

/** The constant converted to `dtype` (itself when it has that dtype). */
export function castConst(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  return foldOp("cast", [t], {}, { shape: [...t.shape], dtype });
}

/** `fn(a, b)` per element with numpy broadcasting, as a tensor of `dtype` (for Equal, Less, ...). */
export function foldBroadcast(
  a: Tensor,
  b: Tensor,
  dtype: DType,
  fn: (x: number, y: number) => number,
): Tensor {
  const shape = broadcastShapes(a.shape, b.shape);
  const out = Tensor.zeros({ shape, dtype });
  const ai = broadcastOffsets(a.shape, shape);
  const bi = broadcastOffsets(b.shape, shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = fn(a.data[ai[i]], b.data[bi[i]]);
  return out;
}

/** ONNX `Range`: `start, start + delta, ...` below `limit` (above it for a negative delta). */
export function foldRange(start: Tensor, limit: Tensor, delta: Tensor): Tensor {
  const [s, l, d] = [start.data[0], limit.data[0], delta.data[0]];
  if (d === 0) throw new Error("delta must not be 0");
  const n = Math.max(Math.ceil((l - s) / d), 0);
  return Tensor.from([n], start.dtype, Array.from({ length: n }, (_, i) => s + i * d));
}
