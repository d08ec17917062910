/**
 * Shape specialization (ir/specialize.ts): the model at another batch size and length is the
 * model the frontend builds at that shape, computes each row as batch 1 does, and what the
 * rules cannot carry over is an error naming the op.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  bertConfig,
  bucketOf,
  buildBertModule,
  compile,
  interpret,
  parse,
  print,
  seededWeights,
  SpecializeError,
  specializeShapes,
  Tensor,
  tensorType,
} from "../mod.ts";

const TINY = bertConfig("bert-tiny", { layers: 1, seq: 24, maxPositions: 64 });

/** The IR text without comments and module attributes (which record the import shape). */
const body = (text: string) =>
  text.split("\n").filter((l) => !/^\s*\/\//.test(l) && !/^\s*(attributes|seq =)/.test(l)).join("\n")
    .replace(/seq = \d+, /, "");

Deno.test("specializing to another length gives the module the frontend builds at that length", () => {
  const m = buildBertModule(TINY, "w.safetensors");
  assert.deepEqual(bucketOf(m), { batch: 1, seq: 24 });
  for (const seq of [8, 24, 40]) {
    const built = buildBertModule({ ...TINY, seq }, "w.safetensors");
    const specialized = specializeShapes(m, { batch: 1, seq });
    assert.equal(body(print(specialized)), body(print(built)), `seq ${seq}`);
  }
  // The input module is left as it was.
  assert.deepEqual(bucketOf(m), { batch: 1, seq: 24 });
});

Deno.test("a batch of rows computes what each row computes alone", () => {
  const m = buildBertModule(TINY, "w.safetensors");
  const weights = seededWeights(m, 7);
  const rows = 3, seq = 16;
  const batched = specializeShapes(m, { batch: rows, seq });
  assert.deepEqual(bucketOf(batched), { batch: rows, seq });
  const single = specializeShapes(m, { batch: 1, seq });
  // Rows of different lengths: real tokens, then padding with mask 0.
  const ids = (r: number) =>
    Array.from({ length: seq }, (_, i) => i < 5 + 4 * r ? (7 * r + 3 * i + 1) % 100 : 0);
  const mask = (r: number) => Array.from({ length: seq }, (_, i) => i < 5 + 4 * r ? 1 : 0);
  const i64 = (shape: number[], values: number[]) =>
    new Tensor(tensorType(shape, "i64"), Float64Array.from(values));
  const all = (f: (r: number) => number[]) => Array.from({ length: rows }, (_, r) => f(r)).flat();
  const [out] = interpret(batched, {
    input_ids: i64([rows, seq], all(ids)),
    token_type_ids: i64([rows, seq], new Array(rows * seq).fill(0)),
    attention_mask: i64([rows, seq], all(mask)),
  }, weights);
  assert.deepEqual(out.shape, [rows, 2]);
  for (let r = 0; r < rows; r++) {
    const [one] = interpret(single, {
      input_ids: i64([1, seq], ids(r)),
      token_type_ids: i64([1, seq], new Array(seq).fill(0)),
      attention_mask: i64([1, seq], mask(r)),
    }, weights);
    for (let k = 0; k < 2; k++) {
      assert.ok(Math.abs(out.data[r * 2 + k] - one.data[k]) < 1e-5, `row ${r} logit ${k}`);
    }
  }
});

Deno.test("what the rules cannot carry over is an error naming the op", () => {
  const text = `module @odd {
  func @main(%ids: tensor<1x8xi64>) -> (tensor<2x4xf32>) {
    %f = cast %ids : tensor<1x8xf32>
    %r = reshape %f : tensor<2x4xf32>
    return %r
  }
}
`;
  const parsed = parse(text, { file: "odd.sir" });
  assert.ok(parsed.module, JSON.stringify(parsed.diagnostics));
  assert.throws(
    () => specializeShapes(parsed.module!, { batch: 1, seq: 16 }),
    (e: Error) =>
      e instanceof SpecializeError &&
      /^odd\.sir:4:5: cannot specialize %r \('reshape'\) to batch 1, seq 16: its operand became 1x16; no shape follows from 1x8 -> 2x4$/
        .test(e.message),
  );
  const notBert = parse(
    `module @v {
  func @main(%x: tensor<4xf32>) -> (tensor<4xf32>) {
    return %x
  }
}
`,
    { file: "v.sir" },
  );
  assert.throws(() => bucketOf(notBert.module!), /inputs must all be \[batch, seq\]/);
});

Deno.test("an ONNX export's folded position ids follow the length and the batch", async () => {
  const onnx = fileURLToPath(new URL("./fixtures/onnx/bert_op11_fold_dyn_dense.onnx", import.meta.url));
  const at = (seq: number) => compile(onnx, { seq, codegen: false, pipeline: "", log: () => {} });
  const [long, short] = [await at(16), await at(8)];
  const batched = specializeShapes(long.module, { batch: 2, seq: 8 });
  const i64 = (shape: number[], values: number[]) =>
    new Tensor(tensorType(shape, "i64"), Float64Array.from(values));
  const ids = [[91, 7, 9, 12, 92, 0, 0, 0], [91, 30, 31, 32, 33, 34, 35, 92]];
  const mask = ids.map((row) => row.map((id) => id === 0 ? 0 : 1));
  const inputs = (rows: number[][], m: number[][]) => ({
    input_ids: i64([rows.length, 8], rows.flat()),
    token_type_ids: i64([rows.length, 8], new Array(rows.length * 8).fill(0)),
    attention_mask: i64([rows.length, 8], m.flat()),
  });
  const [both] = interpret(batched, inputs(ids, mask), long.weights);
  for (let r = 0; r < 2; r++) {
    const [one] = interpret(short.module, inputs([ids[r]], [mask[r]]), short.weights);
    const width = one.data.length;
    for (let k = 0; k < width; k++) {
      assert.ok(Math.abs(both.data[r * width + k] - one.data[k]) < 1e-5, `row ${r} value ${k}`);
    }
  }
});
