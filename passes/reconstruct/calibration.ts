/**
 * Calibration inputs of `prune-reconstruct`: the token ids of each calibration sentence fitted
 * to the model's static length (or seeded random ids), the `@main` inputs made from them, and
 * the rows of X a `dense` op received, gathered from the calibration run.
 */

import type { Func, Value } from "../../ir/module.ts";
import { Random } from "../../ir/random.ts";
import { Tensor } from "../../ir/tensor.ts";
import type { Sentences } from "../pass.ts";

/** The token ids of one calibration sentence, fitted to the model's length. */
export interface Sample {
  /** `seq` ids: the tokens, then padding. */
  readonly ids: number[];
  /** Real tokens (the rest is padding). */
  readonly length: number;
}

/** Rows of the table `input_ids` is gathered from, if any. */
function vocabSize(f: Func, ids: Value): number | undefined {
  const g = f.body.find((op) => op.name === "gather" && op.operands[1] === ids);
  return g?.operands[0].type.shape[0];
}

/**
 * `count` samples of seeded random token ids below the vocabulary size of `f`'s embedding
 * (100 when it has none) and random lengths in [2, seq], padded with 0 (`calibration-data=random`).
 */
export function randomSamples(f: Func, count: number, seed: number, seq: number): Sample[] {
  const ids = f.params.find((p) => p.name === "input_ids")!;
  const vocab = vocabSize(f, ids) ?? 100;
  const rng = new Random(seed);
  return Array.from({ length: count }, () => {
    const length = Math.min(seq, 2 + rng.int(Math.max(1, seq - 1)));
    const ids = Array.from({ length: seq }, (_, i) => i < length ? rng.int(vocab) : 0);
    return { ids, length };
  });
}

/**
 * The prepared sentences fitted to length `seq`: longer ones cut to their first `seq - 1` ids and
 * `[SEP]`, shorter ones padded with `[PAD]`.
 */
export function fitSentences(s: Sentences, seq: number): Sample[] {
  return s.ids.map((raw) => {
    const ids = raw.length > seq ? [...raw.slice(0, seq - 1), s.sepId] : [...raw];
    const length = ids.length;
    return { ids: [...ids, ...Array(seq - length).fill(s.padId)], length };
  });
}

/**
 * The inputs of `f` for each sample: `input_ids`, `attention_mask` 1 on the real tokens and
 * `token_type_ids` 0, in `f`'s parameter order and types.
 */
export function sampleInputs(f: Func, samples: readonly Sample[]): Tensor[][] {
  return samples.map((s) =>
    f.params.map((p) => {
      const v = p.name === "input_ids"
        ? s.ids
        : p.name === "attention_mask"
        ? s.ids.map((_, i) => i < s.length ? 1 : 0)
        : s.ids.map(() => 0);
      return Tensor.from(p.type.shape, p.type.dtype, v);
    })
  );
}

/**
 * The rows of X a dense op received over all samples (real tokens only when the rows are the
 * sequence positions), with a column of ones appended: `[rows, k + 1]`.
 */
export function gatherInputs(
  ts: Tensor[],
  samples: readonly Sample[],
  seq: number,
): { x: Float64Array; rows: number; k: number } {
  const shape = ts[0].shape;
  const k = shape[shape.length - 1];
  const perSample = ts[0].data.length / k;
  const positional = perSample % seq === 0;
  const keep = (r: number, s: Sample) => !positional || (r % seq) < s.length;
  let rows = 0;
  samples.forEach((s) => {
    for (let r = 0; r < perSample; r++) if (keep(r, s)) rows++;
  });
  const x = new Float64Array(rows * (k + 1));
  let at = 0;
  ts.forEach((t, si) => {
    for (let r = 0; r < perSample; r++) {
      if (!keep(r, samples[si])) continue;
      for (let c = 0; c < k; c++) x[at * (k + 1) + c] = t.data[r * k + c];
      x[at * (k + 1) + k] = 1;
      at++;
    }
  });
  return { x, rows, k };
}
