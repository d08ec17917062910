/**
 * SST-2 evaluation: reads the GLUE `dev.tsv` (a header line, then `sentence<TAB>label`; the sentence
 * column may also be called `text`, as in the Hugging Face dataset's export), tokenizes
 * each sentence, runs a static-shape BERT classifier row by row on the reference interpreter and
 * counts accuracy and a confusion matrix.
 *
 * Sentences shorter than the model's sequence length are padded with `[PAD]` and attention_mask 0;
 * longer ones are truncated to `[CLS]`, the first `seq - 2` word pieces and `[SEP]` (as Hugging Face's
 * `truncation=True` does), and counted. `parseSentencesTsv` reads the same files without labels, for
 * calibration (`driver/calibration.ts`).
 *
 * ```ts
 * const model = await loadEvalModel("../shared/models/sst2-bert-mini", { seq: 64 });
 * const tok = await loadTokenizer(model.tokenizerDir!);
 * const rows = await readSst2Tsv("../shared/data/sst2/dev.tsv");
 * const r = evaluateSst2(model, tok, rows.slice(0, 40));
 * console.log(r.accuracy, r.confusion);
 * ```
 */

import { dirname } from "node:path";
import { formatDiagnostics } from "../ir/diagnostics.ts";
import { interpret } from "../ir/interpreter.ts";
import { loadModule, loadWeights } from "../ir/load.ts";
import type { Func, Module } from "../ir/module.ts";
import { Tensor } from "../ir/tensor.ts";
import { formatType } from "../ir/types.ts";
import type { WeightStore } from "../ir/weights.ts";
import { readHfBert } from "./hf.ts";
import type { BertTokenizer } from "./tokenizer.ts";
import { fitToLength } from "../runtime/tokenizer.ts";

export { type FittedIds, fitToLength } from "../runtime/tokenizer.ts";

/** Data or a model that cannot be evaluated; the message is one line naming the file. */
export class EvalError extends Error {
  /** An error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "EvalError";
  }
}

/** One labelled sentence. */
export interface Sst2Row {
  /** The sentence as the file has it. */
  readonly sentence: string;
  /** 0 (negative) or 1 (positive). */
  readonly label: number;
}

/**
 * Reads SST-2 style TSV text: a header naming the `sentence` (or `text`) column and, when
 * `labelled`, the `label` column; then one row a line, each with the header's cell count, handed
 * to `row` with its line number and the two columns (`label` is -1 when there is none).
 */
function parseTsv<T>(
  text: string,
  file: string,
  labelled: boolean,
  row: (cells: string[], line: number, sentence: number, label: number) => T,
): T[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0) {
    const expected = labelled ? "a header 'sentence<TAB>label'" : "a header naming a 'sentence' column";
    throw new EvalError(`${file}: empty (expected ${expected})`);
  }
  const header = lines[0].split("\t");
  const si = header.includes("sentence") ? header.indexOf("sentence") : header.indexOf("text");
  const li = header.indexOf("label");
  if (si < 0 || (labelled && li < 0)) {
    const columns = labelled
      ? "the columns 'sentence' (or 'text') and 'label'"
      : "a column 'sentence' (or 'text')";
    throw new EvalError(`${file}:1: the header must name ${columns}, got '${lines[0]}'`);
  }
  return lines.slice(1).map((line, i) => {
    const cells = line.split("\t");
    if (cells.length !== header.length) {
      throw new EvalError(
        `${file}:${i + 2}: expected ${header.length} tab-separated cells, got ${cells.length}`,
      );
    }
    return row(cells, i + 2, si, li);
  });
}

/**
 * Parses SST-2 TSV text: a header naming the `sentence` (or `text`) and `label` columns, then one
 * row a line.
 */
export function parseSst2Tsv(text: string, file = "<tsv>"): Sst2Row[] {
  return parseTsv(text, file, true, (cells, line, si, li) => {
    const label = Number(cells[li]);
    if (!Number.isSafeInteger(label) || label < 0 || cells[li].trim() === "") {
      throw new EvalError(`${file}:${line}: label must be an integer >= 0, got '${cells[li]}'`);
    }
    return { sentence: cells[si], label };
  });
}

/**
 * Parses the sentences of SST-2 style TSV text as {@link parseSst2Tsv} reads them, without
 * labels (for calibration): the header must name a `sentence` (or `text`) column; a `label`
 * column, or any other, is not read.
 */
export function parseSentencesTsv(text: string, file = "<tsv>"): string[] {
  return parseTsv(text, file, false, (cells, _line, si) => cells[si]);
}

/** Reads an SST-2 TSV file (see {@link parseSst2Tsv}). */
export async function readSst2Tsv(path: string): Promise<Sst2Row[]> {
  return parseSst2Tsv(await Deno.readTextFile(path), path);
}

/** A classifier ready to run: module, weights and where its inputs are. */
export interface EvalModel {
  /** The module; `@main` takes `[1, seq]` integer inputs and returns the logits `[1, labels]` first. */
  readonly module: Module;
  /** Its weights. */
  readonly weights: WeightStore;
  /** The static sequence length. */
  readonly seq: number;
  /** Number of labels (the logits' last dimension). */
  readonly labels: number;
  /** The folder holding the tokenizer by default: the checkpoint folder, or the IR file's folder. */
  readonly tokenizerDir: string;
}

/** Options of {@link loadEvalModel}. */
export interface LoadEvalOptions {
  /** Sequence length: the import length for a checkpoint (default 128); must match an IR file's. */
  readonly seq?: number;
}

async function stat(path: string): Promise<Deno.FileInfo> {
  try {
    return await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new EvalError(`${path}: no such file or folder`);
    throw e;
  }
}

const INPUTS = ["input_ids", "token_type_ids", "attention_mask"] as const;

/** Checks that `@main` looks like a sequence classifier and returns its sequence length and labels. */
function classifierShape(m: Module, path: string): { f: Func; seq: number; labels: number } {
  const f = m.func("main");
  if (!f) throw new EvalError(`${path}: the model has no function '@main'`);
  if (!f.params.some((p) => p.name === "input_ids")) {
    throw new EvalError(`${path}: @main has no parameter %input_ids`);
  }
  let seq: number | undefined;
  for (const p of f.params) {
    if (!(INPUTS as readonly string[]).includes(p.name)) {
      throw new EvalError(`${path}: @main's parameter %${p.name} is not one of ${INPUTS.join(", ")}`);
    }
    const s = p.type.shape;
    if (s.length !== 2 || s[0] !== 1 || p.type.dtype.startsWith("f") || p.type.dtype.startsWith("b")) {
      throw new EvalError(`${path}: %${p.name} is ${formatType(p.type)}; expected tensor<1xSxi64> (batch 1)`);
    }
    if (seq !== undefined && s[1] !== seq) throw new EvalError(`${path}: @main's inputs differ in length`);
    seq = s[1];
  }
  const out = f.returns[0]?.type;
  if (!out || out.shape.length !== 2 || out.shape[0] !== 1) {
    throw new EvalError(
      `${path}: @main must return the logits [1, labels] first, got ${out ? formatType(out) : "nothing"}`,
    );
  }
  return { f, seq: seq!, labels: out.shape[1] };
}

/**
 * Loads a classifier: a Hugging Face checkpoint folder (read into memory at `seq`; the weights are
 * read from the checkpoint's own file) or an IR file with its weights file.
 */
export async function loadEvalModel(path: string, options: LoadEvalOptions = {}): Promise<EvalModel> {
  const info = await stat(path);
  if (info.isDirectory) {
    const r = await readHfBert(path, { seq: options.seq });
    if (r.head !== "classifier") {
      throw new EvalError(`${path}: ${r.architecture} is not a sequence classifier`);
    }
    const { seq, labels } = classifierShape(r.module, path);
    return { module: r.module, weights: r.weights, seq, labels, tokenizerDir: path };
  }
  const loaded = await loadModule(path);
  if (!loaded.module) {
    const first = formatDiagnostics(loaded.diagnostics.slice(0, 1), loaded.text).split("\n")[0];
    throw new EvalError(`${first}${loaded.diagnostics.length > 1 ? ` (and more)` : ""}`);
  }
  const { seq, labels } = classifierShape(loaded.module, path);
  if (options.seq !== undefined && options.seq !== seq) {
    throw new EvalError(
      `--seq ${options.seq} differs from the sequence length ${seq} ${path} was compiled for`,
    );
  }
  const weights = await loadWeights(loaded.module, path);
  return { module: loaded.module, weights, seq, labels, tokenizerDir: dirname(path) };
}

/** What {@link evaluateSst2} measured. */
export interface EvalResult {
  /** Rows run. */
  readonly rows: number;
  /** Rows predicted right. */
  readonly correct: number;
  /** `correct / rows`. */
  readonly accuracy: number;
  /** `confusion[label][prediction]` counts. */
  readonly confusion: number[][];
  /** Rows longer than the sequence length, truncated. */
  readonly truncated: number;
  /** The sequence length run at. */
  readonly seq: number;
  /** Seconds spent tokenizing and running. */
  readonly seconds: number;
  /** `rows / seconds`. */
  readonly rowsPerSecond: number;
  /** The prediction of each row (argmax of the logits, the first on ties). */
  readonly preds: number[];
  /** The logits of each row. */
  readonly logits: number[][];
}

/** A classifier that runs itself (e.g. a compiled artifact): logits of one padded row. */
export interface EvalRunner {
  /** The static sequence length. */
  readonly seq: number;
  /** Number of labels. */
  readonly labels: number;
  /** Runs one row given `input_ids`, `token_type_ids` and `attention_mask`; returns its logits. */
  run(values: Readonly<Record<string, number[]>>): ArrayLike<number>;
}

/** Runs the reference interpreter on one row of `model`. */
function interpreterRunner(
  model: EvalModel,
): (values: Readonly<Record<string, number[]>>) => ArrayLike<number> {
  const f = model.module.func("main")!;
  return (values) => {
    const inputs = f.params.map((p) => Tensor.from(p.type.shape, p.type.dtype, values[p.name]));
    return interpret(model.module, inputs, model.weights)[0].data;
  };
}

/**
 * Runs `model` on each row (with the reference interpreter, or the runner's own `run`) and
 * counts what it got right.
 */
export function evaluateSst2(
  model: EvalModel | EvalRunner,
  tokenizer: BertTokenizer,
  rows: readonly Sst2Row[],
  onRow?: (done: number) => void,
): EvalResult {
  const run = "run" in model
    ? (v: Readonly<Record<string, number[]>>) => model.run(v)
    : interpreterRunner(model);
  const { seq, labels } = model;
  const classes = rows.reduce((n, r) => Math.max(n, r.label + 1), labels);
  const confusion = Array.from({ length: classes }, () => Array(classes).fill(0));
  const preds: number[] = [], logits: number[][] = [];
  let correct = 0, truncated = 0;
  const t0 = performance.now();
  for (const row of rows) {
    const fit = fitToLength(tokenizer.encode(row.sentence), seq, tokenizer.sepId, tokenizer.padId);
    if (fit.truncated) truncated++;
    const values: Record<string, number[]> = {
      input_ids: fit.ids,
      token_type_ids: fit.ids.map(() => 0),
      attention_mask: fit.mask,
    };
    const l = Array.from(run(values));
    let pred = 0;
    for (let k = 1; k < l.length; k++) if (l[k] > l[pred]) pred = k;
    preds.push(pred);
    logits.push(l);
    confusion[row.label][pred]++;
    if (pred === row.label) correct++;
    onRow?.(preds.length);
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    rows: rows.length,
    correct,
    accuracy: rows.length === 0 ? 0 : correct / rows.length,
    confusion,
    truncated,
    seq,
    seconds,
    rowsPerSecond: seconds > 0 ? rows.length / seconds : 0,
    preds,
    logits,
  };
}
