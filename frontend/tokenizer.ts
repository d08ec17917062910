/**
 * Tokenizers for Hugging Face BERT checkpoints, through `@huggingface/tokenizers` (Tokenizers.js,
 * the maintained pure-JS port of the Rust `tokenizers` library) reading the folder's
 * `tokenizer.json`. A folder with only `vocab.txt` (older checkpoints) gets the standard BERT
 * WordPiece pipeline built around that vocabulary: BertNormalizer (clean text, CJK spacing,
 * lower-casing and accent stripping unless `tokenizer_config.json` says `do_lower_case: false`),
 * BertPreTokenizer, WordPiece with `##` and 100 characters at most per word, `[CLS] … [SEP]`.
 *
 * ```ts
 * const tok = await loadTokenizer("../shared/models/sst2-bert-mini");
 * tok.encode("it 's a charming journey . "); // [101, 2009, 1005, 1055, ...,  102]
 * ```
 */

import { join } from "node:path";
import { type BertTokenizer, bertTokenizer, TokenizerError } from "../runtime/tokenizer.ts";

export { type BertTokenizer, TokenizerError } from "../runtime/tokenizer.ts";

/** The largest tokenizer file read (`tokenizer.json` of multilingual models is tens of MiB). */
export const MAX_TOKENIZER_BYTES = 256 * 1024 * 1024;

/** How deep JSON files of a model folder (config, tokenizer) may nest objects and arrays. */
export const MAX_JSON_DEPTH = 64;

/**
 * Where a parsed JSON value nests deeper than `limit` (a path such as `normalizer.normalizers[0]`,
 * cut to 60 characters), or undefined; found without recursion, so any depth is safe to check.
 */
export function jsonTooDeep(value: unknown, limit: number = MAX_JSON_DEPTH): string | undefined {
  const stack: [unknown, number, string][] = [[value, 0, ""]];
  while (stack.length > 0) {
    const [v, depth, path] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth >= limit) return path.length > 60 ? `${path.slice(0, 57)}...` : path;
    if (Array.isArray(v)) v.forEach((x, i) => stack.push([x, depth + 1, `${path}[${i}]`]));
    else for (const [k, x] of Object.entries(v)) stack.push([x, depth + 1, path ? `${path}.${k}` : k]);
  }
  return undefined;
}

/**
 * The text of a model folder's file, or undefined when it does not exist. Throws `error(message)`
 * for a file that is no regular file (a FIFO would block) or is larger than `maxBytes`, before
 * reading it.
 */
export async function readBoundedText(
  path: string,
  maxBytes: number,
  error: (message: string) => Error,
): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  if (!info.isFile) throw error(`${path}: not a regular file (a folder, FIFO or device)`);
  if (info.size > maxBytes) throw error(`${path}: ${info.size} bytes, over the ${maxBytes}-byte limit`);
  return await Deno.readTextFile(path);
}

function readOptional(path: string): Promise<string | undefined> {
  return readBoundedText(path, MAX_TOKENIZER_BYTES, (m) => new TokenizerError(m));
}

function parseJson(text: string, path: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TokenizerError(`${path}: not a JSON object`);
  }
  const deep = jsonTooDeep(v);
  if (deep) throw new TokenizerError(`${path}: nests deeper than ${MAX_JSON_DEPTH} levels at ${deep}`);
  return v as Record<string, unknown>;
}

const SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/**
 * The `tokenizer.json` that Hugging Face's `BertTokenizerFast` builds from a `vocab.txt` (one token
 * a line, the line number being the id).
 */
export function bertTokenizerJson(vocabText: string, lowercase = true, file = "vocab.txt"): object {
  const tokens = vocabText.split(/\r?\n/);
  if (tokens.at(-1) === "") tokens.pop();
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    if (!Object.hasOwn(vocab, t)) vocab[t] = i;
  });
  for (const s of ["[UNK]", "[CLS]", "[SEP]"]) {
    if (!Object.hasOwn(vocab, s)) throw new TokenizerError(`${file}: the vocabulary has no ${s} token`);
  }
  const id = (s: string) => vocab[s];
  return {
    version: "1.0",
    added_tokens: SPECIALS.filter((s) => Object.hasOwn(vocab, s)).map((s) => ({
      id: id(s),
      content: s,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
      ],
      pair: [
        { SpecialToken: { id: "[CLS]", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } },
        { SpecialToken: { id: "[SEP]", type_id: 1 } },
      ],
      special_tokens: {
        "[CLS]": { id: "[CLS]", ids: [id("[CLS]")], tokens: ["[CLS]"] },
        "[SEP]": { id: "[SEP]", ids: [id("[SEP]")], tokens: ["[SEP]"] },
      },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

/**
 * Loads the tokenizer of a Hugging Face model folder: `tokenizer.json` (with `tokenizer_config.json`
 * when present), else `vocab.txt`. Throws a {@link TokenizerError} when the folder has neither.
 */
export async function loadTokenizer(dir: string): Promise<BertTokenizer> {
  const jsonPath = join(dir, "tokenizer.json");
  const configPath = join(dir, "tokenizer_config.json");
  const vocabPath = join(dir, "vocab.txt");
  const configText = await readOptional(configPath);
  const config = configText === undefined ? {} : parseJson(configText, configPath);
  const jsonText = await readOptional(jsonPath);
  let source: string;
  let json: Record<string, unknown>;
  if (jsonText !== undefined) {
    source = jsonPath;
    json = parseJson(jsonText, jsonPath);
  } else {
    const vocabText = await readOptional(vocabPath);
    if (vocabText === undefined) {
      throw new TokenizerError(`${dir}: no tokenizer.json or vocab.txt (the tokenizer)`);
    }
    source = vocabPath;
    json = bertTokenizerJson(vocabText, config.do_lower_case !== false, vocabPath) as Record<string, unknown>;
  }
  return bertTokenizer(json, config, source);
}
