/** The dtypes onnxruntime-node's CPU kernels take, per ONNX op the exporter writes. */

import type { DType } from "../../ir/types.ts";

const FLOATS: readonly DType[] = ["f32", "f16", "f64"];
const NUMBERS: readonly DType[] = ["f32", "f16", "f64", "i64", "i32"];
const ALL: readonly DType[] = ["f32", "f16", "bf16", "f64", "i64", "i32", "i8", "u8", "bool"];

/**
 * The dtypes onnxruntime's CPU kernels take for each ONNX op the exporter writes (opset 17,
 * measured on onnxruntime-node 1.30). An op is refused when a node would need another.
 */
export const ORT_KERNEL_DTYPES: Readonly<Record<string, readonly DType[]>> = Object.freeze({
  Add: [...NUMBERS, "i8", "u8"],
  Sub: [...NUMBERS, "i8", "u8"],
  Mul: [...NUMBERS, "i8", "u8"],
  Div: [...NUMBERS, "i8", "u8"],
  Pow: NUMBERS,
  Tanh: FLOATS,
  Erf: ["f32", "f16"],
  Sqrt: FLOATS,
  MatMul: NUMBERS,
  Softmax: FLOATS,
  LayerNormalization: [...FLOATS, "bf16"],
  ReduceMean: NUMBERS,
  Where: [...NUMBERS, "u8"],
  Transpose: ALL,
  Reshape: ALL,
  Slice: ALL,
  Concat: ALL,
  Gather: ALL,
  Cast: ALL,
  Identity: ALL,
  // The autodiff ops' (export_grad.ts).
  ReduceSum: NUMBERS,
  Exp: FLOATS,
  Log: FLOATS,
  Neg: [...NUMBERS, "i8"],
  LogSoftmax: FLOATS,
  GatherElements: ALL,
  Equal: ["f32", "f16", "f64", "i64", "i32", "i8", "u8", "bool"],
  // With reduction = add (scatter_add) there is no f16 kernel; without (slice_grad) there is.
  ScatterND: ["f32", "f64", "i64", "i32", "i8", "u8", "bool"],
  ConstantOfShape: ALL,
  Pad: ["f32", "f16", "f64", "i64", "i32", "i8", "u8", "bool"],
  // qdense's (export_quant.ts); MatMulInteger by its A (B is the int8 weight).
  Abs: [...NUMBERS, "i8", "u8"],
  ReduceMax: [...NUMBERS, "i8", "u8"],
  Round: FLOATS,
  Clip: [...NUMBERS, "i8", "u8"],
  MatMulInteger: ["i8", "u8"],
  DynamicQuantizeLinear: ["f32"],
});
