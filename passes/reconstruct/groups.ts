/**
 * Pattern groups for `prune-reconstruct{patterns=K}` and `prune{patterns=K}`: the block rows of a
 * weight are put in at most K groups, and every block row of a group keeps the same set of block
 * columns, so that the BSR weight has at most K distinct `indices` lists and a kernel can gather a
 * group's activation columns once for all of its rows. Groups are any subsets of block rows
 * (nothing is reordered).
 *
 * **Clustering** (`clusterBlockRows`). Each block row has a score per block column (the OBS
 * saliency of the block, or any non-negative score where larger means more worth keeping). With
 * every row pruning p = round(sparsity × block columns) blocks, a group's pattern is the
 * `keep` = columns − p block columns of largest score summed over its rows, and a row is served
 * by the pattern that keeps the most of its own score. Lloyd iterations alternate the two
 * (assign each row to the pattern keeping most of its score, then recompute each group's
 * pattern); neither step lowers the total kept score, so they converge. Seeds are chosen as
 * k-means++ does (the first row uniformly, each next one with probability proportional to the
 * score its best pattern so far loses), from a seeded {@link Random}, best of four restarts:
 * deterministic for a seed. Groups left with identical patterns are merged; groups are numbered
 * by their first block row.
 *
 * **Budgets** (`allocateBudgets`). Groups need not prune the same number of block columns: the
 * pass wants exactly k = round(sparsity × blocks) blocks pruned in the weight, and with n_g rows
 * in group g pruning p_g columns that is Σ n_g p_g = k. A dynamic program over Σ n_g (p_g − p)
 * chooses the p_g (within a band around p that keeps the work bounded) that hit k exactly with
 * the least pruned score, each group's cost of pruning p_g columns being the sum of its p_g
 * lowest column sums. When no choice hits k (all group sizes share a factor that k − p × rows
 * does not have, or few groups and few block columns), single block rows are moved between groups
 * whose budgets differ (`balanceRows`), each move the one that loses the least score (when all
 * budgets are equal, a new group one column apart is opened while there are fewer than K, or
 * the largest group's budget steps one column past k); only when that cannot reach k (e.g.
 * K = 1) is the nearest total taken and `exact` false.
 */

import { Random } from "../../ir/random.ts";
import { lowest } from "../prune.ts";

/** How the block rows of a weight are grouped and how many block columns each group prunes. */
export interface Grouping {
  /** The group of each block row, 0 .. groups − 1, groups numbered by their first block row. */
  readonly group: Int32Array;
  /** Number of groups. */
  readonly groups: number;
  /** Block columns each group prunes. */
  readonly pruned: Int32Array;
  /** Whether Σ rows × pruned over the groups is the requested block count. */
  readonly exact: boolean;
}

/** A copy of `scores` with NaN and ±∞ (never pruned first) replaced by a large finite score. */
function finiteScores(scores: Float64Array): Float64Array {
  let max = 0;
  for (const s of scores) if (Number.isFinite(s) && s > max) max = s;
  const big = (max > 0 ? max : 1) * 1e6;
  return scores.map((s) => Number.isFinite(s) ? Math.max(s, 0) : big);
}

/** Score of row `r` kept by the pattern `pruned` (1 = pruned column). */
function keptScore(s: Float64Array, r: number, gc: number, pruned: Uint8Array): number {
  let v = 0;
  for (let c = 0; c < gc; c++) if (!pruned[c]) v += s[r * gc + c];
  return v;
}

/** One Lloyd run from the seed patterns: the assignment, the patterns and the kept score. */
function lloyd(s: Float64Array, gr: number, gc: number, prune: number, seeds: Uint8Array[]) {
  const patterns: Uint8Array[] = seeds.map((p) => p.slice());
  const assign = new Int32Array(gr).fill(-1);
  let value = 0;
  for (let it = 0; it < 100; it++) {
    let moved = false;
    value = 0;
    for (let r = 0; r < gr; r++) {
      let best = 0, bestV = -Infinity;
      patterns.forEach((p, g) => {
        const v = keptScore(s, r, gc, p);
        if (v > bestV) (best = g), (bestV = v);
      });
      if (assign[r] !== best) (assign[r] = best), (moved = true);
      value += bestV;
    }
    if (!moved) break;
    const sums = patterns.map(() => new Float64Array(gc));
    for (let r = 0; r < gr; r++) {
      const sum = sums[assign[r]];
      for (let c = 0; c < gc; c++) sum[c] += s[r * gc + c];
    }
    const used = new Uint8Array(patterns.length);
    for (let r = 0; r < gr; r++) used[assign[r]] = 1;
    patterns.forEach((_, g) => {
      if (used[g]) patterns[g] = lowest(sums[g], prune);
    });
  }
  return { assign, patterns, value };
}

/**
 * Groups the `gr` block rows of `scores` (row-major `gr` × `gc`, larger = more worth keeping) into
 * at most `maxGroups` groups whose rows share one pattern of `gc − prune` kept block columns (see
 * the file header). Returns the group of each row, groups numbered by their first row and groups
 * with equal patterns merged. Deterministic for a `seed`.
 */
export function clusterBlockRows(
  scores: Float64Array,
  gr: number,
  gc: number,
  maxGroups: number,
  prune: number,
  seed: number,
): Int32Array {
  const s = finiteScores(scores);
  const rng = new Random(seed);
  const rowTotal = Float64Array.from({ length: gr }, (_, r) => {
    let v = 0;
    for (let c = 0; c < gc; c++) v += s[r * gc + c];
    return v;
  });
  const rowPattern = (r: number) => lowest(s.subarray(r * gc, (r + 1) * gc), prune);
  let best: ReturnType<typeof lloyd> | undefined;
  for (let restart = 0; restart < 4; restart++) {
    // k-means++ seeding: each next seed row with probability proportional to what it loses.
    const seeds = [rowPattern(rng.int(gr))];
    const kept = Float64Array.from({ length: gr }, (_, r) => keptScore(s, r, gc, seeds[0]));
    while (seeds.length < Math.min(maxGroups, gr)) {
      let total = 0;
      for (let r = 0; r < gr; r++) total += rowTotal[r] - kept[r];
      if (!(total > 0)) break; // every row is served as well as it can be
      let x = rng.next() * total, pick = gr - 1;
      for (let r = 0; r < gr; r++) {
        x -= rowTotal[r] - kept[r];
        if (x < 0) {
          pick = r;
          break;
        }
      }
      const p = rowPattern(pick);
      seeds.push(p);
      for (let r = 0; r < gr; r++) kept[r] = Math.max(kept[r], keptScore(s, r, gc, p));
    }
    const run = lloyd(s, gr, gc, prune, seeds);
    if (!best || run.value > best.value) best = run;
  }
  // Merge groups with equal patterns; number groups by their first row.
  const byKey = new Map<string, number>();
  const group = new Int32Array(gr);
  for (let r = 0; r < gr; r++) {
    const key = best!.patterns[best!.assign[r]].join("");
    if (!byKey.has(key)) byKey.set(key, byKey.size);
    group[r] = byKey.get(key)!;
  }
  return group;
}

/**
 * Block columns each group prunes: Σ rows × pruned = `k` when some choice reaches it, with the
 * least pruned score (each group's `p_g` lowest column sums), from the uniform `prune` per row
 * (see the file header).
 */
export function allocateBudgets(
  scores: Float64Array,
  group: Int32Array,
  groups: number,
  gc: number,
  prune: number,
  k: number,
): { pruned: Int32Array; exact: boolean } {
  const s = finiteScores(scores);
  const gr = group.length;
  const sizes = new Int32Array(groups);
  const sums = Array.from({ length: groups }, () => new Float64Array(gc));
  for (let r = 0; r < gr; r++) {
    sizes[group[r]]++;
    for (let c = 0; c < gc; c++) sums[group[r]][c] += s[r * gc + c];
  }
  // cost[g][p]: the p lowest column sums of group g.
  const cost = sums.map((sum) => {
    const sorted = sum.slice().sort();
    const c = new Float64Array(gc + 1);
    for (let p = 0; p < gc; p++) c[p + 1] = c[p] + sorted[p];
    return c;
  });
  // A band of ±band columns around `prune` per group, as wide as a bounded amount of work allows.
  let band = gc;
  while (band > 1 && groups * (2 * band * gr + 1) * (2 * band + 1) > 4e7) band = Math.ceil(band / 2);
  const L = band * gr, width = 2 * L + 1;
  let dp = new Float64Array(width).fill(Infinity);
  dp[L] = 0;
  const choice = new Int32Array(groups * width);
  for (let g = 0; g < groups; g++) {
    const next = new Float64Array(width).fill(Infinity);
    const lo = Math.max(-band, -prune), hi = Math.min(band, gc - prune);
    for (let st = 0; st < width; st++) {
      if (dp[st] === Infinity) continue;
      for (let d = lo; d <= hi; d++) {
        const t = st + sizes[g] * d;
        if (t < 0 || t >= width) continue;
        const v = dp[st] + cost[g][prune + d];
        if (v < next[t]) {
          next[t] = v;
          choice[g * width + t] = d;
        }
      }
    }
    dp = next;
  }
  // The target, or the reachable total nearest to it (ties to the lower cost, then the lower total).
  const want = Math.max(-L, Math.min(L, k - prune * gr)) + L;
  let at = -1;
  for (let off = 0; off < width && at < 0; off++) {
    for (const t of off === 0 ? [want] : [want - off, want + off]) {
      if (t >= 0 && t < width && dp[t] < Infinity && (at < 0 || dp[t] < dp[at])) at = t;
    }
  }
  const pruned = new Int32Array(groups);
  let t = at;
  for (let g = groups - 1; g >= 0; g--) {
    const d = choice[g * width + t];
    pruned[g] = prune + d;
    t -= sizes[g] * d;
  }
  let total = 0;
  for (let g = 0; g < groups; g++) total += sizes[g] * pruned[g];
  return { pruned, exact: total === k };
}

/**
 * Moves single block rows between groups until Σ rows × pruned is `k` (changing `group` in
 * place), when the budgets alone cannot reach it: moving a row from a group pruning p_g columns
 * to one pruning p_h changes the count by p_h − p_g. Each step takes the move towards `k`, not
 * past it, that loses the least of the row's score (its kept score under its group's pattern
 * minus under the other's, patterns as the budgets make them); each row moves at most once. When
 * no move helps (e.g. every group has the same budget), once: a new group is opened, while there
 * are fewer than `maxGroups`, with the budget of the largest group one column towards `k` (rows
 * then move into it one block at a time); else the largest group with at least |k − count| rows
 * steps its budget one column towards `k`, past it, for moves to come back. Returns each group's
 * budget (one more group when one was opened) and whether `k` was reached.
 */
export function balanceRows(
  scores: Float64Array,
  group: Int32Array,
  budgets: Int32Array,
  gc: number,
  k: number,
  maxGroups: number,
): { pruned: Int32Array; exact: boolean } {
  const s = finiteScores(scores);
  const gr = group.length;
  const pruned = [...budgets];
  let diff = k;
  for (let r = 0; r < gr; r++) diff -= pruned[group[r]];
  if (diff === 0) return { pruned: Int32Array.from(pruned), exact: true };
  const sums = pruned.map(() => new Float64Array(gc));
  const sizes = pruned.map(() => 0);
  for (let r = 0; r < gr; r++) {
    sizes[group[r]]++;
    for (let c = 0; c < gc; c++) sums[group[r]][c] += s[r * gc + c];
  }
  // kept[h][r]: row r's score kept by group h's pattern.
  const kept: Float64Array[] = [];
  const setPattern = (h: number, sum: Float64Array) => {
    const p = lowest(sum, pruned[h]);
    kept[h] = Float64Array.from({ length: gr }, (_, r) => keptScore(s, r, gc, p));
  };
  sums.forEach((sum, h) => setPattern(h, sum));
  const moved = new Uint8Array(gr);
  let stepped = false;
  while (diff !== 0) {
    let bestR = -1, bestH = -1, bestLoss = Infinity;
    for (let r = 0; r < gr; r++) {
      if (moved[r]) continue;
      const g = group[r];
      for (let h = 0; h < pruned.length; h++) {
        const d = pruned[h] - pruned[g];
        if (d === 0 || Math.sign(d) !== Math.sign(diff) || Math.abs(d) > Math.abs(diff)) continue;
        const loss = kept[g][r] - kept[h][r];
        if (loss < bestLoss) (bestR = r), (bestH = h), (bestLoss = loss);
      }
    }
    if (bestR >= 0) {
      diff -= pruned[bestH] - pruned[group[bestR]];
      sizes[group[bestR]]--;
      sizes[bestH]++;
      group[bestR] = bestH;
      moved[bestR] = 1;
      continue;
    }
    if (stepped) break;
    stepped = true;
    const step = Math.sign(diff);
    let h = -1;
    for (let g = 0; g < pruned.length; g++) {
      const p = pruned[g] + step;
      const fits = pruned.length < maxGroups || sizes[g] >= Math.abs(diff);
      if (p >= 0 && p <= gc && sizes[g] > 0 && fits && (h < 0 || sizes[g] > sizes[h])) h = g;
    }
    if (h < 0) break;
    if (pruned.length < maxGroups) {
      pruned.push(pruned[h] + step);
      setPattern(pruned.length - 1, sums[h]);
      sizes.push(0);
    } else {
      if (pruned.length < 2) break;
      pruned[h] += step;
      diff -= step * sizes[h];
      setPattern(h, sums[h]);
    }
  }
  return { pruned: Int32Array.from(pruned), exact: diff === 0 };
}

/**
 * The grouping of a weight's block rows for `scores` (`gr` × `gc`, larger = more worth keeping):
 * at most `maxGroups` groups, exactly `k` blocks pruned when reachable (see the file header).
 */
export function groupBlockRows(
  scores: Float64Array,
  gr: number,
  gc: number,
  maxGroups: number,
  k: number,
  seed: number,
): Grouping {
  const prune = Math.min(gc, Math.max(0, Math.round(k / gr)));
  // Patterns that keep or prune everything are all the same: cluster with at least one of each.
  const clusterPrune = gc >= 2 ? Math.min(gc - 1, Math.max(1, prune)) : prune;
  const raw = clusterBlockRows(scores, gr, gc, maxGroups, clusterPrune, seed);
  let count = 0;
  for (const g of raw) count = Math.max(count, g + 1);
  const budgets = allocateBudgets(scores, raw, count, gc, prune, k);
  const { pruned: all, exact } = budgets.exact
    ? budgets
    : balanceRows(scores, raw, budgets.pruned, gc, k, maxGroups);
  // Groups moves emptied are dropped; groups are numbered by their first row again.
  const renumber = new Map<number, number>();
  const group = raw.map((g) => {
    if (!renumber.has(g)) renumber.set(g, renumber.size);
    return renumber.get(g)!;
  });
  const pruned = new Int32Array(renumber.size);
  for (const [from, to] of renumber) pruned[to] = all[from];
  return { group, groups: renumber.size, pruned, exact };
}

/** Distinct block-row patterns of a block mask (`gr` × `gc`, row-major; 1 = pruned). */
export function distinctRowPatterns(mask: Uint8Array, gr: number, gc: number): number {
  const seen = new Set<string>();
  for (let r = 0; r < gr; r++) seen.add(mask.subarray(r * gc, (r + 1) * gc).join(""));
  return seen.size;
}

/**
 * A block mask (`gr` × `gc`, 1 = pruned) with pattern groups and no reconstruction, as `prune`
 * uses it: the grouping of `scores` (larger = more worth keeping), then each group prunes its
 * budget of block columns, those of least score summed over its rows.
 */
export function groupedMask(
  scores: Float64Array,
  gr: number,
  gc: number,
  maxGroups: number,
  k: number,
  seed: number,
): { mask: Uint8Array; grouping: Grouping } {
  const grouping = groupBlockRows(scores, gr, gc, maxGroups, k, seed);
  const s = finiteScores(scores);
  const sums = Array.from({ length: grouping.groups }, () => new Float64Array(gc));
  grouping.group.forEach((g, r) => {
    for (let c = 0; c < gc; c++) sums[g][c] += s[r * gc + c];
  });
  const patterns = sums.map((sum, g) => lowest(sum, grouping.pruned[g]));
  const mask = new Uint8Array(gr * gc);
  grouping.group.forEach((g, r) => mask.set(patterns[g], r * gc));
  return { mask, grouping };
}
