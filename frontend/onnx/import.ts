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
import { basename, dirname, extname, join, resolve } from "node:path";
import type { AttrJs } from "../../ir/attrs.ts";
import { type FuncBuilder, ModuleBuilder } from "../../ir/builder.ts";
import { formatDiagnostics } from "../../ir/diagnostics.ts";
import type { Module, Value } from "../../ir/module.ts";
import { print } from "../../ir/printer.ts";
import { type SafetensorsDType, type TensorToWrite, writeSafetensors } from "../../ir/safetensors.ts";
import { broadcastShapes, normalizeAxis } from "../../ir/shape.ts";
import { Tensor } from "../../ir/tensor.ts";
import { type DType, formatType, isFloat, numel, sameShape, type TensorType } from "../../ir/types.ts";
import { verify } from "../../ir/verifier.ts";
import {
  allEqual,
  castConst,
  type Const,
  constOf,
  foldBroadcast,
  foldOp,
  foldRange,
  inferOp,
  intsConst,
  intsOf,
  isConst,
  type Known,
  literalOf,
  reshapeTarget,
  splatTensor,
  typeOf,
} from "./fold_shapes.ts";
import {
  decodeModel,
  dtypeOfElemType,
  elemTypeName,
  type Onnx as OnnxTypes,
  onnx,
  tensorFromProto,
  toNumber as num,
} from "./proto.ts";

type NodeProto = OnnxTypes.INodeProto;
type TensorProto = OnnxTypes.ITensorProto;
type AttributeProto = OnnxTypes.IAttributeProto;
type ValueInfoProto = OnnxTypes.IValueInfoProto;

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

/** A problem with the model: names the file and, where there is one, the node. */
export class OnnxImportError extends Error {
  /** Creates the error with its full message. */
  constructor(message: string) {
    super(message);
    this.name = "OnnxImportError";
  }
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
    bytes = await Deno.readFile(path);
  } catch (e) {
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
    throw new OnnxImportError(`${source}: not an ONNX model: ${(e as Error).message}`);
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

// --- ONNX data -------------------------------------------------------------------------------

const AttributeType = onnx.AttributeProto.AttributeType;

/** Dtypes a weights file can hold and the weight store reads back. */
const WEIGHT_DTYPES: ReadonlySet<DType> = new Set(["f32", "f16", "bf16", "f64", "i64", "i32"]);

/** Constants with at most this many elements (not all equal) are written as literals. */
const MAX_LITERAL = 1024;

/** Nodes on constants are evaluated at import time when the result has at most this many elements. */
const MAX_FOLD = 4096;

/**
 * A constant that stands for a weight: a float initializer with more than one element, or the
 * transpose of one. Nodes on weights are not evaluated at import time, so weights keep their names.
 */
function isWeightLike(k: Const): boolean {
  const src = k.transposeOf ?? k;
  return src.initializer !== undefined && isFloat(src.tensor.dtype) && numel(src.tensor.shape) > 1;
}

/** The shortest decimal that is the same f32 as `v`. */
function shortestF32(v: number): number {
  const f = Math.fround(v);
  for (let p = 1; p < 17; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return v;
}

/** Symbolic dim names taken as the batch size. */
const BATCH_DIM = /^(n|b|bs|batch|batch_?size|batch_?dim|batches|num_batches)$/i;
/** Symbolic dim names taken as the sequence length. */
const SEQ_DIM =
  /^(s|seq|seq_?len|seq_?length|sequence|sequence_?len|sequence_?length|max_?seq_?len(gth)?|tokens|num_tokens)$/i;

/**
 * A readable IR name for an ONNX value name: path separators and `::` become dots, a trailing
 * `_output_0` goes, other characters outside the IR's plain names become `_`.
 */
export function irName(onnxName: string): string {
  const s = onnxName
    .replace(/_output_0$/, "")
    .replace(/_output_(\d+)$/, ".$1")
    .replace(/::/g, ".")
    .replace(/\//g, ".")
    .replace(/[^A-Za-z0-9_.$-]/g, "_")
    .replace(/^\.+/, "")
    .replace(/\.{2,}/g, ".");
  return s === "" ? "v" : s;
}

// --- The importer ----------------------------------------------------------------------------

/** One node being imported: its inputs, attributes and errors naming it. */
class NodeCtx {
  readonly attrs = new Map<string, AttributeProto>();

  constructor(readonly imp: Importer, readonly node: NodeProto, readonly index: number) {
    for (const a of node.attribute ?? []) this.attrs.set(a.name ?? "", a);
  }

  get op(): string {
    return this.node.opType ?? "";
  }

  /** The default-domain opset of the model. */
  get opset(): number {
    return this.imp.opset;
  }

  /** `node 'name' (Op)`, or `node #i (Op, output 'y')` for an unnamed node. */
  get label(): string {
    const domain = this.node.domain && this.node.domain !== "ai.onnx" ? `${this.node.domain}.` : "";
    const type = `${domain}${this.op}`;
    if (this.node.name) return `node '${this.node.name}' (${type})`;
    return `node #${this.index} (${type}, output '${this.node.output?.[0] ?? ""}')`;
  }

  /** An error naming the node. */
  fail(message: string): OnnxImportError {
    return new OnnxImportError(`${this.imp.source}: ${this.label}: ${message}`);
  }

  /** The ONNX name of output i. */
  outName(i = 0): string {
    return this.node.output?.[i] ?? `${this.node.name ?? this.op}_${i}`;
  }

  /** The IR name of output 0, with a suffix for the helper ops and constants of the node. */
  derived(suffix = ""): string {
    return irName(this.outName()) + suffix;
  }

  /** Whether input i is given (present and not the empty name). */
  has(i: number): boolean {
    return !!this.node.input?.[i];
  }

  /** Input i, which must be given. */
  input(i: number): Known {
    const name = this.node.input?.[i];
    if (!name) throw this.fail(`input ${i} is missing`);
    const k = this.imp.env.get(name);
    if (!k) throw this.fail(`input '${name}' is not defined`);
    return k;
  }

  /** Input i if given. */
  optional(i: number): Known | undefined {
    return this.has(i) ? this.input(i) : undefined;
  }

  /** Input i as a constant, for inputs that must be known at static shapes (shapes, axes). */
  constInput(i: number, what: string): Const {
    const k = this.input(i);
    if (!isConst(k)) {
      throw this.fail(
        `input ${i} ('${this.node.input![i]}', the ${what}) is not a constant: it depends on the ` +
          `model's inputs' values, not only on their static shapes`,
      );
    }
    return k;
  }

  /** Integer values of constant input i. */
  constInts(i: number, what: string): number[] {
    return intsOf(this.constInput(i, what).tensor);
  }

  private attr(name: string, types: readonly number[]): AttributeProto | undefined {
    const a = this.attrs.get(name);
    if (a && a.type !== undefined && a.type !== null && a.type !== 0 && !types.includes(a.type)) {
      throw this.fail(`attribute '${name}' has the wrong type`);
    }
    return a;
  }

  /** An int attribute, or `fallback` when absent. */
  int(name: string, fallback: number): number {
    const a = this.attr(name, [AttributeType.INT]);
    return a ? num(a.i) : fallback;
  }

  /** A float attribute (as the shortest decimal of its f32: 1e-12, not 9.99999996e-13), or `fallback`. */
  float(name: string, fallback: number): number {
    const a = this.attr(name, [AttributeType.FLOAT]);
    return a ? shortestF32(a.f ?? 0) : fallback;
  }

  /** An ints attribute, or undefined when absent. */
  ints(name: string): number[] | undefined {
    const a = this.attr(name, [AttributeType.INTS]);
    return a ? (a.ints ?? []).map(num) : undefined;
  }

  /** A tensor attribute, or undefined when absent. */
  tensor(name: string): Tensor | undefined {
    const a = this.attr(name, [AttributeType.TENSOR]);
    return a?.t ? this.imp.readTensor(a.t, `attribute '${name}' of ${this.label}`) : undefined;
  }

  /** Fails when the attribute is set to anything but one of the supported values. */
  requireAttr(name: string, supported: readonly number[], fallback: number, float = false): void {
    if (!this.attrs.has(name)) return;
    const v = float ? this.float(name, fallback) : this.int(name, fallback);
    if (!supported.includes(v)) {
      throw this.fail(`attribute '${name}' = ${v} is not supported (only ${supported.join(" or ")})`);
    }
  }

  /** Fails when an extra output (e.g. LayerNormalization's Mean) is used by the graph. */
  requireUnused(from: number): void {
    const outs = this.node.output ?? [];
    for (let i = from; i < outs.length; i++) {
      if (outs[i] && this.imp.used.has(outs[i])) {
        throw this.fail(`output ${i} ('${outs[i]}') is used, which is not supported`);
      }
    }
  }
}

type Handler = (n: NodeCtx) => Known | Known[];

class Importer {
  readonly env = new Map<string, Known>();
  /** Every value name some node or the graph output reads. */
  readonly used = new Set<string>();
  readonly weights = new Map<string, Tensor>();
  readonly opset: number;
  private readonly graph: OnnxTypes.IGraphProto;
  private readonly builder: ModuleBuilder;
  private f!: FuncBuilder;
  private readonly materialized = new Map<Const, Value>();
  private readonly initializerNames = new Set<string>();
  private readonly dimSizes: Record<string, number> = {};
  private folded = 0;

  constructor(model: OnnxTypes.ModelProto, readonly source: string, readonly options: OnnxConvertOptions) {
    if (!model.graph) throw new OnnxImportError(`${source}: the model has no graph`);
    this.graph = model.graph;
    const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === "ai.onnx");
    if (!opset) throw new OnnxImportError(`${source}: the model imports no default-domain (ai.onnx) opset`);
    this.opset = num(opset.version);
    if (this.opset < 7) {
      throw new OnnxImportError(`${source}: opset ${this.opset} is too old (opsets 11 to 17 are supported)`);
    }
    const name = options.name ?? this.graph.name ?? "model";
    const producer = [model.producerName, model.producerVersion].filter(Boolean).join(" ");
    this.builder = new ModuleBuilder(irName(name), {
      weightsFile: options.weightsFile,
      attrs: { onnx_opset: this.opset, ...(producer ? { onnx_producer: producer } : {}) },
    });
    this.builder.module.comments.leading.push(
      `// Imported from ${basename(source)} (ONNX opset ${this.opset}${producer ? `, ${producer}` : ""}).`,
    );
  }

  run(): OnnxConversion {
    const g = this.graph;
    for (const t of g.initializer ?? []) {
      const name = t.name ?? "";
      this.initializerNames.add(name);
      const tensor = this.readTensor(t, `initializer '${name}'`);
      this.env.set(name, { kind: "const", tensor, name, initializer: name });
    }
    if ((g.sparseInitializer ?? []).length > 0) {
      throw new OnnxImportError(`${this.source}: sparse initializers are not supported`);
    }
    const params: [string, TensorType][] = [];
    const paramNames: string[] = [];
    for (const input of g.input ?? []) {
      const name = input.name ?? "";
      if (this.initializerNames.has(name)) continue; // IR version < 4 lists initializers as inputs
      params.push([irName(name), this.inputType(input)]);
      paramNames.push(name);
    }
    this.f = this.builder.func("main", params);
    paramNames.forEach((name, i) => this.env.set(name, { kind: "value", value: this.f.params[i] }));
    const nodes = this.sorted(g.node ?? []);
    for (const node of nodes) for (const i of node.input ?? []) if (i) this.used.add(i);
    for (const o of g.output ?? []) this.used.add(o.name ?? "");
    nodes.forEach((node, i) => this.importNode(new NodeCtx(this, node, i)));
    const outs = (g.output ?? []).map((o) => {
      const k = this.env.get(o.name ?? "");
      if (!k) {
        throw new OnnxImportError(`${this.source}: graph output '${o.name}' is not computed by any node`);
      }
      return this.value(k);
    });
    if (outs.length === 0) throw new OnnxImportError(`${this.source}: the graph has no outputs`);
    this.f.ret(...outs);
    const m = this.builder.module;
    const diagnostics = verify(m);
    if (diagnostics.length > 0) {
      throw new OnnxImportError(
        `${this.source}: internal error: the imported module does not verify:\n${
          formatDiagnostics(diagnostics)
        }`,
      );
    }
    return {
      module: m,
      weights: this.weights,
      opset: this.opset,
      dims: { ...this.dimSizes },
      nodes: nodes.length,
      folded: this.folded,
    };
  }

  /** The nodes in an order where each comes after the producers of its inputs. */
  private sorted(nodes: readonly NodeProto[]): NodeProto[] {
    const producer = new Map<string, number>();
    nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
    const state = new Uint8Array(nodes.length); // 0 new, 1 visiting, 2 done
    const order: NodeProto[] = [];
    const visit = (root: number) => {
      const stack: [number, number][] = [[root, 0]];
      while (stack.length > 0) {
        const top = stack[stack.length - 1];
        const [i, next] = top;
        if (next === 0) {
          if (state[i] === 2) {
            stack.pop();
            continue;
          }
          state[i] = 1;
        }
        const inputs = nodes[i].input ?? [];
        if (next < inputs.length) {
          top[1]++;
          const p = producer.get(inputs[next]);
          if (p === undefined || state[p] === 2) continue;
          if (state[p] === 1) {
            const name = nodes[i].name ? `'${nodes[i].name}'` : `#${i}`;
            throw new OnnxImportError(`${this.source}: the graph has a cycle through node ${name}`);
          }
          stack.push([p, 0]);
          continue;
        }
        state[i] = 2;
        order.push(nodes[i]);
        stack.pop();
      }
    };
    nodes.forEach((_, i) => visit(i));
    return order;
  }

  /** The static type of a graph input, its symbolic dims resolved. */
  private inputType(input: ValueInfoProto): TensorType {
    const name = input.name ?? "";
    const tt = input.type?.tensorType;
    if (!tt) throw new OnnxImportError(`${this.source}: input '${name}' is not a tensor`);
    const dtype = dtypeOfElemType(tt.elemType ?? 0);
    if (!dtype) {
      throw new OnnxImportError(
        `${this.source}: input '${name}' has element type ${
          elemTypeName(tt.elemType ?? 0)
        }, which is not supported`,
      );
    }
    if (!tt.shape) throw new OnnxImportError(`${this.source}: input '${name}' has no shape (unknown rank)`);
    const shape = (tt.shape.dim ?? []).map((d, i) => {
      if (Object.hasOwn(d, "dimValue") && d.dimValue !== null && d.dimValue !== undefined) {
        const v = num(d.dimValue);
        if (v >= 0) return v;
      }
      return this.resolveDim(name, i, d.dimParam ?? "");
    });
    return { shape, dtype };
  }

  private resolveDim(input: string, i: number, param: string): number {
    const { dims, seq, batch } = this.options;
    const at = `${this.source}: input '${input}' dim ${i}`;
    const fix = (v: number, what: string) => {
      if (!Number.isSafeInteger(v) || v < 1) {
        throw new OnnxImportError(`${at} ('${param}'): ${what} must be a positive integer, got ${v}`);
      }
      if (param) this.dimSizes[param] = v;
      return v;
    };
    if (param && dims && Object.hasOwn(dims, param)) return fix(dims[param], `dims['${param}']`);
    if (BATCH_DIM.test(param)) return fix(batch ?? 1, "the batch size");
    if (SEQ_DIM.test(param)) {
      if (seq === undefined) {
        throw new OnnxImportError(
          `${at} ('${param}') is the dynamic sequence length: give it (options.seq, e.g. 128)`,
        );
      }
      return fix(seq, "the sequence length");
    }
    const what = param ? `is dynamic ('${param}')` : "is dynamic and unnamed";
    const how = param ? `options.dims, e.g. { "${param}": 128 }` : "a named dim in the model";
    throw new OnnxImportError(`${at} ${what} and cannot be resolved: give its size (${how})`);
  }

  /** Reads tensor data (raw, typed fields or external) as an IR tensor. */
  readTensor(t: TensorProto, what: string): Tensor {
    const at = `${this.source}: ${what}`;
    const dt = t.dataType ?? 0;
    if (!dtypeOfElemType(dt)) {
      throw new OnnxImportError(`${at} has element type ${elemTypeName(dt)}, which is not supported`);
    }
    if (t.segment) throw new OnnxImportError(`${at} is segmented, which is not supported`);
    const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
    const proto = external
      ? { ...t, rawData: this.externalData(t, at), dataLocation: 0, externalData: [] }
      : t;
    try {
      return tensorFromProto(proto);
    } catch (e) {
      throw new OnnxImportError(`${at}: ${(e as Error).message}`);
    }
  }

  private externalData(t: TensorProto, at: string): Uint8Array {
    const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? "", e.value ?? ""]));
    const location = entries.get("location");
    if (!location) throw new OnnxImportError(`${at} is external but names no location`);
    if (this.options.baseDir === undefined) {
      throw new OnnxImportError(
        `${at} is stored in an external file ('${location}'), which needs the model's path`,
      );
    }
    const file = resolve(this.options.baseDir, location);
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(file);
    } catch (e) {
      throw new OnnxImportError(`${at}: cannot read its external data ${file}: ${(e as Error).message}`);
    }
    const offset = Number(entries.get("offset") ?? 0);
    const length = entries.has("length") ? Number(entries.get("length")) : bytes.length - offset;
    if (!(offset >= 0 && length >= 0 && offset + length <= bytes.length)) {
      throw new OnnxImportError(`${at}: its external data range is outside ${file}`);
    }
    return bytes.subarray(offset, offset + length);
  }

  // --- values --------------------------------------------------------------------------------

  /** The IR value of a known value, writing constants into the IR on first use. */
  value(k: Known): Value {
    if (k.kind === "value") return k.value;
    const cached = this.materialized.get(k);
    if (cached) return cached;
    const t = k.tensor;
    const n = numel(t.shape);
    let v: Value;
    if (k.transposeOf && isWeightLike(k.transposeOf)) {
      v = this.f.op("transpose", [this.value(k.transposeOf)], { perm: [1, 0] }, { name: irName(k.name) });
    } else if (k.initializer !== undefined && n > 1 && WEIGHT_DTYPES.has(t.dtype)) {
      v = this.weight(k.initializer, t);
    } else if (allEqual(t) || n <= MAX_LITERAL || !WEIGHT_DTYPES.has(t.dtype)) {
      v = this.f.op("constant", [], { value: literalOf(t) }, { name: irName(k.name), type: t.type });
    } else {
      let name = irName(k.name);
      for (let i = 1; this.builder.module.weights.has(name) || this.initializerNames.has(name); i++) {
        name = `${irName(k.name)}.${i}`;
      }
      v = this.weight(name, t);
    }
    this.materialized.set(k, v);
    return v;
  }

  private weight(name: string, t: Tensor): Value {
    const existing = this.builder.module.weights.get(name);
    if (existing) return existing;
    this.weights.set(name, t);
    return this.builder.weight(name, t.type);
  }

  /**
   * Appends an IR op for node `n`, or evaluates it when every input is a constant (and the
   * result is small): the result is named after the node's output, plus `suffix`.
   */
  emit(
    n: NodeCtx,
    op: string,
    inputs: readonly Known[],
    attrs: Record<string, AttrJs> = {},
    options: { type?: TensorType; suffix?: string } = {},
  ): Known {
    const name = n.derived(options.suffix ?? "");
    try {
      if (inputs.every((k): k is Const => isConst(k) && !isWeightLike(k))) {
        const type = inferOp(op, inputs.map(typeOf), attrs, options.type);
        if (numel(type.shape) <= MAX_FOLD) {
          return constOf(foldOp(op, inputs.map((k) => k.tensor), attrs, options.type), name);
        }
      }
      const operands = inputs.map((k) => this.value(k));
      return {
        kind: "value",
        value: this.f.op(op, operands, attrs, { name: irName(name), type: options.type }),
      };
    } catch (e) {
      if (e instanceof OnnxImportError) throw e;
      throw n.fail((e as Error).message);
    }
  }

  /** A reshape of `x` to `shape` (x itself when the shape is already that). */
  reshape(n: NodeCtx, x: Known, shape: readonly number[], suffix = ""): Known {
    const t = typeOf(x);
    if (sameShape(t.shape, shape)) return x;
    return this.emit(n, "reshape", [x], {}, { type: { shape: [...shape], dtype: t.dtype }, suffix });
  }

  private importNode(n: NodeCtx): void {
    const domain = n.node.domain ?? "";
    const handler = domain === "" || domain === "ai.onnx" ? HANDLERS[n.op] : undefined;
    if (!handler) throw new OnnxImportError(`${this.source}: ${n.label} is not supported`);
    const result = handler(n);
    const outs = Array.isArray(result) ? result : [result];
    outs.forEach((k, i) => {
      const name = n.node.output?.[i];
      if (name) this.env.set(name, k);
    });
    if (outs.every(isConst)) this.folded++;
  }
}

// --- Node handlers ---------------------------------------------------------------------------

function rankOf(k: Known): number {
  return typeOf(k).shape.length;
}

/** A binary elementwise node; Pow's exponent is cast to the base's dtype when they differ. */
function binary(ir: string): Handler {
  return (n) => {
    const a = n.input(0);
    let b = n.input(1);
    const [ta, tb] = [typeOf(a), typeOf(b)];
    if (ta.dtype !== tb.dtype) {
      if (n.op !== "Pow") {
        throw n.fail(`operands have different dtypes: ${formatType(ta)} and ${formatType(tb)}`);
      }
      b = isConst(b)
        ? constOf(castConst(b.tensor, ta.dtype), b.name)
        : n.imp.emit(n, "cast", [b], {}, { type: { shape: [...tb.shape], dtype: ta.dtype }, suffix: ".exp" });
    }
    return n.imp.emit(n, ir, [a, b]);
  };
}

function unary(ir: string): Handler {
  return (n) => n.imp.emit(n, ir, [n.input(0)]);
}

function identity(n: NodeCtx): Known {
  n.requireUnused(1);
  return n.input(0);
}

/** Positive axes of `axes` for a tensor of rank `rank`. */
function axesOf(n: NodeCtx, axes: readonly number[], rank: number): number[] {
  try {
    return axes.map((a) => normalizeAxis(a, rank));
  } catch (e) {
    throw n.fail((e as Error).message);
  }
}

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

const HANDLERS: Readonly<Record<string, Handler>> = {
  Add: binary("add"),
  Sub: binary("sub"),
  Mul: binary("mul"),
  Div: binary("div"),
  Pow: binary("pow"),
  Sqrt: unary("sqrt"),
  Erf: unary("erf"),
  Tanh: unary("tanh"),
  Identity: identity,
  Dropout: identity,
  Neg(n) {
    const x = n.input(0);
    const zero = constOf(splatTensor({ shape: [], dtype: typeOf(x).dtype }, 0), n.derived(".zero"));
    return n.imp.emit(n, "sub", [zero, x]);
  },

  MatMul(n) {
    const a = n.input(0), b = n.input(1);
    const [ra, rb] = [rankOf(a), rankOf(b)];
    if (ra === 0 || rb === 0) throw n.fail("MatMul operands must have rank 1 or more");
    if (isConst(b) && rb === 2 && !isConst(a)) {
      // MatMul(x, Transpose(W)) is the [out, in] weight W with transpose_b.
      if (b.transposeOf) return n.imp.emit(n, "dense", [a, b.transposeOf], { transpose_b: true });
      return n.imp.emit(n, "dense", [a, b]);
    }
    // numpy matmul: a 1-D operand gets a unit dim, removed again from the result.
    const ta = typeOf(a).shape, tb = typeOf(b).shape;
    if (ra > 1 && rb > 1) return n.imp.emit(n, "batch_matmul", [a, b]);
    const a2 = ra === 1 ? n.imp.reshape(n, a, [1, ta[0]], ".a") : a;
    const b2 = rb === 1 ? n.imp.reshape(n, b, [tb[0], 1], ".b") : b;
    const product = n.imp.emit(n, "batch_matmul", [a2, b2], {}, { suffix: ".mm" });
    const shape = [...typeOf(product).shape];
    if (rb === 1) shape.splice(-1, 1);
    if (ra === 1) shape.splice(rb === 1 ? -1 : -2, 1);
    return n.imp.reshape(n, product, shape);
  },

  Gemm(n) {
    n.requireAttr("alpha", [1], 1, true);
    const a = n.input(0), c = n.optional(2);
    let b = n.input(1);
    if (c) n.requireAttr("beta", [1], 1, true);
    if (rankOf(a) !== 2 || rankOf(b) !== 2) {
      throw n.fail(`A and B must be 2-D, got ${formatType(typeOf(a))} and ${formatType(typeOf(b))}`);
    }
    const transA = n.int("transA", 0) !== 0;
    let transB = n.int("transB", 0) !== 0;
    if (isConst(b) && b.transposeOf && !isConst(a)) {
      b = b.transposeOf;
      transB = !transB;
    }
    const attrs: Record<string, AttrJs> = {};
    if (transA) attrs.transpose_a = true;
    if (transB) attrs.transpose_b = true;
    const N = typeOf(b).shape[transB ? 0 : 1];
    if (isConst(b) && !isConst(a)) {
      let bias: Known | undefined;
      const ct = c && typeOf(c).shape;
      if (c && ct && (sameShape(ct, [N]) || isConst(c) && numel(ct) === N && ct.at(-1) === N)) {
        bias = n.imp.reshape(n, c, [N], ".bias");
      }
      const y = n.imp.emit(n, "dense", bias ? [a, b, bias] : [a, b], attrs, {
        suffix: c && !bias ? ".mm" : "",
      });
      return c && !bias ? n.imp.emit(n, "add", [y, c]) : y;
    }
    const y = n.imp.emit(n, "batch_matmul", [a, b], attrs, { suffix: c ? ".mm" : "" });
    return c ? n.imp.emit(n, "add", [y, c]) : y;
  },

  ReduceMean(n) {
    const x = n.input(0);
    const rank = rankOf(x);
    let axes = n.opset >= 18 ? (n.has(1) ? n.constInts(1, "axes") : undefined) : n.ints("axes");
    if (!axes || axes.length === 0) {
      if (n.int("noop_with_empty_axes", 0) !== 0) return x;
      axes = [...Array(rank).keys()];
    }
    return n.imp.emit(n, "reduce_mean", [x], { axes, keepdims: n.int("keepdims", 1) !== 0 });
  },

  LayerNormalization(n) {
    n.requireUnused(1);
    const x = n.input(0), scale = n.input(1), bias = n.optional(2);
    const axis = n.int("axis", -1);
    const norm = typeOf(x).shape.slice(axesOf(n, [axis], rankOf(x))[0]);
    const fit = (k: Known, suffix: string) =>
      numel(typeOf(k).shape) === numel(norm) ? n.imp.reshape(n, k, norm, suffix) : k;
    const operands = [x, fit(scale, ".scale"), ...(bias ? [fit(bias, ".bias")] : [])];
    return n.imp.emit(n, "layer_norm", operands, { axis, epsilon: n.float("epsilon", 1e-5) });
  },

  Softmax(n) {
    const x = n.input(0);
    const shape = typeOf(x).shape;
    const axis = axesOf(n, [n.int("axis", n.opset >= 13 ? -1 : 1)], shape.length)[0];
    if (n.opset >= 13 || axis === shape.length - 1) {
      return n.imp.emit(n, "softmax", [x], { axis: axis === shape.length - 1 ? -1 : axis });
    }
    // Before opset 13, Softmax normalizes over all dims from axis on, as one.
    const flat = n.imp.reshape(n, x, [numel(shape.slice(0, axis)), numel(shape.slice(axis))], ".flat");
    const y = n.imp.emit(n, "softmax", [flat], { axis: -1 }, { suffix: ".2d" });
    return n.imp.reshape(n, y, shape);
  },

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

  Cast(n) {
    const x = n.input(0);
    const to = n.int("to", 0);
    const dtype = dtypeOfElemType(to);
    if (!dtype) throw n.fail(`casting to ${elemTypeName(to)} is not supported`);
    const t = typeOf(x);
    if (t.dtype === dtype) return x;
    return n.imp.emit(n, "cast", [x], {}, { type: { shape: [...t.shape], dtype } });
  },

  Where(n) {
    const c = n.input(0), x = n.input(1), y = n.input(2);
    return n.imp.emit(n, "where", [c, x, y]);
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

  // Opset 20's Gelu, for models exported past the supported range.
  Gelu(n) {
    const a = n.attrs.get("approximate");
    const approximation = a?.s ? new TextDecoder().decode(a.s) : "none";
    if (approximation !== "none" && approximation !== "tanh") {
      throw n.fail(`attribute 'approximate' = '${approximation}' is not supported (only none or tanh)`);
    }
    return n.imp.emit(n, "gelu", [n.input(0)], { approximation: approximation === "tanh" ? "tanh" : "erf" });
  },

  Shape(n) {
    const shape = typeOf(n.input(0)).shape;
    const rank = shape.length;
    const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
    const start = clamp(n.int("start", 0)), end = clamp(n.int("end", rank));
    return intsConst(shape.slice(start, end), n.outName());
  },
};
