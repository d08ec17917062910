/**
 * Runtime tensors of the reference interpreter: a type and a typed array in row-major order.
 *
 * Storage by dtype: f32, f16 and bf16 in Float32Array (f16 and bf16 values are rounded to
 * their precision after every op); f64 and i64 in Float64Array (i64 is exact up to 2^53);
 * i32 in Int32Array; i8 in Int8Array; u8 and bool in Uint8Array.
 */

import { type DType, numel, type TensorType } from "./types.ts";

/** The typed arrays tensors are stored in. */
export type TensorData = Float32Array | Float64Array | Int32Array | Int8Array | Uint8Array;

/**
 * The most elements one tensor of the reference interpreter may have: 2^28 (1 GiB of f32). A
 * module may declare larger types (the verifier's limit is 2^31 - 1), but the interpreter, and
 * everything that evaluates ops with it, refuses them before allocating.
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 28;

/**
 * The most elements the interpreter keeps live at once, op results still to be used (or, for
 * `seededInputs`, all the parameters): 2^30 (4 GiB of f32).
 */
export const MAX_LIVE_ELEMENTS = 2 ** 30;

/** Why `n` elements cannot be allocated, or undefined when they can. */
export function tensorSizeProblem(n: number, what = "a tensor"): string | undefined {
  if (Number.isNaN(n) || n < 0) return `${what} of ${n} elements is not a valid size`;
  if (n > MAX_TENSOR_ELEMENTS) {
    return `${what} has ${n} elements, over the limit of ${MAX_TENSOR_ELEMENTS} (2^28) per tensor`;
  }
  return undefined;
}

/**
 * Allocates zeroed storage for `n` elements of a dtype. Throws a RangeError naming the size when
 * `n` is over {@link MAX_TENSOR_ELEMENTS}, before allocating anything.
 */
export function allocData(dtype: DType, n: number): TensorData {
  const problem = tensorSizeProblem(n);
  if (problem) throw new RangeError(problem);
  switch (dtype) {
    case "f32":
    case "f16":
    case "bf16":
      return new Float32Array(n);
    case "f64":
    case "i64":
      return new Float64Array(n);
    case "i32":
      return new Int32Array(n);
    case "i8":
      return new Int8Array(n);
    case "u8":
    case "bool":
      return new Uint8Array(n);
  }
}

/** A dense tensor. */
export class Tensor {
  /** Wraps `data`; throws a RangeError when its length does not match the type's shape. */
  constructor(readonly type: TensorType, readonly data: TensorData) {
    if (data.length !== numel(type.shape)) {
      throw new RangeError(
        `tensor data has ${data.length} elements, shape [${type.shape}] needs ${numel(type.shape)}`,
      );
    }
  }

  /** A zero tensor of a type. */
  static zeros(type: TensorType): Tensor {
    return new Tensor(type, allocData(type.dtype, numel(type.shape)));
  }

  /** A tensor from plain numbers. */
  static from(shape: readonly number[], dtype: DType, values: ArrayLike<number>): Tensor {
    const t = Tensor.zeros({ shape: [...shape], dtype });
    t.data.set(values);
    return t;
  }

  /** The shape of `type`. */
  get shape(): readonly number[] {
    return this.type.shape;
  }

  /** The dtype of `type`. */
  get dtype(): DType {
    return this.type.dtype;
  }
}

/**
 * A block-sparse-row matrix `[rows, cols]`: `data` holds the stored blocks `[nnz, R, C]` (floats, or
 * int8 for `qdense`'s quantized weights),
 * `indices[k]` the block column of block k and `indptr` the first block of each block row,
 * exactly as SciPy's `bsr_matrix`. Partial edge blocks are padded with zeros.
 */
export class BsrTensor extends Tensor {
  /** Builds from the logical BSR `type`, the blocks, and SciPy-style `indices` and `indptr`. */
  constructor(
    type: TensorType,
    data: Float32Array | Int8Array,
    readonly indices: Int32Array,
    readonly indptr: Int32Array,
  ) {
    super(
      { shape: [type.sparse!.nnzBlocks, type.sparse!.block[0], type.sparse!.block[1]], dtype: type.dtype },
      data,
    );
    this.sparseType = type;
  }

  /** The logical type, with its BSR encoding. */
  readonly sparseType: TensorType;
}

/** Row-major strides of a shape. */
export function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Rounds float data in place to the precision of f16 or bf16; other dtypes are left alone. */
export function roundToDType(t: Tensor): void {
  if (t.dtype === "f16") {
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] = Math.f16round(d[i]);
  } else if (t.dtype === "bf16") {
    const d = t.data as Float32Array;
    const bits = new Uint32Array(d.buffer, d.byteOffset, d.length);
    for (let i = 0; i < bits.length; i++) {
      if (Number.isNaN(d[i])) continue;
      const b = bits[i];
      bits[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16;
    }
  }
}
