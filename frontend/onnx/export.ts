/**
 * ONNX export: writes a function of a verified module (dense or pruned) as an ONNX model,
 * opset 17 and IR version 8, that onnxruntime runs.
 *
 * ```ts
 * const { bytes, notes } = exportOnnx(module, weights);
 * await Deno.writeFile("model.onnx", bytes);
 * ```
 *
 * - The function's parameters become the graph inputs (same names and types; i64 stays INT64),
 *   its returned values the graph outputs (named after the values).
 * - Every weight the function reads becomes an initializer of the same name, in the IR's layout
 *   (`raw_data`, little-endian). A BSR weight is densified to its logical `[out, in]` matrix,
 *   which the notes say. Constants and the small tensors ONNX takes as inputs (shapes, slice
 *   bounds, the scalars of a decomposed GELU) are initializers too.
 * - Each IR op has one small exporter function in `EXPORTERS`; fused ops and GELU, which
 *   opset 17 lacks, are written as the chain of ONNX ops they stand for.
 * - What the IR can express and ONNX (as onnxruntime runs it) cannot is refused with an
 *   `OnnxExportError` naming the op and its place: e.g. an op on a dtype for which onnxruntime
 *   has no CPU kernel (`ORT_KERNEL_DTYPES`), or an op this exporter does not know.
 */

import { AttrReader, formatAttr } from "../../ir/attrs.ts";
import type { Loc, Module, Op, Value } from "../../ir/module.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import { allocData, BsrTensor, type Tensor } from "../../ir/tensor.ts";
import { type DType, numel, type TensorType } from "../../ir/types.ts";
import type { WeightStore } from "../../ir/weights.ts";
import {
  elemTypeOf,
  encodeModel,
  type Onnx,
  onnx,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  tensorProto,
  valueInfo,
} from "./proto.ts";
import { exportQdense, exportQgather } from "./export_quant.ts";
import { ORT_KERNEL_DTYPES } from "./ort_kernels.ts";

export { ORT_KERNEL_DTYPES };
import { GRAD_EXPORTERS } from "./export_grad.ts";

/** Options of `exportOnnx`. */
export interface ExportOptions {
  /** The function to export; `main` by default. */
  readonly func?: string;
  /**
   * How `dense {transpose_b}` and `bsr_dense` get their `[in, out]` matrix. false (default):
   * the initializer keeps the weight's name and `[out, in]` layout and a Transpose node follows
   * it (onnxruntime folds it when it loads the model), so initializers are exactly the weights.
   * true: a pre-transposed initializer `<weight>.T` is written instead.
   */
  readonly pretransposeWeights?: boolean;
  /**
   * How `qdense` is written. `"exact"` (default): its own computation (per-row 7-bit activations),
   * so onnxruntime reproduces the interpreter. `"onnxruntime"`: the form onnxruntime's own dynamic
   * quantization writes and its optimizer fuses into its fast int8 kernels (DynamicQuantizeLinear:
   * uint8 activations with one scale and zero point per tensor; MatMulInteger with the int8
   * weights; the scales applied to the int32 result): the same int8 weights, a different
   * activation quantization, for onnxruntime's int8 speed.
   */
  readonly quantization?: "exact" | "onnxruntime";
  /** `producer_version` of the model; "0.1.0" by default. */
  readonly producerVersion?: string;
}

/** What `exportOnnx` returns. */
export interface OnnxExport {
  /** The serialized `ModelProto`. */
  readonly bytes: Uint8Array;
  /** What the export changed on the way, one line each (densified BSR weights, renamed values, ...). */
  readonly notes: string[];
}

/** The IR holds something ONNX (as onnxruntime runs it) cannot; names the op and its place. */
export class OnnxExportError extends Error {
  /** `loc` is the op's place, when it has one; `reason` the message without it. */
  constructor(readonly loc: Loc | undefined, readonly reason: string) {
    super(loc ? `${loc.file}:${loc.line}:${loc.col}: error: ${reason}` : `error: ${reason}`);
    this.name = "OnnxExportError";
  }
}

type Attribute = Onnx.IAttributeProto;
const AT = onnx.AttributeProto.AttributeType;

const intAttr = (name: string, i: number): Attribute => ({ name, type: AT.INT, i });
const intsAttr = (name: string, ints: readonly number[]): Attribute => ({
  name,
  type: AT.INTS,
  ints: [...ints],
});
const floatAttr = (name: string, f: number): Attribute => ({ name, type: AT.FLOAT, f });

/** The permutation swapping the last two of `rank` dims. */
function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return perm;
}

/** The graph being written: nodes, initializers and unique tensor names. */
class GraphWriter {
  readonly nodes: Onnx.INodeProto[] = [];
  readonly initializers: Onnx.ITensorProto[] = [];
  readonly notes: string[] = [];
  /** The op being exported, for errors. */
  current?: Op;
  private readonly taken = new Set<string>();
  /** ONNX names of parameters and op results. */
  private readonly values = new Map<Value, string>();
  /** ONNX names of weights (by IR name), and which have their initializer written. */
  private readonly weightNames = new Map<string, string>();
  private readonly written = new Set<string>();
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly m: Module,
    private readonly weights: WeightStore,
    readonly options: ExportOptions,
  ) {}

  /** Claims `wanted`, or `wanted_1`, `wanted_2`, ... when it is taken. */
  fresh(wanted: string): string {
    let name = wanted;
    for (let i = 1; this.taken.has(name); i++) name = `${wanted}_${i}`;
    this.taken.add(name);
    return name;
  }

  /** Claims a name for a parameter, weight or op result (its own when free), noting a rename. */
  claim(v: Value): void {
    const name = this.fresh(v.name);
    if (name !== v.name) this.notes.push(`${v.ref} is named '${name}' in ONNX ('${v.name}' is taken)`);
    if (v.kind === "weight") this.weightNames.set(v.name, name);
    else this.values.set(v, name);
  }

  /** The error refusing the current op: `cannot export 'gelu' (%y) to ONNX: why`, at the op. */
  error(why: string): OnnxExportError {
    const op = this.current;
    const what = op ? `cannot export '${op.name}' (${op.result.ref}) to ONNX` : "cannot export to ONNX";
    return new OnnxExportError(op?.loc, `${what}: ${why}`);
  }

  /** Refuses the current op. */
  refuse(why: string): never {
    throw this.error(why);
  }

  /** The ONNX name claimed for a value or weight. */
  claimed(v: Value): string {
    const name = v.kind === "weight" ? this.weightNames.get(v.name) : this.values.get(v);
    if (name === undefined) throw new Error(`internal error: ${v.ref} has no ONNX name`);
    return name;
  }

  /** The ONNX name of a value to read; a weight's initializer is written on first use. */
  name(v: Value): string {
    const name = this.claimed(v);
    if (v.kind === "weight" && !this.written.has(name)) {
      const t = this.weightData(v);
      if (t instanceof BsrTensor) this.refuse(`BSR weight ${v.ref} is used where ONNX needs a dense tensor`);
      this.written.add(name);
      this.initializers.push(tensorProto(name, v.type, t.data));
    }
    return name;
  }

  /** The data of weight `v` from the store, with the op's place on failure. */
  weightData(v: Value): Tensor {
    const w = this.m.weights.get(v.name);
    if (!w) this.refuse(`weight ${v.ref} is not declared`);
    try {
      return this.weights.get(w);
    } catch (e) {
      return this.refuse(`cannot read weight ${v.ref}: ${(e as Error).message}`);
    }
  }

  /** Memoizes a tensor name under `key` (shared initializers, transposed weights, ...). */
  memo(key: string, make: () => string): string {
    let name = this.cache.get(key);
    if (name === undefined) {
      name = make();
      this.cache.set(key, name);
    }
    return name;
  }

  /** Writes an initializer named `name` (claimed already, or claimed fresh when `fresh`). */
  initializer(name: string, type: TensorType, data: ArrayLike<number>, fresh = true): string {
    const n = fresh ? this.fresh(name) : name;
    this.initializers.push(tensorProto(n, type, data));
    return n;
  }

  /** A shared scalar initializer of a dtype, e.g. the 0.5 of GELU. */
  scalar(value: number, dtype: DType): string {
    return this.memo(
      `scalar:${dtype}:${value}`,
      () => this.initializer(`const.${dtype}.${value}`, { shape: [], dtype }, [value]),
    );
  }

  /** A 1-D INT64 initializer (shapes, slice bounds), shared by the users of one name and value. */
  int64s(wanted: string, values: readonly number[]): string {
    return this.memo(
      `i64:${wanted}:${values.join(",")}`,
      () => this.initializer(wanted, { shape: [values.length], dtype: "i64" }, values),
    );
  }

  /**
   * Appends a node computing on `dtype` (checked against onnxruntime's kernels) and returns its
   * output's name: `out`, or a fresh one based on the current op's result.
   */
  node(
    opType: string,
    inputs: readonly string[],
    dtype: DType,
    attrs: Attribute[] = [],
    out?: string,
  ): string {
    return this.nodeOutputs(opType, inputs, dtype, 1, attrs, out)[0];
  }

  /** Appends a node with `count` outputs (checked like `node`) and returns their names. */
  nodeOutputs(
    opType: string,
    inputs: readonly string[],
    dtype: DType,
    count: number,
    attrs: Attribute[] = [],
    out?: string,
  ): string[] {
    const kernels = ORT_KERNEL_DTYPES[opType];
    if (kernels && !kernels.includes(dtype)) {
      this.refuse(`onnxruntime has no ${opType} kernel for ${dtype} (it takes ${kernels.join(", ")})`);
    }
    const base = `${this.current?.result.name ?? "t"}/${opType}`;
    const output = Array.from({ length: count }, (_, i) => i === 0 && out ? out : this.fresh(base));
    this.nodes.push({ name: output[0], opType, input: [...inputs], output, attribute: attrs });
    return output;
  }

  /**
   * The `[in, out]` matrix of `w`, stored `[out, in]` (the data of a BSR weight comes from
   * `dense`): a Transpose node after the weight's initializer, or with `pretransposeWeights` a
   * transposed initializer `<weight>.T`.
   */
  transposed(w: Value, dense?: () => Float32Array): string {
    return this.memo(`T:${w.ref}`, () => {
      const d = w.type.dtype;
      if (w.kind === "weight" && this.options.pretransposeWeights) {
        const [n, k] = w.type.shape;
        const data = dense ? dense() : this.weightData(w).data;
        const t = allocData(d, n * k);
        for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) t[j * n + i] = data[i * k + j];
        return this.initializer(`${w.name}.T`, { shape: [k, n], dtype: d }, t);
      }
      const src = dense ? this.denseInitializer(w, dense) : this.name(w);
      return this.node("Transpose", [src], d, [intsAttr("perm", [1, 0])], this.fresh(`${w.name}.T`));
    });
  }

  /** The densified `[N, K]` initializer of BSR weight `w` (under its name; bsr_dense_grad_x/w). */
  bsrMatrix(w: Value): string {
    const bsr = this.weightData(w);
    if (!(bsr instanceof BsrTensor)) return this.refuse(`weight ${w.ref} is not stored as BSR`);
    return this.denseInitializer(w, () => densify(bsr));
  }

  /** The initializer of a BSR weight, densified to its logical `[out, in]` matrix, under the weight's name. */
  denseInitializer(w: Value, dense: () => Float32Array): string {
    const name = this.claimed(w);
    if (!this.written.has(name)) {
      this.written.add(name);
      this.initializer(name, { shape: w.type.shape, dtype: w.type.dtype }, dense(), false);
    }
    return name;
  }
}

/** Exports one op: writes its nodes and returns the name of the tensor holding its result. */
type Exporter = (op: Op, g: GraphWriter, a: AttrReader) => string;

/** The dtype of an op's result. */
const dt = (op: Op): DType => op.result.type.dtype;

/** An elementwise op with the same ONNX name and operands. */
function same(opType: string): Exporter {
  return (op, g) => g.node(opType, op.operands.map((v) => g.name(v)), op.operands[0].type.dtype);
}

/** GELU, exact: x·0.5·(1 + erf(x/√2)), written as PyTorch exports it (Div, Erf, Add, Mul, Mul). */
function geluErf(g: GraphWriter, x: string, d: DType): string {
  const erf = g.node("Erf", [g.node("Div", [x, g.scalar(Math.SQRT2, d)], d)], d);
  const onePlus = g.node("Add", [erf, g.scalar(1, d)], d);
  return g.node("Mul", [g.node("Mul", [x, onePlus], d), g.scalar(0.5, d)], d);
}

/** GELU, tanh form: x·0.5·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
function geluTanh(g: GraphWriter, x: string, d: DType): string {
  const cube = g.node("Mul", [g.node("Mul", [x, x], d), x], d);
  const inner = g.node("Add", [x, g.node("Mul", [cube, g.scalar(0.044715, d)], d)], d);
  const th = g.node("Tanh", [g.node("Mul", [inner, g.scalar(Math.sqrt(2 / Math.PI), d)], d)], d);
  const onePlus = g.node("Add", [th, g.scalar(1, d)], d);
  return g.node("Mul", [g.node("Mul", [x, onePlus], d), g.scalar(0.5, d)], d);
}

/** The `activation` attribute of dense and bsr_dense, written after the bias. */
function activation(g: GraphWriter, x: string, name: string, d: DType): string {
  switch (name) {
    case "none":
      return x;
    case "gelu":
      return geluErf(g, x, d);
    case "gelu_tanh":
      return geluTanh(g, x, d);
    case "tanh":
      return g.node("Tanh", [x], d);
    default:
      return g.refuse(`unknown activation '${name}'`);
  }
}

/** MatMul of x and the `[in, out]` matrix, then the bias and the activation. */
function linear(
  g: GraphWriter,
  op: Op,
  a: AttrReader,
  x: string,
  w: string,
  bias: Value | undefined,
): string {
  const d = dt(op);
  const mm = g.node("MatMul", [x, w], d);
  const y = bias ? g.node("Add", [mm, g.name(bias)], d) : mm;
  return activation(g, y, a.string("activation"), d);
}

/** The logical `[N, K]` matrix of a BSR weight. */
function densify(w: BsrTensor): Float32Array {
  const [n, k] = w.sparseType.shape;
  const [r, c] = w.sparseType.sparse!.block;
  const out = new Float32Array(n * k);
  for (let br = 0; br + 1 < w.indptr.length; br++) {
    for (let b = w.indptr[br]; b < w.indptr[br + 1]; b++) {
      const col0 = w.indices[b] * c;
      for (let i = 0; i < r && br * r + i < n; i++) {
        for (let j = 0; j < c && col0 + j < k; j++) {
          out[(br * r + i) * k + col0 + j] = w.data[(b * r + i) * c + j];
        }
      }
    }
  }
  return out;
}

/** One exporter per IR op. */
export const EXPORTERS: Readonly<Record<string, Exporter>> = {
  add: same("Add"),
  sub: same("Sub"),
  mul: same("Mul"),
  // Integer Div truncates toward zero, as the IR's div does. An integer division by zero is a
  // run-time error in onnxruntime; the IR gives 0 (i32, i8, u8) or ±inf (i64) there.
  div: same("Div"),
  pow: same("Pow"),
  tanh: same("Tanh"),
  erf: same("Erf"),
  sqrt: same("Sqrt"),
  where(op, g) {
    const [cond, x, y] = op.operands;
    let c = g.name(cond);
    if (cond.type.dtype !== "bool") {
      c = g.node("Cast", [c], cond.type.dtype, [intAttr("to", elemTypeOf("bool"))]);
    }
    return g.node("Where", [c, g.name(x), g.name(y)], dt(op));
  },
  gather: (op, g, a) =>
    g.node("Gather", op.operands.map((v) => g.name(v)), dt(op), [intAttr("axis", a.int("axis"))]),
  gelu(op, g, a) {
    const x = g.name(op.operands[0]);
    return a.string("approximation") === "tanh" ? geluTanh(g, x, dt(op)) : geluErf(g, x, dt(op));
  },
  dense(op, g, a) {
    const [x, w, bias] = op.operands;
    const rank = x.type.shape.length;
    let xn = g.name(x);
    if (a.bool("transpose_a") && rank >= 2) {
      xn = g.node("Transpose", [xn], dt(op), [intsAttr("perm", swapLastTwo(rank))]);
    }
    const wn = a.bool("transpose_b") ? g.transposed(w) : g.name(w);
    return linear(g, op, a, xn, wn, bias);
  },
  bsr_dense(op, g, a) {
    const [x, w, bias] = op.operands;
    const bsr = g.weightData(w);
    if (!(bsr instanceof BsrTensor)) return g.refuse(`weight ${w.ref} is not stored as BSR`);
    let cached: Float32Array | undefined;
    const dense = () => cached ??= densify(bsr);
    const s = w.type.sparse!;
    const zeros = dense().reduce((n, v) => v === 0 ? n + 1 : n, 0) / numel(w.type.shape);
    g.notes.push(
      `bsr_dense ${op.result.ref}: weight ${w.ref} exported densified ` +
        `(${s.block[0]}x${s.block[1]} blocks, ${Math.round(zeros * 100)}% zeros)`,
    );
    return linear(g, op, a, g.name(x), g.transposed(w, dense), bias);
  },
  batch_matmul(op, g, a) {
    const [x, y] = op.operands.map((v, i) => {
      const name = g.name(v);
      const flag = a.bool(i === 0 ? "transpose_a" : "transpose_b");
      const perm = swapLastTwo(v.type.shape.length);
      return flag ? g.node("Transpose", [name], dt(op), [intsAttr("perm", perm)]) : name;
    });
    return g.node("MatMul", [x, y], dt(op));
  },
  reshape(op, g) {
    const shape = op.result.type.shape;
    const allowZero = shape.includes(0) ? [intAttr("allowzero", 1)] : [];
    const target = g.int64s(`shape.${shape.join("x") || "scalar"}`, shape);
    return g.node("Reshape", [g.name(op.operands[0]), target], dt(op), allowZero);
  },
  transpose: (op, g, a) =>
    g.node("Transpose", [g.name(op.operands[0])], dt(op), [intsAttr("perm", a.ints("perm"))]),
  softmax(op, g, a) {
    const [x, mask] = op.operands;
    const z = mask ? g.node("Add", [g.name(x), g.name(mask)], dt(op)) : g.name(x);
    return g.node("Softmax", [z], dt(op), [intAttr("axis", a.int("axis"))]);
  },
  layer_norm(op, g, a) {
    const [x, gamma, beta] = op.operands;
    return layerNorm(g, op, a, g.name(x), gamma, beta);
  },
  add_layer_norm(op, g, a) {
    const [x, residual, gamma, beta] = op.operands;
    const sum = g.node("Add", [g.name(x), g.name(residual)], dt(op));
    return layerNorm(g, op, a, sum, gamma, beta);
  },
  slice(op, g, a) {
    const x = op.operands[0];
    const starts = a.ints("starts");
    const axes = a.has("axes") ? a.ints("axes") : starts.map((_, i) => i);
    const steps = a.has("steps") ? a.ints("steps") : starts.map(() => 1);
    const base = op.result.name;
    const inputs = [
      g.name(x),
      g.int64s(`${base}.starts`, starts),
      g.int64s(`${base}.ends`, a.ints("ends")),
      g.int64s(`${base}.axes`, axes),
      g.int64s(`${base}.steps`, steps),
    ];
    return g.node("Slice", inputs, dt(op));
  },
  constant(op, g, a) {
    const lit = a.dense("value");
    const n = numel(op.result.type.shape);
    const values = lit.shape.length === 0 ? new Array<number>(n).fill(lit.values[0]) : lit.values;
    return g.initializer(g.claimed(op.result), op.result.type, values, false);
  },
  cast: (op, g) =>
    g.node("Cast", [g.name(op.operands[0])], op.operands[0].type.dtype, [intAttr("to", elemTypeOf(dt(op)))]),
  reduce_mean: (op, g, a) =>
    g.node("ReduceMean", [g.name(op.operands[0])], dt(op), [
      intsAttr("axes", a.ints("axes")),
      intAttr("keepdims", a.bool("keepdims") ? 1 : 0),
    ]),
  concat: (op, g, a) =>
    g.node("Concat", op.operands.map((v) => g.name(v)), dt(op), [intAttr("axis", a.int("axis"))]),
  qdense: (op, g, a) => exportQdense(op, g, a, activation),
  qgather: (op, g) => exportQgather(op, g),
  // The ops autodiff adds: exp, log, reduce_sum, cross_entropy(_grad), scatter_add, slice_grad,
  // softmax_grad, layer_norm_grad, gelu_grad, bsr_dense_grad_x/w.
  ...GRAD_EXPORTERS,
};

/** LayerNormalization over dims axis.. (beta optional in opset 17). */
function layerNorm(g: GraphWriter, op: Op, a: AttrReader, x: string, gamma: Value, beta?: Value): string {
  const inputs = [x, g.name(gamma), ...(beta ? [g.name(beta)] : [])];
  return g.node("LayerNormalization", inputs, dt(op), [
    intAttr("axis", a.int("axis")),
    floatAttr("epsilon", a.float("epsilon")),
  ]);
}

/**
 * Writes function `options.func` (`main`) of a verified module as an ONNX model, with the
 * weights from `weights`. Throws `OnnxExportError` for what ONNX or onnxruntime cannot run.
 */
export function exportOnnx(m: Module, weights: WeightStore, options: ExportOptions = {}): OnnxExport {
  const fname = options.func ?? "main";
  const f = m.func(fname);
  if (!f) throw new OnnxExportError(m.loc, `cannot export to ONNX: the module has no function '@${fname}'`);
  const g = new GraphWriter(m, weights, options);
  // Names: parameters first (the graph inputs), then the weights the function reads (the
  // initializers), then the op results; temporaries get what is left.
  f.params.forEach((p) => g.claim(p));
  const read = [...f.body.flatMap((op) => op.operands), ...f.returns];
  const used = new Set(read.filter((v) => v.kind === "weight").map((v) => v.name));
  for (const w of m.weights.values()) if (used.has(w.name)) g.claim(w);
  f.body.forEach((op) => g.claim(op.result));
  const inputs = f.params.map((p) => valueInfo(g.claimed(p), p.type));
  const valueInfos: Onnx.IValueInfoProto[] = [];

  for (const op of f.body) {
    g.current = op;
    const exporter = Object.hasOwn(EXPORTERS, op.name) ? EXPORTERS[op.name] : undefined;
    const def = builtinRegistry.get(op.name);
    if (!exporter || !def) {
      throw g.error(
        `no ONNX exporter for op '${op.name}' (exported ops: ${Object.keys(EXPORTERS).sort().join(", ")})`,
      );
    }
    const start = g.nodes.length;
    const result = exporter(op, g, new AttrReader(def.attrs, op.attrs));
    const name = g.claimed(op.result);
    if (result === name) continue; // a constant: an initializer of the value's own name
    // Name the op's last node's output after the IR value, or copy the result with an Identity.
    const last = g.nodes[g.nodes.length - 1];
    if (g.nodes.length > start && last.output![0] === result) {
      last.output = [name];
      last.name = name;
    } else {
      g.node("Identity", [result], dt(op), [], name);
    }
    valueInfos.push(valueInfo(name, op.result.type));
  }
  g.current = undefined;

  // Outputs: the returned values by name; a parameter, weight, constant or repeated value is
  // copied by an Identity node, as a graph output must be a node's output of its own.
  const outputs: Onnx.IValueInfoProto[] = [];
  const produced = new Set(g.nodes.map((n) => n.output![0]));
  const seen = new Set<string>();
  f.returns.forEach((v, i) => {
    if (v.type.sparse) {
      throw new OnnxExportError(
        f.returnLoc,
        `cannot export to ONNX: return #${i} is the BSR weight ${v.ref}`,
      );
    }
    let name = g.name(v);
    if (!produced.has(name) || seen.has(name)) {
      name = g.node("Identity", [name], v.type.dtype, [], g.fresh(`${v.name}.out`));
    }
    seen.add(name);
    outputs.push(valueInfo(name, v.type));
  });
  const outputNames = new Set(outputs.map((o) => o.name));

  const unused = [...m.weights.keys()].filter((n) => !used.has(n));
  if (unused.length > 0) {
    g.notes.push(
      `${unused.length} weight(s) not read by @${fname} were not exported: @${unused.join(", @")}`,
    );
  }
  const others = m.funcs.filter((h) => h !== f).map((h) => `@${h.name}`);
  if (others.length > 0) g.notes.push(`only @${fname} is exported; not ${others.join(", ")}`);

  const model: Onnx.IModelProto = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: "", version: ONNX_OPSET }],
    producerName: "sparrow",
    producerVersion: options.producerVersion ?? "0.1.0",
    docString: `Sparrow module @${m.name}, function @${fname}`,
    metadataProps: [...m.attrs].map(([key, a]) => ({ key: `sparrow.${key}`, value: formatAttr(a) })),
    graph: {
      name: m.name,
      node: g.nodes,
      initializer: g.initializers,
      input: inputs,
      output: outputs,
      valueInfo: valueInfos.filter((v) => !outputNames.has(v.name)),
    },
  };
  return { bytes: encodeModel(model), notes: g.notes };
}
