/**
 * ONNX export without onnxruntime: the structure of the written model (opset, inputs, outputs,
 * initializers named and laid out as the weights, the nodes each op becomes), the notes, the
 * refusals with their places, proto.ts's tensor encoding, and `deno task export` end to end.
 * That onnxruntime computes what the interpreter does is `ort_oracle_test.ts`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXPORTERS, exportOnnx, OnnxExportError, ORT_KERNEL_DTYPES } from "../frontend/onnx/export.ts";
import {
  decodeModel,
  dtypeOfElemType,
  ELEM_TYPE,
  elemTypeName,
  elemTypeOf,
  type Onnx,
  onnx,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  tensorFromProto,
  tensorProto,
  toNumber,
} from "../frontend/onnx/proto.ts";
import { bertConfig, buildBertModule, syntheticBertWeights } from "../frontend/synthetic_bert.ts";
import { seededWeights } from "../ir/inputs.ts";
import {
  BsrTensor,
  builtinOps,
  builtinRegistry,
  createPassRegistry,
  DTYPES,
  type Module,
  ModuleBuilder,
  parse,
  parsePipeline,
  print,
  runPipeline,
  Tensor,
  tensorType,
  verify,
  type WeightStore,
  writeSafetensors,
} from "../mod.ts";
import { memoryStore } from "../ir/weights.ts";
import { formatDiagnostics } from "../ir/diagnostics.ts";
import { CAN_RUN, ROOT } from "./compile_cli.ts";

const TINY = bertConfig("bert-tiny", { seq: 16, vocab: 500 });

function tinyWeights(c = TINY): WeightStore {
  return memoryStore(
    new Map(
      syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
    ),
  );
}

/** Exports and decodes. */
function exported(m: Module, w: WeightStore, options = {}) {
  const { bytes, notes } = exportOnnx(m, w, options);
  const model = decodeModel(bytes);
  return { model, graph: model.graph as Onnx.GraphProto, notes };
}

/** The nodes of a graph, with their fields present (decoded protos fill them in). */
const nodes = (g: Onnx.IGraphProto) => g.node as Onnx.NodeProto[];

/** Op type -> count. */
function histogram(g: Onnx.IGraphProto): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of g.node ?? []) h[n.opType!] = (h[n.opType!] ?? 0) + 1;
  return h;
}

/** [name, elemType, dims] of a value info. */
function describe(v: Onnx.IValueInfoProto): [string, number, number[]] {
  const t = v.type!.tensorType!;
  return [v.name!, t.elemType!, t.shape!.dim!.map((d) => toNumber(d.dimValue))];
}

/** Every node input is a graph input, an initializer or an earlier node's output; names are unique. */
function assertWellFormed(g: Onnx.IGraphProto): void {
  const defined = new Set([...g.input!.map((i) => i.name!), ...g.initializer!.map((t) => t.name!)]);
  assert.equal(
    defined.size,
    g.input!.length + g.initializer!.length,
    "inputs and initializers have distinct names",
  );
  for (const n of g.node!) {
    for (const i of n.input!) {
      assert.ok(i === "" || defined.has(i), `${n.opType} ${n.name} reads undefined '${i}'`);
    }
    for (const o of n.output!) {
      assert.ok(!defined.has(o), `'${o}' is defined twice`);
      defined.add(o);
    }
  }
  for (const o of g.output!) assert.ok(defined.has(o.name!), `output '${o.name}' is not produced`);
}

/** Parses and verifies IR text with weights. */
function load(text: string, weights?: WeightStore): Module {
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, [], formatDiagnostics(diagnostics, text));
  const ds = verify(module!, { weights: weights?.entries() });
  assert.deepEqual(ds, [], formatDiagnostics(ds, text));
  return module!;
}

Deno.test("a synthetic bert-tiny exports as an opset-17 model: inputs, outputs, initializers, nodes", () => {
  const m = buildBertModule(TINY, "w.safetensors");
  const weights = tinyWeights();
  const { model, graph: g, notes } = exported(m, weights);
  assert.deepEqual(notes, []);
  assert.equal(toNumber(model.irVersion), ONNX_IR_VERSION);
  assert.equal(ONNX_IR_VERSION, 8);
  assert.deepEqual(model.opsetImport.map((o) => [o.domain, toNumber(o.version)]), [["", 17]]);
  assert.equal(model.producerName, "sparrow");
  assert.equal(g.name, "bert-tiny");
  const I64 = onnx.TensorProto.DataType.INT64, F32 = onnx.TensorProto.DataType.FLOAT;
  assert.deepEqual(g.input.map(describe), [
    ["input_ids", I64, [1, 16]],
    ["token_type_ids", I64, [1, 16]],
    ["attention_mask", I64, [1, 16]],
  ]);
  assert.deepEqual(g.output.map(describe), [["logits", F32, [1, 2]]]);
  assertWellFormed(g);

  // The weights, by name, in their own [out, in] layout and bytes; then the small constants.
  const byName = new Map(g.initializer.map((t) => [t.name!, t]));
  for (const w of m.weights.values()) {
    const t = byName.get(w.name);
    assert.ok(t, `initializer ${w.name}`);
    assert.deepEqual(t.dims!.map(toNumber), [...w.type.shape], w.name);
    assert.equal(t.dataType, F32);
    assert.equal(t.rawData!.length, 4 * w.type.shape.reduce((a, b) => a * b, 1));
  }
  const q = "bert.encoder.layer.1.attention.self.query.weight";
  assert.deepEqual(tensorFromProto(byName.get(q)!).data, weights.get(m.weights.get(q)!).data);
  const others = g.initializer.map((t) => t.name!).filter((n) => !m.weights.has(n));
  assert.deepEqual(others.sort(), [
    "attn.scale", // the constants, by their value names
    "cls.axes", // slice bounds, per op
    "cls.ends",
    "cls.starts",
    "cls.steps",
    "const.f32.0.5", // GELU's scalars
    "const.f32.1",
    "const.f32.1.4142135623730951",
    "emb.pos.axes",
    "emb.pos.ends",
    "emb.pos.starts",
    "emb.pos.steps",
    "mask.min",
    "one",
    "shape.1x128", // reshape targets, shared
    "shape.1x16x128",
    "shape.1x16x2x64",
    "shape.1x1x1x16",
  ]);

  // Per layer: 6 Linear = Transpose + MatMul + Add, 2 attention MatMuls, 2 LayerNorms, a GELU.
  const L = TINY.layers;
  assert.deepEqual(histogram(g), {
    Gather: 2,
    Slice: 2,
    Add: 2 + L * (6 + 1 + 2 + 1) + 2, // embeddings; bias x6, mask, residuals x2, GELU's 1+; pooler, classifier
    LayerNormalization: 1 + 2 * L,
    Cast: 1,
    Sub: 1,
    Mul: 1 + L * (1 + 2), // mask; scale, GELU's two
    Reshape: 1 + 4 * L + 1,
    Transpose: 6 * L + 2 + 4 * L, // weights; heads
    MatMul: 8 * L + 2,
    Softmax: L,
    Div: L,
    Erf: L,
    Tanh: 1,
  });
  // A node's output is named after its IR value; value_info types every op result.
  const nodeOut = new Set(nodes(g).map((n) => n.output[0]));
  for (const op of m.funcs[0].body) {
    if (op.name !== "constant") assert.ok(nodeOut.has(op.result.name), op.result.name);
  }
  const layerNorm = nodes(g).find((n) => n.output[0] === "l0.ln1")!;
  assert.equal(layerNorm.opType, "LayerNormalization");
  assert.deepEqual(layerNorm.input, [
    "l0.attn_res",
    "bert.encoder.layer.0.attention.output.LayerNorm.weight",
    "bert.encoder.layer.0.attention.output.LayerNorm.bias",
  ]);
  const eps = layerNorm.attribute.find((a) => a.name === "epsilon")!;
  assert.ok(Math.abs(eps.f! - 1e-12) < 1e-18);
  assert.deepEqual(toNumber(layerNorm.attribute.find((a) => a.name === "axis")!.i), -1);
  const infos = new Map(g.valueInfo!.map((v) => [v.name, describe(v)]));
  assert.deepEqual(infos.get("l0.scores"), ["l0.scores", F32, [1, 2, 16, 16]]);
});

Deno.test("export: GELU is decomposed as PyTorch writes it; tanh GELU and fused activations too", () => {
  const erf = exported(buildBertModule(TINY, "w"), tinyWeights()).graph;
  const gelu = nodes(erf).filter((n) => n.name!.startsWith("l0.gelu"));
  assert.deepEqual(gelu.map((n) => n.opType), ["Div", "Erf", "Add", "Mul", "Mul"]);
  assert.equal(gelu.at(-1)!.output[0], "l0.gelu");

  const tanhConfig = { ...TINY, act: "tanh" as const };
  const tanh = exported(buildBertModule(tanhConfig, "w"), tinyWeights(tanhConfig)).graph;
  assert.deepEqual(
    nodes(tanh).filter((n) => n.name!.startsWith("l0.gelu")).map((n) => n.opType),
    ["Mul", "Mul", "Mul", "Add", "Mul", "Tanh", "Add", "Mul", "Mul"],
  );

  // After fuse: dense {activation = gelu} and add_layer_norm become the same node chains.
  const weights = tinyWeights();
  const fused = runPipeline(buildBertModule(TINY, "w"), parsePipeline("fuse", createPassRegistry()), {
    weights,
  });
  const g = exported(fused.module, weights).graph;
  assert.deepEqual(histogram(g), histogram(erf));
  assertWellFormed(g);
});

Deno.test("export: pretransposeWeights stores <weight>.T initializers instead of Transpose nodes", () => {
  const m = buildBertModule(TINY, "w");
  const g = exported(m, tinyWeights(), { pretransposeWeights: true }).graph;
  const names = new Set(g.initializer.map((t) => t.name!));
  const q = "bert.encoder.layer.0.attention.self.query.weight";
  assert.ok(names.has(`${q}.T`) && !names.has(q));
  assert.equal(histogram(g).Transpose, 4 * TINY.layers, "only the attention heads' transposes are left");
  const t = g.initializer.find((i) => i.name === "bert.encoder.layer.0.intermediate.dense.weight.T")!;
  assert.deepEqual(t.dims!.map(toNumber), [128, 512]);
  const w = tensorFromProto(t),
    orig = tinyWeights().get(m.weights.get("bert.encoder.layer.0.intermediate.dense.weight")!);
  assert.equal(w.data[3 * 512 + 7], orig.data[7 * 128 + 3]);
  assertWellFormed(g);
});

/** A module with one bsr_dense over a [5, 64] weight in 1x32 blocks, 2 of its 10 blocks stored. */
function bsrModule() {
  const type = {
    shape: [5, 64],
    dtype: "f32" as const,
    sparse: { kind: "bsr" as const, block: [1, 32] as [number, number], nnzBlocks: 2 },
  };
  const b = new ModuleBuilder("sparse", { weightsFile: "sparse.safetensors" });
  const w = b.weight("w", type);
  const bias = b.weight("b", tensorType([5]));
  const f = b.func("main", [["x", tensorType([3, 64])]]);
  f.ret(f.op("bsr_dense", [f.params[0], w, bias], { activation: "gelu" }, { name: "y" }));
  const data = Float32Array.from({ length: 64 }, (_, i) => i + 1);
  const bsr = new BsrTensor(type, data, Int32Array.of(1, 0), Int32Array.of(0, 1, 1, 1, 2, 2));
  const weights = memoryStore(
    new Map<string, Tensor>([["w", bsr], ["b", Tensor.from([5], "f32", [1, 2, 3, 4, 5])]]),
  );
  return { module: b.module, weights, data };
}

Deno.test("export: a bsr_dense weight is densified under its own name, and the notes say so", () => {
  const { module, weights, data } = bsrModule();
  const { graph: g, notes } = exported(module, weights);
  assert.deepEqual(notes, ["bsr_dense %y: weight @w exported densified (1x32 blocks, 80% zeros)"]);
  const w = tensorFromProto(g.initializer.find((t) => t.name === "w")!);
  assert.deepEqual([...w.shape], [5, 64]);
  // Row 0 holds block 0 at columns 32..63, row 3 block 1 at columns 0..31; the rest is zero.
  const expected = new Float32Array(5 * 64);
  expected.set(data.subarray(0, 32), 32);
  expected.set(data.subarray(32), 3 * 64);
  assert.deepEqual(w.data, expected);
  assert.deepEqual(nodes(g).slice(0, 3).map((n) => n.opType), ["Transpose", "MatMul", "Add"]);
  assertWellFormed(g);
});

Deno.test("export: the autodiff ops become standard ONNX ops; BSR block gradients gather from dyᵀ·x", () => {
  const m = load(`module @t {
  weights "w.safetensors" {
    @w : tensor<5x7xf32, bsr<3x5, nnz = 3>>
  }
  func @main(%logits: tensor<3x4xf32>, %labels: tensor<3xi32>, %dy: tensor<2x2x5xf32>, %x: tensor<2x2x7xf32>, %u: tensor<2x3x2xf32>, %ids: tensor<3xi64>) -> (tensor<f32>, tensor<3x3x5xf32>, tensor<2x4x2xf32>, tensor<2x4x5xf32>, tensor<2x4x5xf32>) {
    %loss = cross_entropy %logits, %labels : tensor<f32>
    %dw = bsr_dense_grad_w %dy, %x, @w : tensor<3x3x5xf32>
    %s = scatter_add %u, %ids {axis = 1} : tensor<2x4x2xf32>
    %p = slice_grad %dy {starts = [1], ends = [3], axes = [1]} : tensor<2x4x5xf32>
    %q = slice_grad %dy {starts = [0], ends = [4], axes = [1], steps = [2]} : tensor<2x4x5xf32>
    return %loss, %dw, %s, %p, %q
  }
}
`);
  const weights = seededWeights(m, 1);
  const { graph: g } = exported(m, weights);
  assertWellFormed(g);
  const types = (name: string) => {
    const out = nodes(g).findIndex((n) => n.output[0] === name);
    const first = nodes(g).findLastIndex((n, i) => i < out && g.output!.some((o) => o.name === n.output[0]));
    return nodes(g).slice(first + 1, out + 1).map((n) => n.opType);
  };
  assert.deepEqual(types("loss"), ["LogSoftmax", "Reshape", "GatherElements", "ReduceMean", "Neg"]);
  assert.deepEqual(types("dw"), ["Reshape", "Transpose", "Reshape", "MatMul", "Reshape", "Concat", "Gather"]);
  assert.deepEqual(types("s"), [
    "Transpose",
    "Reshape",
    "Reshape",
    "ConstantOfShape",
    "ScatterND",
    "Transpose",
  ]);
  assert.deepEqual(types("p"), ["Pad"]);
  assert.deepEqual(types("q"), ["Reshape", "ConstantOfShape", "ScatterND", "Reshape"]);
  // No densified weight: the [nnz, R, C] indices into the flattened [N·K] gradient, N·K = 35 the
  // 0 appended for the padding of edge blocks (rows 5 and 6 of the second block row, columns 7-9).
  assert.equal(g.initializer.find((t) => t.name === "w"), undefined);
  const w = weights.get(m.weights.get("w")!) as BsrTensor;
  const at = [...tensorFromProto(g.initializer.find((t) => t.name === "w.block_entries")!).data];
  assert.equal(at.length, 3 * 3 * 5);
  for (let k = 0; k < 3; k++) {
    const br = [...w.indptr].findLastIndex((p) => p <= k), col0 = w.indices[k] * 5;
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 5; j++) {
        const [n, c] = [br * 3 + i, col0 + j];
        assert.equal(at[(k * 3 + i) * 5 + j], n < 5 && c < 7 ? n * 7 + c : 35, `block ${k} (${i}, ${j})`);
      }
    }
  }
  assert.ok(at.includes(35));
});

Deno.test("export: names: a weight named like a parameter is renamed with a note; unused weights and other functions are noted", () => {
  const text = `module @t {
  weights {
    @x : tensor<2xf32>
    @unused : tensor<3xf32>
  }

  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>) {
    %y = add %x, @x : tensor<2xf32>
    return %y, %x
  }

  func @other(%a: tensor<1xf32>) -> (tensor<1xf32>) {
    return %a
  }
}
`;
  const m = load(text);
  const { graph: g, notes } = exported(m, seededWeights(m, 1));
  assert.deepEqual(notes, [
    "@x is named 'x_1' in ONNX ('x' is taken)",
    "1 weight(s) not read by @main were not exported: @unused",
    "only @main is exported; not @other",
  ]);
  assert.deepEqual(g.initializer.map((t) => t.name), ["x_1"]);
  assert.deepEqual(nodes(g).map((n) => [n.opType, n.input, n.output]), [
    ["Add", ["x", "x_1"], ["y"]],
    ["Identity", ["x"], ["x.out"]],
  ]);
  assert.deepEqual(g.output.map((o) => o.name), ["y", "x.out"]);
});

/** The error exporting `text` (verified against seeded weights). */
function refusal(text: string): OnnxExportError {
  const m = load(text);
  try {
    exportOnnx(m, seededWeights(m, 1));
  } catch (e) {
    assert.ok(e instanceof OnnxExportError, String(e));
    return e;
  }
  throw new Error("the export did not fail");
}

const one = (params: string, body: string, ret: string) =>
  `module @t {
  func @main(${params}) -> (${ret.split(":")[1].trim()}) {
    ${body}
    return ${ret.split(":")[0].trim()}
  }
}
`;

Deno.test("export: what onnxruntime cannot run is refused, naming the op, its value and place", () => {
  const cases: [string, string][] = [
    [
      one("%x: tensor<4xf64>", "%y = gelu %x : tensor<4xf64>", "%y : tensor<4xf64>"),
      "t.sir:3:5: error: cannot export 'gelu' (%y) to ONNX: onnxruntime has no Erf kernel for f64 (it takes f32, f16)",
    ],
    [
      one("%x: tensor<4xbf16>", "%y = add %x, %x : tensor<4xbf16>", "%y : tensor<4xbf16>"),
      "t.sir:3:5: error: cannot export 'add' (%y) to ONNX: onnxruntime has no Add kernel for bf16 (it takes f32, f16, f64, i64, i32, i8, u8)",
    ],
    [
      one("%x: tensor<4xi8>", "%y = pow %x, %x : tensor<4xi8>", "%y : tensor<4xi8>"),
      "t.sir:3:5: error: cannot export 'pow' (%y) to ONNX: onnxruntime has no Pow kernel for i8 (it takes f32, f16, f64, i64, i32)",
    ],
    [
      one(
        "%c: tensor<2xbool>, %x: tensor<2xbool>",
        "%y = where %c, %x, %x : tensor<2xbool>",
        "%y : tensor<2xbool>",
      ),
      "t.sir:3:5: error: cannot export 'where' (%y) to ONNX: onnxruntime has no Where kernel for bool (it takes f32, f16, f64, i64, i32, u8)",
    ],
    [
      one("%x: tensor<2x2xbf16>", "%y = softmax %x : tensor<2x2xbf16>", "%y : tensor<2x2xbf16>"),
      "t.sir:3:5: error: cannot export 'softmax' (%y) to ONNX: onnxruntime has no Softmax kernel for bf16 (it takes f32, f16, f64)",
    ],
    [
      one(
        "%x: tensor<2x2xf64>",
        "%y = dense %x, %x {activation = gelu} : tensor<2x2xf64>",
        "%y : tensor<2x2xf64>",
      ),
      "t.sir:3:5: error: cannot export 'dense' (%y) to ONNX: onnxruntime has no Erf kernel for f64 (it takes f32, f16)",
    ],
    [
      one(
        "%u: tensor<2x2xf16>, %i: tensor<2xi64>",
        "%y = scatter_add %u, %i : tensor<3x2xf16>",
        "%y : tensor<3x2xf16>",
      ),
      "t.sir:3:5: error: cannot export 'scatter_add' (%y) to ONNX: onnxruntime has no ScatterND kernel for f16 (it takes f32, f64, i64, i32, i8, u8, bool)",
    ],
    [
      one(
        "%d: tensor<4xf64>, %x: tensor<4xf64>",
        "%y = gelu_grad %d, %x : tensor<4xf64>",
        "%y : tensor<4xf64>",
      ),
      "t.sir:3:5: error: cannot export 'gelu_grad' (%y) to ONNX: onnxruntime has no Erf kernel for f64 (it takes f32, f16)",
    ],
  ];
  for (const [text, message] of cases) {
    const e = refusal(text);
    assert.equal(e.message, message);
    assert.equal(e.loc?.line, 3);
    assert.match(e.reason, /^cannot export/);
  }
});

Deno.test("export: an op without an exporter (a plugin's) is refused by name; a missing function too", () => {
  const registry = builtinRegistry.clone();
  registry.register({ ...builtinOps.find((d) => d.name === "tanh")!, name: "my_op" });
  const b = new ModuleBuilder("t", { registry });
  const f = b.func("main", [["x", tensorType([2])]]);
  f.ret(f.op("my_op", [f.params[0]], {}, { name: "y" }));
  assert.throws(
    () => exportOnnx(b.module, memoryStore(new Map())),
    (e: Error) =>
      e instanceof OnnxExportError &&
      /^error: cannot export 'my_op' \(%y\) to ONNX: no ONNX exporter for op 'my_op' \(exported ops: add, /
        .test(e.message),
  );
  assert.throws(
    () => exportOnnx(b.module, memoryStore(new Map()), { func: "nope" }),
    /cannot export to ONNX: the module has no function '@nope'/,
  );
});

Deno.test("export: every built-in op has an exporter, and every ONNX op it writes has a kernel table", () => {
  assert.deepEqual(builtinOps.map((d) => d.name).filter((n) => !Object.hasOwn(EXPORTERS, n)), []);
  for (const dtypes of Object.values(ORT_KERNEL_DTYPES)) {
    for (const d of dtypes) assert.ok((DTYPES as readonly string[]).includes(d));
  }
});

Deno.test("proto: dtypes map one to one onto ONNX element types", () => {
  assert.equal(ONNX_OPSET, 17);
  for (const d of DTYPES) assert.equal(dtypeOfElemType(elemTypeOf(d)), d);
  assert.equal(new Set(Object.values(ELEM_TYPE)).size, DTYPES.length);
  assert.equal(elemTypeOf("i64"), onnx.TensorProto.DataType.INT64);
  assert.equal(dtypeOfElemType(onnx.TensorProto.DataType.STRING), undefined);
  assert.equal(elemTypeName(onnx.TensorProto.DataType.BFLOAT16), "BFLOAT16");
  assert.equal(elemTypeName(99), "type 99");
});

Deno.test("proto: tensors round-trip through raw_data for every dtype, little-endian", () => {
  const values: Record<string, number[]> = {
    f32: [1.5, -2.25, 3e-8, 0],
    f16: [1.5, -2.25, 65504, 0.000060975551605224609],
    bf16: [1.5, -2.25, 3.140625, 0],
    f64: [Math.PI, -1e300, 5e-324, 0],
    i64: [-(2 ** 53) + 1, -1, 2 ** 40, 0],
    i32: [-(2 ** 31), 2 ** 31 - 1, -5, 0],
    i8: [-128, 127, -1, 0],
    u8: [255, 1, 128, 0],
    bool: [1, 0, 1, 1],
  };
  for (const d of DTYPES) {
    const t = Tensor.from([2, 2], d, values[d]);
    const p = tensorProto("t", t.type, t.data);
    const back = tensorFromProto(onnx.TensorProto.decode(onnx.TensorProto.encode(p).finish()));
    assert.equal(back.dtype, d);
    assert.deepEqual([...back.shape], [2, 2]);
    assert.deepEqual([...back.data], [...t.data], d);
  }
  const bytes = tensorProto("x", { shape: [2], dtype: "i64" }, [-2, 258]).rawData!;
  assert.deepEqual([...bytes], [254, 255, 255, 255, 255, 255, 255, 255, 2, 1, 0, 0, 0, 0, 0, 0]);
  // bf16 rounds to nearest even; f16 too.
  const bf = tensorFromProto(tensorProto("b", { shape: [1], dtype: "bf16" }, [1 + 2 ** -8 + 2 ** -12]));
  assert.equal(bf.data[0], 1 + 2 ** -7);
});

Deno.test("proto: typed fields decode too (float_data, int64_data as Long, f16 bits in int32_data)", () => {
  const encodeDecode = (p: Onnx.ITensorProto) => onnx.TensorProto.decode(onnx.TensorProto.encode(p).finish());
  const E = onnx.TensorProto.DataType;
  assert.deepEqual([
    ...tensorFromProto(encodeDecode({ dims: [2], dataType: E.FLOAT, floatData: [1.5, -2] })).data,
  ], [1.5, -2]);
  const i64 = tensorFromProto(encodeDecode({ dims: [3], dataType: E.INT64, int64Data: [-3, 2 ** 40, 7] }));
  assert.deepEqual([...i64.data], [-3, 2 ** 40, 7]);
  assert.deepEqual([
    ...tensorFromProto(encodeDecode({ dims: [1], dataType: E.FLOAT16, int32Data: [0x3e00] })).data,
  ], [1.5]);
  assert.deepEqual([
    ...tensorFromProto(encodeDecode({ dims: [], dataType: E.DOUBLE, doubleData: [0.1] })).data,
  ], [0.1]);
  assert.throws(
    () => tensorFromProto({ name: "s", dims: [1], dataType: E.STRING }),
    /tensor 's': element type STRING has no IR dtype/,
  );
  assert.throws(
    () =>
      tensorFromProto({
        name: "e",
        dims: [1],
        dataType: E.FLOAT,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      }),
    /tensor 'e': external data is not supported/,
  );
  assert.throws(
    () => tensorFromProto({ name: "n", dims: [3], dataType: E.FLOAT, floatData: [1] }),
    /has 1 values, shape \[3\] needs 3/,
  );
  assert.throws(
    () => tensorFromProto({ name: "r", dims: [3], dataType: E.FLOAT, rawData: new Uint8Array(8) }),
    /raw_data has 8 bytes/,
  );
});

// ---------------------------------------------------------------------------------------------
// deno task export

/** `deno task export ...args` exactly as deno.json runs it. */
async function exportTask(...args: string[]) {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const words = (config.tasks.export as string).split(/\s+/).slice(1);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...words, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "deno task export: writes the model, prints notes; errors at their place; usage mistakes exit 2",
  ignore: !CAN_RUN,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-export-" });
    try {
      // A pruned module with its weights file.
      const { module, data } = bsrModule();
      await writeSafetensors(join(dir, "sparse.safetensors"), [
        { name: "w.data", dtype: "F32", shape: [2, 1, 32], data },
        { name: "w.indices", dtype: "I32", shape: [2], data: Int32Array.of(1, 0) },
        { name: "w.indptr", dtype: "I32", shape: [6], data: Int32Array.of(0, 1, 1, 1, 2, 2) },
        { name: "b", dtype: "F32", shape: [5], data: Float32Array.of(1, 2, 3, 4, 5) },
      ]);
      await Deno.writeTextFile(join(dir, "sparse.sir"), print(module));
      const out = join(dir, "out", "sparse.onnx");
      const ok = await exportTask(join(dir, "sparse.sir"), "-o", out);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(
        ok.stdout,
        /^note: bsr_dense %y: weight @w exported densified \(1x32 blocks, 80% zeros\)$/m,
      );
      assert.match(ok.stdout, /^wrote .*sparse\.onnx \(.*, ONNX opset 17\)/m);
      const model = decodeModel(await Deno.readFile(out));
      assert.deepEqual(model.graph!.initializer!.map((t) => t.name).sort(), [
        "b",
        "const.f32.0.5",
        "const.f32.1",
        "const.f32.1.4142135623730951",
        "w",
      ]);
      assert.deepEqual((await Array.fromAsync(Deno.readDir(join(dir, "out")))).map((e) => e.name), [
        "sparse.onnx",
      ], "no temp file left");

      // A model ONNX cannot run: the place, the line and a caret; nothing written.
      const bad = join(dir, "bad.sir");
      await Deno.writeTextFile(
        bad,
        one("%x: tensor<4xf64>", "%y = gelu %x : tensor<4xf64>", "%y : tensor<4xf64>"),
      );
      const refused = await exportTask(bad, "-o", join(dir, "bad.onnx"));
      assert.equal(refused.code, 1);
      assert.match(
        refused.stderr,
        /bad\.sir:3:5: error: cannot export 'gelu' \(%y\) to ONNX: onnxruntime has no Erf kernel for f64/,
      );
      assert.ok(refused.stderr.includes("\n    %y = gelu %x : tensor<4xf64>\n    ^\n"), refused.stderr);
      await assert.rejects(Deno.stat(join(dir, "bad.onnx")), Deno.errors.NotFound);

      // A model that does not verify: diagnostics as the other CLIs print them.
      await Deno.writeTextFile(
        bad,
        one("%x: tensor<4xf32>", "%y = gleu %x : tensor<4xf32>", "%y : tensor<4xf32>"),
      );
      const invalid = await exportTask(bad, "-o", join(dir, "bad.onnx"));
      assert.equal(invalid.code, 1);
      assert.match(invalid.stderr, /bad\.sir:3:5: error: unknown op 'gleu' \(did you mean 'gelu'\?\)/);

      for (const args of [[], [bad], [bad, "-o", join(dir, "x.sir")], [bad, "-o", "x.onnx", "--bogus"]]) {
        const r = await exportTask(...args);
        assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /^error: /);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
