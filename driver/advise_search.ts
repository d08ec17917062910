/**
 * The advisor's search (driver/advise.ts, step 4): the candidate table, the plans of the Lagrangian
 * path over (predicted latency, damage), and the search along that path for the fastest plan whose
 * measured accuracy loss is within the budget.
 */

import type { Candidate } from "./advise_measure.ts";

/** One weight's candidates with their measured error and latency. */
export interface WeightOptions {
  /** The weight's name. */
  readonly name: string;
  /** Its output features (rows of W[out, in]). */
  readonly out: number;
  /** Its input features. */
  readonly in: number;
  /** Its options: each candidate with its measured relative error and kernel latency (ms). */
  readonly options: readonly { readonly candidate: Candidate; readonly error: number; readonly ms: number }[];
}

/** A plan: the index of each weight's chosen option, its predicted latency (Σ ms) and damage (Σ error²). */
export interface AdvisePlan {
  /** The option index each weight takes, in the table's order. */
  readonly choice: readonly number[];
  /** Predicted latency: the sum of the chosen kernels' ms. */
  readonly latency: number;
  /** Damage: the sum of the chosen errors squared. */
  readonly damage: number;
}

/** The plan of `choice` (an option index per weight) with its latency and damage summed. */
export const planOf = (table: readonly WeightOptions[], choice: number[]): AdvisePlan => ({
  choice,
  latency: table.reduce((s, w, i) => s + w.options[choice[i]].ms, 0),
  damage: table.reduce((s, w, i) => s + w.options[choice[i]].error ** 2, 0),
});

/** The plan minimizing Σ latency + λ·error² (per weight; ties to the smaller error, then the first option). */
export function planFor(table: readonly WeightOptions[], lambda: number): AdvisePlan {
  return planOf(
    table,
    table.map((w) => {
      let best = 0;
      const cost = (k: number) => w.options[k].ms + lambda * w.options[k].error ** 2;
      for (let k = 1; k < w.options.length; k++) {
        const d = cost(k) - cost(best);
        if (d < 0 || (d === 0 && w.options[k].error < w.options[best].error)) best = k;
      }
      return best;
    }),
  );
}

/**
 * The plans of the Lagrangian path: {@link planFor} at λ = 0, between every two consecutive λ where
 * some weight's choice changes, and beyond the last; distinct plans, fastest first. Each is the
 * fastest plan among those with at most its damage (a property of Lagrangian relaxation for plans
 * on the lower convex hull).
 */
export function lagrangianPath(table: readonly WeightOptions[]): AdvisePlan[] {
  const breaks = new Set<number>();
  for (const w of table) {
    for (const a of w.options) {
      for (const b of w.options) {
        const de = a.error ** 2 - b.error ** 2;
        if (de > 0 && b.ms > a.ms) breaks.add((b.ms - a.ms) / de);
      }
    }
  }
  const ls = [...breaks].sort((x, y) => x - y);
  const probes = [0, ...ls.map((l, i) => i + 1 < ls.length ? (l + ls[i + 1]) / 2 : 2 * l + 1)];
  const seen = new Map<string, AdvisePlan>();
  for (const l of probes) {
    const p = planFor(table, l);
    const key = p.choice.join(",");
    if (!seen.has(key)) seen.set(key, p);
  }
  return [...seen.values()].sort((a, b) => a.latency - b.latency || b.damage - a.damage);
}

/** One evaluated plan of the search. */
export interface Probe {
  /** Index into the path. */
  readonly index: number;
  /** Measured accuracy loss (points). */
  readonly loss: number;
}

/**
 * Searches `path` (fastest first) for the fastest plan whose measured loss (`lossOf`, in points) is
 * at most `budget`, with at most `maxEvals` evaluations (see the module header). Returns the index
 * found (-1 if none) and every probe in order.
 */
export async function searchPath(
  path: readonly AdvisePlan[],
  lossOf: (plan: AdvisePlan, index: number) => Promise<number>,
  budget: number,
  maxEvals: number,
): Promise<{ best: number; probes: Probe[] }> {
  let lo = 0, hi = path.length - 1, best = -1;
  const probes: Probe[] = [];
  while (lo <= hi && probes.length < maxEvals) {
    // Scale of loss ≈ s·E, least squares through the origin over the probes so far.
    let num = 0, den = 0;
    for (const p of probes) {
      const e = path[p.index].damage;
      num += p.loss * e;
      den += e * e;
    }
    const s = den > 0 ? num / den : NaN;
    let next = (lo + hi) >> 1;
    if (s > 0) {
      const limit = budget / s;
      next = hi;
      for (let i = lo; i <= hi; i++) {
        if (path[i].damage <= limit) {
          next = i;
          break;
        }
      }
    }
    const loss = await lossOf(path[next], next);
    probes.push({ index: next, loss });
    if (loss <= budget) {
      best = next;
      hi = next - 1;
    } else lo = next + 1;
  }
  return { best, probes };
}
