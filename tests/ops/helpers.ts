/** Shared helpers for the op tests: attribute readers, running an op, and float comparisons. */

import assert from "node:assert/strict";
import { type Attr, AttrReader, type DenseLiteral } from "../../ir/attrs.ts";
import { type OpDef, OpError } from "../../ir/registry.ts";
import { BsrTensor, Tensor } from "../../ir/tensor.ts";
import type { DType, TensorType } from "../../ir/types.ts";

/** Attribute values, by kind. */
export const int = (value: number): Attr => ({ kind: "int", value });
export const float = (value: number): Attr => ({ kind: "float", value });
export const bool = (value: boolean): Attr => ({ kind: "bool", value });
export const ints = (value: number[]): Attr => ({ kind: "ints", value });
export const enumValue = (value: string): Attr => ({ kind: "enum", value });
export const dense = (value: DenseLiteral): Attr => ({ kind: "dense", value });

/** An AttrReader over the op's schema and the given written attributes. */
export function reader(def: OpDef, written: Record<string, Attr> = {}): AttrReader {
  return new AttrReader(def.attrs, new Map(Object.entries(written)));
}

/** A dense type. */
export function ty(shape: number[], dtype: DType = "f32"): TensorType {
  return { shape, dtype };
}

/** A dense tensor. */
export function t(shape: number[], values: number[], dtype: DType = "f32"): Tensor {
  return Tensor.from(shape, dtype, values);
}

/** The type an operand has in the IR (the logical type of a BSR tensor). */
function typeOf(x: Tensor): TensorType {
  return x instanceof BsrTensor ? x.sparseType : x.type;
}

/** Infers the result type of the op on these inputs, then interprets it. */
export function run(
  def: OpDef,
  inputs: Tensor[],
  written: Record<string, Attr> = {},
  declared?: TensorType,
): Tensor {
  const attrs = reader(def, written);
  const result = def.infer(inputs.map(typeOf), attrs, declared);
  const out = def.interpret(inputs, attrs, result);
  assert.deepEqual(out.type, result);
  return out;
}

/** Asserts that `infer` throws an OpError whose message contains `fragment`. */
export function assertInferError(
  def: OpDef,
  operands: TensorType[],
  fragment: string,
  written: Record<string, Attr> = {},
  declared?: TensorType,
): void {
  assert.throws(
    () => def.infer(operands, reader(def, written), declared),
    (e: unknown) => {
      assert.ok(e instanceof OpError, `expected an OpError, got ${e}`);
      assert.ok(e.message.includes(fragment), `message '${e.message}' lacks '${fragment}'`);
      return true;
    },
  );
}

/** Asserts the shape and, within `tol`, the values of a tensor. */
export function assertTensor(actual: Tensor, shape: number[], expected: number[], tol = 1e-6): void {
  assert.deepEqual(actual.shape, shape);
  assert.equal(actual.data.length, expected.length);
  expected.forEach((e, i) => {
    const a = actual.data[i];
    assert.ok(Math.abs(a - e) <= tol, `element ${i}: got ${a}, expected ${e} (tolerance ${tol})`);
  });
}
