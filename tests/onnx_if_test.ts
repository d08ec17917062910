/**
 * ONNX import of `If`, as torch writes it for `squeeze(1)` under `dynamic_axes`:
 * `If(Shape(x)[1] == 1, then: Squeeze(x), else: Identity(x))`, the branches reading `x` from the
 * outer graph. Once the dims are fixed the condition is a constant and the chosen branch is
 * imported in place; a condition on the inputs' values is an error naming the node.
 */

import assert from "node:assert/strict";
import { OnnxImportError, onnxToModule } from "../frontend/onnx/import.ts";
import { encodeModel, type Onnx, onnx, tensorProto, valueInfo } from "../frontend/onnx/proto.ts";
import { interpret, memoryStore, Tensor } from "../mod.ts";

const AT = onnx.AttributeProto.AttributeType;

/** A branch graph of one node reading the outer `/Slice_output_0`. */
function branch(name: string, node: Onnx.INodeProto, output: string): Onnx.IGraphProto {
  return { name, node: [node], output: [{ name: output }] };
}

/**
 * `tanh(If(cond, Squeeze(slice, [1]), Identity(slice)))` over `slice = x[:, :1]`, x `[batch, seq, 4]`
 * with symbolic dims; the condition is `Shape(x)[0] == 1` (the batch is 1), or with `onValues` an
 * input. Only the branches read the Slice, and it comes after the If in the file.
 */
function squeezeModel(onValues: boolean): Uint8Array {
  const i64 = (name: string, v: number[]) => tensorProto(name, { shape: [v.length], dtype: "i64" }, v);
  const scalar = (name: string, v: number) => tensorProto(name, { shape: [], dtype: "i64" }, [v]);
  const nodes: Onnx.INodeProto[] = [
    { name: "/Slice", opType: "Slice", input: ["x", "starts", "ends", "axes"], output: ["/Slice_output_0"] },
  ];
  if (!onValues) {
    nodes.push(
      { name: "/Shape", opType: "Shape", input: ["x"], output: ["/Shape_output_0"] },
      { name: "/Gather", opType: "Gather", input: ["/Shape_output_0", "zero"], output: ["/Gather_output_0"] },
      { name: "/Equal", opType: "Equal", input: ["/Gather_output_0", "one"], output: ["/Equal_output_0"] },
    );
  }
  const squeeze = {
    name: "/Squeeze",
    opType: "Squeeze",
    input: ["/Slice_output_0", "axes"],
    output: ["/Squeeze_output_0"],
  };
  const identity = {
    name: "/Identity",
    opType: "Identity",
    input: ["/Slice_output_0"],
    output: ["/Identity_output_0"],
  };
  nodes.push(
    {
      name: "/If",
      opType: "If",
      input: [onValues ? "c" : "/Equal_output_0"],
      output: ["/If_output_0"],
      attribute: [
        { name: "then_branch", type: AT.GRAPH, g: branch("then", squeeze, "/Squeeze_output_0") },
        { name: "else_branch", type: AT.GRAPH, g: branch("else", identity, "/Identity_output_0") },
      ],
    },
    { name: "/Tanh", opType: "Tanh", input: ["/If_output_0"], output: ["y"] },
  );
  // The Slice comes last in the file: the import orders the If after what its branches read.
  nodes.push(nodes.shift()!);
  const x: Onnx.IValueInfoProto = {
    name: "x",
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: [{ dimParam: "batch" }, { dimParam: "sequence" }, { dimValue: 4 }] },
      },
    },
  };
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "g",
      node: nodes,
      initializer: [
        i64("starts", [0]),
        i64("ends", [1]),
        i64("axes", [1]),
        scalar("one", 1),
        scalar("zero", 0),
      ],
      input: onValues ? [x, valueInfo("c", { shape: [], dtype: "bool" })] : [x],
      output: [valueInfo("y", { shape: [1, 4], dtype: "f32" })],
    },
  });
}

Deno.test("ONNX If on a condition known from the static shapes imports the chosen branch", () => {
  const { module, weights } = onnxToModule(squeezeModel(false), { seq: 3 });
  const body = module.funcs[0].body.map((op) => op.name);
  assert.ok(!body.includes("if"), body.join(", "));
  assert.deepEqual(module.funcs[0].returns[0].type.shape, [1, 4]);
  const x = Tensor.from([1, 3, 4], "f32", Array.from({ length: 12 }, (_, i) => i / 10));
  const [y] = interpret(module, [x], memoryStore(weights));
  // The squeezed [1, 4]: the first token's row.
  assert.deepEqual(Array.from(y.data), Array.from(x.data.slice(0, 4), (v) => Math.fround(Math.tanh(v))));
});

Deno.test("ONNX If on a condition given at run time is an error naming the node", () => {
  assert.throws(
    () => onnxToModule(squeezeModel(true), { seq: 3, source: "m.onnx" }),
    (e: unknown) =>
      e instanceof OnnxImportError &&
      /m\.onnx: node '\/If' \(If\): input 0 \('c', the condition\) is not a constant/.test(e.message),
  );
});
