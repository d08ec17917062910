/**
 * The graph walk of the ONNX import: `Importer` reads the initializers (inline or external
 * data), gives the graph inputs static types (resolving their symbolic dims), orders the nodes,
 * runs each node's op handler and writes the IR: constants and weights on first use, ops folded
 * at import time when all their inputs are small constants.
 */

import { basename } from "node:path";
import type { AttrJs } from "../../ir/attrs.ts";
import { type FuncBuilder, ModuleBuilder } from "../../ir/builder.ts";
import { formatDiagnostics } from "../../ir/diagnostics.ts";
import type { Value } from "../../ir/module.ts";
import { type Tensor, tensorSizeProblem } from "../../ir/tensor.ts";
import { type DType, isFloat, numel, sameShape, type TensorType } from "../../ir/types.ts";
import { MAX_ELEMENTS, verify } from "../../ir/verifier.ts";
import {
  allEqual,
  type Const,
  constOf,
  foldOp,
  inferOp,
  isConst,
  type Known,
  literalOf,
  typeOf,
} from "./fold_shapes.ts";
import type { OnnxConversion, OnnxConvertOptions } from "./import.ts";
import { checkGraphSize, checkOpset, checkSingleWriters, readExternalData } from "./model_checks.ts";
import { irName, NodeCtx, OnnxImportError } from "./node.ts";
import { HANDLERS } from "./ops/index.ts";
import {
  dtypeOfElemType,
  elemBytes,
  elemTypeName,
  type Onnx as OnnxTypes,
  onnx,
  tensorFromProto,
  toNumber as num,
} from "./proto.ts";

type NodeProto = OnnxTypes.INodeProto;
type TensorProto = OnnxTypes.ITensorProto;
type ValueInfoProto = OnnxTypes.IValueInfoProto;

/** Dtypes a weights file can hold and the weight store reads back. */
const WEIGHT_DTYPES: ReadonlySet<DType> = new Set(["f32", "f16", "bf16", "f64", "i64", "i32"]);

/** Constants with at most this many elements (not all equal) are written as literals. */
const MAX_LITERAL = 1024;

/** Nodes on constants are evaluated at import time when the result has at most this many elements. */
const MAX_FOLD = 4096;

/**
 * Names for the weights torch.onnx leaves anonymous. With constant folding it stores a Linear's
 * weight pre-transposed as an initializer named `onnx::MatMul_301`, losing the checkpoint's name;
 * the MatMul node using it keeps the module path (`/bert/encoder/layer.0/attention/self/query/MatMul`),
 * so the weight is named as the checkpoint named it (`bert.encoder.layer.0.attention.self.query.weight`),
 * which is what passes' name filters (prune's `target`) look for. Only an initializer used by that one
 * node alone, whose new name no other initializer has, is renamed.
 */
function weightNames(g: OnnxTypes.IGraphProto, initializers: ReadonlySet<string>): Map<string, string> {
  const uses = new Map<string, number>();
  for (const n of g.node ?? []) for (const i of n.input ?? []) uses.set(i, (uses.get(i) ?? 0) + 1);
  const renamed = new Map<string, string>();
  for (const n of g.node ?? []) {
    const w = n.input?.[1];
    const path = /^\/?(.+)\/(?:MatMul|Gemm)(?:_\d+)?$/.exec(n.name ?? "")?.[1];
    if (!w || !path || !/^onnx::/.test(w) || !initializers.has(w) || uses.get(w) !== 1) continue;
    const name = `${irName(path)}.weight`;
    if (!initializers.has(name) && ![...renamed.values()].includes(name)) renamed.set(w, name);
  }
  return renamed;
}

/**
 * A constant that stands for a weight: a float initializer with more than one element, or the
 * transpose of one. Nodes on weights are not evaluated at import time, so weights keep their names.
 */
function isWeightLike(k: Const): boolean {
  const src = k.transposeOf ?? k;
  return src.initializer !== undefined && isFloat(src.tensor.dtype) && numel(src.tensor.shape) > 1;
}

/**
 * The value names node `n` reads: its inputs, and the outer values its subgraphs (If's branches)
 * read, so that it is ordered after their producers.
 */
function nodeReads(n: NodeProto): string[] {
  const reads = (n.input ?? []).filter((i) => i);
  for (const a of n.attribute ?? []) {
    for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) reads.push(...graphReads(g));
  }
  return reads;
}

/** The names a (sub)graph reads that it does not define itself. */
function graphReads(g: OnnxTypes.IGraphProto): string[] {
  const defined = new Set<string>();
  for (const t of g.initializer ?? []) defined.add(t.name ?? "");
  for (const i of g.input ?? []) defined.add(i.name ?? "");
  for (const n of g.node ?? []) for (const o of n.output ?? []) defined.add(o);
  const reads = [...(g.node ?? []).flatMap(nodeReads), ...(g.output ?? []).map((o) => o.name ?? "")];
  return reads.filter((r) => r && !defined.has(r));
}

/** Symbolic dim names taken as the batch size. */
const BATCH_DIM = /^(n|b|bs|batch|batch_?size|batch_?dim|batches|num_batches)$/i;
/** Symbolic dim names taken as the sequence length. */
const SEQ_DIM =
  /^(s|seq|seq_?len|seq_?length|sequence|sequence_?len|sequence_?length|max_?seq_?len(gth)?|tokens|num_tokens)$/i;

/** Imports one ONNX model: `run` converts its graph to a verified module and its weights. */
export class Importer {
  /** What each ONNX value name stands for so far: a constant or an IR value. */
  readonly env = new Map<string, Known>();
  /** Every value name some node or the graph output reads. */
  readonly used = new Set<string>();
  /** The data of every weight declared so far, by name. */
  readonly weights = new Map<string, Tensor>();
  /** The default-domain opset of the model. */
  readonly opset: number;
  private readonly graph: OnnxTypes.IGraphProto;
  private readonly builder: ModuleBuilder;
  private f!: FuncBuilder;
  private readonly materialized = new Map<Const, Value>();
  private readonly initializerNames = new Set<string>();
  private readonly dimSizes: Record<string, number> = {};
  private folded = 0;

  /** Checks the model's graph and opset and starts its module; `source` names it in messages. */
  constructor(model: OnnxTypes.ModelProto, readonly source: string, readonly options: OnnxConvertOptions) {
    if (!model.graph) throw new OnnxImportError(`${source}: the model has no graph`);
    this.graph = model.graph;
    const opset = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === "ai.onnx");
    if (!opset) throw new OnnxImportError(`${source}: the model imports no default-domain (ai.onnx) opset`);
    this.opset = num(opset.version);
    checkOpset(this.opset, source);
    checkGraphSize(this.graph, source);
    checkSingleWriters(this.graph, source);
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

  /** Imports the graph: the verified module, its weights and what the import did. */
  run(): OnnxConversion {
    const g = this.graph;
    for (const t of g.initializer ?? []) this.initializerNames.add(t.name ?? "");
    const renamed = weightNames(g, this.initializerNames);
    for (const t of g.initializer ?? []) {
      const name = t.name ?? "";
      const tensor = this.readTensor(t, `initializer '${name}'`);
      this.env.set(name, { kind: "const", tensor, name, initializer: renamed.get(name) ?? name });
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
    this.markUsed(nodes);
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
    const reads = nodes.map(nodeReads);
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
        const inputs = reads[i];
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
    if (numel(shape) > MAX_ELEMENTS) {
      throw new OnnxImportError(
        `${this.source}: input '${name}' has shape [${shape}], ${
          numel(shape)
        } elements, over the IR's limit of ${MAX_ELEMENTS}`,
      );
    }
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
    const dims = (t.dims ?? []).map(num);
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new OnnxImportError(`${at} has dims [${dims}], which must be non-negative integers`);
    }
    const tooBig = tensorSizeProblem(numel(dims), `dims [${dims}]`);
    if (tooBig) throw new OnnxImportError(`${at}: ${tooBig}`);
    const external = t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL;
    const proto = external
      ? {
        ...t,
        rawData: this.externalData(t, at, numel(dims) * elemBytes(dtypeOfElemType(dt)!)),
        dataLocation: 0,
        externalData: [],
      }
      : t;
    try {
      return tensorFromProto(proto);
    } catch (e) {
      throw new OnnxImportError(`${at}: ${(e as Error).message}`);
    }
  }

  private externalData(t: TensorProto, at: string, expected: number): Uint8Array {
    const entries = new Map((t.externalData ?? []).map((e) => [e.key ?? "", e.value ?? ""]));
    const location = entries.get("location");
    if (!location) throw new OnnxImportError(`${at} is external but names no location`);
    if (this.options.baseDir === undefined) {
      throw new OnnxImportError(
        `${at} is stored in an external file ('${location}'), which needs the model's path`,
      );
    }
    return readExternalData(entries, this.options.baseDir, expected, at);
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

  /** Records every name the nodes (and their subgraphs, recursively) read. */
  private markUsed(nodes: readonly NodeProto[]): void {
    for (const node of nodes) {
      for (const i of node.input ?? []) if (i) this.used.add(i);
      for (const a of node.attribute ?? []) {
        for (const g of [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]) {
          this.markUsed(g.node ?? []);
          for (const o of g.output ?? []) this.used.add(o.name ?? "");
        }
      }
    }
  }

  /**
   * Imports the nodes of subgraph `g` (a branch of node `n`) into the current function, where
   * they read outer values by name; returns the values of its outputs.
   */
  inline(n: NodeCtx, g: OnnxTypes.IGraphProto): Known[] {
    if ((g.input ?? []).length > 0) throw n.fail(`subgraph '${g.name}' has inputs, which is not supported`);
    checkSingleWriters(g, `${this.source}: ${n.label}: subgraph '${g.name ?? ""}'`, new Set(this.env.keys()));
    for (const t of g.initializer ?? []) {
      const name = t.name ?? "";
      const tensor = this.readTensor(t, `initializer '${name}' of subgraph '${g.name}'`);
      this.env.set(name, { kind: "const", tensor, name });
    }
    this.sorted(g.node ?? []).forEach((node) => this.importNode(new NodeCtx(this, node, n.index)));
    return (g.output ?? []).map((o) => {
      const k = this.env.get(o.name ?? "");
      if (!k) throw n.fail(`output '${o.name}' of subgraph '${g.name}' is not computed by any node`);
      return k;
    });
  }

  private importNode(n: NodeCtx): void {
    const domain = n.node.domain ?? "";
    const handler = domain === "" || domain === "ai.onnx" ? HANDLERS[n.op] : undefined;
    if (!handler) throw new OnnxImportError(`${this.source}: ${n.label} is not supported`);
    let result;
    try {
      result = handler(n);
    } catch (e) {
      // A handler's own computation (a ConstantOfShape of 10^10 elements, say) fails as the node.
      if (e instanceof OnnxImportError || !(e instanceof Error)) throw e;
      throw n.fail(e.message);
    }
    const outs = Array.isArray(result) ? result : [result];
    outs.forEach((k, i) => {
      const name = n.node.output?.[i];
      if (name) this.env.set(name, k);
    });
    if (outs.every(isConst)) this.folded++;
  }
}
