/**
 * `prune-reconstruct`: one-shot pruning with reconstruction (OBS / SparseGPT style) of the weights
 * of `dense` ops, for any block shape RxC over W[out, in]. Where `prune` only zeroes the
 * lowest-norm blocks, this pass also chooses the blocks by how much output error they cause and
 * updates the weights that remain so that each layer's outputs on calibration data change least.
 *
 * **Calibration.** `calibration` sentences (default 256) are drawn without replacement, with a
 * seeded choice, from `calibration-data` (an SST-2 style TSV: a header naming a `sentence` or
 * `text` column, one row a line) and tokenized with the tokenizer in `tokenizer` (by default the
 * model file's folder, else the folder of the weights file it names, which for an imported
 * Hugging Face checkpoint is the checkpoint's). The pass reads no files: it declares these
 * sentences in `inputs`, the driver (`prepareSentences` in `driver/calibration.ts`) reads,
 * draws and tokenizes them as `deno task eval` does, and the pass takes them from
 * `ctx.sentences` and pads or truncates them to `@main`'s static length (keeping `[SEP]` last).
 * `calibration-data=random` uses seeded random token ids of random lengths instead (no
 * tokenizer; for synthetic models). `@main` must take `input_ids` (and optionally
 * `token_type_ids`, `attention_mask`) of shape `[1, S]`.
 *
 * **Sequential.** The ops of `@main` run op by op over all calibration inputs at once (the
 * reference ops, as the interpreter runs them). At each target `dense`, in program order, the
 * inputs X it receives from the already-pruned model are gathered (only the rows of real tokens
 * when the rows are the sequence positions; pad rows are left out), the weight is pruned and
 * reconstructed, and the run continues with the new weight, as SparseGPT does. With `correct`
 * (the default) a second run keeps the unpruned weights, giving the inputs X_d the unpruned
 * model feeds the op, and each weight is fitted to the unpruned outputs X_d Wᵀ rather than to
 * XWᵀ, so that each layer also corrects the error the layers pruned before it left in X: the
 * pruning starts from the damped least-squares target W̃ = W (X_dᵀX)(XᵀX + λI)⁻¹, and since
 * ‖X_d wᵀ − X vᵀ‖² = ‖X(v − w̃)ᵀ‖² + const (λ = 0), pruning W̃ with H below is exact for it.
 *
 * **Per weight** W `[out, in]`: H = XᵀX, damped by `damp` × mean(diag H) on the diagonal (λ),
 * and U the upper Cholesky factor of H⁻¹. Columns are taken in windows of `window` columns
 * (rounded to a multiple of C; 0 = all); at each window the blocks of its columns are scored by
 * their OBS saliency: for a block with columns B (C of them, a group) and rows r (R of them),
 * the sum over its rows of w_Bᵀ (H⁻¹_BB)⁻¹ w_B with H⁻¹_BB = U_BBᵀU_BB the C×C sub-block of the
 * inverse Hessian once the columns before B are eliminated, i.e. ‖z‖² with U_BBᵀ z = w_B. The
 * window's lowest-saliency blocks are pruned (as many as keep the count of pruned blocks so far
 * at round(sparsity × blocks so far), so the matrix ends at exactly round(sparsity × blocks)),
 * then its columns are eliminated one by one: a pruned w_j is zeroed and its error
 * w_j / U_jj · U_j,(j+1..) is subtracted from the columns after it in the row. Eliminating the
 * C columns of a block one at a time this way is the block-OBS update of the whole block.
 * Partial edge blocks have their saliency scaled to a full block's element count. With `bias`
 * (not with `correct`), the dense op's bias is updated too, as a last input column of ones that
 * is never pruned (on sst2-bert-mini this fits the calibration data better but generalizes
 * badly, hence off by default).
 *
 * **Pattern groups** (`patterns` = K > 0): the block rows of each weight are put in at most K
 * groups by their saliency profile before any update, and every block row of a group prunes the
 * same block columns, so that the BSR weight has at most K distinct `indices` lists; groups may
 * prune different numbers of columns, chosen so the weight still prunes exactly
 * round(sparsity × blocks) blocks. A group prunes the block columns of least saliency summed over
 * its rows, chosen once for the whole matrix (`window` does not apply: chosen window by window
 * after updates, the groups drift towards the same columns, and on sst2-bert-mini the layers'
 * output errors were 25% higher). Then the columns are eliminated with OBS updates as above.
 * Clustering, budgets and exactness are described in `passes/reconstruct/groups.ts`; the
 * clustering is seeded with `seed`.
 *
 * **Report.** A log line per weight: blocks pruned, element sparsity, the number of calibration
 * tokens and the relative output error ‖X_d Wᵀ − XŴᵀ‖ / ‖X_d Wᵀ‖ (X_d = X without `correct`) of
 * the plain magnitude mask (block ℓ2 norm, as `prune{score=l2}`, no update) and of the
 * reconstructed weight, on the same inputs; with `patterns`, also the groups (block rows in each,
 * block columns each prunes), the distinct block-row patterns, and the error of the same grouped
 * mask without the update. Statistics `weights`, `blocks`, `elements` as in
 * `prune`.
 */

import { AttrReader } from "../ir/attrs.ts";
import type { Func, Module, Op, Value, Weight } from "../ir/module.ts";
import { allocData, Tensor } from "../ir/tensor.ts";
import { isFloat } from "../ir/types.ts";
import { definePass, type NameRegex, nameRegex, type PassContext } from "./pass.ts";
import { BLOCK_OPTION, blockMisfit, DEFAULT_PRUNE_TARGET } from "./prune.ts";
import {
  fitSentences,
  gatherInputs,
  randomSamples,
  type Sample,
  sampleInputs,
} from "./reconstruct/calibration.ts";
import { distinctRowPatterns } from "./reconstruct/groups.ts";
import { accumulateCross, accumulateGram } from "./reconstruct/linalg.ts";
import { type ReconstructResult, reconstructWeight } from "./reconstruct/obs.ts";
import { Stepper } from "./reconstruct/stepper.ts";

/** The default `calibration-data`: SST-2 train as the CI checkout has it beside the repository. */
export const DEFAULT_CALIBRATION_DATA = "../shared/data/sst2/train.tsv";

const options = {
  sparsity: {
    type: "number",
    default: 0.8,
    min: 0,
    max: 1,
    maxExclusive: true,
    doc: "fraction of blocks to zero in each weight",
  },
  block: BLOCK_OPTION,
  target: { type: "string", default: DEFAULT_PRUNE_TARGET, doc: "regex over the names of weights to prune" },
  calibration: { type: "int", default: 256, min: 1, doc: "number of calibration sentences" },
  seed: { type: "int", default: 0, min: 0, doc: "seed of the choice of calibration sentences" },
  "calibration-data": {
    type: "string",
    default: DEFAULT_CALIBRATION_DATA,
    doc: "TSV of sentences (column 'sentence' or 'text'), or 'random' for seeded random token ids",
  },
  tokenizer: {
    type: "string",
    default: "",
    doc: "folder with tokenizer.json; default the model file's folder, else its weights file's",
  },
  damp: {
    type: "number",
    default: 0.01,
    min: 0,
    doc: "diagonal damping of H, as a fraction of its mean diagonal",
  },
  correct: {
    type: "bool",
    default: true,
    doc: "fit each layer to the unpruned model's outputs (X_d W), correcting earlier layers' error",
  },
  bias: {
    type: "bool",
    default: false,
    doc: "also update each dense op's bias, as an input column of ones that is never pruned",
  },
  window: {
    type: "int",
    default: 128,
    min: 0,
    doc:
      "columns per mask-selection window (rounded up to a multiple of C); 0 = the whole matrix (always with patterns)",
  },
  patterns: {
    type: "int",
    default: 0,
    min: 0,
    doc: "at most this many distinct block-column sets per weight: block rows grouped by saliency; 0 = off",
  },
} as const;

const statistics = {
  weights: "weights pruned",
  blocks: "blocks zeroed",
  elements: "elements zeroed",
} as const;

/** A weight to prune: the dense op using it and its layout. */
interface Target {
  readonly weight: Weight;
  readonly op: Op;
  readonly index: number;
  readonly outIn: boolean;
  readonly out: number;
  readonly in: number;
  /** The op's bias, when it is a weight only this op uses. */
  readonly bias?: Weight;
}

function findTargets(m: Module, f: Func, ctx: PassContext<typeof options>, target: NameRegex): Target[] {
  const uses = new Map<Weight, { op: Op; index: number; slot: number }[]>();
  for (const g of m.funcs) {
    g.body.forEach((op, index) =>
      op.operands.forEach((v, slot) => {
        const w = v.kind === "weight" ? m.weights.get(v.name) : undefined;
        if (!w) return;
        if (!uses.has(w)) uses.set(w, []);
        uses.get(w)!.push({ op, index: g === f ? index : -1, slot });
      })
    );
  }
  const out: Target[] = [];
  for (const [weight, us] of uses) {
    const t = weight.type;
    if (!target.test(weight.name) || !us.some((u) => u.op.name === "dense" && u.slot === 1)) continue;
    if (t.sparse || t.shape.length !== 2 || !isFloat(t.dtype)) continue;
    if (us.length !== 1 || us[0].index < 0) {
      ctx.log(`@${weight.name} is skipped: it is used more than once or outside @main`);
      continue;
    }
    const { op, index } = us[0];
    const attrs = new AttrReader(ctx.registry.get("dense")!.attrs, op.attrs);
    if (attrs.bool("transpose_a")) {
      ctx.log(`@${weight.name} is skipped: its dense has transpose_a`);
      continue;
    }
    const outIn = attrs.bool("transpose_b");
    const [a, b] = t.shape;
    const bv = op.operands[2];
    const bias = bv?.kind === "weight" ? m.weights.get(bv.name) : undefined;
    const ownBias = bias && uses.get(bias)?.length === 1 && !bias.type.sparse ? bias : undefined;
    out.push({ weight, op, index, outIn, out: outIn ? a : b, in: outIn ? b : a, bias: ownBias });
  }
  return out.sort((x, y) => x.index - y.index);
}

/** Checks the options; throws errors naming the option. */
function checkOptions(
  o: PassContext<typeof options>["options"],
  ctx: PassContext<typeof options>,
): NameRegex {
  if (!(o.sparsity >= 0 && o.sparsity < 1)) {
    throw ctx.error(undefined, `option 'sparsity' must be in [0, 1), got ${o.sparsity}`);
  }
  if (!(Number.isSafeInteger(o.calibration) && o.calibration >= 1)) {
    throw ctx.error(undefined, `option 'calibration' must be a positive integer, got ${o.calibration}`);
  }
  if (!(o.damp >= 0 && Number.isFinite(o.damp))) {
    throw ctx.error(undefined, `option 'damp' must be a number >= 0, got ${o.damp}`);
  }
  if (!(Number.isSafeInteger(o.window) && o.window >= 0)) {
    throw ctx.error(undefined, `option 'window' must be an integer >= 0, got ${o.window}`);
  }
  if (!(o.block[0] >= 1 && o.block[1] >= 1)) {
    throw ctx.error(undefined, `option 'block' must be RxC with R, C >= 1, got ${o.block[0]}x${o.block[1]}`);
  }
  if (!(Number.isSafeInteger(o.patterns) && o.patterns >= 0)) {
    throw ctx.error(undefined, `option 'patterns' must be an integer >= 0, got ${o.patterns}`);
  }
  if (o.correct && o.bias) {
    throw ctx.error(undefined, `options 'correct' and 'bias' cannot be combined`);
  }
  if (o["calibration-data"] === "") {
    throw ctx.error(undefined, `option 'calibration-data' is empty: give a TSV file or 'random'`);
  }
  try {
    return nameRegex(o.target);
  } catch (e) {
    throw ctx.error(undefined, `option 'target' is not a valid regex: ${e instanceof Error ? e.message : e}`);
  }
}

/** The calibration samples, fitted to length `seq`: seeded random ids, or the prepared sentences. */
function calibrationSamples(f: Func, ctx: PassContext<typeof options>, seq: number): Sample[] {
  const o = ctx.options;
  const data = o["calibration-data"];
  if (data === "random") return randomSamples(f, o.calibration, o.seed, seq);
  const s = ctx.sentences;
  if (!s) {
    throw ctx.error(
      undefined,
      `calibration sentences were not prepared: run the pass through compile() / the compile CLI, ` +
        `or pass RunOptions.sentences`,
    );
  }
  if (o.calibration > s.available) {
    ctx.log(`calibration: '${s.source}' has only ${s.available} sentences; using all of them`);
  }
  return fitSentences(s, seq);
}

/**
 * The log line's pattern-group part: groups, distinct block-row patterns, block rows per group,
 * whether the block count is exact, and the error of the same mask without the update.
 */
function groupingReport(res: ReconstructResult, gr: number, gc: number): string {
  const g = res.grouping!;
  const sizes = new Array<number>(g.groups).fill(0);
  for (const x of g.group) sizes[x]++;
  return `${g.groups} groups (block rows ${sizes.join(" ")}; block columns pruned ${
    [...g.pruned].join(" ")
  }), ` +
    `${distinctRowPatterns(res.mask, gr, gc)} distinct block-row patterns` +
    `${g.exact ? "" : ", block count not reachable exactly by these groups"}; ` +
    `rel. error of the grouped mask without update ${res.errorMaskOnly.toFixed(4)}`;
}

/** The one-shot pruning-with-reconstruction pass. */
export const pruneReconstruct = definePass({
  name: "prune-reconstruct",
  description:
    "One-shot OBS/SparseGPT pruning of dense weights to RxC blocks, reconstructing each layer on calibration data.",
  options,
  statistics,
  filter: { ops: ["dense"] },
  preserves: ["flops"],
  inputs(o) {
    const data = o["calibration-data"];
    if (data === "random" || data === "") return {}; // "" is the pass's own error, reported when it runs
    return { sentences: { data, tokenizer: o.tokenizer, count: o.calibration, seed: o.seed } };
  },
  runOnModule(m, ctx) {
    const o = ctx.options;
    const target = checkOptions(o, ctx);
    const f = m.func("main");
    if (!f) throw ctx.error(undefined, `the module has no @main to run calibration data through`);
    const ids = f.params.find((p) => p.name === "input_ids");
    const bad = f.params.find((p) =>
      !["input_ids", "token_type_ids", "attention_mask"].includes(p.name) || p.type.shape.length !== 2 ||
      p.type.shape[0] !== 1 || isFloat(p.type.dtype)
    );
    if (!ids || bad) {
      throw ctx.error(
        f.loc,
        `@main must take integer input_ids (and token_type_ids, attention_mask) of shape [1, S]` +
          (bad ? `; %${bad.name} is not one of them` : ""),
      );
    }
    const seq = ids.type.shape[1];
    const ts = findTargets(m, f, ctx, target);
    for (const t of ts) {
      const misfit = blockMisfit(t.weight.name, t.out, t.in, o.block);
      if (misfit) throw ctx.error(t.op, misfit);
    }
    if (ts.length === 0) return "unchanged";

    const t0 = performance.now();
    const samples = calibrationSamples(f, ctx, seq);
    const inputs = sampleInputs(f, samples);
    const tokens = samples.reduce((n, s) => n + s.length, 0);
    ctx.log(`calibration: ${samples.length} sentences, ${tokens} tokens, sequence length ${seq}`);
    const stepper = new Stepper(m, f, ctx as unknown as PassContext, inputs);
    // With `correct`, a second run keeps the unpruned weights (the data as the pass found it).
    const original = new Map<Weight, Tensor>();
    const denseRun = o.correct
      ? new Stepper(m, f, ctx as unknown as PassContext, inputs, (w) => {
        if (!original.has(w)) original.set(w, ctx.weights.get(w));
        return original.get(w)!;
      })
      : undefined;
    if (denseRun) { for (const w of m.weights.values()) original.set(w, ctx.weights.get(w)); }
    const sub = (a: Float64Array, k: number) => {
      const h = new Float64Array(k * k);
      for (let i = 0; i < k; i++) h.set(a.subarray(i * (k + 1), i * (k + 1) + k), i * k);
      return h;
    };
    type Grams = {
      h: Float64Array;
      ha: Float64Array;
      rows: number;
      cross?: Float64Array;
      hDense?: Float64Array;
    };
    const grams = new Map<Value, Grams>();
    let changed = false;
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    for (const t of ts) {
      stepper.runTo(t.index);
      denseRun?.runTo(t.index);
      const xv = t.op.operands[0];
      let g = grams.get(xv);
      if (!g) {
        const { x, rows, k } = gatherInputs(stepper.values(xv), samples, seq);
        const ha = new Float64Array((k + 1) * (k + 1)); // of [X, 1]
        accumulateGram(ha, x, rows, k + 1);
        g = { h: sub(ha, k), ha, rows };
        if (denseRun) {
          const xd = gatherInputs(denseRun.values(xv), samples, seq).x;
          const hd = new Float64Array((k + 1) * (k + 1)), cross = new Float64Array((k + 1) * (k + 1));
          accumulateGram(hd, xd, rows, k + 1);
          accumulateCross(cross, x, xd, rows, k + 1);
          g.hDense = sub(hd, k);
          g.cross = sub(cross, k);
        }
        grams.clear(); // only the latest input can be shared (by consecutive ops such as Q, K, V)
        grams.set(xv, g);
      }
      const src = ctx.weights.get(t.weight).data;
      const w = new Float64Array(t.out * t.in);
      for (let r = 0; r < t.out; r++) {
        for (let c = 0; c < t.in; c++) w[r * t.in + c] = src[t.outIn ? r * t.in + c : c * t.out + r];
      }
      const bias = o.bias && t.bias ? Float64Array.from(ctx.weights.get(t.bias).data) : undefined;
      let res: ReconstructResult;
      try {
        res = reconstructWeight(w, t.out, t.in, bias ? g.ha : g.h, {
          sparsity: o.sparsity,
          block: o.block,
          damp: o.damp,
          window: o.window,
          bias,
          dense: g.cross && g.hDense ? { cross: g.cross, hDense: g.hDense } : undefined,
          groups: o.patterns > 0 ? { max: o.patterns, seed: o.seed } : undefined,
        });
      } catch (e) {
        throw ctx.error(t.op, `@${t.weight.name}: ${e instanceof Error ? e.message : e}`);
      }
      const data = allocData(t.weight.type.dtype, w.length);
      let zeros = 0, touched = false;
      for (let r = 0; r < t.out; r++) {
        for (let c = 0; c < t.in; c++) {
          const v = res.w[r * t.in + c];
          const j = t.outIn ? r * t.in + c : c * t.out + r;
          data[j] = v;
          if (data[j] === 0) zeros++;
          if (data[j] !== src[j]) touched = true;
        }
      }
      const [R, C] = o.block;
      let elements = 0;
      const gc = Math.ceil(t.in / C);
      res.mask.forEach((b, i) => {
        if (b) elements += Math.min(R, t.out - Math.floor(i / gc) * R) * Math.min(C, t.in - (i % gc) * C);
      });
      ctx.log(
        `@${t.weight.name} [${t.out}x${t.in}] block ${R}x${C}: pruned ${res.pruned}/${res.mask.length} blocks` +
          ` (${pct(res.pruned / res.mask.length)}), element sparsity ${pct(zeros / data.length)};` +
          ` rel. error magnitude ${res.errorMagnitude.toFixed(4)} -> reconstructed ${
            res.errorReconstructed.toFixed(4)
          } (${g.rows} rows${res.damp !== o.damp ? `, damping raised to ${res.damp}` : ""})` +
          (res.grouping ? `; ${groupingReport(res, Math.ceil(t.out / R), gc)}` : ""),
      );
      if (res.pruned > 0) {
        ctx.stat("weights");
        ctx.stat("blocks", res.pruned);
        ctx.stat("elements", elements);
      }
      if (touched) {
        ctx.weights.set(t.weight.name, new Tensor(t.weight.type, data));
        changed = true;
      }
      if (res.bias && t.bias) {
        const old = ctx.weights.get(t.bias).data;
        const nb = allocData(t.bias.type.dtype, res.bias.length);
        nb.set(res.bias);
        if (nb.some((v, i) => v !== old[i])) {
          ctx.weights.set(t.bias.name, new Tensor(t.bias.type, nb));
          changed = true;
        }
      }
    }
    ctx.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return changed ? "changed" : "unchanged";
  },
});
