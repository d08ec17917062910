/** The advisor's search on synthetic candidate tables, where the optimum is known by brute force. */

import assert from "node:assert/strict";
import {
  type AdvisePlan,
  beyondFront,
  lagrangianPath,
  paretoIndices,
  planFor,
  searchPath,
  type WeightOptions,
} from "../../mod.ts";
import { Random } from "../../ir/random.ts";

/** A random table: `n` weights, `k` options each (option 0 dense: error 0, the slowest). */
function randomTable(rng: Random, n: number, k: number): WeightOptions[] {
  return Array.from({ length: n }, (_, w) => ({
    name: `w${w}`,
    out: 8,
    in: 8,
    options: Array.from({ length: k }, (_, j) => ({
      candidate: { block: [1, 1] as const, sparsity: j === 0 ? 0 : 0.1 * j },
      error: j === 0 ? 0 : 0.05 + rng.next() * 0.5,
      ms: j === 0 ? 2 : 0.2 + rng.next() * 1.5,
    })),
  }));
}

/** Every plan of a table. */
function allPlans(t: WeightOptions[]): { latency: number; damage: number }[] {
  let plans: number[][] = [[]];
  for (const w of t) plans = plans.flatMap((p) => w.options.map((_, j) => [...p, j]));
  return plans.map((c) => ({
    latency: c.reduce((s, j, i) => s + t[i].options[j].ms, 0),
    damage: c.reduce((s, j, i) => s + t[i].options[j].error ** 2, 0),
  }));
}

Deno.test("advise: planFor takes the fastest option at λ = 0 and the least damaging one for a huge λ", () => {
  const t = randomTable(new Random(3), 5, 4);
  const fast = planFor(t, 0), safe = planFor(t, 1e12);
  t.forEach((w, i) => {
    assert.equal(w.options[fast.choice[i]].ms, Math.min(...w.options.map((o) => o.ms)));
    assert.equal(safe.choice[i], 0); // dense: error 0
  });
  assert.equal(safe.damage, 0);
});

Deno.test("advise: every plan of the Lagrangian path is the fastest plan within its damage (brute force)", () => {
  for (let seed = 0; seed < 5; seed++) {
    const t = randomTable(new Random(seed), 4, 4);
    const path = lagrangianPath(t);
    const plans = allPlans(t);
    assert.ok(path.length >= 2);
    for (let i = 1; i < path.length; i++) {
      assert.ok(path[i].latency >= path[i - 1].latency);
      assert.ok(path[i].damage <= path[i - 1].damage + 1e-12);
    }
    for (const p of path) {
      const best = Math.min(...plans.filter((q) => q.damage <= p.damage + 1e-12).map((q) => q.latency));
      assert.ok(Math.abs(p.latency - best) < 1e-9, `seed ${seed}: ${p.latency} vs optimum ${best}`);
    }
    assert.equal(path[path.length - 1].damage, 0);
  }
});

Deno.test("advise: the search finds the fastest plan of the path within budget, in few evaluations", async () => {
  const t = randomTable(new Random(7), 6, 5);
  const path = lagrangianPath(t);
  // A loss that grows with damage: the known optimum is the first plan whose loss is within budget.
  const lossOf = (p: AdvisePlan) => 1.7 * p.damage + 0.05;
  for (const budget of [0.3, 1, 2.5]) {
    const optimum = path.findIndex((p) => lossOf(p) <= budget);
    let evals = 0;
    const { best, probes } = await searchPath(
      path,
      (p) => {
        evals++;
        return Promise.resolve(lossOf(p));
      },
      budget,
      20,
    );
    assert.equal(best, optimum, `budget ${budget}`);
    assert.equal(probes.length, evals);
    assert.ok(
      evals <= Math.ceil(Math.log2(path.length)) + 2,
      `${evals} evaluations for ${path.length} plans`,
    );
  }
  // With too few evaluations it keeps the best plan it measured within budget, never one outside.
  const { best, probes } = await searchPath(path, (p) => Promise.resolve(lossOf(p)), 1, 1);
  assert.equal(probes.length, 1);
  if (best >= 0) assert.ok(lossOf(path[best]) <= 1);
  // Nothing within budget: -1.
  const none = await searchPath(path, () => Promise.resolve(5), 1, 10);
  assert.equal(none.best, -1);
});

Deno.test("advise: the Pareto front and whether a point lies beyond it", () => {
  const pts = [
    { ms: 3, accuracy: 78.8 },
    { ms: 3.6, accuracy: 79.6 },
    { ms: 4, accuracy: 79 }, // dominated by the second
    { ms: 8.5, accuracy: 80.6 },
  ];
  assert.deepEqual(paretoIndices(pts), [0, 1, 3]);
  const front = paretoIndices(pts).map((i) => pts[i]);
  assert.equal(beyondFront({ ms: 3.2, accuracy: 79.7 }, front), true);
  assert.equal(beyondFront({ ms: 3.7, accuracy: 79.5 }, front), false);
  assert.equal(beyondFront({ ms: 3.6, accuracy: 79.6 }, front), false); // equal is not beyond
});
