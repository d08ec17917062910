/**
 * The BERT tokenizer an artifact carries (`tokenizer.json`, the Hugging Face format), through
 * `@huggingface/tokenizers` (Tokenizers.js, the maintained pure-JS port of the Rust `tokenizers`
 * library), and fitting a sentence's ids to a static length. Evaluation and the runtime use the
 * same code, so a compiled model sees the ids the checkpoint's goldens were made with.
 */

import { Tokenizer } from "npm:@huggingface/tokenizers@0.2.0";

/** A tokenizer that cannot be built or read; the message is one line naming its file. */
export class TokenizerError extends Error {
  /** An error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "TokenizerError";
  }
}

/** A loaded BERT tokenizer. */
export interface BertTokenizer {
  /** The file it was built from (`tokenizer.json`, or `vocab.txt` when there is none). */
  readonly source: string;
  /** Id of `[CLS]`. */
  readonly clsId: number;
  /** Id of `[SEP]`. */
  readonly sepId: number;
  /** Id of `[PAD]` (0 when the vocabulary has none). */
  readonly padId: number;
  /** Token ids of one sentence with the special tokens: `[CLS] … [SEP]`, no padding or truncation. */
  encode(text: string): number[];
}

/**
 * A BERT tokenizer from a parsed `tokenizer.json` (`json`) and `tokenizer_config.json` (`config`,
 * `{}` when absent); `source` names the file in messages. Throws TokenizerError.
 */
export function bertTokenizer(
  json: Record<string, unknown>,
  config: Record<string, unknown>,
  source: string,
): BertTokenizer {
  const model = json.model as Record<string, unknown> | undefined;
  if (typeof model !== "object" || model === null || model.type !== "WordPiece") {
    throw new TokenizerError(`${source}: model.type must be 'WordPiece' (a BERT tokenizer)`);
  }
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, config);
  } catch (e) {
    throw new TokenizerError(`${source}: cannot build the tokenizer: ${(e as Error).message}`);
  }
  const vocab = model.vocab as Record<string, number>;
  const need = (s: string) => {
    const id = vocab[s];
    if (typeof id !== "number") throw new TokenizerError(`${source}: the vocabulary has no ${s} token`);
    return id;
  };
  return {
    source,
    clsId: need("[CLS]"),
    sepId: need("[SEP]"),
    padId: typeof vocab["[PAD]"] === "number" ? vocab["[PAD]"] : 0,
    encode: (text) => tok.encode(text).ids,
  };
}

/** One sentence's ids fitted to the static length. */
export interface FittedIds {
  /** `[CLS] … [SEP]` then `[PAD]`s, `seq` long. */
  readonly ids: number[];
  /** 1 on the tokens, 0 on the padding. */
  readonly mask: number[];
  /** Whether word pieces were cut off. */
  readonly truncated: boolean;
}

/** Pads `ids` (`[CLS] … [SEP]`) to `seq`, or truncates them keeping the final `[SEP]`. */
export function fitToLength(ids: readonly number[], seq: number, sepId: number, padId: number): FittedIds {
  if (ids.length > seq) {
    const kept = [...ids.slice(0, seq - 1), sepId];
    return { ids: kept, mask: kept.map(() => 1), truncated: true };
  }
  const pad = seq - ids.length;
  return {
    ids: [...ids, ...Array(pad).fill(padId)],
    mask: [...ids.map(() => 1), ...Array(pad).fill(0)],
    truncated: false,
  };
}
