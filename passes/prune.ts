/**
 * `prune`: zeroes the lowest-scoring blocks of the weights of `dense` ops (magnitude / group-norm
 * pruning). The IR does not change: the matrices stay dense, with zeros in them; `bsr-lower`
 * is what turns them into block-sparse weights.
 *
 * **Which weights.** A weight is a target when it is the `w` operand of a `dense` op, is 2-D,
 * dense (not BSR) and of a float dtype, its name matches `target` (a regex, searched, not
 * anchored, matched in linear time by {@link nameRegex}: no backreferences or lookaround; by
 * default every encoder dense weight), and, with `attention-only`, its name also
 * ends in `query.weight`, `key.weight`, `value.weight` or `attention.output.dense.weight`.
 * A weight also used any other way (a tied embedding that `gather` reads too, a bias) is skipped
 * with a log line, so embeddings, LayerNorm and biases are never pruned. Rules (below)
 * only change how a target is pruned; they never add targets.
 *
 * **Blocks.** `block = RxC` cuts the weight in its `[out, in]` layout (the layout of Linear
 * weights, `transpose_b = true`) into R×C blocks; a weight used with `transpose_b = false` is
 * stored `[in, out]` and is cut so that its blocks are still R×C of `[out, in]`. Blocks are
 * numbered row-major over the `[out, in]` block grid. A target used by dense ops with different
 * `transpose_b` is an error.
 *
 * **Scores.** `l1` and `l2` are the ℓ1 and ℓ2 norms of each block (the group norm), `magnitude`
 * is |w| and allowed only with 1x1 blocks (where all three agree).
 *
 * **Edge blocks.** When a dimension is not a multiple of the block, the last block row/column
 * is partial (as in BSR, where the grid rounds up). Every score is normalized by the number of
 * elements the block really has, n: `l1` is the mean |w| (ℓ1 / n) and `l2` the root mean square
 * (ℓ2 / √n). For full blocks of one size this is a constant factor, so it does not change which
 * full blocks are pruned; it keeps a partial block from looking small just because it has fewer
 * elements, and makes blocks of different shapes comparable under `scope = global`. A NaN
 * score counts as +∞ (never pruned before a finite one).
 *
 * **Selection.** Per matrix (`scope = per-matrix`), k = round(sparsity × blocks) of its
 * lowest-scoring blocks are zeroed; ties go to the lower block index. With `scope = global`, one
 * threshold over all targets: k = round(sparsity × all their blocks) blocks are zeroed across
 * them, ties broken by the order the weights are declared in the module, then block index. A
 * target whose rule sets its own `sparsity` is pruned per matrix at that sparsity and left out of
 * the global pool. Pruning is deterministic. The pruned fraction of blocks is within half a block
 * of the target; the element sparsity can differ when edge blocks are partial.
 *
 * **Pattern groups** (`patterns` = K > 0, per matrix only): the block rows of each weight are put
 * in at most K groups and every block row of a group prunes the same block columns, so that the
 * BSR weight has at most K distinct `indices` lists; the clustering (seeded with `seed`) and the
 * exact block count are `passes/reconstruct/groups.ts`'s, on the block scores made additive
 * (`l2`: squared, `l1` as is). Without reconstruction; `prune-reconstruct{patterns=K}` adds it.
 *
 * **Rules** (`rules = path.json`): `[{"match": "<regex>", "sparsity": 0.9, "block": "1x32",
 * "score": "l1", "patterns": 8}]`; `match` is required, the rest optional; the first rule whose
 * `match` is found in a target's name overrides the pass options for it (a target whose rule gives
 * it `patterns` is pruned per matrix, outside a global pool). A malformed file is an error naming
 * the file and the entry.
 *
 * **Output.** A log line per target (name, shape, block, blocks pruned / total, element sparsity)
 * and the statistics `weights`, `blocks` and `elements`. Elements count every element of a
 * pruned block, including those already zero. The pass returns "changed" iff some non-zero
 * element became zero (only then is a weight replaced).
 */

import { AttrReader } from "../ir/attrs.ts";
import type { Module, Op, Weight } from "../ir/module.ts";
import { Tensor } from "../ir/tensor.ts";
import { isFloat } from "../ir/types.ts";
import { definePass, type NameRegex, nameRegex, type PassContext } from "./pass.ts";
import { distinctRowPatterns, groupedMask, type Grouping } from "./reconstruct/groups.ts";

/** The default `target`: every dense weight of an encoder layer. */
export const DEFAULT_PRUNE_TARGET: string = String
  .raw`encoder\.layer\.\d+\..*(query|key|value|dense)\.weight$`;

/** What `attention-only` keeps: the Q, K, V projections and the attention output projection. */
const ATTENTION = /(query|key|value)\.weight$|attention\.output\.dense\.weight$/;

const SCORES = ["l1", "l2", "magnitude"] as const;
type Score = typeof SCORES[number];
type Block = readonly [number, number];

/** The `block` option of the pruning passes (prune, prune-reconstruct). */
export const BLOCK_OPTION = {
  type: "block",
  default: [1, 1],
  min: 1,
  max: 16384,
  doc: "block shape RxC over W[out, in]; 1x1 is unstructured",
} as const;

/**
 * Why `block` does not fit weight `name` of `out`×`in` (its `[out, in]` shape), or undefined when
 * it does: a block larger than the matrix would prune all of it or nothing, whatever the sparsity.
 */
export function blockMisfit(name: string, out: number, inDim: number, block: Block): string | undefined {
  if (block[0] <= out && block[1] <= inDim) return undefined;
  return `block ${block[0]}x${block[1]} is larger than weight '@${name}' (${out}x${inDim} as [out, in]); ` +
    `a block must fit in the matrix`;
}

const options = {
  sparsity: {
    type: "number",
    default: 0.8,
    min: 0,
    max: 1,
    maxExclusive: true,
    doc: "fraction of blocks to zero",
  },
  block: BLOCK_OPTION,
  score: {
    type: "enum",
    values: SCORES,
    default: "l2",
    doc: "block score: l1 or l2 norm (normalized by element count), magnitude (1x1 only)",
  },
  scope: {
    type: "enum",
    values: ["per-matrix", "global"],
    default: "per-matrix",
    doc: "one threshold per weight matrix, or one across all targets",
  },
  target: { type: "string", default: DEFAULT_PRUNE_TARGET, doc: "regex over the names of weights to prune" },
  "attention-only": {
    type: "bool",
    default: false,
    doc: "only query, key, value and attention.output weights",
  },
  rules: {
    type: "string",
    default: "",
    doc:
      'JSON file of per-target overrides [{"match": "re", "sparsity": 0.9, "block": "1x32", "patterns": 8}]',
  },
  patterns: {
    type: "int",
    default: 0,
    min: 0,
    doc: "at most this many distinct block-column sets per weight: block rows grouped by score; 0 = off",
  },
  seed: { type: "int", default: 0, min: 0, doc: "seed of the block-row grouping (patterns > 0)" },
} as const;

const statistics = {
  weights: "weights pruned",
  blocks: "blocks zeroed",
  elements: "elements zeroed",
} as const;

/** One per-target override from a rules file. */
export interface PruneRule {
  /** Searched in the weight name (in linear time, see {@link nameRegex}). */
  readonly match: NameRegex;
  /** Overrides `sparsity`. */
  readonly sparsity?: number;
  /** Overrides `block`. */
  readonly block?: Block;
  /** Overrides `score`. */
  readonly score?: Score;
  /** Overrides `patterns`. */
  readonly patterns?: number;
}

/** Parses the text of a rules file; throws an Error naming `file` and the entry. */
export function parsePruneRules(text: string, file: string): PruneRule[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`rules file '${file}' is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  if (!Array.isArray(json)) throw new Error(`rules file '${file}' must hold a JSON array of rules`);
  return json.map((entry, i) => {
    const bad = (why: string) => new Error(`rules file '${file}': entry ${i}: ${why}`);
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw bad(`must be an object, got ${JSON.stringify(entry)}`);
    }
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      if (!["match", "sparsity", "block", "score", "patterns"].includes(key)) {
        throw bad(`unknown key '${key}' (keys: match, sparsity, block, score, patterns)`);
      }
    }
    if (typeof e.match !== "string") throw bad(`'match' must be a regex string`);
    let match: NameRegex;
    try {
      match = nameRegex(e.match);
    } catch (err) {
      throw bad(`'match' is not a valid regex: ${err instanceof Error ? err.message : err}`);
    }
    const rule: { match: NameRegex; sparsity?: number; block?: Block; score?: Score; patterns?: number } = {
      match,
    };
    if (e.sparsity !== undefined) {
      if (typeof e.sparsity !== "number" || !(e.sparsity >= 0 && e.sparsity < 1)) {
        throw bad(`'sparsity' must be a number in [0, 1), got ${JSON.stringify(e.sparsity)}`);
      }
      rule.sparsity = e.sparsity;
    }
    if (e.block !== undefined) {
      const m = typeof e.block === "string" ? /^(\d+)x(\d+)$/.exec(e.block) : null;
      const block = [Number(m?.[1]), Number(m?.[2])] as const;
      if (!block.every((n) => Number.isSafeInteger(n) && n >= 1)) {
        throw bad(`'block' must be a block shape "RxC" such as "1x32", got ${JSON.stringify(e.block)}`);
      }
      rule.block = block;
    }
    if (e.score !== undefined) {
      if (typeof e.score !== "string" || !(SCORES as readonly string[]).includes(e.score)) {
        throw bad(`'score' must be one of ${SCORES.join(", ")}, got ${JSON.stringify(e.score)}`);
      }
      rule.score = e.score as Score;
    }
    if (e.patterns !== undefined) {
      if (typeof e.patterns !== "number" || !Number.isSafeInteger(e.patterns) || e.patterns < 0) {
        throw bad(`'patterns' must be an integer >= 0, got ${JSON.stringify(e.patterns)}`);
      }
      rule.patterns = e.patterns;
    }
    return rule;
  });
}

/** A weight to prune and how. */
interface Target {
  readonly weight: Weight;
  /** The weight's data is stored `[out, in]` (transpose_b) rather than `[in, out]`. */
  readonly outIn: boolean;
  readonly out: number;
  readonly in: number;
  readonly block: Block;
  readonly score: Score;
  readonly sparsity: number;
  /** At most this many distinct block-column sets (0: no grouping). */
  readonly patterns: number;
  /** Pruned with its own threshold even under `scope = global` (its rule set a sparsity or patterns). */
  readonly own: boolean;
  /** Scores of its blocks, row-major over the [out, in] block grid. */
  scores?: Float64Array;
}

/** Rows and columns of the block grid of `t` (rounded up). */
function grid(t: Target): [number, number] {
  return [Math.ceil(t.out / t.block[0]), Math.ceil(t.in / t.block[1])];
}

/** Index of element (o, i) of the [out, in] view in the stored data. */
function strideOf(t: Target): [number, number] {
  return t.outIn ? [t.in, 1] : [1, t.out];
}

/** Block scores, normalized by each block's element count (see the header). */
function blockScores(t: Target, data: ArrayLike<number>): Float64Array {
  const [gr, gc] = grid(t);
  const [R, C] = t.block;
  const [so, si] = strideOf(t);
  const acc = new Float64Array(gr * gc);
  const l2 = t.score === "l2";
  for (let o = 0; o < t.out; o++) {
    const row = Math.floor(o / R) * gc;
    for (let i = 0; i < t.in; i++) {
      const x = data[o * so + i * si];
      acc[row + Math.floor(i / C)] += l2 ? x * x : Math.abs(x);
    }
  }
  for (let br = 0; br < gr; br++) {
    const h = Math.min(R, t.out - br * R);
    for (let bc = 0; bc < gc; bc++) {
      const n = h * Math.min(C, t.in - bc * C);
      const k = br * gc + bc;
      const s = l2 ? Math.sqrt(acc[k] / n) : acc[k] / n;
      acc[k] = Number.isNaN(s) ? Infinity : s;
    }
  }
  return acc;
}

/**
 * The `k`-th smallest (from 0) of `a`, which it reorders: quickselect with a median-of-three
 * pivot and a three-way partition (so runs of equal scores, such as the zeros of an already
 * pruned matrix, cost nothing). Linear on average; a full sort was the pass's bottleneck.
 */
function kthSmallest(a: Float64Array, k: number): number {
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const x = a[lo], y = a[(lo + hi) >>> 1], z = a[hi];
    const p = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
    let lt = lo, i = lo, gt = hi;
    while (i <= gt) {
      const v = a[i];
      if (v < p) {
        a[i++] = a[lt];
        a[lt++] = v;
      } else if (v > p) {
        a[i] = a[gt];
        a[gt--] = v;
      } else i++;
    }
    if (k < lt) hi = lt - 1;
    else if (k > gt) lo = gt + 1;
    else return p;
  }
  return a[lo];
}

/**
 * Which of `scores` to prune: the `k` lowest, ties to the lower index. Returns a mask (exported for tests).
 * Finds the k-th lowest score, then takes all scores below it and the first ones equal to it
 * by index.
 */
export function lowest(scores: Float64Array, k: number): Uint8Array {
  const mask = new Uint8Array(scores.length);
  if (k <= 0) return mask;
  const threshold = kthSmallest(scores.slice(), k - 1);
  let below = 0;
  for (let j = 0; j < scores.length; j++) {
    if (scores[j] < threshold) {
      mask[j] = 1;
      below++;
    }
  }
  for (let j = 0; j < scores.length && below < k; j++) {
    if (scores[j] === threshold) {
      mask[j] = 1;
      below++;
    }
  }
  return mask;
}

/** Collects the targets, checking options and rules. */
function targets(m: Module, ctx: PassContext<typeof options>, rules: readonly PruneRule[]): Target[] {
  const o = ctx.options;
  let target: NameRegex;
  try {
    target = nameRegex(o.target);
  } catch (e) {
    throw ctx.error(undefined, `option 'target' is not a valid regex: ${e instanceof Error ? e.message : e}`);
  }
  // Which weights dense ops use as `w`, and in which layout; which are used any other way.
  const layout = new Map<Weight, { outIn: boolean; op: Op; mixed: boolean }>();
  const otherUse = new Set<Weight>();
  for (const f of m.funcs) {
    for (const op of f.body) {
      op.operands.forEach((v, slot) => {
        const weight = v.kind === "weight" ? m.weights.get(v.name) : undefined;
        if (!weight) return;
        if (op.name !== "dense" || slot !== 1) {
          otherUse.add(weight);
          return;
        }
        const outIn = new AttrReader(ctx.registry.get("dense")!.attrs, op.attrs).bool("transpose_b");
        const seen = layout.get(weight);
        if (seen) seen.mixed ||= seen.outIn !== outIn;
        else layout.set(weight, { outIn, op, mixed: false });
      });
    }
  }
  const out: Target[] = [];
  for (const weight of m.weights.values()) {
    const use = layout.get(weight);
    const t = weight.type;
    if (use === undefined || t.sparse || t.shape.length !== 2 || !isFloat(t.dtype)) continue;
    if (!target.test(weight.name) || (o["attention-only"] && !ATTENTION.test(weight.name))) continue;
    if (otherUse.has(weight)) {
      ctx.log(`@${weight.name} is skipped: it is used by ops other than as the w of dense (shared weights)`);
      continue;
    }
    if (use.mixed) {
      throw ctx.error(
        use.op,
        `weight '@${weight.name}' is used both with and without transpose_b; cannot prune it`,
      );
    }
    const outIn = use.outIn;
    const rule = rules.find((r) => r.match.test(weight.name));
    const block = rule?.block ?? o.block;
    const score = rule?.score ?? o.score as Score;
    if (score === "magnitude" && (block[0] !== 1 || block[1] !== 1)) {
      throw ctx.error(
        undefined,
        `score 'magnitude' needs 1x1 blocks, got ${block[0]}x${block[1]} for '@${weight.name}'; use l1 or l2`,
      );
    }
    const [a, b] = t.shape;
    const misfit = blockMisfit(weight.name, outIn ? a : b, outIn ? b : a, block);
    if (misfit) throw ctx.error(use.op, misfit);
    out.push({
      weight,
      outIn,
      out: outIn ? a : b,
      in: outIn ? b : a,
      block,
      score,
      sparsity: rule?.sparsity ?? o.sparsity,
      patterns: rule?.patterns ?? o.patterns,
      own: rule?.sparsity !== undefined || (rule?.patterns ?? 0) > 0,
    });
  }
  return out;
}

/** The log line's pattern-group part: groups, rows in each, distinct block-row patterns. */
function groupsNote(g: Grouping, mask: Uint8Array, gc: number): string {
  const sizes = new Array<number>(g.groups).fill(0);
  for (const x of g.group) sizes[x]++;
  return `${g.groups} groups (block rows ${sizes.join(" ")}; block columns pruned ${
    [...g.pruned].join(" ")
  }), ` +
    `${distinctRowPatterns(mask, g.group.length, gc)} distinct block-row patterns` +
    (g.exact ? "" : ", block count not reachable exactly by these groups");
}

/** The pruning pass. */
export const prune = definePass({
  name: "prune",
  description: "Zeroes the lowest-scoring blocks (l1/l2 group norm or magnitude) of dense weights.",
  options,
  statistics,
  filter: { ops: ["dense"] },
  preserves: ["flops"],
  inputs: (o) => o.rules === "" ? {} : { files: [o.rules] },
  runOnModule(m, ctx) {
    const o = ctx.options;
    if (!(o.sparsity >= 0 && o.sparsity < 1)) {
      throw ctx.error(undefined, `option 'sparsity' must be in [0, 1), got ${o.sparsity}`);
    }
    if (!(Number.isSafeInteger(o.patterns) && o.patterns >= 0)) {
      throw ctx.error(undefined, `option 'patterns' must be an integer >= 0, got ${o.patterns}`);
    }
    if (o.patterns > 0 && o.scope === "global") {
      throw ctx.error(undefined, `option 'patterns' needs scope=per-matrix: groups are chosen per weight`);
    }
    let rules: PruneRule[] = [];
    if (o.rules !== "") {
      let text: string;
      try {
        text = Deno.readTextFileSync(o.rules);
      } catch (e) {
        throw ctx.error(
          undefined,
          `cannot read rules file '${o.rules}': ${e instanceof Error ? e.message : e}`,
        );
      }
      try {
        rules = parsePruneRules(text, o.rules);
      } catch (e) {
        throw ctx.error(undefined, e instanceof Error ? e.message : String(e));
      }
    }
    const ts = targets(m, ctx, rules);
    rules.forEach((r, i) => {
      if (!ts.some((t) => r.match.test(t.weight.name))) {
        ctx.log(`rules entry ${i} (${r.match}) matched no target`);
      }
    });
    const data = new Map(ts.map((t) => [t, ctx.weights.get(t.weight).data]));
    for (const t of ts) t.scores = blockScores(t, data.get(t)!);

    // Per target, the mask of blocks to prune.
    const masks = new Map<Target, Uint8Array>();
    const pool = o.scope === "global" ? ts.filter((t) => !t.own) : [];
    const groupings = new Map<Target, Grouping>();
    for (const t of ts) {
      if (pool.includes(t)) continue;
      const k = Math.round(t.sparsity * t.scores!.length);
      if (t.patterns > 0) {
        // Grouped: the scores made additive over a group's rows (l2: mean squares, l1: mean |w|).
        const [gr, gc] = grid(t);
        const add = t.score === "l1" ? t.scores! : t.scores!.map((x) => x * x);
        const { mask, grouping } = groupedMask(add, gr, gc, t.patterns, k, o.seed);
        masks.set(t, mask);
        groupings.set(t, grouping);
      } else masks.set(t, lowest(t.scores!, k));
    }
    if (pool.length > 0) {
      const all = new Float64Array(pool.reduce((n, t) => n + t.scores!.length, 0));
      let at = 0;
      for (const t of pool) {
        all.set(t.scores!, at);
        at += t.scores!.length;
      }
      const mask = lowest(all, Math.round(o.sparsity * all.length));
      at = 0;
      for (const t of pool) {
        masks.set(t, mask.subarray(at, at + t.scores!.length));
        at += t.scores!.length;
      }
    }

    let changed = false;
    for (const t of ts) {
      const mask = masks.get(t)!;
      const src = data.get(t)!;
      const copy = src.slice();
      const [, gc] = grid(t);
      const [R, C] = t.block;
      const [so, si] = strideOf(t);
      let blocks = 0;
      let elements = 0;
      let touched = false;
      for (let k = 0; k < mask.length; k++) {
        if (!mask[k]) continue;
        blocks++;
        const o0 = Math.floor(k / gc) * R, i0 = (k % gc) * C;
        for (let o = o0; o < Math.min(o0 + R, t.out); o++) {
          for (let i = i0; i < Math.min(i0 + C, t.in); i++) {
            const j = o * so + i * si;
            if (copy[j] !== 0) touched = true;
            copy[j] = 0;
            elements++;
          }
        }
      }
      let zeros = 0;
      for (let j = 0; j < copy.length; j++) if (copy[j] === 0) zeros++;
      const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
      ctx.log(
        `@${t.weight.name} [${t.out}x${t.in}] block ${R}x${C} ${t.score}: pruned ${blocks}/${mask.length} blocks` +
          ` (${pct(blocks / mask.length)}), element sparsity ${pct(zeros / copy.length)}` +
          (groupings.has(t) ? `; ${groupsNote(groupings.get(t)!, mask, gc)}` : ""),
      );
      if (blocks > 0) {
        ctx.stat("weights");
        ctx.stat("blocks", blocks);
        ctx.stat("elements", elements);
      }
      if (touched) {
        ctx.weights.set(t.weight.name, new Tensor(t.weight.type, copy));
        changed = true;
      }
    }
    return changed ? "changed" : "unchanged";
  },
});
