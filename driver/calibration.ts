/**
 * The driver's side of calibration: passes that calibrate on sentences (`prune-reconstruct`)
 * declare them from their options (`PassDef.inputs(options).sentences`) and read no files
 * themselves; before a pipeline runs, `prepareSentences` reads each declared TSV with the reader
 * `deno task eval` uses (`parseSentencesTsv`), draws `count` rows with a seeded choice and
 * tokenizes them with eval's tokenizer loader, and `runPipeline` hands them to the pass as
 * `ctx.sentences`. `declaredReads` lists every file the pipeline's passes read, for a launcher
 * to grant exactly those.
 *
 * ```ts
 * const pipeline = parsePipeline("prune-reconstruct{sparsity=0.8 block=4x4}", createPassRegistry());
 * const dirs = [dirname(modelPath), dirname(weightsPath(module, modelPath)!)];
 * const sentences = await prepareSentences(pipeline, dirs);
 * const r = runPipeline(module, pipeline, { weights, sentences });
 * ```
 *
 * Errors name the option of the request's field as `prune-reconstruct` calls it:
 * `calibration-data` for `data`, `tokenizer` for `tokenizer`.
 */

import { join, resolve } from "node:path";
import { Random } from "../ir/random.ts";
import type { PassInputs, SentenceRequest, Sentences } from "../passes/pass.ts";
import { entryOptions, type Pipeline, type PipelineEntry } from "../passes/pipeline.ts";
import { EvalError, parseSentencesTsv } from "../frontend/sst2.ts";
import { type BertTokenizer, loadTokenizer, TokenizerError } from "../frontend/tokenizer.ts";

/** Calibration data a pass asked for cannot be prepared; the message is one line naming the option and file. */
export class CalibrationError extends Error {
  /** A failure preparing the sentences of pass `pass`. */
  constructor(readonly pass: string, message: string) {
    super(message);
    this.name = "CalibrationError";
  }
}

/**
 * `n` distinct indices of `[0, total)` (all when n ≥ total, none when n ≤ 0), in the order a
 * seeded shuffle draws them: a partial Fisher-Yates shuffle with `Random(seed)`.
 */
export function seededChoice(total: number, n: number, seed: number): number[] {
  const rng = new Random(seed);
  const idx = Array.from({ length: total }, (_, i) => i);
  const take = Math.max(0, Math.min(n, total));
  for (let i = 0; i < take; i++) {
    const j = i + rng.int(total - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, take);
}

/**
 * The folder of the tokenizer a request names: its `tokenizer`, or when that is "" the first of
 * `modelDirs` holding a `tokenizer.json` (the model file's folder, then its weights file's),
 * else the first of them; undefined when there is none to look in.
 */
export function tokenizerDir(request: SentenceRequest, modelDirs: readonly string[]): string | undefined {
  if (request.tokenizer !== "") return request.tokenizer;
  return modelDirs.find(holdsTokenizer) ?? modelDirs[0];
}

/** Whether `dir` has a `tokenizer.json` this process can see (false when it may not look). */
function holdsTokenizer(dir: string): boolean {
  try {
    return Deno.statSync(join(dir, "tokenizer.json")).isFile;
  } catch {
    return false;
  }
}

/**
 * The files finding and loading a request's tokenizer reads: the `tokenizer.json` of each model
 * folder looked in before the one found, then that folder's `tokenizer.json`,
 * `tokenizer_config.json` and `vocab.txt` (read when there is no `tokenizer.json`). When no
 * model folder shows a `tokenizer.json` (none has one, or this process may not look), the files
 * of every model folder, so that the list is never short.
 */
function tokenizerReads(request: SentenceRequest, modelDirs: readonly string[]): string[] {
  const files = (dir: string) =>
    ["tokenizer.json", "tokenizer_config.json", "vocab.txt"].map((f) => resolve(dir, f));
  if (request.tokenizer !== "") return files(request.tokenizer);
  const found = modelDirs.findIndex(holdsTokenizer);
  if (found < 0) return modelDirs.flatMap(files);
  return [...modelDirs.slice(0, found).map((d) => resolve(d, "tokenizer.json")), ...files(modelDirs[found])];
}

/** The entries of a pipeline with what each one's pass declared it reads (entries declaring nothing left out). */
function declaredInputs(pipeline: Pipeline): { entry: PipelineEntry; inputs: PassInputs }[] {
  return pipeline.entries.flatMap((entry) => {
    const inputs = entry.pass.inputs?.(entryOptions(entry));
    return inputs ? [{ entry, inputs }] : [];
  });
}

/**
 * Every file the passes of `pipeline` read, as absolute paths: the files they declare, and for
 * declared sentences the TSV and the tokenizer folder's `tokenizer.json`, `tokenizer_config.json`
 * and `vocab.txt` (read when there is no `tokenizer.json`), with the `tokenizer.json` of each
 * model folder looked in before it. `modelDirs` as for `prepareSentences`; this looks for
 * `tokenizer.json` in them, and where it may not, lists the files of every one of them.
 */
export function declaredReads(pipeline: Pipeline, modelDirs: readonly string[]): string[] {
  const reads = new Set<string>();
  for (const { inputs } of declaredInputs(pipeline)) {
    for (const f of inputs.files ?? []) reads.add(resolve(f));
    const s = inputs.sentences;
    if (!s) continue;
    reads.add(resolve(s.data));
    for (const f of tokenizerReads(s, modelDirs)) reads.add(f);
  }
  return [...reads];
}

/**
 * Prepares the calibration sentences of every entry of `pipeline` whose pass declares them:
 * reads the TSV (a header naming a `sentence` or `text` column), draws `count` rows with
 * `seededChoice` (all when it has fewer) and tokenizes them, `[CLS] … [SEP]`, with the tokenizer
 * in `tokenizer`, or for "" in the first of `modelDirs` that holds a `tokenizer.json` (pass the
 * model file's folder, then its weights file's). Files and tokenizers are read once each.
 * Throws CalibrationError.
 */
export async function prepareSentences(
  pipeline: Pipeline,
  modelDirs: readonly string[],
): Promise<Map<PipelineEntry, Sentences>> {
  const tables = new Map<string, string[]>();
  const tokenizers = new Map<string, BertTokenizer>();
  const out = new Map<PipelineEntry, Sentences>();
  for (const { entry, inputs } of declaredInputs(pipeline)) {
    const request = inputs.sentences;
    if (!request) continue;
    const fail = (message: string) => new CalibrationError(entry.pass.name, message);
    const rows = tables.get(request.data) ?? await readSentences(request.data, fail);
    tables.set(request.data, rows);
    const dir = tokenizerDir(request, modelDirs);
    const hint = request.tokenizer === "" ? " (set tokenizer=DIR, the folder with tokenizer.json)" : "";
    if (dir === undefined) {
      throw fail(`option 'tokenizer': no model folder to look for a tokenizer in${hint}`);
    }
    const tok = tokenizers.get(dir) ?? await loadTokenizer(dir).catch((e) => {
      const why = e instanceof TokenizerError ? e.message : `cannot read '${dir}': ${(e as Error).message}`;
      throw fail(`option 'tokenizer': ${why}${hint}`);
    });
    tokenizers.set(dir, tok);
    const ids = seededChoice(rows.length, request.count, request.seed).map((i) => tok.encode(rows[i]));
    out.set(entry, { source: request.data, available: rows.length, ids, sepId: tok.sepId, padId: tok.padId });
  }
  return out;
}

/** The sentences of the TSV at `path`, at least one. */
async function readSentences(path: string, fail: (message: string) => Error): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw fail(`option 'calibration-data': cannot read '${path}': ${(e as Error).message}`);
  }
  let sentences: string[];
  try {
    sentences = parseSentencesTsv(text, path);
  } catch (e) {
    if (!(e instanceof EvalError)) throw e;
    throw fail(`option 'calibration-data': ${e.message}`);
  }
  if (sentences.length === 0) throw fail(`option 'calibration-data': '${path}' has no rows`);
  return sentences;
}
