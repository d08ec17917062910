/**
 * Every op's gradient rule against central finite differences on the interpreter: f64 with
 * seeded random inputs and small shapes (relative error 1e-6), f32 for the BSR ops (BSR weights
 * are f32), which are linear in each operand, so that a large step is exact up to rounding.
 */

import assert from "node:assert/strict";
import type { AttrJs } from "../../ir/attrs.ts";
import { grad, runGrad } from "../../ir/autodiff.ts";
import type { FuncBuilder } from "../../ir/builder.ts";
import type { Value } from "../../ir/module.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import { tanh } from "../../ir/ops/tanh.ts";
import { Random } from "../../ir/random.ts";
import { BsrTensor } from "../../ir/tensor.ts";
import type { DType, TensorType } from "../../ir/types.ts";
import { caseModule, checkGrad, type GradCase, uniform } from "./helpers.ts";

const f64 = (...shape: number[]): TensorType => ({ shape, dtype: "f64" });
const typed = (dtype: DType, ...shape: number[]): TensorType => ({ shape, dtype });

/** A case applying one op to the arguments, all differentiated. */
function opCase(
  name: string,
  op: string,
  inputs: GradCase["inputs"],
  attrs: Record<string, AttrJs> = {},
  type?: TensorType,
): GradCase {
  return { name, inputs, build: (f: FuncBuilder, args: Value[]) => f.op(op, args, attrs, { type }) };
}

const x = (...shape: number[]) => ({ name: "x", type: f64(...shape) });
const y = (...shape: number[]) => ({ name: "y", type: f64(...shape) });
const positive = (name: string, ...shape: number[]) => ({
  name,
  type: f64(...shape),
  range: [0.5, 1.5] as const,
});

const CASES: GradCase[] = [
  // Elementwise binary ops, with broadcasting both ways.
  opCase("add", "add", [x(2, 3), y(2, 3)]),
  opCase("add broadcast", "add", [x(2, 1, 3), y(4, 1)]),
  opCase("sub broadcast", "sub", [x(3), y(2, 3)]),
  opCase("mul broadcast", "mul", [x(2, 3, 4), y(3, 1)]),
  opCase("mul by a scalar", "mul", [x(2, 3), y()]),
  opCase("div broadcast", "div", [x(2, 3), positive("y", 3)]),
  opCase("pow", "pow", [positive("x", 2, 3), y(2, 3)]),
  // Unary ops.
  opCase("tanh", "tanh", [x(2, 5)]),
  opCase("erf", "erf", [{ name: "x", type: f64(2, 5), range: [-2, 2] }]),
  opCase("sqrt", "sqrt", [positive("x", 2, 5)]),
  opCase("exp", "exp", [x(2, 5)]),
  opCase("log", "log", [positive("x", 2, 5)]),
  opCase("gelu erf", "gelu", [{ name: "x", type: f64(3, 4), range: [-3, 3] }], { approximation: "erf" }),
  opCase("gelu tanh", "gelu", [{ name: "x", type: f64(3, 4), range: [-3, 3] }], { approximation: "tanh" }),
  // dense: every layout, bias or not, fused activations.
  opCase("dense transpose_b with bias", "dense", [x(2, 3, 4), { name: "w", type: f64(5, 4) }, {
    name: "b",
    type: f64(5),
  }], { transpose_b: true }),
  opCase("dense [K, N] without bias", "dense", [x(3, 4), { name: "w", type: f64(4, 5) }]),
  opCase("dense transpose_a", "dense", [x(2, 4, 3), { name: "w", type: f64(4, 5) }, {
    name: "b",
    type: f64(5),
  }], {
    transpose_a: true,
  }),
  opCase("dense transpose_a and transpose_b", "dense", [x(2, 4, 3), { name: "w", type: f64(5, 4) }], {
    transpose_a: true,
    transpose_b: true,
  }),
  opCase("dense rank-1 x", "dense", [x(4), { name: "w", type: f64(5, 4) }, { name: "b", type: f64(5) }], {
    transpose_b: true,
  }),
  ...["gelu", "gelu_tanh", "tanh"].map((activation) =>
    opCase(`dense activation ${activation}`, "dense", [x(3, 4), { name: "w", type: f64(5, 4) }, {
      name: "b",
      type: f64(5),
    }], { transpose_b: true, activation })
  ),
  // batch_matmul: transposes and broadcast batch dims.
  opCase("batch_matmul", "batch_matmul", [{ name: "a", type: f64(2, 3, 4) }, {
    name: "b",
    type: f64(2, 4, 5),
  }]),
  opCase("batch_matmul transpose_a", "batch_matmul", [{ name: "a", type: f64(2, 4, 3) }, {
    name: "b",
    type: f64(2, 4, 5),
  }], { transpose_a: true }),
  opCase("batch_matmul transpose_b", "batch_matmul", [{ name: "a", type: f64(2, 3, 4) }, {
    name: "b",
    type: f64(2, 5, 4),
  }], { transpose_b: true }),
  opCase("batch_matmul both transposed, broadcast", "batch_matmul", [{ name: "a", type: f64(1, 2, 4, 3) }, {
    name: "b",
    type: f64(3, 1, 5, 4),
  }], { transpose_a: true, transpose_b: true }),
  opCase("batch_matmul rank-2 b broadcast", "batch_matmul", [{ name: "a", type: f64(2, 3, 4) }, {
    name: "b",
    type: f64(4, 5),
  }]),
  // softmax with a mask (differentiated too), other axes.
  opCase("softmax", "softmax", [x(2, 5)]),
  opCase("softmax with a broadcast mask", "softmax", [x(2, 3, 4), { name: "mask", type: f64(1, 1, 4) }]),
  opCase("softmax axis 1", "softmax", [x(2, 3, 4)], { axis: 1 }),
  // Normalization.
  opCase("layer_norm", "layer_norm", [x(3, 6), { name: "gamma", type: f64(6) }, {
    name: "beta",
    type: f64(6),
  }], {
    epsilon: 1e-5,
  }),
  opCase("layer_norm without beta", "layer_norm", [x(2, 2, 5), { name: "gamma", type: f64(5) }], {
    epsilon: 1e-5,
  }),
  opCase("layer_norm over two axes", "layer_norm", [x(2, 3, 4), { name: "gamma", type: f64(3, 4) }, {
    name: "beta",
    type: f64(3, 4),
  }], { axis: 1, epsilon: 1e-5 }),
  opCase("add_layer_norm", "add_layer_norm", [x(3, 6), { name: "residual", type: f64(3, 6) }, {
    name: "gamma",
    type: f64(6),
  }, { name: "beta", type: f64(6) }], { epsilon: 1e-5 }),
  // Embedding lookups: repeated and negative indices add up in the table's gradient.
  opCase("gather", "gather", [{ name: "table", type: f64(5, 3) }, {
    name: "ids",
    type: typed("i64", 2, 3),
    values: [0, 2, 2, 4, -1, 1],
  }]),
  opCase("gather axis 1", "gather", [{ name: "table", type: f64(2, 4, 3) }, {
    name: "ids",
    type: typed("i32", 3),
    values: [3, 0, 3],
  }], { axis: 1 }),
  // Shape ops.
  opCase("reshape", "reshape", [x(2, 6)], {}, f64(3, 2, 2)),
  opCase("transpose", "transpose", [x(2, 3, 4)], { perm: [2, 0, 1] }),
  opCase("slice with steps and negative bounds", "slice", [x(4, 6)], {
    starts: [1, -5],
    ends: [4, 6],
    axes: [0, 1],
    steps: [2, 2],
  }),
  opCase("slice [CLS]", "slice", [x(1, 5, 3)], { starts: [0], ends: [1], axes: [1] }),
  opCase("concat", "concat", [x(2, 1, 3), y(2, 2, 3), { name: "z", type: f64(2, 3, 3) }], { axis: 1 }),
  // Reductions, where, cast, constants.
  opCase("reduce_mean keepdims", "reduce_mean", [x(2, 3, 4)], { axes: [0, 2] }),
  opCase("reduce_mean", "reduce_mean", [x(2, 3, 4)], { axes: [-1], keepdims: false }),
  opCase("reduce_sum", "reduce_sum", [x(2, 3, 4)], { axes: [1], keepdims: false }),
  opCase("where", "where", [
    { name: "cond", type: typed("bool", 2, 3), values: [1, 0, 0, 1, 1, 0] },
    x(2, 3),
    y(3),
  ]),
  {
    name: "cast f64 to f32 and back",
    inputs: [x(2, 3)],
    build: (f, [v]) =>
      f.op("cast", [f.op("cast", [v], {}, { type: typed("f32", 2, 3) })], {}, { type: f64(2, 3) }),
    h: 1e-2,
    tol: 1e-5,
  },
  {
    name: "constant times x",
    inputs: [x(2, 3)],
    build: (f, [v]) =>
      f.op("mul", [
        v,
        f.op("constant", [], { value: { shape: [], values: [2.5], float: true } }, { type: f64() }),
      ]),
  },
  // The loss.
  opCase("cross_entropy", "cross_entropy", [{ name: "logits", type: f64(3, 4), range: [-3, 3] }, {
    name: "labels",
    type: typed("i64", 3),
    values: [2, 0, 3],
  }]),
  // A value used twice: cotangents add up.
  {
    name: "a value used twice",
    inputs: [x(2, 3)],
    build: (f, [v]) => f.op("mul", [f.op("tanh", [v]), v]),
  },
];

for (const c of CASES) {
  Deno.test(`op gradient vs finite differences: ${c.name}`, () => {
    checkGrad(c);
  });
}

/** A 5x6 f32 BSR weight in 2x4 blocks (a 3x2 grid with padded edges), 3 blocks stored. */
function bsrWeight(rng: Random): BsrTensor {
  const type: TensorType = {
    shape: [5, 6],
    dtype: "f32",
    sparse: { kind: "bsr", block: [2, 4], nnzBlocks: 3 },
  };
  const data = uniform({ shape: [3, 2, 4], dtype: "f32" }, rng).data as Float32Array;
  // Block row 0 stores block column 1, row 1 none, row 2 (the padded last row) columns 0 and 1.
  return new BsrTensor(type, data, Int32Array.from([1, 0, 1]), Int32Array.from([0, 1, 1, 3]));
}

const BSR_ACTIVATIONS: readonly [string, number, number][] = [["none", 0.5, 1e-4], ["gelu", 2e-2, 5e-3]];
for (const [activation, h, tol] of BSR_ACTIVATIONS) {
  Deno.test(`op gradient vs finite differences: bsr_dense, activation ${activation} (f32)`, () => {
    const w = bsrWeight(new Random(7));
    checkGrad({
      name: `bsr_dense ${activation}`,
      inputs: [{ name: "x", type: typed("f32", 2, 3, 6) }, { name: "b", type: typed("f32", 5) }],
      weights: [{ name: "w", type: w.sparseType, data: w }],
      build: (f, [xv, bv], [wv]) => f.op("bsr_dense", [xv, wv, bv], { activation }),
      h,
      tol,
    });
  });
}

Deno.test("bsr_dense: the weight's gradient is its stored blocks [nnz, R, C], 0 in the padding of edge blocks", () => {
  const rng = new Random(3);
  const w = bsrWeight(rng);
  const c: GradCase = {
    name: "bsr_dense blocks",
    inputs: [{ name: "x", type: typed("f32", 4, 6) }],
    weights: [{ name: "w", type: w.sparseType, data: w }],
    build: (f, [xv], [wv]) => f.op("bsr_dense", [xv, wv]),
  };
  const { m, inputs, weights } = caseModule(c, rng);
  const info = grad(m, "main", { wrt: ["w"] });
  assert.deepEqual(info.grads, [{ name: "w", kind: "weight", type: { shape: [3, 2, 4], dtype: "f32" } }]);
  const dw = runGrad(m, info, inputs, weights).grads.get("w")!;
  assert.deepEqual(dw.shape, [3, 2, 4]);
  // Block 0 (block row 0, column 1) covers columns 4..7 of 6: its last two columns are padding.
  // Blocks 1 and 2 (block row 2) cover rows 4..5 of 5: their second row is padding.
  const padding = (k: number, i: number, j: number) =>
    (k === 0 && j >= 2) || (k === 2 && j >= 2) || (k > 0 && i === 1);
  for (let k = 0; k < 3; k++) {
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 4; j++) {
        const v = dw.data[(k * 2 + i) * 4 + j];
        if (padding(k, i, j)) assert.equal(v, 0, `block ${k} (${i}, ${j})`);
        else assert.notEqual(v, 0, `block ${k} (${i}, ${j})`);
      }
    }
  }
  checkGrad({ ...c, h: 0.5, tol: 1e-4 });
});

Deno.test("the gradient check fails on a wrong rule", () => {
  // tanh with the rule of the identity: the check must catch it.
  const registry = builtinRegistry.clone();
  registry.register({ ...tanh, name: "bad_tanh", grad: (_e, dy) => [dy] });
  assert.throws(
    () => checkGrad({ ...opCase("bad", "bad_tanh", [x(2, 3)]), registry }),
    /bad: d\/dx\[\d+\]: autodiff .* finite differences .*relative error/,
  );
});
