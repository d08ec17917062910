/**
 * Text in: an artifact that carries its checkpoint's tokenizer (`tokenizer.json`, and
 * `tokenizer_config.json` if the checkpoint had one) and label names (`labels.json`, from
 * `id2label`) classifies sentences. Each is tokenized, fitted to the compiled length (padded and
 * masked, or truncated keeping `[SEP]`, which the result says; or refused, by option), run, and
 * its logits turned into probabilities.
 */

import { type BertTokenizer, bertTokenizer, fitToLength, TokenizerError } from "./tokenizer.ts";
import { ArtifactError, InputError, type Plan } from "./plan.ts";

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
  /** A sentence longer than the compiled length: truncate it (default, and say so) or refuse it. */
  readonly long?: "truncate" | "refuse";
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
  const { inputs, outputs } = plan;
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

/** The model inputs of one sentence fitted to `seq`, and whether it was cut. */
export function sentenceInputs(
  text: TextModel,
  sentence: string,
  seq: number,
  options: ClassifyOptions = {},
): { inputs: Record<string, number[]>; truncated: boolean } {
  const { tokenizer } = text;
  const ids = tokenizer.encode(sentence);
  if (ids.length > seq && options.long === "refuse") {
    throw new InputError(
      `a sentence of ${ids.length} tokens is longer than the model's ${seq}: ${
        JSON.stringify(sentence.slice(0, 60))
      }`,
    );
  }
  const fit = fitToLength(ids, seq, tokenizer.sepId, tokenizer.padId);
  return {
    inputs: { input_ids: fit.ids, token_type_ids: fit.ids.map(() => 0), attention_mask: fit.mask },
    truncated: fit.truncated,
  };
}

/** Softmax of logits, in f64. */
export function softmax(logits: ArrayLike<number>): number[] {
  const max = Math.max(...Array.from(logits));
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}
