/** The interpreter on whole modules: wiring, weights, dtypes and its errors. Ops have their own tests. */

import assert from "node:assert/strict";
import { BsrTensor, interpret, InterpretError, memoryStore, parse, Tensor, verify } from "../mod.ts";
import { seededInputs } from "../ir/inputs.ts";
import { MAX_TENSOR_ELEMENTS } from "../ir/tensor.ts";

function load(text: string) {
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!), []);
  return module!;
}

const DENSE_LAYER = `module @t {
  weights {
    @w : tensor<2x3xf32>
    @b : tensor<2xf32>
  }

  func @main(%x: tensor<1x3xf32>) -> (tensor<1x2xf32>) {
    %y = dense %x, @w, @b {transpose_b = true} : tensor<1x2xf32>
    %z = tanh %y : tensor<1x2xf32>
    return %z
  }
}
`;

Deno.test("a dense layer with weights from the store matches hand-computed values", () => {
  const m = load(DENSE_LAYER);
  const weights = memoryStore(
    new Map([
      ["w", Tensor.from([2, 3], "f32", [1, 0, -1, 0.5, 0.5, 0.5])],
      ["b", Tensor.from([2], "f32", [0.25, -1])],
    ]),
  );
  const [z] = interpret(m, { x: Tensor.from([1, 3], "f32", [1, 2, 3]) }, weights);
  // y = [1 - 3 + 0.25, 0.5 + 1 + 1.5 - 1] = [-1.75, 2]
  assert.deepEqual(z.shape, [1, 2]);
  assert.ok(Math.abs(z.data[0] - Math.tanh(-1.75)) < 1e-6);
  assert.ok(Math.abs(z.data[1] - Math.tanh(2)) < 1e-6);
});

Deno.test("f16 results are rounded to f16 after each op", () => {
  const m = load(`module @t {
  func @main(%x: tensor<1xf16>, %y: tensor<1xf16>) -> (tensor<1xf16>) {
    %s = add %x, %y : tensor<1xf16>
    return %s
  }
}
`);
  const [s] = interpret(
    m,
    [Tensor.from([1], "f16", [1]), Tensor.from([1], "f16", [0.0001])],
    memoryStore(new Map()),
  );
  // 1.0001 is not an f16; the nearest f16 is 1 (the spacing at 1 is 2^-10).
  assert.equal(s.data[0], 1);
});

const BSR_LAYER = `module @t {
  weights {
    @w : tensor<2x4xf32, bsr<1x2, nnz = 2>>
  }

  func @main(%x: tensor<1x4xf32>) -> (tensor<1x2xf32>) {
    %y = bsr_dense %x, @w : tensor<1x2xf32>
    return %y
  }
}
`;

Deno.test("a BSR weight runs through bsr_dense like its dense equivalent", () => {
  const m = load(BSR_LAYER);
  // W = [[1, 2, 0, 0], [0, 0, 3, 4]]: block (0,0) = [1, 2], block (1,1) = [3, 4].
  const wType = m.weights.get("w")!.type;
  const w = new BsrTensor(wType, Float32Array.of(1, 2, 3, 4), Int32Array.of(0, 1), Int32Array.of(0, 1, 2));
  const [y] = interpret(m, [Tensor.from([1, 4], "f32", [1, 1, 1, 1])], memoryStore(new Map([["w", w]])));
  assert.deepEqual([...y.data], [3, 7]);
});

Deno.test("a malformed BSR index is reported with the weight's name", () => {
  const m = load(BSR_LAYER);
  const wType = m.weights.get("w")!.type;
  const w = new BsrTensor(wType, Float32Array.of(1, 2, 3, 4), Int32Array.of(0, 7), Int32Array.of(0, 1, 2));
  assert.throws(
    () => interpret(m, [Tensor.from([1, 4], "f32", [1, 1, 1, 1])], memoryStore(new Map([["w", w]]))),
    /weight '@w': bad bsr index: block column 7/,
  );
});

Deno.test("inputs of the wrong type or count are refused with the parameter's place", () => {
  const m = load(DENSE_LAYER);
  const store = memoryStore(new Map());
  assert.throws(
    () => interpret(m, [Tensor.from([1, 2], "f32", [1, 2])], store),
    (e: Error) =>
      e instanceof InterpretError && /t\.sir:7:14: .*input '%x' must be tensor<1x3xf32>/.test(e.message),
  );
  assert.throws(() => interpret(m, [], store), /takes 1 inputs, got 0/);
  assert.throws(() => interpret(m, [], store, { func: "nope" }), /no function '@nope'/);
});

Deno.test("a failing op names its place in the file", () => {
  const m = load(`module @t {
  weights {
    @table : tensor<3x2xf32>
  }

  func @main(%ids: tensor<1xi64>) -> (tensor<1x2xf32>) {
    %e = gather @table, %ids : tensor<1x2xf32>
    return %e
  }
}
`);
  const store = memoryStore(new Map([["table", Tensor.from([3, 2], "f32", [0, 1, 2, 3, 4, 5])]]));
  const [e] = interpret(m, [Tensor.from([1], "i64", [2])], store);
  assert.deepEqual([...e.data], [4, 5]);
  assert.throws(
    () => interpret(m, [Tensor.from([1], "i64", [9])], store),
    /t\.sir:7:5: error: while running 'gather' for '%e': /,
  );
});

Deno.test("a tensor over 2^28 elements is refused at its op or parameter before anything runs", () => {
  const text = `module @m {
  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {
    %c = constant {value = dense<1.0>} : tensor<16384x16385xf32>
    return %x
  }
}
`;
  const m = load(text);
  assert.throws(
    () => interpret(m, [Tensor.from([2], "f32", [1, 2])], memoryStore(new Map())),
    /t\.sir:3:5: error: '%c' \(tensor<16384x16385xf32>\) has 268451840 elements, over the limit of 268435456/,
  );
  assert.throws(
    () => Tensor.zeros({ shape: [MAX_TENSOR_ELEMENTS + 1], dtype: "i8" }),
    /has 268435457 elements, over the limit of 268435456/,
  );
  const param = load(
    text.replace("tensor<2xf32>) ->", "tensor<70000x4000xf32>) ->").replace(
      "-> (tensor<2xf32>)",
      "-> (tensor<70000x4000xf32>)",
    ),
  );
  assert.throws(() => seededInputs(param.funcs[0], 0), /t\.sir:2:14: error: '%x' .* has 280000000 elements/);
  const many = load(`module @m {
  func @main(%a: tensor<16384x16384xi8>, %b: tensor<16384x16384xi8>, %c: tensor<16384x16384xi8>, %d: tensor<16384x16384xi8>, %e: tensor<16384x16384xi8>) -> (tensor<16384x16384xi8>) {
    return %a
  }
}
`);
  assert.throws(
    () => seededInputs(many.funcs[0], 0),
    /t\.sir:2:8: error: the inputs of '@main' have 1342177280 elements together, over the limit of 1073741824/,
  );
});

Deno.test("values live until their last use: used again later, returned twice, or never used", () => {
  const m = load(`module @t {
  weights {
    @w : tensor<2xf32>
  }

  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>, tensor<2xf32>, tensor<2xf32>) {
    %a = add %x, @w : tensor<2xf32>
    %unused = mul %a, %a : tensor<2xf32>
    %b = add %a, %x : tensor<2xf32>
    %c = add %b, @w : tensor<2xf32>
    %d = add %c, %a : tensor<2xf32>
    return %d, %a, %d
  }
}
`);
  const store = memoryStore(new Map([["w", Tensor.from([2], "f32", [10, 20])]]));
  const [d, a, d2] = interpret(m, [Tensor.from([2], "f32", [1, 2])], store);
  assert.deepEqual([...a.data], [11, 22]);
  assert.deepEqual([...d.data], [33, 66]);
  assert.equal(d2, d);
});
