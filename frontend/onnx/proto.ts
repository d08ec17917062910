/**
 * The one place that loads the ONNX protobuf classes (the protobufjs-generated `onnx-proto`
 * package, ONNX 1.10 schema) and maps between the IR's dtypes and ONNX element types. The
 * exporter (`export.ts`) and the importer (`import.ts`) both go through this file, so the two
 * directions cannot disagree on a dtype or on how tensor bytes are laid out.
 *
 * ```ts
 * import { decodeModel, dtypeOfElemType, onnx, type Onnx, tensorFromProto } from "./proto.ts";
 * const model: Onnx.ModelProto = decodeModel(bytes);
 * const weights = model.graph?.initializer?.map(tensorFromProto);
 * ```
 *
 * Notes for readers of decoded models: protobufjs decodes int64 fields (dims, `i`, `ints`,
 * `irVersion`, opset versions) as `Long` objects, not numbers; read them with `toNumber`.
 */

import onnxPkg from "npm:onnx-proto@8.0.1";
import type { onnx as OnnxTypes } from "npm:onnx-proto@8.0.1";
import { Tensor, type TensorData, tensorSizeProblem } from "../../ir/tensor.ts";
import { type DType, numel, type TensorType } from "../../ir/types.ts";

/** The generated classes (`onnx.ModelProto`, `onnx.TensorProto.DataType`, ...), as values. */
export const onnx: typeof OnnxTypes = onnxPkg.onnx;

/** The generated classes and interfaces as types: `Onnx.ModelProto`, `Onnx.INodeProto`, ... */
export type { OnnxTypes as Onnx };

/** The opset of the default (`ai.onnx`) domain Sparrow writes. */
export const ONNX_OPSET = 17;

/** The IR version Sparrow writes (ONNX 1.10 to 1.12; onnxruntime reads it). */
export const ONNX_IR_VERSION = 8;

const E = onnx.TensorProto.DataType;

/** The ONNX element type (`TensorProto.DataType`) of each IR dtype. */
export const ELEM_TYPE: Readonly<Record<DType, number>> = Object.freeze({
  f32: E.FLOAT,
  f16: E.FLOAT16,
  bf16: E.BFLOAT16,
  f64: E.DOUBLE,
  i64: E.INT64,
  i32: E.INT32,
  i8: E.INT8,
  u8: E.UINT8,
  bool: E.BOOL,
});

const DTYPE_OF = new Map<number, DType>(Object.entries(ELEM_TYPE).map(([d, e]) => [e, d as DType]));

/** The ONNX element type of an IR dtype. */
export function elemTypeOf(dtype: DType): number {
  return ELEM_TYPE[dtype];
}

/** The IR dtype of an ONNX element type; undefined for those the IR lacks (string, u16, complex...). */
export function dtypeOfElemType(elemType: number): DType | undefined {
  return DTYPE_OF.get(elemType);
}

/** The name of an ONNX element type, for messages: `FLOAT`, `INT64`, or `type 99` when unknown. */
export function elemTypeName(elemType: number): string {
  return (E as unknown as Record<number, string>)[elemType] ?? `type ${elemType}`;
}

/** A protobufjs `Long` (how int64 fields decode), without depending on the `long` package. */
export interface LongLike {
  /** The value as a JS number (exact up to 2^53). */
  toNumber(): number;
}

/** A number from a decoded int64 field (number or Long); 0 for null or undefined. */
export function toNumber(v: number | LongLike | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === "number" ? v : v.toNumber();
}

/** Serializes a model to its protobuf bytes. */
export function encodeModel(model: OnnxTypes.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** Parses protobuf bytes as a model. Throws protobufjs' Error on malformed bytes. */
export function decodeModel(bytes: Uint8Array): OnnxTypes.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

/** A graph input, output or value_info entry of a static tensor type. */
export function valueInfo(name: string, type: TensorType): OnnxTypes.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elemTypeOf(type.dtype),
        shape: { dim: type.shape.map((d) => ({ dimValue: d })) },
      },
    },
  };
}

/** Bytes per element in `raw_data`. */
const ELEM_BYTES: Readonly<Record<DType, number>> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  f64: 8,
  i64: 8,
  i32: 4,
  i8: 1,
  u8: 1,
  bool: 1,
};

/** Bytes per element of a dtype in `raw_data` and in external data. */
export function elemBytes(dtype: DType): number {
  return ELEM_BYTES[dtype];
}

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** bf16 bits of an f32 value, rounded to nearest even (NaN kept a quiet NaN). */
function bf16Bits(v: number, scratch: DataView): number {
  scratch.setFloat32(0, v, true);
  const b = scratch.getUint32(0, true);
  if (Number.isNaN(v)) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * The `raw_data` of a tensor: its elements in row-major order, little-endian, as ONNX stores
 * them (i64 as 8-byte two's complement; bool one byte each; f16 and bf16 as their 16 bits).
 */
export function rawData(dtype: DType, data: ArrayLike<number>): Uint8Array {
  const n = data.length;
  if (
    LITTLE_ENDIAN &&
    (dtype === "f32" && data instanceof Float32Array || dtype === "f64" && data instanceof Float64Array)
  ) {
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  }
  const out = new Uint8Array(n * ELEM_BYTES[dtype]);
  const dv = new DataView(out.buffer);
  const scratch = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < n; i++) {
    const v = data[i];
    switch (dtype) {
      case "f32":
        dv.setFloat32(i * 4, v, true);
        break;
      case "f16":
        dv.setFloat16(i * 2, v, true);
        break;
      case "bf16":
        dv.setUint16(i * 2, bf16Bits(v, scratch), true);
        break;
      case "f64":
        dv.setFloat64(i * 8, v, true);
        break;
      case "i64":
        dv.setBigInt64(i * 8, BigInt(Math.trunc(v)), true);
        break;
      case "i32":
        dv.setInt32(i * 4, v, true);
        break;
      case "i8":
        dv.setInt8(i, v);
        break;
      case "u8":
        dv.setUint8(i, v);
        break;
      case "bool":
        dv.setUint8(i, v ? 1 : 0);
        break;
    }
  }
  return out;
}

/** An initializer (or constant) holding `data` of `type`, as `raw_data`. */
export function tensorProto(name: string, type: TensorType, data: ArrayLike<number>): OnnxTypes.ITensorProto {
  if (data.length !== numel(type.shape)) {
    throw new RangeError(
      `tensor '${name}' has ${data.length} elements, shape [${type.shape}] needs ${numel(type.shape)}`,
    );
  }
  return {
    name,
    dims: [...type.shape],
    dataType: elemTypeOf(type.dtype),
    rawData: rawData(type.dtype, data),
  };
}

/** Reads element i of `raw_data` as a number (i64 exact to 2^53). */
function readRaw(dv: DataView, dtype: DType, i: number): number {
  switch (dtype) {
    case "f32":
      return dv.getFloat32(i * 4, true);
    case "f16":
      return dv.getFloat16(i * 2, true);
    case "bf16":
      return fromBf16(dv.getUint16(i * 2, true));
    case "f64":
      return dv.getFloat64(i * 8, true);
    case "i64":
      return Number(dv.getBigInt64(i * 8, true));
    case "i32":
      return dv.getInt32(i * 4, true);
    case "i8":
      return dv.getInt8(i);
    case "u8":
    case "bool":
      return dv.getUint8(i);
  }
}

const F32_SCRATCH = new DataView(new ArrayBuffer(4));

/** An f32 from bf16 bits. */
function fromBf16(bits: number): number {
  F32_SCRATCH.setUint32(0, (bits & 0xffff) << 16, true);
  return F32_SCRATCH.getFloat32(0, true);
}

/**
 * An IR tensor from an ONNX tensor (an initializer or a Constant's value): `raw_data` or the
 * typed fields (`float_data`, `int32_data` (also f16/bf16 bits, i8, u8, bool), `int64_data`,
 * `double_data`). Throws an Error naming the tensor for dtypes the IR lacks, external data, or
 * a wrong element count.
 */
export function tensorFromProto(p: OnnxTypes.ITensorProto): Tensor {
  const name = p.name ?? "";
  const elemType = p.dataType ?? 0;
  const dtype = dtypeOfElemType(elemType);
  if (!dtype) throw new Error(`tensor '${name}': element type ${elemTypeName(elemType)} has no IR dtype`);
  if (p.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (p.externalData?.length ?? 0) > 0) {
    throw new Error(`tensor '${name}': external data is not supported`);
  }
  const shape = (p.dims ?? []).map(toNumber);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`tensor '${name}': dims [${shape}] must be non-negative integers`);
  }
  const n = numel(shape);
  const tooBig = tensorSizeProblem(n, `shape [${shape}]`);
  if (tooBig) throw new Error(`tensor '${name}': ${tooBig}`);
  const raw = p.rawData;
  if (raw && raw.length > 0 && raw.length !== n * ELEM_BYTES[dtype]) {
    throw new Error(
      `tensor '${name}': raw_data has ${raw.length} bytes, shape [${shape}] of ${dtype} needs ${
        n * ELEM_BYTES[dtype]
      }`,
    );
  }
  const typed = dtype === "f32"
    ? p.floatData
    : dtype === "f64"
    ? p.doubleData
    : dtype === "i64"
    ? p.int64Data
    : p.int32Data;
  if (!(raw && raw.length > 0) && (typed ?? []).length !== n) {
    throw new Error(`tensor '${name}': has ${(typed ?? []).length} values, shape [${shape}] needs ${n}`);
  }
  const t = Tensor.zeros({ shape, dtype });
  const data: TensorData = t.data;
  if (raw && raw.length > 0) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) {
      data[i] = readRaw(dv, dtype, i);
    }
    return t;
  }
  const values: ArrayLike<number | LongLike> = typed ?? [];
  const scratch = new DataView(new ArrayBuffer(2));
  for (let i = 0; i < n; i++) {
    const v = toNumber(values[i]);
    if (dtype === "f16") {
      scratch.setUint16(0, v, true);
      data[i] = scratch.getFloat16(0, true);
    } else data[i] = dtype === "bf16" ? fromBf16(v) : v;
  }
  return t;
}
