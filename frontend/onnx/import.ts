/**
 * ONNX import: reads a BERT-family model as `torch.onnx` or Hugging Face optimum export it
 * (opsets 11 to 17) and writes it as Sparrow IR plus a safetensors file of its initializers.
 *
 * ```ts
 * await importOnnx("model.onnx", "models/bert.sir", { seq: 128 }); // + models/bert.safetensors
 * ```
 *
 * Shapes are made static first: symbolic input dims named like a batch (`batch_size`, `batch`)
 * take `options.batch` (1 by default), those named like a sequence (`sequence_length`, `seq`)
 * take `options.seq`, and any dim can be given by name in `options.dims`. Every node whose
 * inputs are then all known (initializers, `Constant`s, `Shape`s of static values, and what is
 * computed from them) is evaluated at import time, so the `Shape → Gather → Unsqueeze → Concat
 * → Reshape` subgraphs become constant shapes and leave no IR behind.
 *
 * The remaining nodes map to IR ops one to one (MatMul with a 2-D constant right operand becomes
 * `dense`, Gemm `dense` with its bias, Squeeze/Unsqueeze `reshape`, ...), so a torch export gives
 * decomposed LayerNorms and GELUs: the `recognize` pass turns them back into `layer_norm` and
 * `gelu`. Initializers with more than one element become weights under their own names (nodes
 * reading a float weight are never folded, and `MatMul(x, Transpose(W))` is `dense` of W with
 * `transpose_b`, so the weights keep their names and layouts); scalars and folded values become
 * `constant` ops (or, when large and not a splat, weights named after the value). Value names
 * are the ONNX names made readable (`/bert/encoder/layer.0/Add_output_0` becomes
 * `bert.encoder.layer.0.Add`).
 *
 * Every problem is an `OnnxImportError` naming the file and, where there is one, the node:
 * `model.onnx: node 'Foo_12' (NonMaxSuppression) is not supported`.
 */

import { writeFileAtomic } from "../../ir/atomic_write.ts";
import { basename, dirname, extname, join } from "node:path";
import type { Module } from "../../ir/module.ts";
import { print } from "../../ir/printer.ts";
import { type SafetensorsDType, type TensorToWrite, writeSafetensors } from "../../ir/safetensors.ts";
import type { Tensor } from "../../ir/tensor.ts";
import { numel } from "../../ir/types.ts";
import { Importer } from "./graph.ts";
import { OnnxImportError } from "./node.ts";
import { decodeModel, type Onnx as OnnxTypes } from "./proto.ts";

export { irName, OnnxImportError } from "./node.ts";

/** Options of the ONNX import. */
export interface OnnxImportOptions {
  /** The sequence length, for symbolic dims named like one (`sequence_length`, `seq_len`, ...). */
  readonly seq?: number;
  /** The batch size, for symbolic dims named like one (`batch_size`, `batch`, ...); 1 by default. */
  readonly batch?: number;
  /** Sizes of symbolic dims by name; they take precedence over `seq` and `batch`. */
  readonly dims?: Readonly<Record<string, number>>;
  /** The module's name; by default the file's name without its extension. */
  readonly name?: string;
}

/** What the conversion gives: the module and the data of its weights. */
export interface OnnxConversion {
  /** The verified module (its weights file is set by the caller, or unset). */
  readonly module: Module;
  /** The data of every declared weight, by name. */
  readonly weights: Map<string, Tensor>;
  /** The default-domain opset the model imports. */
  readonly opset: number;
  /** The sizes given to the symbolic dims of the inputs, by name. */
  readonly dims: Readonly<Record<string, number>>;
  /** Nodes of the graph. */
  readonly nodes: number;
  /** Nodes evaluated at import time (shape computations and other constants). */
  readonly folded: number;
}

/** What `importOnnx` wrote. */
export interface OnnxImportResult extends OnnxConversion {
  /** The IR file written. */
  readonly irPath: string;
  /** The weights file written beside it. */
  readonly weightsPath: string;
  /** Size of the IR text in bytes. */
  readonly irBytes: number;
  /** Number of weight elements. */
  readonly params: number;
}

/** Options of `onnxToModule`. */
export interface OnnxConvertOptions extends OnnxImportOptions {
  /** The file name used in messages; `model.onnx` by default. */
  readonly source?: string;
  /** Folder that external tensor data is read from (relative to it); none by default. */
  readonly baseDir?: string;
  /** The weights file to name in the module, relative to the IR file. */
  readonly weightsFile?: string;
}

/**
 * Imports the ONNX model at `path`: writes its IR to `irPath` and its weights beside it
 * (`<name>.safetensors`). The weights are written first, atomically, then the IR. Throws an
 * `OnnxImportError` for a model it cannot import.
 */
export async function importOnnx(
  path: string,
  irPath: string,
  options: OnnxImportOptions = {},
): Promise<OnnxImportResult> {
  if (extname(irPath) === ".safetensors") {
    throw new OnnxImportError(`the IR path ${irPath} must not end in .safetensors (the weights go there)`);
  }
  let bytes: Uint8Array;
  try {
    if (!(await Deno.stat(path)).isFile) {
      throw new OnnxImportError(
        `${path}: not a regular file (a folder, FIFO or device); expected an ONNX file`,
      );
    }
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof OnnxImportError) throw e;
    throw new OnnxImportError(`${path}: cannot read the file: ${(e as Error).message}`);
  }
  const weightsPath = join(dirname(irPath), `${basename(irPath, extname(irPath))}.safetensors`);
  const conversion = onnxToModule(bytes, {
    ...options,
    name: options.name ?? basename(path, extname(path)),
    source: path,
    baseDir: dirname(path),
    weightsFile: basename(weightsPath),
  });
  const text = print(conversion.module);
  await Deno.mkdir(dirname(irPath), { recursive: true });
  await writeSafetensors(weightsPath, [...conversion.weights].map(([n, t]) => tensorToWrite(n, t)), {
    format: "pt",
    generator: "sparrow onnx-import",
    source: basename(path),
  });
  await writeFileAtomic(irPath, text);
  return {
    ...conversion,
    irPath,
    weightsPath,
    irBytes: new TextEncoder().encode(text).length,
    params: [...conversion.weights.values()].reduce((n, t) => n + numel(t.shape), 0),
  };
}

/** Converts ONNX model bytes to a verified module and its weights, in memory. */
export function onnxToModule(bytes: Uint8Array, options: OnnxConvertOptions = {}): OnnxConversion {
  const source = options.source ?? "model.onnx";
  let model: OnnxTypes.ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (e) {
    // protobufjs decodes nested messages by recursion: a model nested thousands deep ends it.
    const why = e instanceof RangeError ? "its messages nest too deeply to decode" : (e as Error).message;
    throw new OnnxImportError(`${source}: not an ONNX model: ${why}`);
  }
  return new Importer(model, source, options).run();
}

/** A weight tensor as safetensors stores it (f16 and bf16 back in their 2-byte forms). */
export function tensorToWrite(name: string, t: Tensor): TensorToWrite {
  const shape = [...t.shape];
  const n = t.data.length;
  switch (t.dtype) {
    case "f32":
      return { name, dtype: "F32", shape, data: t.data };
    case "f16": {
      const view = new DataView(new ArrayBuffer(2 * n));
      for (let i = 0; i < n; i++) view.setFloat16(2 * i, t.data[i], true);
      return { name, dtype: "F16", shape, data: new Uint8Array(view.buffer) };
    }
    case "bf16": {
      const bits = new Uint32Array(Float32Array.from(t.data).buffer);
      return { name, dtype: "BF16", shape, data: Uint16Array.from(bits, (b) => b >>> 16) };
    }
    case "f64":
      return { name, dtype: "F64", shape, data: Float64Array.from(t.data) };
    case "i64":
      return { name, dtype: "I64", shape, data: BigInt64Array.from(t.data, (v) => BigInt(v)) };
    case "i32":
      return { name, dtype: "I32", shape, data: Int32Array.from(t.data) };
    default: {
      const dtype: SafetensorsDType = t.dtype === "i8" ? "I8" : t.dtype === "u8" ? "U8" : "BOOL";
      return { name, dtype, shape, data: Uint8Array.from(t.data) };
    }
  }
}
