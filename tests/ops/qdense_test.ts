/**
 * The `qdense` op: its shape and attribute rules, its semantics on hand-computed cases (ties
 * rounding to even, rows of zeros, a static scale, clamping), the text form through parse,
 * verify and print, and that it approximates `dense` within the quantization error on random data.
 */

import assert from "node:assert/strict";
import type { Attr } from "../../ir/attrs.ts";
import { interpret } from "../../ir/interpreter.ts";
import { dense } from "../../ir/ops/dense.ts";
import { denseInt8, qdense, roundHalfEven } from "../../ir/ops/qdense.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { Random } from "../../ir/random.ts";
import { BsrTensor, Tensor } from "../../ir/tensor.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore } from "../../ir/weights.ts";
import {
  assertInferError,
  assertTensor,
  bool,
  enumValue,
  float,
  int,
  reader,
  run,
  t,
  ty,
} from "./helpers.ts";

// x row 0 = [8, 1, 3, -5, 2.5]: with act_max = 4, s = 8 / 4 = 2 and x / s = [4, 0.5, 1.5, -2.5, 1.25],
// which rounds (ties to even) to q = [4, 0, 2, -2, 1]. Row 1 is all zeros (s = 1, q = 0).
const X = [8, 1, 3, -5, 2.5, 0, 0, 0, 0, 0];
const WQ = [1, 2, 3, 4, 5, -1, 0, 1, 0, -127]; // [N, K] = [2, 5]
const W_SCALE = [0.5, 0.25];
const BIAS = [1, -1];
const inputs = (bias = true) => [
  t([2, 5], X),
  t([2, 5], WQ, "i8"),
  t([2], W_SCALE),
  ...(bias ? [t([2], BIAS)] : []),
];

interface Case {
  readonly label: string;
  readonly attrs: Record<string, Attr>;
  readonly bias: boolean;
  readonly expected: number[];
}

const CASES: Case[] = [
  {
    // acc = q · wq = [4 + 0 + 6 - 8 + 5, -4 + 0 + 2 + 0 - 127] = [7, -129]; y = acc · s · w_scale + bias.
    label: "dynamic scale, ties to even, a row of zeros",
    attrs: { act_max: int(4) },
    bias: true,
    expected: [7 * 1 + 1, -129 * 0.5 - 1, 1, -1],
  },
  {
    label: "no bias",
    attrs: { act_max: int(4) },
    bias: false,
    expected: [7, -64.5, 0, 0],
  },
  {
    // s = 0.5: x / s = [16, 2, 6, -10, 5] clamps to q = [4, 2, 4, -4, 4]; acc = [24, -508].
    label: "static act_scale clamps to act_max, and applies to the zero row too",
    attrs: { act_max: int(4), act_scale: float(0.5) },
    bias: true,
    expected: [24 * 0.25 + 1, -508 * 0.125 - 1, 1, -1],
  },
  {
    // act_max = 16: s = 0.5, x / s = [16, 2, 6, -10, 5], nothing clamps; acc = [16+4+18-40+25, -16+6-635].
    label: "a larger act_max keeps more precision",
    attrs: { act_max: int(16) },
    bias: false,
    expected: [23 * 0.25, -645 * 0.125, 0, 0],
  },
  {
    // Pre-activation [8, -65.5, 1, -1].
    label: "activation tanh after the bias",
    attrs: { act_max: int(4), activation: enumValue("tanh") },
    bias: true,
    expected: [Math.tanh(8), Math.tanh(-65.5), Math.tanh(1), Math.tanh(-1)],
  },
];

for (const c of CASES) {
  Deno.test(`qdense: ${c.label}`, () => {
    assertTensor(run(qdense, inputs(c.bias), c.attrs), [2, 2], c.expected);
  });
}

Deno.test("qdense: roundHalfEven rounds ties to the even integer", () => {
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, -0],
    [-1.5, -2],
    [-2.5, -2],
    [
      2.4999,
      2,
    ],
    [2.5001, 3],
    [-3.7, -4],
    [7, 7],
  ];
  for (const [v, want] of cases) {
    assert.ok(roundHalfEven(v) === want, `roundHalfEven(${v}) = ${roundHalfEven(v)}`);
  }
});

Deno.test("qdense: defaults are act_max = 63, dynamic scale, no activation", () => {
  // Row [63, -31.5, 0.5]: s = 1, q = [63, -32 (tie to even), 0 (tie to even)].
  const out = run(qdense, [t([3], [63, -31.5, 0.5]), t([1, 3], [1, 1, 1], "i8"), t([1], [2])]);
  assertTensor(out, [1], [(63 - 32) * 2], 0);
});

Deno.test("qdense: batch dims are kept and a NaN poisons only its row", () => {
  const x = t([2, 1, 2], [NaN, 1, 2, -2]);
  const out = run(qdense, [x, t([1, 2], [3, -1], "i8"), t([1], [1])], { act_max: int(2) });
  assert.deepEqual(out.shape, [2, 1, 1]);
  assert.ok(Number.isNaN(out.data[0]));
  assert.equal(out.data[1], (2 * 3 + 2) * 1); // s = 1, q = [2, -2]
});

Deno.test("qdense rejects bad ranks, dims, dtypes and attributes", () => {
  const ok = [ty([2, 5]), ty([3, 5], "i8"), ty([3])];
  assertInferError(qdense, [ty([]), ok[1], ok[2]], "operand 'x' must be rank >= 1, got tensor<f32>");
  assertInferError(qdense, [ty([2, 5], "f64"), ok[1], ok[2]], "operand 'x' must be f32, got tensor<2x5xf64>");
  assertInferError(qdense, [ok[0], ty([3, 5]), ok[2]], "operand 'wq' must be an i8 [N, K] matrix");
  assertInferError(qdense, [ok[0], ty([15], "i8"), ok[2]], "operand 'wq' must be an i8 [N, K] matrix");
  assertInferError(qdense, [ty([2, 4]), ok[1], ok[2]], "contraction dims differ: x has K = 4");
  assertInferError(qdense, [ok[0], ok[1], ty([5])], "operand 'w_scale' must be f32 [3], got tensor<5xf32>");
  assertInferError(qdense, [ok[0], ok[1], ty([3], "f16")], "operand 'w_scale' must be f32 [3]");
  assertInferError(qdense, [...ok, ty([2])], "operand 'bias' must be f32 [3], got tensor<2xf32>");
  assertInferError(qdense, [...ok, ty([3], "i8")], "operand 'bias' must be f32 [3]");
  assertInferError(qdense, ok, "attribute 'act_max' must be in [1, 127], got 0", { act_max: int(0) });
  assertInferError(qdense, ok, "attribute 'act_max' must be in [1, 127], got 128", { act_max: int(128) });
  assertInferError(qdense, ok, "attribute 'act_scale' must be a finite float >= 0, got -1", {
    act_scale: float(-1),
  });
  assertInferError(qdense, ok, "must be a finite float >= 0, got Infinity", { act_scale: float(Infinity) });
  assert.deepEqual(qdense.infer(ok, reader(qdense), undefined), ty([2, 3]));
});

const TEXT = `module @q {
  weights {
    @w.q : tensor<3x5xi8>
    @w.scale : tensor<3xf32>
    @b : tensor<3xf32>
  }

  func @main(%x: tensor<2x4x5xf32>) -> (tensor<2x4x3xf32>) {
    %y = qdense %x, @w.q, @w.scale, @b {act_max = 63, act_scale = 0.0, activation = gelu} : tensor<2x4x3xf32>
    return %y
  }
}
`;

Deno.test("qdense: text form parses, verifies, prints back and runs", () => {
  const { module: m, diagnostics } = parse(TEXT, { file: "q.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(m!), []);
  assert.equal(print(m!), TEXT);
  const rng = new Random(3);
  const store = memoryStore(
    new Map([
      ["w.q", Tensor.from([3, 5], "i8", Array.from({ length: 15 }, () => rng.int(255) - 127))],
      ["w.scale", Tensor.from([3], "f32", [0.01, 0.02, 0.03])],
      ["b", Tensor.from([3], "f32", [0.1, -0.2, 0.3])],
    ]),
  );
  const x = Tensor.from([2, 4, 5], "f32", Array.from({ length: 40 }, () => rng.normal()));
  const [y] = interpret(m!, [x], store);
  assert.deepEqual(y.shape, [2, 4, 3]);
  assert.ok(y.data.every(Number.isFinite));
  const bad = TEXT.replace("act_max = 63", "act_max = 200");
  const diags = verify(parse(bad, { file: "bad.sir" }).module!);
  assert.equal(diags.length, 1);
  assert.match(diags[0].message, /attribute 'act_max' must be in \[1, 127\], got 200/);
});

/** Symmetric per-row int8 quantization of W [N, K], as the quantize pass does it. */
function quantizeRows(w: Float32Array, n: number, k: number): { wq: number[]; scale: number[] } {
  const wq: number[] = [], scale: number[] = [];
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let j = 0; j < k; j++) m = Math.max(m, Math.abs(w[r * k + j]));
    const s = m === 0 ? 1 : Math.fround(m / 127);
    scale.push(s);
    for (let j = 0; j < k; j++) wq.push(Math.max(-127, Math.min(127, roundHalfEven(w[r * k + j] / s))));
  }
  return { wq, scale };
}

Deno.test("qdense approximates dense within the quantization error on random data", () => {
  const [M, K, N] = [16, 96, 24];
  const rng = new Random(11);
  const x = Float32Array.from({ length: M * K }, () => rng.normal() * (1 + rng.int(3)));
  const w = Float32Array.from({ length: N * K }, () => rng.normal() * 0.05);
  const b = Float32Array.from({ length: N }, () => rng.normal());
  const { wq, scale } = quantizeRows(w, N, K);
  for (const actMax of [63, 127]) {
    const ref = run(dense, [t([M, K], [...x]), t([N, K], [...w]), t([N], [...b])], {
      transpose_b: bool(true),
    });
    const q = run(qdense, [t([M, K], [...x]), t([N, K], wq, "i8"), t([N], scale), t([N], [...b])], {
      act_max: int(actMax),
    });
    let errSq = 0, refSq = 0;
    for (let r = 0; r < M; r++) {
      let a = 0;
      for (let j = 0; j < K; j++) a = Math.max(a, Math.abs(x[r * K + j]));
      const s = a / actMax;
      for (let n = 0; n < N; n++) {
        // |x·w - s q · ws wq| ≤ Σ (s/2)|w| + |x| (ws/2) + K (s/2)(ws/2), plus f32 rounding.
        let bound = K * (s / 2) * (scale[n] / 2);
        for (let j = 0; j < K; j++) {
          bound += (s / 2) * Math.abs(w[n * K + j]) + Math.abs(x[r * K + j]) * (scale[n] / 2);
        }
        const e = Math.abs(q.data[r * N + n] - ref.data[r * N + n]);
        assert.ok(e <= bound + 1e-5, `act_max ${actMax} [${r}, ${n}]: error ${e} > bound ${bound}`);
        errSq += e * e;
        refSq += (ref.data[r * N + n] - b[n]) ** 2;
      }
    }
    const rel = Math.sqrt(errSq / refSq);
    assert.ok(rel < (actMax === 63 ? 0.03 : 0.02), `act_max ${actMax}: relative RMS error ${rel}`);
  }
});

Deno.test("qdense: a BSR int8 wq means its densified matrix", () => {
  // wq [N, K] = [3, 4] in 2x2 blocks: block (0, 1) and block (1, 0) (a padded edge block row).
  const type = {
    shape: [3, 4],
    dtype: "i8" as const,
    sparse: { kind: "bsr" as const, block: [2, 2] as const, nnzBlocks: 2 },
  };
  const blocks = Int8Array.from([1, -2, 3, 4, 5, 6, 0, 0]);
  const bsr = new BsrTensor(type, blocks, Int32Array.from([1, 0]), Int32Array.from([0, 1, 2]));
  const dense = [0, 0, 1, -2, 0, 0, 3, 4, 5, 6, 0, 0];
  assert.deepEqual(Array.from(denseInt8(bsr)), dense);
  const x = t([2, 4], [1, -2, 3, 4.5, 0, 0.25, -0.5, 1]);
  const xs = () => [x, t([3], [0.5, 0.25, 2]), t([3], [1, 2, 3])];
  const want = run(qdense, [x, t([3, 4], dense, "i8"), ...xs().slice(1)], { act_max: int(9) });
  const got = run(qdense, [x, bsr, ...xs().slice(1)], { act_max: int(9) });
  assert.deepEqual(got.data, want.data);
  const over = { ...type, sparse: { ...type.sparse, nnzBlocks: 5 } };
  assertInferError(
    qdense,
    [ty([2, 4]), over, ty([3])],
    "operand 'wq' stores 5 blocks, more than its 2x2 block grid",
  );
});
