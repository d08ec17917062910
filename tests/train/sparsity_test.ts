/**
 * train/sparsity.ts and train/adamw.ts: the prunable weights are prune's, block pruning zeroes
 * exactly the blocks `prune{score=l2}` zeroes (both layouts), the group-lasso penalty and its
 * proximal step on hand-computed blocks, the cubic schedule, masks; AdamW against a float64
 * transcription of PyTorch's update, decay only on the right weights, the schedule.
 */

import assert from "node:assert/strict";
import { bertConfig, buildBertModule } from "../../frontend/synthetic_bert.ts";
import { seededWeights } from "../../ir/inputs.ts";
import { createPassRegistry } from "../../passes/index.ts";
import { runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { AdamW, decays, warmupLinearLr } from "../../train/adamw.ts";
import {
  applyMask,
  blockNorms,
  cubicSparsity,
  groupLassoPenalty,
  isPruningStep,
  masksFromZeros,
  type Matrix,
  parseBlock,
  proxGroupLasso,
  prunableWeights,
  pruneBlocks,
} from "../../train/sparsity.ts";

const close = (a: number, b: number, tol = 1e-6) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

Deno.test("prunable weights are the encoder's dense weights, the ones prune touches", () => {
  const c = bertConfig("bert-tiny", { seq: 8 });
  const m = buildBertModule(c, "w.safetensors");
  const names = prunableWeights(m).map((p) => p.name);
  assert.equal(names.length, 6 * c.layers);
  assert.ok(names.every((n) => /encoder\.layer\.\d+\./.test(n) && n.endsWith(".weight")));
  assert.ok(!names.some((n) => /embeddings|pooler|classifier|LayerNorm/.test(n)));
  const inter = prunableWeights(m).find((p) => p.name.endsWith("0.intermediate.dense.weight"))!;
  assert.deepEqual([inter.out, inter.in, inter.outIn], [c.intermediate, c.hidden, true]);
  assert.deepEqual(prunableWeights(m, "attention\\.self\\.query").length, c.layers);
});

Deno.test("pruneBlocks zeroes the blocks prune{score=l2} zeroes", () => {
  const c = bertConfig("bert-tiny", { seq: 8 });
  const m = buildBertModule(c, "w.safetensors");
  const store = seededWeights(m, 7);
  for (const [block, sparsity] of [["1x32", 0.8], ["4x4", 0.8], ["3x5", 0.5]] as const) {
    const r = runPipeline(
      m,
      parsePipeline(`prune{sparsity=${sparsity} block=${block}}`, createPassRegistry()),
      {
        weights: store,
      },
    );
    for (const mat of prunableWeights(m)) {
      const w = Float32Array.from(store.get(m.weights.get(mat.name)!).data);
      const mask = new Uint8Array(w.length).fill(1);
      pruneBlocks(w, mat, parseBlock(block), sparsity, mask);
      assert.deepEqual([...w], [...r.changedWeights.get(mat.name)!.data], `${mat.name} ${block}`);
      for (let i = 0; i < w.length; i++) assert.equal(mask[i], w[i] === 0 ? 0 : 1);
    }
  }
});

Deno.test("block norms, the group-lasso penalty and its proximal step, in both layouts", () => {
  // [out, in] = 2x4, blocks 1x2: (3,4) (0,0) / (1,0) (6,8)
  const outIn: Matrix = { name: "w", out: 2, in: 4, outIn: true };
  const w = Float32Array.from([3, 4, 0, 0, 1, 0, 6, 8]);
  assert.deepEqual([...blockNorms(w, outIn, [1, 2])], [5, 0, 1, 10]);
  close(groupLassoPenalty(w, outIn, [1, 2], 0.5), 0.5 * 16);
  const zero = proxGroupLasso(w, outIn, [1, 2], 2);
  assert.equal(zero, 2); // (0,0) and (1,0): norms 0 and 1 <= 2
  const want = [3 * 0.6, 4 * 0.6, 0, 0, 0, 0, 6 * 0.8, 8 * 0.8];
  [...w].forEach((x, i) => close(x, want[i]));
  // The same matrix stored [in, out] (transpose_b = false): blocks are still over [out, in].
  const inOut: Matrix = { name: "w", out: 2, in: 4, outIn: false };
  const t = Float32Array.from([3, 1, 4, 0, 0, 6, 0, 8]);
  assert.deepEqual([...blockNorms(t, inOut, [1, 2])], [5, 0, 1, 10]);
  proxGroupLasso(t, inOut, [1, 2], 2);
  [...t].forEach((x, i) =>
    close(x, [want[0], want[4], want[1], want[5], want[2], want[6], want[3], want[7]][i])
  );
  // A ragged edge: 2x3 blocks over 2x4 leave a 2x1 block.
  const ragged = blockNorms(Float32Array.from([1, 1, 1, 2, 1, 1, 1, 2]), outIn, [2, 3]);
  close(ragged[0], Math.sqrt(6));
  close(ragged[1], Math.sqrt(8));
});

Deno.test("the cubic schedule: s_i before t0, s_f after t0 + nΔt, cubic between", () => {
  const s = { initial: 0, final: 0.8, start: 10, interval: 5, updates: 4 };
  assert.equal(cubicSparsity(0, s), 0);
  assert.equal(cubicSparsity(10, s), 0);
  close(cubicSparsity(15, s), 0.8 + (0 - 0.8) * (1 - 5 / 20) ** 3);
  close(cubicSparsity(20, s), 0.8 - 0.8 * 0.125);
  assert.equal(cubicSparsity(30, s), 0.8);
  assert.equal(cubicSparsity(99, s), 0.8);
  assert.deepEqual([...Array(40).keys()].filter((t) => isPruningStep(t, s)), [10, 15, 20, 25, 30]);
  assert.equal(cubicSparsity(3, { ...s, updates: 0, start: 0 }), 0.8);
});

Deno.test("masks come from zeros and hold them", () => {
  const weights = new Map([["a", Float32Array.from([0, 1, -2, 0])]]);
  const masks = masksFromZeros(weights, ["a"]);
  assert.deepEqual([...masks.get("a")!], [0, 1, 1, 0]);
  const g = Float32Array.from([5, 5, 5, 5]);
  applyMask(g, masks.get("a")!);
  assert.deepEqual([...g], [0, 5, 5, 0]);
  assert.throws(() => masksFromZeros(weights, ["b"]), /no weight 'b'/);
  assert.throws(() => parseBlock("4by4"), /RxC/);
  assert.deepEqual(parseBlock("1x32"), [1, 32]);
});

Deno.test("AdamW matches PyTorch's update (float64 transcription); no decay on biases and LayerNorm", () => {
  const names = ["l.weight", "l.bias", "x.LayerNorm.weight"];
  assert.deepEqual(names.map(decays), [true, false, false]);
  const params = new Map(names.map((n, k) => [n, Float32Array.from([0.5 + k, -1, 2])]));
  const ref = new Map(names.map((n) => [n, { w: [...params.get(n)!], m: [0, 0, 0], v: [0, 0, 0] }]));
  const opt = new AdamW(params, { weightDecay: 0.1 });
  const [b1, b2, eps, wd] = [0.9, 0.999, 1e-8, 0.1];
  for (let t = 1; t <= 4; t++) {
    const lr = 0.01 * t;
    const grads = new Map(names.map((n, k) => [n, Float32Array.from([0.3 * t, -0.2 + k, 1e-3 * t])]));
    opt.step(grads, lr);
    for (const n of names) {
      const r = ref.get(n)!;
      const g = grads.get(n)!;
      for (let i = 0; i < 3; i++) {
        if (decays(n)) r.w[i] *= 1 - lr * wd;
        r.m[i] = b1 * r.m[i] + (1 - b1) * g[i];
        r.v[i] = b2 * r.v[i] + (1 - b2) * g[i] * g[i];
        const mh = r.m[i] / (1 - b1 ** t), vh = r.v[i] / (1 - b2 ** t);
        r.w[i] -= lr * mh / (Math.sqrt(vh) + eps);
      }
    }
  }
  for (const n of names) [...params.get(n)!].forEach((x, i) => close(x, ref.get(n)!.w[i], 1e-5));
  // A weight without a gradient does not move, even with decay.
  const p = new Map([["q.weight", Float32Array.from([1])]]);
  new AdamW(p).step(new Map(), 0.1);
  assert.equal(p.get("q.weight")![0], 1);
});

Deno.test("warmup then linear decay", () => {
  assert.equal(warmupLinearLr(1, 100, 10, 1), 0.1);
  assert.equal(warmupLinearLr(10, 100, 10, 1), 1);
  assert.equal(warmupLinearLr(11, 100, 10, 1), 1);
  close(warmupLinearLr(55, 100, 10, 1), 46 / 90);
  close(warmupLinearLr(100, 100, 10, 1), 1 / 90);
  assert.equal(warmupLinearLr(1, 100, 0, 2), 2);
  assert.equal(warmupLinearLr(1, 1, 0, 2), 2);
});
