/**
 * ONNX import: BERT-like graphs built here the way torch.onnx writes them (decomposed LayerNorm
 * and GELU, Shape → Gather → Unsqueeze → Concat → Reshape subgraphs, MatMul + Add, Gemm,
 * Squeeze/Unsqueeze in their opset 11 and 13 forms, Slice, Where, Cast, ConstantOfShape), imported,
 * run through `recognize`, and compared with onnxruntime on the same bytes; the error messages;
 * and a synthetic BERT exported and imported back.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { exportOnnx } from "../frontend/onnx/export.ts";
import { importOnnx, irName, OnnxImportError, onnxToModule } from "../frontend/onnx/import.ts";
import { encodeModel, type Onnx, onnx, tensorProto } from "../frontend/onnx/proto.ts";
import { bertConfig, buildBertModule, syntheticBertWeights } from "../frontend/synthetic_bert.ts";
import { seededInputs } from "../ir/inputs.ts";
import { interpret } from "../ir/interpreter.ts";
import { loadModule, loadWeights } from "../ir/load.ts";
import type { Module } from "../ir/module.ts";
import { print } from "../ir/printer.ts";
import { Random } from "../ir/random.ts";
import { Tensor } from "../ir/tensor.ts";
import { type DType, numel } from "../ir/types.ts";
import { memoryStore, type WeightStore } from "../ir/weights.ts";
import { builtinPasses } from "../passes/index.ts";
import { runPipeline } from "../passes/manager.ts";
import { parsePipeline } from "../passes/pipeline.ts";
import { recognize } from "../passes/recognize.ts";
import { PassRegistry } from "../passes/registry.ts";

const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

// --- Building ONNX graphs ----------------------------------------------------------------------

type Attr = Onnx.IAttributeProto;
const int = (name: string, i: number): Attr => ({ name, type: AT.INT, i });
const float = (name: string, f: number): Attr => ({ name, type: AT.FLOAT, f });
const ints = (name: string, v: number[]): Attr => ({ name, type: AT.INTS, ints: v });
const tensorAttr = (name: string, t: Onnx.ITensorProto): Attr => ({ name, type: AT.TENSOR, t });

/** A graph written the way torch.onnx names things: `/scope/Op_N`, outputs `/scope/Op_N_output_0`. */
class GraphBuilder {
  readonly nodes: Onnx.INodeProto[] = [];
  readonly inits: Onnx.ITensorProto[] = [];
  readonly inputs: Onnx.IValueInfoProto[] = [];
  readonly outputs: Onnx.IValueInfoProto[] = [];
  private count = 0;
  readonly rng = new Random(7);

  constructor(readonly opset: number) {}

  /** Adds a node; returns its output names. */
  nodeN(op: string, inputs: string[], attrs: Attr[] = [], outputs = 1, scope = ""): string[] {
    const name = `${scope}/${op}${this.count++ === 0 ? "" : `_${this.count}`}`;
    const outs = Array.from({ length: outputs }, (_, i) => `${name}_output_${i}`);
    this.nodes.push({ name, opType: op, input: inputs, output: outs, attribute: attrs });
    return outs;
  }

  node(op: string, inputs: string[], attrs: Attr[] = [], scope = ""): string {
    return this.nodeN(op, inputs, attrs, 1, scope)[0];
  }

  /** An initializer (raw_data, or the typed fields when `typed`). */
  init(name: string, dims: number[], data: ArrayLike<number>, dtype: DType = "f32", typed = false): string {
    if (typed && dtype === "f32") {
      this.inits.push({ name, dims, dataType: DT.FLOAT, floatData: Array.from(data) });
    } else if (typed && dtype === "i64") {
      this.inits.push({ name, dims, dataType: DT.INT64, int64Data: Array.from(data) });
    } else {
      this.inits.push(tensorProto(name, { shape: dims, dtype }, data));
    }
    return name;
  }

  /** A random f32 initializer, normal(mean, std). */
  weight(name: string, dims: number[], std = 0.2, mean = 0): string {
    return this.init(name, dims, Array.from({ length: numel(dims) }, () => this.rng.normal(mean, std)));
  }

  /** A Constant node holding a scalar (torch writes Python numbers so). */
  scalar(v: number, dtype: DType = "f32"): string {
    return this.node("Constant", [], [tensorAttr("value", tensorProto("", { shape: [], dtype }, [v]))]);
  }

  /** A Constant node holding a 1-D i64 tensor (axes, shapes, slice bounds). */
  i64s(values: number[]): string {
    return this.node("Constant", [], [
      tensorAttr("value", { dims: [values.length], dataType: DT.INT64, int64Data: values }),
    ]);
  }

  input(name: string, elemType: number, dims: (number | string)[]): string {
    const dim = dims.map((d) => typeof d === "number" ? { dimValue: d } : { dimParam: d });
    this.inputs.push({ name, type: { tensorType: { elemType, shape: { dim } } } });
    return name;
  }

  output(name: string, elemType = DT.FLOAT as number): void {
    this.outputs.push({ name, type: { tensorType: { elemType } } });
  }

  bytes(): Uint8Array {
    const irVersion = this.opset >= 19 ? 9 : this.opset >= 15 ? 8 : this.opset >= 13 ? 7 : 6;
    return encodeModel({
      irVersion,
      producerName: "pytorch",
      producerVersion: "2.1.0",
      opsetImport: [{ domain: "", version: this.opset }],
      graph: {
        name: "main_graph",
        node: this.nodes,
        initializer: this.inits,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }

  // Opset-dependent forms.
  unsqueeze(x: string, axes: number[], scope = ""): string {
    return this.opset >= 13
      ? this.node("Unsqueeze", [x, this.i64s(axes)], [], scope)
      : this.node("Unsqueeze", [x], [ints("axes", axes)], scope);
  }

  squeeze(x: string, axes: number[], scope = ""): string {
    return this.opset >= 13
      ? this.node("Squeeze", [x, this.i64s(axes)], [], scope)
      : this.node("Squeeze", [x], [ints("axes", axes)], scope);
  }
}

type GeluForm = "div" | "mul" | "tanh";

interface BertLikeOptions {
  readonly opset: number;
  /** The GELU form of each layer. */
  readonly gelus: readonly GeluForm[];
  /** LayerNorm decomposed as torch < 17 writes it, or the LayerNormalization op (opset 17). */
  readonly layerNorm: "decomposed" | "op";
}

const H = 32, HEADS = 2, D = 16, FF = 64, VOCAB = 50, POSITIONS = 40, LABELS = 3;

/** A BERT-like classifier with the structure and op forms of a torch.onnx export. */
function bertLike(o: BertLikeOptions): Uint8Array {
  const g = new GraphBuilder(o.opset);
  const ids = g.input("input_ids", DT.INT64, ["batch_size", "sequence_length"]);
  const mask = g.input("attention_mask", DT.INT64, ["batch_size", "sequence_length"]);

  const layerNorm = (x: string, prefix: string, scope: string): string => {
    const gamma = g.weight(`${prefix}.weight`, [H], 0.1, 1);
    const beta = g.weight(`${prefix}.bias`, [H], 0.1);
    if (o.layerNorm === "op") {
      return g.node(
        "LayerNormalization",
        [x, gamma, beta],
        [int("axis", -1), float("epsilon", 1e-12)],
        scope,
      );
    }
    const mean = g.node("ReduceMean", [x], [ints("axes", [-1])], scope);
    const d = g.node("Sub", [x, mean], [], scope);
    const sq = g.node("Pow", [d, g.scalar(2)], [], scope);
    const variance = g.node("ReduceMean", [sq], [ints("axes", [-1])], scope);
    const std = g.node("Sqrt", [g.node("Add", [variance, g.scalar(1e-12)], [], scope)], [], scope);
    const normed = g.node("Div", [d, std], [], scope);
    return g.node("Add", [g.node("Mul", [normed, gamma], [], scope), beta], [], scope);
  };

  let matmuls = 100;
  /** torch's Linear on a 3-D input: MatMul with the pre-transposed [in, out] weight, then Add(bias, .). */
  const linear = (x: string, prefix: string, inF: number, outF: number, scope: string): string => {
    const w = g.weight(`onnx::MatMul_${matmuls++}`, [inF, outF]);
    const b = g.weight(`${prefix}.bias`, [outF], 0.1);
    return g.node("Add", [b, g.node("MatMul", [x, w], [], scope)], [], scope);
  };

  const gelu = (x: string, form: GeluForm, scope: string): string => {
    if (form === "tanh") {
      const half = g.node("Mul", [x, g.scalar(0.5)], [], scope);
      const cube = g.node("Pow", [x, g.scalar(3)], [], scope);
      const inner = g.node("Add", [x, g.node("Mul", [cube, g.scalar(0.044715)], [], scope)], [], scope);
      const th = g.node(
        "Tanh",
        [g.node("Mul", [inner, g.scalar(Math.sqrt(2 / Math.PI))], [], scope)],
        [],
        scope,
      );
      return g.node("Mul", [half, g.node("Add", [th, g.scalar(1)], [], scope)], [], scope);
    }
    const z = form === "div"
      ? g.node("Div", [x, g.scalar(Math.SQRT2)], [], scope)
      : g.node("Mul", [g.scalar(Math.SQRT1_2), x], [], scope);
    const onePlus = form === "div"
      ? g.node("Add", [g.node("Erf", [z], [], scope), g.scalar(1)], [], scope)
      : g.node("Add", [g.scalar(1), g.node("Erf", [z], [], scope)], [], scope);
    return form === "div"
      ? g.node("Mul", [g.node("Mul", [x, onePlus], [], scope), g.scalar(0.5)], [], scope)
      : g.node("Mul", [g.node("Mul", [g.scalar(0.5), x], [], scope), onePlus], [], scope);
  };

  // Embeddings: word + token type (zeros from ConstantOfShape) + position (a sliced buffer).
  const scope = "/bert/embeddings";
  const word = g.node(
    "Gather",
    [g.weight("bert.embeddings.word_embeddings.weight", [VOCAB, H]), ids],
    [],
    scope,
  );
  const idsShape = g.node("Shape", [ids], [], scope);
  const zeros = g.node("ConstantOfShape", [idsShape], [
    tensorAttr("value", { dims: [1], dataType: DT.INT64, int64Data: [0] }),
  ], scope);
  const type = g.node(
    "Gather",
    [g.weight("bert.embeddings.token_type_embeddings.weight", [2, H]), zeros],
    [],
    scope,
  );
  const seqLen = g.node("Gather", [idsShape, g.scalar(1, "i64")], [], scope);
  const positionIds = g.init(
    "bert.embeddings.position_ids",
    [1, POSITIONS],
    Array.from({ length: POSITIONS }, (_, i) => i),
    "i64",
    true,
  );
  const positions = g.node(
    "Slice",
    [positionIds, g.i64s([0]), g.unsqueeze(seqLen, [0], scope), g.i64s([1])],
    [],
    scope,
  );
  const pos = g.node(
    "Gather",
    [g.weight("bert.embeddings.position_embeddings.weight", [POSITIONS, H]), positions],
    [],
    scope,
  );
  const emb = g.node("Add", [g.node("Add", [word, type], [], scope), pos], [], scope);
  let hidden = layerNorm(emb, "bert.embeddings.LayerNorm", `${scope}/LayerNorm`);

  // The additive mask: Unsqueeze twice, Cast to bool, Where(mask, 0, -10000).
  const m4 = g.unsqueeze(g.unsqueeze(mask, [1], "/bert"), [2], "/bert");
  const maskBool = g.node("Cast", [m4], [int("to", DT.BOOL)], "/bert");
  const additive = g.node("Where", [maskBool, g.scalar(0), g.scalar(-10000)], [], "/bert");

  /** Reshape x [B, S, H] to [B, S, heads, D] with a shape computed from Shape(x). */
  const splitHeads = (x: string, s: string): string => {
    const shape = g.node("Shape", [x], [], s);
    const b = g.unsqueeze(g.node("Gather", [shape, g.scalar(0, "i64")], [int("axis", 0)], s), [0], s);
    const n = g.unsqueeze(g.node("Gather", [shape, g.scalar(1, "i64")], [int("axis", 0)], s), [0], s);
    const target = g.node("Concat", [b, n, g.i64s([HEADS]), g.i64s([D])], [int("axis", 0)], s);
    return g.node("Reshape", [x, target], [], s);
  };

  o.gelus.forEach((form, i) => {
    const l = `bert.encoder.layer.${i}`, s = `/bert/encoder/layer.${i}`;
    const x = hidden;
    const q = splitHeads(linear(x, `${l}.attention.self.query`, H, H, `${s}/attention/self/query`), `${s}/q`);
    const k = splitHeads(linear(x, `${l}.attention.self.key`, H, H, `${s}/attention/self/key`), `${s}/k`);
    const v = splitHeads(linear(x, `${l}.attention.self.value`, H, H, `${s}/attention/self/value`), `${s}/v`);
    const qt = g.node("Transpose", [q], [ints("perm", [0, 2, 1, 3])], s);
    const kt = g.node("Transpose", [k], [ints("perm", [0, 2, 3, 1])], s);
    const vt = g.node("Transpose", [v], [ints("perm", [0, 2, 1, 3])], s);
    const scores = g.node("Div", [g.node("MatMul", [qt, kt], [], s), g.scalar(Math.sqrt(D))], [], s);
    const probs = g.node("Softmax", [g.node("Add", [scores, additive], [], s)], [int("axis", -1)], s);
    const ctx = g.node("Transpose", [g.node("MatMul", [probs, vt], [], s)], [ints("perm", [0, 2, 1, 3])], s);
    const ctxShape = g.node("Shape", [ctx], [], s);
    const b = g.unsqueeze(g.node("Gather", [ctxShape, g.scalar(0, "i64")], [], s), [0], s);
    const n = g.unsqueeze(g.node("Gather", [ctxShape, g.scalar(1, "i64")], [], s), [0], s);
    const merged = g.node(
      "Reshape",
      [ctx, g.node("Concat", [b, n, g.i64s([H])], [int("axis", 0)], s)],
      [],
      s,
    );
    const attnOut = linear(merged, `${l}.attention.output.dense`, H, H, `${s}/attention/output/dense`);
    const ln1 = layerNorm(g.node("Add", [attnOut, x], [], s), `${l}.attention.output.LayerNorm`, `${s}/ln1`);
    const inter = gelu(linear(ln1, `${l}.intermediate.dense`, H, FF, `${s}/intermediate`), form, `${s}/act`);
    const out = linear(inter, `${l}.output.dense`, FF, H, `${s}/output/dense`);
    hidden = layerNorm(g.node("Add", [out, ln1], [], s), `${l}.output.LayerNorm`, `${s}/ln2`);
  });

  // Pooler on the [CLS] row (Slice + Squeeze), classifier: Gemm with transB, as torch writes 2-D Linear.
  const cls = g.squeeze(
    g.node("Slice", [hidden, g.i64s([0]), g.i64s([1]), g.i64s([1])], [], "/bert/pooler"),
    [1],
  );
  const pooled = g.node(
    "Tanh",
    [
      g.node("Gemm", [
        cls,
        g.weight("bert.pooler.dense.weight", [H, H]),
        g.weight("bert.pooler.dense.bias", [H]),
      ], [
        float("alpha", 1),
        float("beta", 1),
        int("transB", 1),
      ], "/bert/pooler"),
    ],
    [],
    "/bert/pooler",
  );
  const logits = g.node(
    "Gemm",
    [
      pooled,
      g.weight("classifier.weight", [LABELS, H]),
      g.weight("classifier.bias", [LABELS]),
    ],
    [int("transB", 1)],
    "/classifier",
  );
  g.nodes.at(-1)!.output = ["logits"];
  g.node("Identity", [hidden], [], "/out");
  g.nodes.at(-1)!.output = ["last_hidden_state"];
  g.output("logits");
  g.output("last_hidden_state");
  void logits;
  return g.bytes();
}

// --- Running both sides -------------------------------------------------------------------------

const passes = () => new PassRegistry([...builtinPasses.filter((p) => p.name !== "recognize"), recognize]);

function recognized(m: Module, weights: WeightStore): Module {
  return runPipeline(m, parsePipeline("recognize", passes()), { weights }).module;
}

/** BERT inputs: random ids, the last `masked` positions masked out. */
function bertInputs(seq: number, masked: number, seed: number): { ids: number[]; mask: number[] } {
  const rng = new Random(seed);
  return {
    ids: Array.from({ length: seq }, () => rng.int(VOCAB)),
    mask: Array.from({ length: seq }, (_, i) => i < seq - masked ? 1 : 0),
  };
}

// onnxruntime-node is a native addon, which Deno loads only with --allow-ffi (`deno task test`
// grants it); without it the tests that need onnxruntime are ignored.

type Ort = typeof import("onnxruntime-node");
type OrtTensor = InstanceType<Ort["Tensor"]>;

/** Whether onnxruntime can run here: it needs --allow-ffi. */
const CAN_ORT = Deno.permissions.querySync({ name: "ffi" }).state === "granted";

/** Runs a model with onnxruntime; outputs by name. */
async function ortRun(
  model: Uint8Array,
  feeds: Record<string, Tensor>,
): Promise<Record<string, Tensor>> {
  const ort: Ort = await import("onnxruntime-node");
  const toOrt = (t: Tensor): OrtTensor =>
    t.dtype === "i64"
      ? new ort.Tensor("int64", BigInt64Array.from(t.data, (v) => BigInt(v)), [...t.shape])
      : new ort.Tensor("float32", Float32Array.from(t.data), [...t.shape]);
  const session = await ort.InferenceSession.create(model, { logSeverityLevel: 3 });
  try {
    const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, toOrt(t)])));
    return Object.fromEntries(
      session.outputNames.map((name) => {
        const t = out[name];
        const dtype: DType = t.type === "int64" ? "i64" : "f32";
        return [
          name,
          Tensor.from([...t.dims], dtype, Array.from(t.data as ArrayLike<number | bigint>, Number)),
        ];
      }),
    );
  } finally {
    await session.release();
  }
}

const i64 = (values: number[]) => Tensor.from([1, values.length], "i64", values);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Imports, recognizes, interprets and compares with onnxruntime; returns the recognized module. */
async function compareWithOrt(bytes: Uint8Array, seq: number): Promise<{ module: Module; diffs: number[] }> {
  const { module, weights } = onnxToModule(bytes, { seq });
  const store = memoryStore(weights);
  const rec = recognized(module, store);
  const { ids, mask } = bertInputs(seq, 2, seq);
  const ref = await ortRun(bytes, { input_ids: i64(ids), attention_mask: i64(mask) });
  const inputs = [Tensor.from([1, seq], "i64", ids), Tensor.from([1, seq], "i64", mask)];
  const diffs: number[] = [];
  for (const m of [module, rec]) {
    const [logits, hidden] = interpret(m, inputs, store);
    assert.deepEqual(logits.shape, [1, LABELS]);
    assert.deepEqual(hidden.shape, [1, seq, H]);
    diffs.push(maxAbsDiff(logits.data, ref.logits.data));
    diffs.push(maxAbsDiff(hidden.data, ref.last_hidden_state.data));
  }
  for (const d of diffs) assert.ok(d <= 1e-4, `max abs diff ${d} > 1e-4 (${diffs.join(", ")})`);
  return { module: rec, diffs };
}

function opCounts(m: Module): Map<string, number> {
  const counts = new Map<string, number>();
  for (const op of m.funcs[0].body) counts.set(op.name, (counts.get(op.name) ?? 0) + 1);
  return counts;
}

// --- The comparisons ----------------------------------------------------------------------------

Deno.test("onnx import: a torch-style BERT at opset 13 agrees with onnxruntime, before and after recognize", {
  ignore: !CAN_ORT,
}, async () => {
  const bytes = bertLike({ opset: 13, gelus: ["div", "tanh"], layerNorm: "decomposed" });
  const { module, diffs } = await compareWithOrt(bytes, 8);
  const counts = opCounts(module);
  assert.equal(counts.get("layer_norm"), 5);
  assert.equal(counts.get("gelu"), 2);
  assert.equal(counts.get("dense"), 12 + 2); // 6 Linear per layer, pooler and classifier
  assert.equal(counts.get("softmax"), 2);
  for (const gone of ["reduce_mean", "erf", "pow", "sqrt", "batch_matmul_"]) {
    assert.ok(!counts.has(gone), gone);
  }
  assert.equal(counts.get("div"), 2); // the attention scale
  const text = print(module);
  assert.match(text, /gelu %[^ ]+ \{approximation = erf\}/);
  assert.match(text, /gelu %[^ ]+ \{approximation = tanh\}/);
  assert.match(text, /= softmax %[^,]+, %bert\.Where_\d+ \{axis = -1\}/);
  assert.match(
    text,
    /= dense %Squeeze_\d+, @bert\.pooler\.dense\.weight, @bert\.pooler\.dense\.bias \{transpose_b = true\}/,
  );
  // torch's anonymous pre-transposed weight (onnx::MatMul_100) is named after the MatMul node using it.
  assert.match(
    text,
    /@bert\.encoder\.layer\.0\.attention\.self\.query\.weight, @bert\.encoder\.layer\.0\.attention\.self\.query\.bias/,
  );
  assert.doesNotMatch(text, /onnx::MatMul/);
  // The shape subgraphs left nothing: no shape arithmetic, no concat, no i64 ops but the gathers' indices.
  assert.ok(!counts.has("concat"));
  console.log(`opset 13: max abs diff vs onnxruntime: ${diffs.map((d) => d.toExponential(2)).join(", ")}`);
});

Deno.test("onnx import: opset 11 forms (Squeeze/Unsqueeze axes as attributes), Mul-by-1/sqrt2 GELU", {
  ignore: !CAN_ORT,
}, async () => {
  const bytes = bertLike({ opset: 11, gelus: ["mul", "div"], layerNorm: "decomposed" });
  const { module, diffs } = await compareWithOrt(bytes, 6);
  assert.equal(opCounts(module).get("gelu"), 2);
  assert.equal(opCounts(module).get("layer_norm"), 5);
  console.log(`opset 11: max abs diff vs onnxruntime: ${diffs.map((d) => d.toExponential(2)).join(", ")}`);
});

Deno.test("onnx import: opset 17 LayerNormalization", { ignore: !CAN_ORT }, async () => {
  const bytes = bertLike({ opset: 17, gelus: ["tanh"], layerNorm: "op" });
  const { module: m, weights } = onnxToModule(bytes, { seq: 5 });
  assert.equal(opCounts(m).get("layer_norm"), 3);
  assert.match(
    print(m),
    /layer_norm %[^ ]+, @bert\.embeddings\.LayerNorm\.weight, @bert\.embeddings\.LayerNorm\.bias \{axis = -1, epsilon = 1e-12\}/,
  );
  void weights;
  const { diffs } = await compareWithOrt(bytes, 5);
  console.log(`opset 17: max abs diff vs onnxruntime: ${diffs.map((d) => d.toExponential(2)).join(", ")}`);
});

Deno.test(
  "onnx import: importOnnx writes IR and weights that load, verify and run",
  { ignore: !CAN_ORT },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-onnx-" });
    try {
      const bytes = bertLike({ opset: 13, gelus: ["div"], layerNorm: "decomposed" });
      const path = join(dir, "bert-like.onnx");
      await Deno.writeFile(path, bytes);
      const r = await importOnnx(path, join(dir, "out", "bert.sir"), { seq: 7 });
      assert.equal(r.opset, 13);
      assert.deepEqual(r.dims, { batch_size: 1, sequence_length: 7 });
      assert.ok(r.folded > 20, `folded ${r.folded} of ${r.nodes} nodes`);
      const { module, diagnostics } = await loadModule(r.irPath);
      assert.deepEqual(diagnostics, []);
      const text = await Deno.readTextFile(r.irPath);
      assert.match(text, /^\/\/ Imported from bert-like\.onnx \(ONNX opset 13, pytorch 2\.1\.0\)/);
      assert.match(
        text,
        /module @bert-like attributes \{onnx_opset = 13, onnx_producer = "pytorch 2\.1\.0"\}/,
      );
      assert.match(text, /weights "bert\.safetensors"/);
      assert.match(text, /func @main\(%input_ids: tensor<1x7xi64>, %attention_mask: tensor<1x7xi64>\)/);
      const weights = await loadWeights(module!, r.irPath);
      assert.ok(weights.entries().has("bert.embeddings.word_embeddings.weight"));
      assert.ok(weights.entries().has("bert.encoder.layer.0.attention.self.query.weight"));
      const { ids, mask } = bertInputs(7, 1, 3);
      const inputs = [Tensor.from([1, 7], "i64", ids), Tensor.from([1, 7], "i64", mask)];
      const ref = await ortRun(bytes, { input_ids: i64(ids), attention_mask: i64(mask) });
      const [logits] = interpret(module!, inputs, weights);
      assert.ok(maxAbsDiff(logits.data, ref.logits.data) <= 1e-4);
      // At the full length the position_ids buffer is used whole: an i64 weight, as I64 in the file.
      const full = await importOnnx(path, join(dir, "full", "bert.sir"), { seq: POSITIONS, batch: 1 });
      const loaded = (await loadModule(full.irPath)).module!;
      const fullWeights = await loadWeights(loaded, full.irPath);
      assert.equal(fullWeights.entries().get("bert.embeddings.position_ids")?.dtype, "I64");
      const long = bertInputs(POSITIONS, 5, 4);
      const fullRef = await ortRun(bytes, { input_ids: i64(long.ids), attention_mask: i64(long.mask) });
      const fullInputs = [
        Tensor.from([1, POSITIONS], "i64", long.ids),
        Tensor.from([1, POSITIONS], "i64", long.mask),
      ];
      const [fullLogits] = interpret(loaded, fullInputs, fullWeights);
      assert.ok(maxAbsDiff(fullLogits.data, fullRef.logits.data) <= 1e-4);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// --- Smaller graphs: one feature each ----------------------------------------------------------

/** Imports and compares a small graph with one f32 input `x` against onnxruntime. */
async function compareSmall(
  g: GraphBuilder,
  dims: number[],
  outputs: string[],
  options = {},
): Promise<Module> {
  for (const o of outputs) g.output(o);
  const bytes = g.bytes();
  const { module, weights } = onnxToModule(bytes, options);
  const rng = new Random(5);
  const x = Array.from({ length: numel(dims) }, () => rng.normal());
  const ref = await ortRun(bytes, { x: Tensor.from(dims, "f32", x) });
  const got = interpret(module, [Tensor.from(dims, "f32", x)], memoryStore(weights));
  outputs.forEach((o, i) => {
    assert.deepEqual(got[i].shape, ref[o].shape, `${o}: shape`);
    const d = maxAbsDiff(got[i].data, ref[o].data);
    assert.ok(d <= 1e-5, `${o}: max abs diff ${d}`);
  });
  return module;
}

Deno.test(
  "onnx import: Softmax before opset 13 normalizes over all dims from axis on",
  { ignore: !CAN_ORT },
  async () => {
    for (const opset of [11, 13]) {
      const g = new GraphBuilder(opset);
      const x = g.input("x", DT.FLOAT, [2, 3, 4]);
      const y = g.node("Softmax", [x], [int("axis", 1)]);
      await compareSmall(g, [2, 3, 4], [y]);
    }
  },
);

Deno.test("onnx import: MatMul forms, Gemm without transB and with a 2-D C, Flatten, Neg, Expand", {
  ignore: !CAN_ORT,
}, async () => {
  const g = new GraphBuilder(13);
  const x = g.input("x", DT.FLOAT, ["batch", 4]);
  const w = g.weight("w", [4, 3]);
  const dense = g.node("MatMul", [x, w]); // [1, 4] x [4, 3]
  const vec = g.node("MatMul", [g.node("Reshape", [x, g.i64s([4])]), w]); // rank-1 x
  const mv = g.node("MatMul", [g.node("Transpose", [w]), g.node("Reshape", [x, g.i64s([-1])])]); // [3,4]x[4]
  const bmm = g.node("MatMul", [
    g.node("Reshape", [x, g.i64s([2, 2])]),
    g.node("Reshape", [x, g.i64s([2, 2])]),
  ]);
  const gemm = g.node("Gemm", [x, w, g.weight("c", [1, 3])], []);
  const gemm2 = g.node("Gemm", [x, g.node("Transpose", [w]), g.weight("c2", [3])], [int("transB", 1)]);
  const flat = g.node("Flatten", [g.node("Reshape", [x, g.i64s([1, 2, 2])])], [int("axis", 2)]);
  const neg = g.node("Neg", [flat]);
  const expanded = g.node("Expand", [x, g.i64s([3, 1, 4])]);
  const m = await compareSmall(g, [1, 4], [dense, vec, mv, bmm, gemm, gemm2, neg, expanded]);
  const text = print(m);
  assert.match(text, /%MatMul = dense %x, @w : tensor<1x3xf32>/);
  assert.match(text, /%MatMul_4 = dense %Reshape_3, @w : tensor<3xf32>/);
  assert.match(text, /%Transpose_5 = transpose @w \{perm = \[1, 0\]\} : tensor<3x4xf32>/);
  assert.match(text, /%MatMul_8 = reshape %MatMul_8\.mm : tensor<3xf32>/);
  assert.match(
    text,
    /%Gemm_14\.bias = reshape @c : tensor<3xf32>\n +%Gemm_14 = dense %x, @w, %Gemm_14\.bias/,
  );
  assert.match(text, /%Gemm_16 = dense %x, @w, @c2 : tensor<1x3xf32>/); // Transpose(w) with transB: w itself
});

Deno.test("onnx import: Slice with steps and negative bounds, Squeeze without axes, Cast, Where, Concat", {
  ignore: !CAN_ORT,
}, async () => {
  for (const opset of [11, 13]) {
    const g = new GraphBuilder(opset);
    const x = g.input("x", DT.FLOAT, [1, 6, 4]);
    const big = 9223372036854775807n;
    const sl = g.node("Slice", [
      x,
      g.i64s([1, -3]),
      g.i64s([Number(big), 4]),
      g.i64s([1, -1]),
      g.i64s([2, 1]),
    ]);
    const sq = g.node("Squeeze", [g.node("Slice", [x, g.i64s([0]), g.i64s([1]), g.i64s([1])])]);
    const positive = g.node("Cast", [g.node("Cast", [x], [int("to", DT.BOOL)])], [int("to", DT.FLOAT)]);
    const sel = g.node("Where", [g.node("Cast", [sl], [int("to", DT.BOOL)]), sl, g.scalar(-1)]);
    const cat = g.node("Concat", [x, x], [int("axis", -1)]);
    const ones = g.node("ConstantOfShape", [g.i64s([1, 6, 4])], [
      tensorAttr("value", tensorProto("", { shape: [1], dtype: "f32" }, [1])),
    ]);
    const summed = g.node("Add", [x, ones]);
    await compareSmall(g, [1, 6, 4], [sl, sq, positive, sel, cat, summed]);
  }
});

Deno.test(
  "onnx import: Range, Equal, Less, Not evaluated on constants; opset 20 Gelu",
  { ignore: !CAN_ORT },
  async () => {
    const g = new GraphBuilder(13);
    const x = g.input("x", DT.FLOAT, [1, 6, 4]);
    const seq = g.node("Gather", [g.node("Shape", [x]), g.scalar(1, "i64")]);
    const positions = g.node("Range", [g.scalar(0, "i64"), seq, g.scalar(1, "i64")]);
    const third = g.node("Equal", [positions, g.scalar(2, "i64")]);
    const early = g.node("Less", [positions, g.scalar(3, "i64")]);
    const keep = g.node("Cast", [g.node("Not", [third])], [int("to", DT.FLOAT)]);
    const rows = g.node("Reshape", [g.node("Cast", [early], [int("to", DT.FLOAT)]), g.i64s([1, 6, 1])]);
    const y = g.node("Mul", [g.node("Mul", [x, g.node("Reshape", [keep, g.i64s([1, 6, 1])])]), rows]);
    const m = await compareSmall(g, [1, 6, 4], [y]);
    assert.ok(!print(m).includes("range"));
    const h = new GraphBuilder(20);
    const z = h.input("x", DT.FLOAT, [2, 5]);
    const exact = h.node("Gelu", [z]);
    const approx = h.node("Gelu", [z], [{
      name: "approximate",
      type: AT.STRING,
      s: new TextEncoder().encode("tanh"),
    }]);
    const gm = await compareSmall(h, [2, 5], [exact, approx]);
    assert.match(print(gm), /gelu %x \{approximation = erf\}[^]*gelu %x \{approximation = tanh\}/);
  },
);

Deno.test("onnx import: f16 weights are written as F16 and load back", { ignore: !CAN_ORT }, async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-onnx-f16-" });
  try {
    const g = new GraphBuilder(13);
    const x = g.input("x", DT.FLOAT, [2, 4]);
    const rng = new Random(3);
    const w = g.init("w16", [4, 3], Array.from({ length: 12 }, () => rng.normal()), "f16");
    const b = g.init("b16", [3], [0.5, -1, 2], "f16");
    const y = g.node("Add", [g.node("MatMul", [g.node("Cast", [x], [int("to", DT.FLOAT16)]), w]), b]);
    g.output(g.node("Cast", [y], [int("to", DT.FLOAT)]));
    const bytes = g.bytes();
    const path = join(dir, "f16.onnx");
    await Deno.writeFile(path, bytes);
    const r = await importOnnx(path, join(dir, "f16.sir"));
    const { module, diagnostics } = await loadModule(r.irPath);
    assert.deepEqual(diagnostics, []);
    const weights = await loadWeights(module!, r.irPath);
    assert.equal(weights.entries().get("w16")?.dtype, "F16");
    assert.match(print(module!), /dense %Cast, @w16 : tensor<2x3xf16>/);
    const input = Tensor.from([2, 4], "f32", Array.from({ length: 8 }, () => rng.normal()));
    const [got] = interpret(module!, [input], weights);
    const ref = await ortRun(bytes, { x: input });
    const d = maxAbsDiff(got.data, Object.values(ref)[0].data);
    assert.ok(d <= 1e-2, `f16: max abs diff ${d}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- Errors ---------------------------------------------------------------------------------------

function importError(bytes: Uint8Array, options = {}): string {
  try {
    onnxToModule(bytes, options);
  } catch (e) {
    assert.ok(e instanceof OnnxImportError, `${e}`);
    return e.message;
  }
  assert.fail("the import did not fail");
}

Deno.test("onnx import: an unsupported op names the node and its type", () => {
  const g = new GraphBuilder(13);
  const x = g.input("x", DT.FLOAT, [4, 4]);
  g.nodes.push({ name: "Foo_12", opType: "NonMaxSuppression", input: [x, x], output: ["y"] });
  g.output("y");
  assert.equal(importError(g.bytes()), "model.onnx: node 'Foo_12' (NonMaxSuppression) is not supported");
  const h = new GraphBuilder(13);
  const z = h.input("x", DT.FLOAT, [4]);
  h.nodes.push({ opType: "FastGelu", domain: "com.microsoft", input: [z], output: ["y"] });
  h.output("y");
  assert.equal(
    importError(h.bytes(), { source: "m.onnx" }),
    "m.onnx: node #0 (com.microsoft.FastGelu, output 'y') is not supported",
  );
});

Deno.test("onnx import: Gemm with alpha or beta other than 1 is refused", () => {
  for (const [attr, msg] of [["alpha", "attribute 'alpha' = 0.5"], ["beta", "attribute 'beta' = 0.5"]]) {
    const g = new GraphBuilder(13);
    const x = g.input("x", DT.FLOAT, [2, 4]);
    g.nodes.push({
      name: "Gemm_3",
      opType: "Gemm",
      input: [x, g.weight("w", [4, 3]), g.weight("b", [3])],
      output: ["y"],
      attribute: [float(attr, 0.5)],
    });
    g.output("y");
    assert.equal(
      importError(g.bytes()),
      `model.onnx: node 'Gemm_3' (Gemm): ${msg} is not supported (only 1)`,
    );
  }
});

Deno.test("onnx import: dynamic dims left unresolved are errors naming the input", () => {
  const g = new GraphBuilder(13);
  const ids = g.input("input_ids", DT.INT64, ["batch_size", "sequence_length"]);
  g.output(g.node("Cast", [ids], [int("to", DT.FLOAT)]));
  assert.match(
    importError(g.bytes()),
    /^model\.onnx: input 'input_ids' dim 1 \('sequence_length'\) is the dynamic sequence length: give it \(options\.seq/,
  );
  const h = new GraphBuilder(13);
  const x = h.input("x", DT.FLOAT, ["n_items", 4]);
  h.output(h.node("Tanh", [x]));
  assert.match(
    importError(h.bytes()),
    /input 'x' dim 0 is dynamic \('n_items'\) and cannot be resolved: give its size/,
  );
  const named = onnxToModule(h.bytes(), { dims: { n_items: 3 } });
  assert.match(print(named.module), /%x: tensor<3x4xf32>/);
  const u = new GraphBuilder(13);
  const y = u.input("x", DT.FLOAT, ["", 4]);
  u.output(u.node("Tanh", [y]));
  assert.match(importError(u.bytes()), /input 'x' dim 0 is dynamic and unnamed/);
});

Deno.test("onnx import: other refusals name the node", () => {
  const g = new GraphBuilder(13);
  const x = g.input("x", DT.FLOAT, [2, 4]);
  g.nodes.push({
    name: "Reshape_7",
    opType: "Reshape",
    input: [x, g.node("Cast", [x], [int("to", DT.INT64)])],
  });
  g.nodes.at(-1)!.output = ["y"];
  g.output("y");
  assert.match(
    importError(g.bytes()),
    /node 'Reshape_7' \(Reshape\): input 1 \('\/Cast_output_0', the shape\) is not a constant/,
  );
  const h = new GraphBuilder(13);
  const z = h.input("x", DT.FLOAT, [2, 4]);
  h.nodes.push({ name: "c", opType: "Cast", input: [z], output: ["y"], attribute: [int("to", DT.STRING)] });
  h.output("y");
  assert.equal(importError(h.bytes()), "model.onnx: node 'c' (Cast): casting to STRING is not supported");
  const s = new GraphBuilder(13);
  const w = s.input("x", DT.FLOAT, [2, 4]);
  s.nodes.push({
    name: "s",
    opType: "Slice",
    input: [w, s.i64s([3]), s.i64s([0]), s.i64s([1]), s.i64s([-1])],
  });
  s.nodes.at(-1)!.output = ["y"];
  s.output("y");
  assert.match(importError(s.bytes()), /node 's' \(Slice\): step -1 is not supported/);
  assert.match(importError(new Uint8Array([1, 2, 3])), /^model\.onnx: not an ONNX model/);
});

Deno.test("onnx import: value names are made readable", () => {
  assert.equal(
    irName("/bert/encoder/layer.0/attention/self/query/MatMul_output_0"),
    "bert.encoder.layer.0.attention.self.query.MatMul",
  );
  assert.equal(irName("onnx::MatMul_123"), "onnx.MatMul_123");
  assert.equal(irName("/LayerNorm/Split_output_1"), "LayerNorm.Split.1");
  assert.equal(irName("a b"), "a_b");
  assert.equal(irName("input_ids"), "input_ids");
});

// --- Round trip through the exporter -------------------------------------------------------------

Deno.test("onnx import: a synthetic bert-tiny exported and imported back gives the same logits", async () => {
  for (const act of ["erf", "tanh"] as const) {
    const config = bertConfig("bert-tiny", { seq: 16, act });
    const m = buildBertModule(config, "w.safetensors");
    const weights = memoryStore(
      new Map(
        syntheticBertWeights(config).map((
          t,
        ) => [t.name, Tensor.from(t.shape, "f32", t.data as Float32Array)]),
      ),
    );
    const { bytes } = exportOnnx(m, weights);
    const { module: imported, weights: importedWeights } = onnxToModule(bytes, { seq: 16 });
    const store = memoryStore(importedWeights);
    const rec = recognized(imported, store);
    const [before, after] = [opCounts(m), opCounts(rec)];
    for (const op of ["dense", "layer_norm", "gelu", "softmax", "batch_matmul", "transpose", "gather"]) {
      assert.equal(after.get(op), before.get(op), op);
    }
    assert.ok(!after.has("erf") && !after.has("pow") && !after.has("reduce_mean"));
    assert.match(
      print(rec),
      /dense %[^ ]+, @bert\.encoder\.layer\.0\.attention\.self\.query\.weight, @bert\.encoder\.layer\.0\.attention\.self\.query\.bias \{transpose_b = true\}/,
    );
    for (const name of m.weights.keys()) assert.ok(rec.weights.has(name), `weight ${name} kept`);
    const inputs = seededInputs(m.funcs[0], 4);
    const [want] = interpret(m, inputs, weights);
    const [got] = interpret(rec, inputs, store);
    const diff = maxAbsDiff(got.data, want.data);
    assert.ok(diff <= 1e-5, `logits differ by ${diff}`);
    let vsOrt = "onnxruntime not run";
    if (CAN_ORT) {
      const ref = await ortRun(bytes, {
        input_ids: inputs[0],
        token_type_ids: inputs[1],
        attention_mask: inputs[2],
      });
      const ortDiff = maxAbsDiff(got.data, Object.values(ref)[0].data);
      assert.ok(ortDiff <= 1e-4, `onnxruntime differs by ${ortDiff}`);
      vsOrt = `vs onnxruntime ${ortDiff.toExponential(2)}`;
    }
    console.log(`bert-tiny (${act}) round trip: logits differ by ${diff.toExponential(2)}; ${vsOrt}`);
  }
});
