/**
 * The ops autodiff adds (their gradients through the ops they belong to are checked in
 * tests/grad/): values on small hand-worked cases, and the type rules' errors.
 */

import assert from "node:assert/strict";
import { bsrDenseGradW } from "../../ir/ops/bsr_dense_grad_w.ts";
import { bsrDenseGradX } from "../../ir/ops/bsr_dense_grad_x.ts";
import { crossEntropy } from "../../ir/ops/cross_entropy.ts";
import { crossEntropyGrad } from "../../ir/ops/cross_entropy_grad.ts";
import { exp } from "../../ir/ops/exp.ts";
import { geluGrad } from "../../ir/ops/gelu_grad.ts";
import { layerNormGrad } from "../../ir/ops/layer_norm_grad.ts";
import { log } from "../../ir/ops/log.ts";
import { reduceSum } from "../../ir/ops/reduce_sum.ts";
import { scatterAdd } from "../../ir/ops/scatter_add.ts";
import { sliceGrad } from "../../ir/ops/slice_grad.ts";
import { softmaxGrad } from "../../ir/ops/softmax_grad.ts";
import { BsrTensor } from "../../ir/tensor.ts";
import type { TensorType } from "../../ir/types.ts";
import { assertInferError, assertTensor, bool, enumValue, float, int, ints, run, t, ty } from "./helpers.ts";

Deno.test("reduce_sum over axes, with and without keepdims", () => {
  const x = t([2, 3], [1, 2, 3, 4, 5, 6]);
  assertTensor(run(reduceSum, [x], { axes: ints([1]) }), [2, 1], [6, 15]);
  assertTensor(run(reduceSum, [x], { axes: ints([0, 1]), keepdims: bool(false) }), [], [21]);
  assertInferError(reduceSum, [ty([2], "i32")], "operand 'x' must be a float tensor");
  assertInferError(reduceSum, [ty([2, 3])], "attribute 'axes' must be distinct", { axes: ints([1, -1]) });
});

Deno.test("exp and log", () => {
  assertTensor(run(exp, [t([3], [0, 1, -1])]), [3], [1, Math.E, 1 / Math.E]);
  assertTensor(run(log, [t([2], [1, Math.E])]), [2], [0, 1]);
  assertInferError(log, [ty([2], "i64")], "operand 'x' must be a float tensor");
});

Deno.test("scatter_add adds rows at their (repeated, negative) indices: gather's adjoint", () => {
  // Rows of updates [3, 2] go to table rows 1, 1 and -1 (= 3) of a [4, 2] result.
  const out = run(scatterAdd, [t([3, 2], [1, 2, 3, 4, 5, 6]), t([3], [1, 1, -1], "i64")], {}, ty([4, 2]));
  assertTensor(out, [4, 2], [0, 0, 4, 6, 0, 0, 5, 6]);
  // Along axis 1: updates [2, 2] to columns 2 and 0 of [2, 3].
  const cols = run(
    scatterAdd,
    [t([2, 2], [1, 2, 3, 4]), t([2], [2, 0], "i32")],
    { axis: int(1) },
    ty([2, 3]),
  );
  assertTensor(cols, [2, 3], [2, 0, 1, 4, 0, 3]);
  assert.throws(
    () => run(scatterAdd, [t([1, 2], [1, 2]), t([1], [4], "i64")], {}, ty([4, 2])),
    /scatter_add index 4 \(at position 0\) is out of range for axis 0 of size 4/,
  );
  assertInferError(scatterAdd, [ty([3, 2]), ty([3], "i64")], "needs a result type");
  assertInferError(
    scatterAdd,
    [ty([3, 3]), ty([3], "i64")],
    "operand 'updates' must have shape [3, 2]",
    {},
    ty([4, 2]),
  );
  assertInferError(
    scatterAdd,
    [ty([3, 2]), ty([3], "f32")],
    "operand 'indices' must be i32 or i64",
    {},
    ty([4, 2]),
  );
  assertInferError(
    scatterAdd,
    [ty([3, 2]), ty([3], "i64")],
    "dtypes differ: f32 and f64",
    {},
    ty([4, 2], "f64"),
  );
});

Deno.test("slice_grad puts dy where slice takes its elements", () => {
  const attrs = { starts: ints([0, 1]), ends: ints([3, 4]), axes: ints([0, 1]), steps: ints([2, 2]) };
  // slice of a [3, 4] takes rows 0, 2 and columns 1, 3.
  const out = run(sliceGrad, [t([2, 2], [1, 2, 3, 4])], attrs, ty([3, 4]));
  assertTensor(out, [3, 4], [0, 1, 0, 2, 0, 0, 0, 0, 0, 3, 0, 4]);
  assertInferError(
    sliceGrad,
    [ty([2, 3])],
    "operand 'dy' must have shape [2, 2], got tensor<2x3xf32>",
    attrs,
    ty([3, 4]),
  );
  assertInferError(sliceGrad, [ty([2, 2])], "needs a result type", attrs);
});

Deno.test("softmax_grad is y · (dy - Σ dy·y)", () => {
  const y = [0.2, 0.3, 0.5];
  const dy = [1, -1, 2];
  const dot = 0.2 - 0.3 + 1;
  assertTensor(run(softmaxGrad, [t([3], dy), t([3], y)]), [3], y.map((p, i) => p * (dy[i] - dot)));
  assertInferError(softmaxGrad, [ty([3]), ty([2])], "operands 'dy' and 'y' differ");
  assertInferError(softmaxGrad, [ty([3]), ty([3])], "axis 1 is out of range for rank 1", { axis: int(1) });
});

Deno.test("layer_norm_grad: a row of x = [-1, 1] with gamma [2, 3]", () => {
  // x̂ = [-1, 1] (eps 0), r = 1; g = dy·gamma = [2, 6]; mean(g) = 4, mean(g·x̂) = 2;
  // dx = g - 4 - x̂·2 = [0, 0]. With dy = [1, 0]: g = [2, 0], mean 1, mean(g·x̂) = -1: dx = [0, 0].
  const x = t([1, 2], [-1, 1]);
  const gamma = t([2], [2, 3]);
  assertTensor(run(layerNormGrad, [t([1, 2], [1, 1]), x, gamma], { epsilon: float(0) }), [1, 2], [0, 0]);
  // Three elements: x = [0, 1, 2], mean 1, var 2/3, r = √1.5, x̂ = [-1, 0, 1]·√1.5.
  const r = Math.sqrt(1.5);
  const xhat = [-r, 0, r];
  const g = [1, 0, 0];
  const meanG = 1 / 3, meanGX = -r / 3;
  const want = g.map((gi, i) => r * (gi - meanG - xhat[i] * meanGX));
  const out = run(layerNormGrad, [t([3], g), t([3], [0, 1, 2]), t([3], [1, 1, 1])], { epsilon: float(0) });
  assertTensor(out, [3], want, 1e-6);
  assert.ok(Math.abs(out.data[0] + out.data[1] + out.data[2]) < 1e-6, "dx sums to 0 over a row");
  assertInferError(layerNormGrad, [ty([2, 3]), ty([2, 4]), ty([4])], "operands 'dy' and 'x' differ");
  assertInferError(layerNormGrad, [ty([2, 4]), ty([2, 4]), ty([3])], "operand 'gamma' must have shape [4]");
});

Deno.test("gelu_grad: dy · gelu'(x), erf and tanh forms", () => {
  // gelu'(0) = 0.5; erf form at 1: Φ(1) + φ(1) = 0.8413447 + 0.2419707.
  assertTensor(run(geluGrad, [t([2], [2, 1]), t([2], [0, 1])]), [2], [1, 1.0833155], 1e-6);
  const tanhForm = run(geluGrad, [t([2], [1, 1]), t([2], [0, 1])], { approximation: enumValue("tanh") });
  assertTensor(tanhForm, [2], [0.5, 1.0829640], 1e-6);
  assertInferError(geluGrad, [ty([2]), ty([3])], "operands 'dy' and 'x' differ");
});

Deno.test("cross_entropy: mean over rows of logsumexp - the label's logit; out-of-range labels fail", () => {
  const logits = t([2, 2], [0, 0, 1, 3]);
  const loss = run(crossEntropy, [logits, t([2], [1, 0], "i64")]);
  const want = (Math.log(2) + (Math.log(Math.exp(1) + Math.exp(3)) - 1)) / 2;
  assertTensor(loss, [], [want]);
  assert.throws(
    () => run(crossEntropy, [logits, t([2], [1, 2], "i64")]),
    /label 2 of row 1 is out of range for 2 classes/,
  );
  assertInferError(crossEntropy, [ty([2, 3]), ty([2], "f32")], "operand 'labels' must be i32 or i64");
  assertInferError(crossEntropy, [ty([2, 3]), ty([3], "i64")], "operand 'labels' must be [2]");
  assertInferError(crossEntropy, [ty([6]), ty([6], "i64")], "operand 'logits' must be rank 2 [B, C]");
});

Deno.test("cross_entropy_grad: dy · (softmax - onehot) / B", () => {
  const out = run(crossEntropyGrad, [t([], [2]), t([2, 2], [0, 0, 1, 3]), t([2], [1, 0], "i64")]);
  const p = Math.exp(1) / (Math.exp(1) + Math.exp(3));
  assertTensor(out, [2, 2], [0.5, -0.5, p - 1, 1 - p], 1e-6);
  assertInferError(
    crossEntropyGrad,
    [ty([1]), ty([2, 2]), ty([2], "i64")],
    "operand 'dy' must be tensor<f32>",
  );
});

/** W [3, 4] = [[1, 2, 0, 0], [0, 0, 0, 0], [0, 0, 3, 4]] in 1x2 blocks: blocks (0, 0) and (2, 1). */
function bsrW(): BsrTensor {
  const type: TensorType = {
    shape: [3, 4],
    dtype: "f32",
    sparse: { kind: "bsr", block: [1, 2], nnzBlocks: 2 },
  };
  return new BsrTensor(
    type,
    Float32Array.from([1, 2, 3, 4]),
    Int32Array.from([0, 1]),
    Int32Array.from([0, 1, 1, 2]),
  );
}

Deno.test("bsr_dense_grad_x is dy · W over the stored blocks", () => {
  // dy [2, 3] · W [3, 4].
  const out = run(bsrDenseGradX, [t([2, 3], [1, 5, 2, 0, 1, 1]), bsrW()]);
  assertTensor(out, [2, 4], [1, 2, 6, 8, 0, 0, 3, 4]);
  assertInferError(bsrDenseGradX, [ty([2, 4]), bsrW().sparseType], "dims differ: dy has N = 4");
  assertInferError(bsrDenseGradX, [ty([2, 3]), ty([3, 4])], "operand 'w' must be a 2-D bsr tensor");
});

Deno.test("bsr_dense_grad_w is Σ dyᵀ · x on the stored blocks only, laid out as w.data", () => {
  // dyᵀ·x for rows n = 0 (block 0, columns 0..1) and n = 2 (block 1, columns 2..3).
  const dy = t([2, 3], [1, 5, 2, 0, 1, 1]);
  const x = t([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
  const out = run(bsrDenseGradW, [dy, x, bsrW()]);
  assertTensor(out, [2, 1, 2], [1 * 1 + 0 * 5, 1 * 2 + 0 * 6, 2 * 3 + 1 * 7, 2 * 4 + 1 * 8]);
  assertInferError(
    bsrDenseGradW,
    [ty([2, 3]), ty([3, 4]), bsrW().sparseType],
    "must have the same leading dims",
  );
  assertInferError(
    bsrDenseGradW,
    [ty([2, 3]), ty([2, 5]), bsrW().sparseType],
    "operand 'x' must end in K = 4",
  );
});
