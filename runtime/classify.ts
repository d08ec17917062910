/**
 * Text in: an artifact that carries its checkpoint's tokenizer (`tokenizer.json`, and
 * `tokenizer_config.json` if the checkpoint had one) and label names (`labels.json`, from
 * `id2label`) classifies sentences. Each is tokenized, fitted to the compiled length (padded and
 * masked, or truncated keeping `[SEP]`, which the result says; or refused, by option), run, and
 * its logits turned into probabilities.
 */

import { type BertTokenizer, bertTokenizer, fitToLength, TokenizerError } from "./tokenizer.ts";
import { ArtifactError, InputError, type Plan, type PlanBucket } from "./plan.ts";

/** The artifact files text classification reads, when its manifest lists them. */
export const TEXT_FILES = {
  tokenizer: "tokenizer.json",
  tokenizerConfig: "tokenizer_config.json",
  labels: "labels.json",
} as const;

/** The tokenizer and labels an artifact carries, as text (what its files hold). */
export interface TextFiles {
  /** `tokenizer.json`. */
  readonly tokenizer: string;
  /** `tokenizer_config.json`, if the checkpoint had one. */
  readonly tokenizerConfig?: string;
  /** `labels.json`: the label names in output order, if the checkpoint named them. */
  readonly labels?: string;
}

/** What a classifier needs, built from `TextFiles`. */
export interface TextModel {
  /** The checkpoint's tokenizer. */
  readonly tokenizer: BertTokenizer;
  /** Label names in output order (`LABEL_i` when the checkpoint named none). */
  readonly labels: readonly string[];
}

/** One sentence's classification. */
export interface Classification {
  /** The most probable label's name. */
  readonly label: string;
  /** Its index. */
  readonly index: number;
  /** The softmax of the logits, in label order. */
  readonly probabilities: number[];
  /** Whether the sentence was longer than the model's length and cut (keeping `[SEP]`). */
  readonly truncated: boolean;
}

/** Options of `classify`. */
export interface ClassifyOptions {
  /** A sentence longer than the longest compiled length: truncate it (default, and say so) or refuse it. */
  readonly long?: "truncate" | "refuse";
  /** The most sentences per run; by default the largest compiled batch. */
  readonly batch?: number;
}

/** The shape of a bucket: rows per run and tokens per row. */
export interface ShapeOf {
  /** Rows per run. */
  readonly batch: number;
  /** Tokens per row. */
  readonly seq: number;
}

/** A bucket's shape: as compiled, or (a plan of one shape) its first input's `[batch, seq]`. */
export function shapeOf(b: PlanBucket): ShapeOf {
  if (b.batch !== undefined && b.seq !== undefined) return { batch: b.batch, seq: b.seq };
  const shape = b.inputs[0]?.shape ?? [];
  return { batch: shape.length === 2 ? shape[0] : 1, seq: shape.at(-1) ?? 1 };
}

/** Parses a JSON object of artifact file `file`; the error names it. */
function parseObject(file: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ArtifactError(file, `not JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ArtifactError(file, "not a JSON object");
  }
  return v as Record<string, unknown>;
}

/** The classifier's tokenizer and labels from an artifact's files, checked against its plan. */
export function textModel(files: TextFiles, plan: Plan, where: (name: string) => string): TextModel {
  const { inputs, outputs } = plan.buckets[0];
  if (!inputs.some((t) => t.name === "input_ids") || outputs[0]?.shape.length !== 2) {
    throw new ArtifactError(
      where("plan.json"),
      "not a sequence classifier (input_ids in, [1, labels] logits out)",
    );
  }
  let tokenizer: BertTokenizer;
  try {
    tokenizer = bertTokenizer(
      parseObject(where(TEXT_FILES.tokenizer), files.tokenizer),
      files.tokenizerConfig === undefined
        ? {}
        : parseObject(where(TEXT_FILES.tokenizerConfig), files.tokenizerConfig),
      where(TEXT_FILES.tokenizer),
    );
  } catch (e) {
    if (e instanceof TokenizerError) throw new ArtifactError(where(TEXT_FILES.tokenizer), e.message);
    throw e;
  }
  const count = outputs[0].shape[1];
  let labels = Array.from({ length: count }, (_, i) => `LABEL_${i}`);
  if (files.labels !== undefined) {
    const file = where(TEXT_FILES.labels);
    let parsed: unknown;
    try {
      parsed = JSON.parse(files.labels);
    } catch (e) {
      throw new ArtifactError(file, `not JSON: ${(e as Error).message}`);
    }
    if (!Array.isArray(parsed) || parsed.length !== count || !parsed.every((l) => typeof l === "string")) {
      throw new ArtifactError(
        file,
        `must be a list of ${count} label names (the model has ${count} outputs)`,
      );
    }
    labels = parsed;
  }
  return { tokenizer, labels };
}

/**
 * Classifies `sentences` by runs of `run` over `buckets`: sorted by token count, taken in groups
 * of the largest compiled batch that the rest fills (up to `options.batch`; a last short group
 * fills the smallest batch with empty rows), each group in the smallest-length bucket of its
 * batch that holds its longest sentence (else the longest, truncating). Results are in input order.
 */
export function classifyBatches(
  text: TextModel,
  buckets: readonly ShapeOf[],
  sentences: readonly string[],
  options: ClassifyOptions,
  run: (inputs: Record<string, number[]>, bucket: ShapeOf) => Float32Array,
): Classification[] {
  const { tokenizer } = text;
  const longest = Math.max(...buckets.map((b) => b.seq));
  const limit = options.batch ?? Math.max(...buckets.map((b) => b.batch));
  if (!Number.isInteger(limit) || limit < 1) {
    throw new InputError(`batch must be a positive integer, got ${limit}`);
  }
  const ids = sentences.map((s) => {
    if (typeof s !== "string") throw new InputError(`sentences must be strings, got ${typeof s}`);
    const t = tokenizer.encode(s);
    if (t.length > longest && options.long === "refuse") {
      throw new InputError(
        `a sentence of ${t.length} tokens is longer than the model's ${longest}: ${
          JSON.stringify(s.slice(0, 60))
        }`,
      );
    }
    return t;
  });
  const order = ids.map((_, i) => i).sort((a, b) => ids[a].length - ids[b].length || a - b);
  const batches = [...new Set(buckets.map((b) => b.batch))].sort((a, b) => a - b);
  const results: Classification[] = new Array(sentences.length);
  for (let at = 0; at < order.length;) {
    const rest = Math.min(order.length - at, limit);
    const batch = batches.filter((b) => b <= rest).at(-1) ?? batches[0];
    const group = order.slice(at, at + Math.min(batch, rest));
    at += group.length;
    const need = Math.max(...group.map((i) => ids[i].length));
    const lengths = buckets.filter((b) => b.batch === batch).map((b) => b.seq).sort((a, b) => a - b);
    const seq = lengths.find((s) => s >= need) ?? lengths.at(-1)!;
    const inputs: Record<string, number[]> = { input_ids: [], token_type_ids: [], attention_mask: [] };
    const cut: boolean[] = [];
    for (let row = 0; row < batch; row++) {
      // Rows past the group's sentences hold an empty sentence ([CLS] [SEP]) and are dropped.
      const fit = fitToLength(
        row < group.length ? ids[group[row]] : tokenizer.encode(""),
        seq,
        tokenizer.sepId,
        tokenizer.padId,
      );
      inputs.input_ids.push(...fit.ids);
      inputs.token_type_ids.push(...fit.ids.map(() => 0));
      inputs.attention_mask.push(...fit.mask);
      cut.push(fit.truncated);
    }
    const logits = run(inputs, { batch, seq });
    const labels = logits.length / batch;
    group.forEach((i, row) => {
      const probabilities = softmax(logits.subarray(row * labels, (row + 1) * labels));
      const index = probabilities.indexOf(Math.max(...probabilities));
      results[i] = { label: text.labels[index], index, probabilities, truncated: cut[row] };
    });
  }
  return results;
}

/** Softmax of logits, in f64. */
export function softmax(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}
