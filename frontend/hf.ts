/**
 * Hugging Face BERT import: reads a checkpoint folder (`config.json` and `model.safetensors`, or
 * shards listed by `model.safetensors.index.json`) and writes Sparrow IR for batch 1 and a static
 * sequence length. The graph is the one `buildBertModule` builds for the synthetic BERT; the weight
 * names are the checkpoint's own, exactly as stored.
 *
 * Architectures (`config.json`'s `architectures[0]`; `BertModel` when absent):
 * - `BertForSequenceClassification`: pooler and classifier; returns the logits `[1, num_labels]`.
 * - `BertForQuestionAnswering`: `qa_outputs` (`[2, hidden_size]`) gives `[1, S, 2]`, which is sliced
 *   and reshaped into two results, the start and end logits, `[1, S]` each (as `logits.split(1, -1)`
 *   and `squeeze(-1)` do in PyTorch).
 * - `BertModel`: returns the last hidden state `[1, S, H]`, and the pooled output `[1, H]` as a
 *   second result when the checkpoint has the pooler.
 *
 * Weights: a single `model.safetensors` of f32 tensors is not copied: the IR names it by its path
 * relative to the IR file. Sharded checkpoints, and checkpoints stored in f16, bf16 or f64, get one
 * f32 safetensors file written beside the IR (`<name>.safetensors`) holding the tensors the IR
 * uses. Other tensors of the checkpoint (`position_ids`, masked-LM heads, ...) are left alone: the
 * verifier checks only the declared weights.
 *
 * Everything is checked before anything is written. Input that cannot be imported throws an
 * {@link HfImportError} naming the file and the field or tensor; read and write failures throw
 * Deno's errors, and a corrupt safetensors file a `SafetensorsError`.
 *
 * ```ts
 * const r = await importHfBert("../shared/models/sst2-bert-mini", "out/mini.sir", { seq: 64 });
 * console.log(r.architecture, r.weightsFile); // BertForSequenceClassification ../../...
 * ```
 */

import { writeFileAtomic } from "../ir/atomic_write.ts";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { formatDiagnostics } from "../ir/diagnostics.ts";
import { loadModule } from "../ir/load.ts";
import type { Module } from "../ir/module.ts";
import { print } from "../ir/printer.ts";
import {
  readSafetensors,
  type SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
} from "../ir/safetensors.ts";
import { numel } from "../ir/types.ts";
import { Tensor } from "../ir/tensor.ts";
import { MAX_ELEMENTS, verify } from "../ir/verifier.ts";
import { memoryStore, safetensorsStore, type WeightStore } from "../ir/weights.ts";
import { type Checkpoint, INDEX, readCheckpoint, readJson, SINGLE } from "./hf_checkpoint.ts";
import {
  BERT_DEFAULTS,
  type BertConfig,
  type BertHead,
  bertWeightPrefix,
  bertWeightSpecs,
  buildBertModule,
  checkBertConfig,
  syntheticWeightsPath,
} from "./synthetic_bert.ts";

/** An input the importer cannot import; the message names the file and the field or tensor. */
export class HfImportError extends Error {
  /** An error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "HfImportError";
  }
}

/** The model classes that can be imported. */
export const HF_ARCHITECTURES = [
  "BertModel",
  "BertForSequenceClassification",
  "BertForQuestionAnswering",
] as const;

/** One of {@link HF_ARCHITECTURES}. */
export type HfArchitecture = typeof HF_ARCHITECTURES[number];

/** The `hidden_act` values that can be imported, and the GELU form each is. */
export const HF_ACTIVATIONS: Readonly<Record<string, "erf" | "tanh">> = Object.freeze({
  gelu: "erf",
  gelu_new: "tanh",
  gelu_pytorch_tanh: "tanh",
});

/** The default static sequence length (capped at the config's `max_position_embeddings`). */
export const HF_DEFAULT_SEQ = 128;

/** Options of {@link importHfBert}. */
export interface HfImportOptions {
  /**
   * The static sequence length of the inputs, at most `max_position_embeddings`; 128 by default
   * (or `max_position_embeddings` when that is smaller).
   */
  readonly seq?: number;
}

/** What `config.json` says, mapped onto the synthetic BERT's config. */
export interface HfBertConfig {
  /** The model class. */
  readonly architecture: HfArchitecture;
  /** Dimensions and settings; `seed` is 0 and unused, `head` is true for the classifier. */
  readonly config: BertConfig;
}

/** What {@link importHfBert} wrote and found. */
export interface HfImportResult {
  /** The IR file written. */
  readonly irPath: string;
  /** The weights file as the IR names it, relative to the IR file. */
  readonly weightsFile: string;
  /** The weights file's path (the checkpoint's own file, or the one written beside the IR). */
  readonly weightsPath: string;
  /** Whether a weights file was written (sharded or non-f32 checkpoints) rather than referenced. */
  readonly wroteWeights: boolean;
  /** Number of safetensors files the weights were read from (more than 1 when sharded). */
  readonly shards: number;
  /** The model class. */
  readonly architecture: HfArchitecture;
  /** The head the IR has: `pooler` or `none` for `BertModel`, depending on the checkpoint. */
  readonly head: BertHead;
  /** The config the IR was built from. */
  readonly config: BertConfig;
  /** The written module, as `loadModule` read back and verified it. */
  readonly module: Module;
  /** Parameters (elements of the weights the IR declares). */
  readonly params: number;
  /** Size of the IR file in bytes. */
  readonly irBytes: number;
  /** Checkpoint tensors the IR does not use, in checkpoint order. */
  readonly unused: readonly string[];
}

// HF BertConfig's defaults, used for the fields a config.json leaves out (as transformers does).
const INT_FIELDS = {
  num_hidden_layers: 12,
  hidden_size: 768,
  num_attention_heads: 12,
  intermediate_size: 3072,
  vocab_size: 30522,
  max_position_embeddings: 512,
  type_vocab_size: 2,
} as const;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A JSON value for a message: at most 80 characters (a long or deep value is cut, never walked). */
function show(v: unknown): string {
  const brief = (x: unknown) => Array.isArray(x) ? `[${x.length} items]` : isObject(x) ? "{...}" : String(x);
  let text: string;
  try {
    text = Array.isArray(v)
      ? `[${v.slice(0, 8).map(brief).join(", ")}${v.length > 8 ? ", ..." : ""}]`
      : isObject(v)
      ? "{...}"
      : JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const quote = (v: unknown) =>
  typeof v === "string" ? `'${v.length > 80 ? `${v.slice(0, 77)}...` : v}'`.replace(/\n/g, "\\n") : show(v);

/** The most encoder layers a config may have (BERT-large has 24; 512 layers stay within the IR's op limit). */
export const HF_MAX_LAYERS = 512;

/**
 * Maps a parsed `config.json` onto a {@link BertConfig} for sequence length `seq` (128, or
 * `max_position_embeddings` when smaller, by default). `file` names the config in messages.
 * Throws an {@link HfImportError} naming the field for anything that cannot be imported.
 */
export function hfBertConfig(json: unknown, file: string, seq?: number): HfBertConfig {
  const fail = (message: string) => new HfImportError(`${file}: ${message}`);
  if (!isObject(json)) throw fail("not a JSON object");
  const has = (key: string) => json[key] !== undefined && json[key] !== null;

  if (has("model_type") && json.model_type !== "bert") {
    throw fail(`model_type ${quote(json.model_type)} is not supported (only 'bert')`);
  }
  let architecture: HfArchitecture = "BertModel";
  if (has("architectures")) {
    const list = json.architectures;
    if (!Array.isArray(list) || list.length === 0 || typeof list[0] !== "string") {
      throw fail(`architectures must be a list of class names, got ${show(list)}`);
    }
    if (!(HF_ARCHITECTURES as readonly string[]).includes(list[0])) {
      throw fail(`architectures ${quote(list[0])} is not supported (${HF_ARCHITECTURES.join(", ")})`);
    }
    architecture = list[0] as HfArchitecture;
  }

  const ints: Record<string, number> = {};
  for (const [key, fallback] of Object.entries(INT_FIELDS)) {
    const v = has(key) ? json[key] : fallback;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      throw fail(`${key} must be a positive integer, got ${show(v)}`);
    }
    ints[key] = v;
  }
  if (ints.num_hidden_layers > HF_MAX_LAYERS) {
    throw fail(`num_hidden_layers ${ints.num_hidden_layers} is more than the ${HF_MAX_LAYERS} Sparrow takes`);
  }
  const hiddenAct = has("hidden_act") ? json.hidden_act : "gelu";
  if (typeof hiddenAct !== "string" || !Object.hasOwn(HF_ACTIVATIONS, hiddenAct)) {
    throw fail(
      `hidden_act ${quote(hiddenAct)} is not supported (${Object.keys(HF_ACTIVATIONS).join(", ")})`,
    );
  }
  const positions = has("position_embedding_type") ? json.position_embedding_type : "absolute";
  if (positions !== "absolute") {
    throw fail(`position_embedding_type ${quote(positions)} is not supported (only 'absolute')`);
  }
  const eps = has("layer_norm_eps") ? json.layer_norm_eps : 1e-12;
  if (typeof eps !== "number" || !Number.isFinite(eps) || eps < 0) {
    throw fail(`layer_norm_eps must be a finite number >= 0, got ${show(eps)}`);
  }
  if (json.is_decoder === true) throw fail("is_decoder true is not supported (only the encoder)");
  if (json.add_cross_attention === true) throw fail("add_cross_attention true is not supported");
  if (isObject(json.pruned_heads) && Object.keys(json.pruned_heads).length > 0) {
    throw fail("pruned_heads is not supported (attention heads removed from the checkpoint)");
  }
  if (has("quantization_config")) throw fail("quantization_config is not supported (quantized weights)");

  // transformers takes the number of labels from id2label when given, else num_labels (default 2).
  let labels = 2;
  if (isObject(json.id2label)) labels = Object.keys(json.id2label).length;
  else if (has("num_labels")) {
    const n = json.num_labels;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n <= 0) {
      throw fail(`num_labels must be a positive integer, got ${show(n)}`);
    }
    labels = n;
  }
  if (architecture === "BertForSequenceClassification" && labels === 0) {
    throw fail("id2label is empty: the classifier needs at least one label");
  }
  if (architecture === "BertForQuestionAnswering" && labels !== 2) {
    throw fail(`BertForQuestionAnswering with ${labels} labels is not supported (start and end: 2)`);
  }

  for (const [what, n] of [["type_vocab_size", ints.type_vocab_size], ["num_labels", labels]] as const) {
    if (n * ints.hidden_size > MAX_ELEMENTS) {
      throw fail(
        `${what} x hidden_size is ${n * ints.hidden_size} elements, over the IR's limit of ${MAX_ELEMENTS}`,
      );
    }
  }
  if (ints.hidden_size % ints.num_attention_heads !== 0) {
    throw fail(
      `hidden_size ${ints.hidden_size} is not a multiple of num_attention_heads ${ints.num_attention_heads}`,
    );
  }
  const maxPositions = ints.max_position_embeddings;
  const S = seq ?? Math.min(HF_DEFAULT_SEQ, maxPositions);
  if (!Number.isSafeInteger(S) || S <= 0) throw new HfImportError(`seq must be a positive integer, got ${S}`);
  if (S > maxPositions) {
    throw new HfImportError(`seq ${S} is more than ${file}'s max_position_embeddings ${maxPositions}`);
  }
  const config: BertConfig = {
    ...BERT_DEFAULTS,
    layers: ints.num_hidden_layers,
    hidden: ints.hidden_size,
    heads: ints.num_attention_heads,
    intermediate: ints.intermediate_size,
    seq: S,
    vocab: ints.vocab_size,
    maxPositions,
    typeVocab: ints.type_vocab_size,
    labels: architecture === "BertForQuestionAnswering" ? 2 : labels,
    head: architecture === "BertForSequenceClassification",
    act: HF_ACTIVATIONS[hiddenAct],
    eps,
  };
  const problems = checkBertConfig(config);
  if (problems.length > 0) throw fail(problems.join("; "));
  return { architecture, config };
}

/** The config fields each dimension of a weight comes from, for messages. */
function dimFields(name: string, rank: number): string[] {
  const H = "hidden_size", I = "intermediate_size";
  if (name.endsWith("word_embeddings.weight")) return ["vocab_size", H];
  if (name.endsWith("position_embeddings.weight")) return ["max_position_embeddings", H];
  if (name.endsWith("token_type_embeddings.weight")) return ["type_vocab_size", H];
  if (name.startsWith("classifier.")) return ["num_labels", H].slice(0, rank);
  if (name.startsWith("qa_outputs.")) return ["2", H].slice(0, rank);
  if (name.includes("intermediate.dense.")) return [I, H].slice(0, rank);
  if (/\.output\.dense\.weight$/.test(name) && !name.includes("attention.")) return [H, I];
  return [H, H].slice(0, rank);
}

const formatShape = (shape: readonly number[]) => `[${shape.join(", ")}]`;
const FLOATS = new Set(["F32", "F16", "BF16", "F64"]);

/**
 * The checkpoint's name of each weight the IR needs, by its `bertWeightSpecs` name: the BertModel
 * part with the `bert.` prefix or without (whichever the checkpoint has), LayerNorm scales and
 * shifts also as the old `gamma` and `beta`.
 */
function checkpointNames(
  specs: readonly string[],
  head: BertHead,
  prefix: string,
  ckpt: Checkpoint,
): Map<string, string | undefined> {
  const standard = bertWeightPrefix(head);
  const names = new Map<string, string | undefined>();
  for (const spec of specs) {
    const base = spec.startsWith(standard) ? spec.slice(standard.length) : spec;
    const name = spec.startsWith("classifier.") || spec.startsWith("qa_outputs.") ? spec : prefix + base;
    const old = name.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(
      /LayerNorm\.bias$/,
      "LayerNorm.beta",
    );
    names.set(spec, [name, old].find((n) => ckpt.tensors.has(n)));
  }
  return names;
}

async function realPathOrSelf(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return resolve(path);
  }
}

/** A path for the IR's weights line: relative, with `/` separators. */
function irRelative(fromIr: string, to: string): string {
  const rel = relative(dirname(resolve(fromIr)), resolve(to));
  return sep === "/" ? rel : rel.split(sep).join("/");
}

/** A checkpoint read into memory by {@link readHfBert}: the module and its weights, nothing written. */
export interface HfModel {
  /** The verified module; its weights line names the checkpoint's own file when the weights are read from it. */
  readonly module: Module;
  /** The data of every declared weight: the checkpoint's file, or f32 copies of sharded or non-f32 tensors. */
  readonly weights: WeightStore;
  /** The checkpoint's single f32 `model.safetensors` the weights are read from in place, if so. */
  readonly weightsPath?: string;
  /** The safetensors files the weights come from. */
  readonly files: readonly string[];
  /** `config.json`'s path. */
  readonly configPath: string;
  /** The model class. */
  readonly architecture: HfArchitecture;
  /** The head the IR has: `pooler` or `none` for `BertModel`, depending on the checkpoint. */
  readonly head: BertHead;
  /** The config the IR was built from. */
  readonly config: BertConfig;
  /** Parameters (elements of the weights the IR declares). */
  readonly params: number;
  /** Checkpoint tensors the IR does not use, in checkpoint order. */
  readonly unused: readonly string[];
}

/**
 * Reads the Hugging Face BERT checkpoint in folder `dir` into memory: the module (verified against
 * the weights) and a store of its weights. A single f32 `model.safetensors` is read in place;
 * sharded or non-f32 checkpoints are converted to f32 in memory.
 *
 * @throws HfImportError for a folder that is not a checkpoint, an unsupported config (naming the
 *   field), a missing tensor or one whose shape or dtype disagrees with the config (naming it);
 *   Deno errors when a file cannot be read; SafetensorsError for a corrupt weights file
 */
export async function readHfBert(dir: string, options: HfImportOptions = {}): Promise<HfModel> {
  try {
    if (!(await Deno.stat(dir)).isDirectory) {
      throw new HfImportError(`${dir}: not a folder (expected a Hugging Face checkpoint folder)`);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new HfImportError(`${dir}: no such folder`);
    throw e;
  }
  const configPath = join(dir, "config.json");
  const { architecture, config } = hfBertConfig(
    await readJson(configPath, "a Hugging Face checkpoint folder has the model's config.json"),
    configPath,
    options.seq,
  );
  const ckpt = await readCheckpoint(dir);
  const source = ckpt.sharded ? join(dir, INDEX) : ckpt.files[0];

  // The BertModel part's prefix: `bert.` under a head, none in a BertModel; either is accepted.
  const prefix = ["bert.", ""].find((p) => ckpt.tensors.has(`${p}embeddings.word_embeddings.weight`)) ??
    (architecture === "BertModel" ? "" : "bert.");
  const head: BertHead = architecture === "BertForSequenceClassification"
    ? "classifier"
    : architecture === "BertForQuestionAnswering"
    ? "question-answering"
    : ckpt.tensors.has(`${prefix}pooler.dense.weight`)
    ? "pooler"
    : "none";
  const specs = bertWeightSpecs(config, head);
  const names = checkpointNames(specs.map((s) => s.name), head, prefix, ckpt);
  let converted = false;
  for (const spec of specs) {
    const name = names.get(spec.name);
    if (name === undefined) {
      const wanted = spec.name.startsWith(bertWeightPrefix(head))
        ? prefix + spec.name.slice(bertWeightPrefix(head).length)
        : spec.name;
      // A whole layer missing: the config has more layers than the checkpoint.
      const layer = /^(.*encoder\.layer\.\d+\.)/.exec(wanted)?.[1];
      const whole = layer !== undefined && ![...ckpt.tensors.keys()].some((n) => n.startsWith(layer));
      const why = whole ? `; ${configPath} has num_hidden_layers ${config.layers}` : "";
      throw new HfImportError(`${source}: tensor '${wanted}' is missing (${architecture} needs it${why})`);
    }
    const { info, file } = ckpt.tensors.get(name)!;
    if (info.shape.length !== spec.shape.length || info.shape.some((d, i) => d !== spec.shape[i])) {
      throw new HfImportError(
        `${file}: tensor '${name}' has shape ${formatShape(info.shape)} but ${configPath} implies ` +
          `${formatShape(spec.shape)} ([${dimFields(spec.name, spec.shape.length).join(", ")}])`,
      );
    }
    if (!FLOATS.has(info.dtype)) {
      throw new HfImportError(`${file}: tensor '${name}' has dtype ${info.dtype}; weights must be floats`);
    }
    if (info.dtype !== "F32") converted = true;
  }
  const used = new Set(names.values() as Iterable<string>);
  const unused = [...ckpt.tensors.keys()].filter((n) => !used.has(n));
  // More layers in the checkpoint than the config says would silently drop them: an error.
  const extraLayer = unused.find((n) => n.startsWith(`${prefix}encoder.layer.`));
  if (extraLayer !== undefined) {
    throw new HfImportError(
      `${configPath}: num_hidden_layers is ${config.layers} but the checkpoint has '${extraLayer}'`,
    );
  }

  // Where the weights are read from: the checkpoint's file, or f32 copies in memory.
  const inPlace = !(ckpt.sharded || converted);
  const returns = head === "classifier"
    ? `the logits [1, ${config.labels}]`
    : head === "question-answering"
    ? `the start and end logits, [1, ${config.seq}] each`
    : head === "pooler"
    ? "the last hidden state and the pooled output"
    : "the last hidden state";
  const from = (ckpt.sharded ? `${ckpt.files.length} shards merged` : SINGLE) +
    (converted ? ", converted to f32" : "");
  const m = buildBertModule(config, inPlace ? resolve(ckpt.files[0]) : undefined, {
    head,
    weightName: (n) => names.get(n)!,
    name: basename(resolve(dir)),
    comments: [
      `Hugging Face ${architecture} imported from ${basename(resolve(dir))} (config.json, ${from}).`,
      `Batch 1, sequence length ${config.seq}; Linear weights are [out, in] as in PyTorch.`,
      `Returns ${returns}.`,
    ],
    attrs: {
      architecture,
      layers: config.layers,
      hidden: config.hidden,
      heads: config.heads,
      intermediate: config.intermediate,
      seq: config.seq,
      vocab: config.vocab,
      max_positions: config.maxPositions,
      type_vocab: config.typeVocab,
      ...(head === "classifier" ? { labels: config.labels } : {}),
      act: config.act,
      eps: config.eps,
    },
  });
  let weights: WeightStore;
  if (inPlace) {
    weights = safetensorsStore(await readSafetensors(ckpt.files[0]));
  } else {
    const files = new Map<string, SafetensorsFile>();
    for (const f of ckpt.files) files.set(f, await readSafetensors(f));
    const tensors = new Map(specs.map((spec) => {
      const name = names.get(spec.name)!;
      const data = files.get(ckpt.tensors.get(name)!.file)!.float32(name);
      return [name, new Tensor(m.weights.get(name)!.type, data)] as const;
    }));
    weights = memoryStore(tensors);
  }
  const diagnostics = verify(m, { weights: weights.entries(), weightsSource: source });
  if (diagnostics.length > 0) {
    throw new Error(`the imported IR does not verify:\n${formatDiagnostics(diagnostics, print(m))}`);
  }
  return {
    module: m,
    weights,
    weightsPath: inPlace ? ckpt.files[0] : undefined,
    files: ckpt.files,
    configPath,
    architecture,
    head,
    config,
    params: specs.reduce((n, s) => n + numel(s.shape), 0),
    unused,
  };
}

/**
 * Imports the Hugging Face BERT checkpoint in folder `dir` and writes its IR to `irPath` (the
 * folder is created when needed). A single f32 `model.safetensors` is referenced from the IR by a
 * relative path, not copied; sharded or non-f32 checkpoints get their used tensors written as one
 * f32 `<name>.safetensors` beside the IR. The written IR is read back with `loadModule`, which
 * verifies the declared weights against the weights file.
 *
 * @param dir the checkpoint folder: `config.json` and `model.safetensors` or
 *   `model.safetensors.index.json` with its shards (tokenizer files are not needed)
 * @param irPath the IR file to write, e.g. `models/mini.sir`; must not end in `.safetensors`
 * @param options `seq`: the static sequence length (default 128, capped at `max_position_embeddings`)
 * @returns what was written, the verified module and the checkpoint tensors left unused
 * @throws as {@link readHfBert}; also when the weights to write would overwrite the checkpoint's
 *   files, and an Error listing the diagnostics if the written IR does not verify
 */
export async function importHfBert(
  dir: string,
  irPath: string,
  options: HfImportOptions = {},
): Promise<HfImportResult> {
  if (irPath.endsWith(".safetensors")) {
    throw new HfImportError(`the IR path ${irPath} must not end in .safetensors (weights may go there)`);
  }
  const r = await readHfBert(dir, options);
  const write = r.weightsPath === undefined;
  const weightsPath = r.weightsPath ?? syntheticWeightsPath(irPath);
  if (write) {
    const target = await realPathOrSelf(weightsPath);
    for (const f of [...r.files, r.configPath]) {
      if (await realPathOrSelf(f) === target) {
        throw new HfImportError(
          `the weights to write, ${weightsPath}, would overwrite the checkpoint's ${f}`,
        );
      }
    }
  }
  const weightsFile = irRelative(irPath, weightsPath);
  r.module.weightsFile = weightsFile;
  const text = print(r.module);

  await Deno.mkdir(dirname(resolve(irPath)), { recursive: true });
  if (write) {
    const tensors: TensorToWrite[] = [...r.module.weights.values()].map((w) => ({
      name: w.name,
      dtype: "F32",
      shape: [...w.type.shape],
      data: r.weights.get(w).data as Float32Array,
    }));
    await writeSafetensors(weightsPath, tensors, {
      format: "pt",
      generator: "sparrow hf-import",
      source: basename(resolve(dir)),
    });
  }
  await writeFileAtomic(irPath, text);

  const loaded = await loadModule(irPath);
  if (!loaded.module) {
    throw new Error(
      `the written IR ${irPath} does not verify:\n${formatDiagnostics(loaded.diagnostics, loaded.text)}`,
    );
  }
  return {
    irPath,
    weightsFile,
    weightsPath,
    wroteWeights: write,
    shards: r.files.length,
    architecture: r.architecture,
    head: r.head,
    config: r.config,
    module: loaded.module,
    params: r.params,
    irBytes: new TextEncoder().encode(text).length,
    unused: r.unused,
  };
}
