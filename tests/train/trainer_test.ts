/**
 * train/trainer.ts on softmax regression, whose loss and gradient are known in closed form: the
 * gradient is checked by finite differences, then each objective is trained: plain learns the
 * task; masked keeps the zeros exactly; group lasso zeroes exactly the blocks of the features
 * that carry no signal; gradual pruning reaches the target on the cubic schedule; the recipe
 * ends at the target sparsity, masked, and still learns. Also batches and shuffling.
 */

import assert from "node:assert/strict";
import { type Batch, Batches, type Example, makeBatch, shuffled } from "../../train/data.ts";
import { type Matrix, zeroFraction } from "../../train/sparsity.ts";
import { type LossAndGrads, prunableSparsity, train } from "../../train/trainer.ts";
import { Random } from "../../ir/random.ts";

const D = 16, K = 2, N = 512;
/** Features 0-3 decide the label; 4-15 are noise. */
const rng = new Random(11);
const X = Array.from({ length: N }, () => Float32Array.from({ length: D }, () => rng.normal()));
const Y = X.map((x) => (x[0] + 0.8 * x[1] - 0.6 * x[2] + 0.4 * x[3] > 0 ? 1 : 0));
/** Each example's id is its row of X. */
const examples: Example[] = X.map((_, i) => ({
  ids: Int32Array.of(i),
  mask: Int32Array.of(1),
  label: Y[i],
  length: 1,
}));
const W: Matrix = { name: "dense.weight", out: K, in: D, outIn: true };

/** Softmax regression, mean cross-entropy: logits = W x + b. */
const lossAndGrads: LossAndGrads = (weights, batch) => {
  const w = weights.get("dense.weight")!, b = weights.get("dense.bias")!;
  const gw = new Float32Array(w.length), gb = new Float32Array(b.length);
  let loss = 0;
  for (let r = 0; r < batch.batch; r++) {
    const x = X[batch.ids[r]];
    const z = Array.from({ length: K }, (_, k) => b[k] + x.reduce((s, xi, i) => s + w[k * D + i] * xi, 0));
    const mx = Math.max(...z);
    const e = z.map((v) => Math.exp(v - mx));
    const sum = e.reduce((a, c) => a + c, 0);
    const label = batch.labels[r];
    loss += -(z[label] - mx - Math.log(sum));
    for (let k = 0; k < K; k++) {
      const d = (e[k] / sum - (k === label ? 1 : 0)) / batch.batch;
      gb[k] += d;
      for (let i = 0; i < D; i++) gw[k * D + i] += d * x[i];
    }
  }
  return { loss: loss / batch.batch, grads: new Map([["dense.weight", gw], ["dense.bias", gb]]) };
};

function fresh(seed = 3): Map<string, Float32Array> {
  const r = new Random(seed);
  return new Map([
    ["dense.weight", Float32Array.from({ length: K * D }, () => r.normal(0, 0.1))],
    ["dense.bias", new Float32Array(K)],
  ]);
}

function accuracy(weights: ReadonlyMap<string, Float32Array>): number {
  const all = makeBatch(examples);
  const w = weights.get("dense.weight")!, b = weights.get("dense.bias")!;
  let right = 0;
  for (let r = 0; r < N; r++) {
    const z = [0, 1].map((k) => b[k] + X[r].reduce((s, xi, i) => s + w[k * D + i] * xi, 0));
    if ((z[1] > z[0] ? 1 : 0) === all.labels[r]) right++;
  }
  return right / N;
}

const base = { prunable: [W], lossAndGrads, steps: 150, lr: 0.05, warmup: 10, weightDecay: 0 };

Deno.test("the test's analytic gradient agrees with finite differences", async () => {
  const weights = fresh();
  const batch: Batch = makeBatch(examples.slice(0, 8));
  const { grads } = await lossAndGrads(weights, batch);
  for (const [name, i] of [["dense.weight", 0], ["dense.weight", 21], ["dense.bias", 1]] as const) {
    const w = weights.get(name)!;
    const keep = w[i], h = 1e-2;
    w[i] = keep + h;
    const up = (await lossAndGrads(weights, batch)).loss;
    w[i] = keep - h;
    const down = (await lossAndGrads(weights, batch)).loss;
    w[i] = keep;
    assert.ok(Math.abs((up - down) / (2 * h) - grads.get(name)![i]) < 1e-3);
  }
});

Deno.test("plain training learns the task, loss falling; evaluations at intervals and the end", async () => {
  const weights = fresh();
  const before = accuracy(weights);
  const steps: number[] = [];
  const r = await train({
    ...base,
    weights,
    batches: new Batches(examples, 32, 1),
    evalEvery: 50,
    evalAtStart: true,
    evaluate: accuracy,
    onStep: (s) => steps.push(s.step),
  });
  assert.deepEqual(r.evals.map((e) => e.step), [0, 50, 100, 150]);
  assert.equal(r.evals[0].accuracy, before);
  assert.ok(r.evals.at(-1)!.accuracy > 0.93, `accuracy ${r.evals.at(-1)!.accuracy}`);
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  assert.ok(mean(r.losses.slice(-20)) < 0.6 * mean(r.losses.slice(0, 20)));
  assert.deepEqual(steps, Array.from({ length: 150 }, (_, i) => i + 1));
});

Deno.test("masked fine-tuning keeps the pruned entries exactly zero", async () => {
  const weights = fresh();
  const w = weights.get("dense.weight")!;
  const zeros = [0, 5, 6, 7, 17, 31];
  for (const i of zeros) w[i] = 0;
  const r = await train({
    ...base,
    weights,
    batches: new Batches(examples, 32, 2),
    objective: { kind: "masked" },
  });
  for (const i of zeros) assert.ok(Object.is(w[i], 0) || Object.is(w[i], -0), `entry ${i} is ${w[i]}`);
  assert.equal(zeroFraction(w), zeros.length / w.length);
  assert.equal(r.sparsity, zeros.length / w.length);
  assert.ok(accuracy(weights) > 0.85);
});

Deno.test("a moving average of the weights: evaluated and returned, masked zeros kept", async () => {
  const weights = fresh();
  const w = weights.get("dense.weight")!;
  for (const i of [0, 5, 9]) w[i] = 0;
  const decay = 0.9;
  const snapshots: Float32Array[] = [];
  const evaluated: Float32Array[] = [];
  const r = await train({
    ...base,
    steps: 40,
    weights,
    batches: new Batches(examples, 32, 2),
    objective: { kind: "masked" },
    ema: decay,
    evalEvery: 20,
    evaluate: (ws) => {
      evaluated.push(Float32Array.from(ws.get("dense.weight")!));
      return accuracy(ws);
    },
    onStep: () => snapshots.push(Float32Array.from(w)),
  });
  // the average by its formula, from the weights after each step
  const avg = new Float32Array(w.length);
  snapshots.forEach((s, k) => {
    const t = k + 1;
    if (t === 1) return avg.set(s); // the average starts at the weights after the first step
    const d = Math.min(decay, (1 + t) / (10 + t));
    for (let i = 0; i < avg.length; i++) avg[i] = d * avg[i] + (1 - d) * s[i];
  });
  assert.equal(r.evals.length, 2);
  let worst = 0;
  for (let i = 0; i < w.length; i++) {
    worst = Math.max(worst, Math.abs(w[i] - avg[i]), Math.abs(evaluated[1][i] - avg[i]));
  }
  assert.ok(worst < 1e-5, `returned and evaluated weights are the average: off by ${worst}`);
  assert.ok(snapshots[39].some((x, i) => Math.abs(x - w[i]) > 1e-4), "the average is not the last iterate");
  for (const i of [0, 5, 9]) assert.equal(Math.abs(w[i]), 0);
  await assert.rejects(
    train({ ...base, weights: fresh(), batches: new Batches(examples, 8, 0), ema: 1 }),
    /decay must be in \(0, 1\)/,
  );
});

Deno.test("group lasso zeroes exactly the 1x4 blocks of the noise features", async () => {
  const weights = fresh();
  const penalties: number[] = [];
  await train({
    ...base,
    steps: 300,
    weights,
    batches: new Batches(examples, 32, 3),
    objective: { kind: "group-lasso", lambda: 1, block: [1, 4] },
    onStep: (s) => s.penalty !== undefined && penalties.push(s.penalty),
  });
  const w = weights.get("dense.weight")!;
  for (let k = 0; k < K; k++) {
    const signal = w.slice(k * D, k * D + 4);
    const noise = w.slice(k * D + 4, (k + 1) * D);
    assert.ok(signal.some((x) => x !== 0), `row ${k}'s signal block survives`);
    assert.ok(noise.every((x) => x === 0), `row ${k}'s noise blocks are zero: ${[...noise]}`);
  }
  assert.equal(penalties.length, 300);
  assert.ok(accuracy(weights) > 0.9);
});

Deno.test("gradual magnitude pruning reaches the target on the cubic schedule and holds it", async () => {
  const weights = fresh();
  const seen: [number, number][] = [];
  const r = await train({
    ...base,
    steps: 200,
    weights,
    batches: new Batches(examples, 32, 4),
    objective: { kind: "gmp", sparsity: 0.75, block: [1, 4], start: 20, end: 100, interval: 20 },
    onStep: (s) => seen.push([s.step, s.sparsity]),
  });
  const at = (t: number) => seen[t - 1][1];
  assert.equal(at(19), 0);
  // s_t = 0.75 (1 - (1 - (t - 20)/80)^3), rounded to whole blocks of 8.
  assert.equal(at(40), Math.round(8 * 0.75 * (1 - 0.75 ** 3)) / 8);
  assert.equal(at(100), 0.75);
  assert.ok(seen.slice(99).every(([, s]) => s === 0.75));
  assert.equal(r.sparsity, 0.75);
  assert.ok(accuracy(weights) > 0.85, `accuracy ${accuracy(weights)}`);
});

Deno.test("the recipe: group lasso, prune to the target, masked fine-tuning", async () => {
  const weights = fresh();
  const phases: string[] = [];
  const r = await train({
    ...base,
    steps: 200,
    weights,
    batches: new Batches(examples, 32, 5),
    objective: { kind: "recipe", lambda: 0.01, block: [1, 4], sparsity: 0.75, lassoFraction: 0.4 },
    onStep: (s) => phases.push(s.phase),
  });
  assert.deepEqual([phases.indexOf("masked"), phases.lastIndexOf("group-lasso")], [80, 79]);
  assert.equal(prunableSparsity(weights, [W]), 0.75);
  assert.equal(r.sparsity, 0.75);
  // The surviving blocks are the signal features'.
  const w = weights.get("dense.weight")!;
  for (let k = 0; k < K; k++) assert.ok(w.slice(k * D + 4, (k + 1) * D).every((x) => x === 0));
  assert.ok(accuracy(weights) > 0.93);
});

Deno.test("bad options are refused with a message", async () => {
  const run = (o: object) => train({ ...base, weights: fresh(), batches: new Batches(examples, 8, 0), ...o });
  await assert.rejects(run({ steps: 0 }), /steps must be an integer >= 1/);
  await assert.rejects(run({ lr: -1 }), /lr must be a positive number/);
  await assert.rejects(
    run({ objective: { kind: "gmp", sparsity: 1, block: [1, 4] } }),
    /sparsity must be in/,
  );
  await assert.rejects(
    run({ objective: { kind: "group-lasso", lambda: 0.1, block: [4, 4] } }),
    /block 4x4 is larger than weight/,
  );
});

Deno.test("shuffling is a seeded permutation; batches cover each epoch once", () => {
  const a = shuffled(100, 7);
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i));
  assert.deepEqual(a, shuffled(100, 7));
  assert.notDeepEqual(a, shuffled(100, 8));
  const b = new Batches(examples, 64, 9);
  const seen = new Set<number>();
  for (let i = 0; i < N / 64; i++) for (const id of b.next().ids) seen.add(id);
  assert.equal(seen.size, N);
  assert.equal(b.epoch, 1);
  const next = b.next();
  assert.equal(b.epoch, 2);
  assert.deepEqual([next.batch, next.seq, next.labels.length], [64, 1, 64]);
});

Deno.test("batches grouped by length: each epoch still covers every row once, batches pad less", () => {
  const rows: Example[] = Array.from({ length: 96 }, (_, i) => ({
    ids: Int32Array.of(i),
    mask: Int32Array.of(1),
    label: 0,
    length: 1 + ((i * 37) % 50),
  }));
  const spread = (b: Batches) => {
    let s = 0;
    for (let k = 0; k < 12; k++) {
      const batch = b.next();
      const lengths = [...batch.ids].map((i) => rows[i].length);
      s += Math.max(...lengths) - Math.min(...lengths);
    }
    return s;
  };
  const grouped = new Batches(rows, 8, 1, 4);
  const seen = new Set<number>();
  for (let k = 0; k < 12; k++) for (const id of grouped.next().ids) seen.add(id);
  assert.equal(seen.size, 96);
  assert.equal(grouped.epoch, 1);
  assert.ok(spread(new Batches(rows, 8, 1, 4)) * 3 < spread(new Batches(rows, 8, 1)));
  assert.deepEqual([...new Batches(rows, 8, 5, 4).next().ids], [...new Batches(rows, 8, 5, 4).next().ids]);
});

Deno.test("a time limit stops training early, evaluates and says so", async () => {
  const weights = fresh();
  const slow: LossAndGrads = async (w, b) => {
    await new Promise((r) => setTimeout(r, 30));
    return lossAndGrads(w, b);
  };
  const r = await train({
    ...base,
    lossAndGrads: slow,
    steps: 1000,
    weights,
    batches: new Batches(examples, 32, 6),
    timeLimit: 0.2,
    evaluate: accuracy,
  });
  assert.ok(r.stoppedEarly);
  assert.ok(r.steps >= 3 && r.steps < 50, `${r.steps} steps`);
  assert.deepEqual(r.evals.map((e) => e.step), [r.steps]);
  assert.equal(r.losses.length, r.steps);
});
