/**
 * Autodiff of a block-sparse BERT: the synthetic bert-tiny (f32, sequence length 8) pruned to
 * 4x4 blocks, once left dense (`prune`) and once lowered to BSR (`prune`, `bsr-lower`). The BSR
 * model's gradient of each `bsr_dense` weight is the gradient of its stored blocks, and must equal
 * the pruned dense model's gradient at the same entries; the other gradients and the loss agree.
 */

import assert from "node:assert/strict";
import { grad, runGrad } from "../../ir/autodiff.ts";
import { withCrossEntropyLoss } from "../../ir/loss.ts";
import { type BsrTensor, Tensor } from "../../ir/tensor.ts";
import { memoryStore } from "../../ir/weights.ts";
import { bertConfig, buildBertModule, syntheticBertWeights } from "../../frontend/synthetic_bert.ts";
import { runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { createPassRegistry } from "../../passes/index.ts";
import { assertRoundTrip } from "./helpers.ts";

const CONFIG = bertConfig("bert-tiny", { seq: 8, vocab: 40, maxPositions: 16 });

function pipeline(text: string) {
  const data = new Map(
    syntheticBertWeights(CONFIG).map((w) => [w.name, Tensor.from(w.shape, "f32", w.data as Float32Array)]),
  );
  const r = runPipeline(
    buildBertModule(CONFIG, "tiny.safetensors"),
    parsePipeline(text, createPassRegistry()),
    {
      weights: memoryStore(data),
      log: () => {},
    },
  );
  const lossFn = withCrossEntropyLoss(r.module, "main");
  const info = grad(r.module, lossFn);
  const inputs = {
    input_ids: Tensor.from([1, 8], "i64", [1, 7, 12, 3, 30, 2, 0, 0]),
    token_type_ids: Tensor.from([1, 8], "i64", [0, 0, 0, 0, 1, 1, 1, 1]),
    attention_mask: Tensor.from([1, 8], "i64", [1, 1, 1, 1, 1, 1, 0, 0]),
    labels: Tensor.from([1], "i64", [0]),
  };
  return { m: r.module, weights: r.weights, info, ...runGrad(r.module, info, inputs, r.weights) };
}

/** Relative error of `a` against `b` in the 2-norm. */
function relative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0, ref = 0;
  for (let i = 0; i < b.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    ref += b[i] ** 2;
  }
  return Math.sqrt(diff / ref);
}

Deno.test("bert-tiny pruned to 4x4 blocks: BSR block gradients equal the dense pruned model's on the pattern", () => {
  const prune = "prune{sparsity=0.8 block=4x4}";
  const dense = pipeline(prune);
  const sparse = pipeline(`${prune},bsr-lower{block=4x4}`);
  assertRoundTrip(sparse.m);
  assert.ok(
    Math.abs(sparse.loss - dense.loss) <= 1e-6 * Math.abs(dense.loss),
    `${sparse.loss} vs ${dense.loss}`,
  );
  assert.deepEqual(sparse.info.grads.map((g) => g.name), dense.info.grads.map((g) => g.name));
  let lowered = 0;
  for (const g of sparse.info.grads) {
    const w = sparse.m.weights.get(g.name)!;
    const want = dense.grads.get(g.name)!;
    const got = sparse.grads.get(g.name)!;
    if (!w.type.sparse) {
      assert.ok(relative(got.data, want.data) < 1e-4, `${g.name}: ${relative(got.data, want.data)}`);
      continue;
    }
    lowered++;
    const bsr = sparse.weights.get(w) as BsrTensor;
    const [R, C] = w.type.sparse.block;
    const K = w.type.shape[1];
    assert.deepEqual(got.shape, [w.type.sparse.nnzBlocks, R, C]);
    // The dense gradient at each stored block's entries, in the order of the block data.
    const picked = new Float64Array(got.data.length);
    for (let br = 0; br + 1 < bsr.indptr.length; br++) {
      for (let k = bsr.indptr[br]; k < bsr.indptr[br + 1]; k++) {
        for (let i = 0; i < R; i++) {
          for (let j = 0; j < C; j++) {
            picked[(k * R + i) * C + j] = want.data[(br * R + i) * K + bsr.indices[k] * C + j];
          }
        }
      }
    }
    assert.ok(relative(got.data, picked) < 1e-4, `${g.name}: ${relative(got.data, picked)}`);
  }
  assert.equal(lowered, 2 * 6, "every encoder dense weight of both layers is lowered");
  assert.ok(sparse.m.func("main_loss_grad")!.body.some((op) => op.name === "bsr_dense_grad_w"));
});
