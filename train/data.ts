/**
 * Training data: SST-2 rows (read by `frontend/sst2.ts`) tokenized by the checkpoint's tokenizer
 * (`frontend/tokenizer.ts`) and fitted to a static length as evaluation fits them, then served in
 * seeded shuffled batches of `[batch, seq]` ids, attention mask and labels, epoch after epoch.
 *
 * ```ts
 * const tok = await loadTokenizer("../shared/models/sst2-bert-mini");
 * const data = encodeRows(await readSst2Tsv("../shared/data/sst2/train.tsv"), tok, 64);
 * const batches = new Batches(data, 32, 0);
 * const b = batches.next(); // b.ids: Int32Array of 32·64
 * ```
 */

import { fitToLength, readSst2Tsv, type Sst2Row } from "../frontend/sst2.ts";
import type { BertTokenizer } from "../frontend/tokenizer.ts";
import { Random } from "../ir/random.ts";

/** One tokenized row: ids and mask of the static length, and its label. */
export interface Example {
  /** Token ids, `[CLS] … [SEP]` then `[PAD]`s (or truncated), `seq` of them. */
  readonly ids: Int32Array;
  /** 1 on tokens, 0 on padding. */
  readonly mask: Int32Array;
  /** The class. */
  readonly label: number;
  /** Tokens before padding. */
  readonly length: number;
}

/** A batch of rows, `[batch, seq]` row-major. */
export interface Batch {
  /** Rows in the batch. */
  readonly batch: number;
  /** The static sequence length. */
  readonly seq: number;
  /** Token ids, `batch · seq`. */
  readonly ids: Int32Array;
  /** Attention mask, `batch · seq`. */
  readonly mask: Int32Array;
  /** Labels, `batch`. */
  readonly labels: Int32Array;
  /** The longest row's token count (the rest of every row is padding). */
  readonly maxLength: number;
}

/** Tokenizes `rows` and fits each to `seq` tokens (padding or truncating, as evaluation does). */
export function encodeRows(rows: readonly Sst2Row[], tokenizer: BertTokenizer, seq: number): Example[] {
  return rows.map((row) => {
    const fit = fitToLength(tokenizer.encode(row.sentence), seq, tokenizer.sepId, tokenizer.padId);
    const length = fit.mask.reduce((n, m) => n + m, 0);
    return { ids: Int32Array.from(fit.ids), mask: Int32Array.from(fit.mask), label: row.label, length };
  });
}

/** Reads an SST-2 TSV file and encodes its rows (see {@link encodeRows}). */
export async function readExamples(path: string, tokenizer: BertTokenizer, seq: number): Promise<Example[]> {
  return encodeRows(await readSst2Tsv(path), tokenizer, seq);
}

/** The indices `0..n-1` in a seeded random order (Fisher–Yates over {@link Random}). */
export function shuffled(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = new Random(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Stacks examples into one {@link Batch}. */
export function makeBatch(examples: readonly Example[]): Batch {
  if (examples.length === 0) throw new Error("a batch needs at least one example");
  const seq = examples[0].ids.length;
  const ids = new Int32Array(examples.length * seq), mask = new Int32Array(examples.length * seq);
  examples.forEach((e, r) => {
    if (e.ids.length !== seq) throw new Error(`examples differ in length (${seq} and ${e.ids.length})`);
    ids.set(e.ids, r * seq);
    mask.set(e.mask, r * seq);
  });
  return {
    batch: examples.length,
    seq,
    ids,
    mask,
    labels: Int32Array.from(examples, (e) => e.label),
    maxLength: examples.reduce((n, e) => Math.max(n, e.length), 0),
  };
}

/**
 * Endless batches of `size` examples: each epoch is a new seeded shuffle (seed + epoch), cut into
 * full batches; the last partial batch of an epoch is dropped (unless the data is smaller than
 * one batch, which is then served whole).
 *
 * With `group` > 0, rows of like length are batched together, as Hugging Face's
 * `group_by_length` does: the shuffled epoch is cut into runs of `group · size` rows, each run is
 * sorted by length and cut into batches, and the batches are served in a seeded random order. A
 * batch then pads less, so its length bucket (see `train/bert.ts`) is shorter.
 */
export class Batches {
  /** Epochs started. */
  epoch = 0;
  private queue: number[][] = [];

  /** Batches of `size` over `examples`, shuffled from `seed`, grouped by length when `group` > 0. */
  constructor(
    readonly examples: readonly Example[],
    readonly size: number,
    readonly seed: number,
    readonly group = 0,
  ) {
    if (examples.length === 0) throw new Error("no training examples");
    if (!Number.isSafeInteger(size) || size < 1) throw new Error(`batch size must be >= 1, got ${size}`);
    if (!Number.isSafeInteger(group) || group < 0) {
      throw new Error(`group must be an integer >= 0, got ${group}`);
    }
  }

  /** The batches of the next epoch, as lists of example indices. */
  private nextEpoch(): number[][] {
    const order = shuffled(this.examples.length, (this.seed + this.epoch) >>> 0);
    this.epoch++;
    const take = Math.min(this.size, order.length);
    const runs: number[][] = [];
    const run = this.group > 0 ? this.group * take : order.length;
    for (let at = 0; at < order.length; at += run) {
      const part = order.slice(at, at + run);
      if (this.group > 0) part.sort((a, b) => this.examples[a].length - this.examples[b].length || a - b);
      runs.push(part);
    }
    const batches: number[][] = [];
    for (const part of runs) {
      for (let at = 0; at + take <= part.length; at += take) batches.push(part.slice(at, at + take));
    }
    if (this.group === 0) return batches;
    const perm = shuffled(batches.length, (this.seed ^ 0x5bd1e995) + this.epoch);
    return perm.map((i) => batches[i]);
  }

  /** The next batch. */
  next(): Batch {
    while (this.queue.length === 0) this.queue = this.nextEpoch();
    return makeBatch(this.queue.shift()!.map((i) => this.examples[i]));
  }
}
