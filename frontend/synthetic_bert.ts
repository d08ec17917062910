/**
 * The synthetic BERT: Sparrow's embedded default model and speed workload. Builds the IR of
 * Hugging Face's `BertForSequenceClassification` (or, without the head, `BertModel`) for batch 1
 * and a static sequence length, op for op as the PyTorch code computes it (post-LayerNorm
 * encoder), with the weight names of a real checkpoint, and fills it with seeded random weights.
 * The Hugging Face importer (`hf.ts`) builds real checkpoints' IR with the same `buildBertModule`,
 * passing the checkpoint's weight names and its head (`BertHead`: also question answering and
 * BertModel with its pooler).
 *
 * ```ts
 * const config = parseSyntheticSpec("synthetic:bert-base");
 * await writeSyntheticBert(config, "models/bert-base.sir"); // + models/bert-base.safetensors
 * ```
 */

import { writeFileAtomic } from "../ir/atomic_write.ts";
import { basename, dirname, extname, join } from "node:path";
import type { DenseLiteral } from "../ir/attrs.ts";
import { type ModuleAttrs, ModuleBuilder } from "../ir/builder.ts";
import type { Module, Value, Weight } from "../ir/module.ts";
import { print } from "../ir/printer.ts";
import { type TensorToWrite, writeSafetensors } from "../ir/safetensors.ts";
import { MAX_ELEMENTS, verify } from "../ir/verifier.ts";
import { formatDiagnostics } from "../ir/diagnostics.ts";
import { numel, tensorType } from "../ir/types.ts";
import { deriveSeed, fillNormal } from "./rng.ts";

/** The shape of a BERT and how to fill it. */
export interface BertConfig {
  /** Encoder layers (`num_hidden_layers`). */
  readonly layers: number;
  /** Hidden size (`hidden_size`); a multiple of `heads`. */
  readonly hidden: number;
  /** Attention heads (`num_attention_heads`). */
  readonly heads: number;
  /** Feed-forward size (`intermediate_size`). */
  readonly intermediate: number;
  /** The static sequence length of the inputs; at most `maxPositions`. */
  readonly seq: number;
  /** Word-piece vocabulary size (`vocab_size`), 30522 by default. */
  readonly vocab: number;
  /** Rows of the position table (`max_position_embeddings`), 512 by default. */
  readonly maxPositions: number;
  /** Token types (`type_vocab_size`), 2 by default. */
  readonly typeVocab: number;
  /** Classifier outputs (`num_labels`), 2 by default; unused without the head. */
  readonly labels: number;
  /** Seed of the random weights. */
  readonly seed: number;
  /** With pooler and classifier (`BertForSequenceClassification`), or the bare `BertModel`. */
  readonly head: boolean;
  /** GELU form: exact (`erf`, BERT's `gelu`) or the tanh approximation (`gelu_new`). */
  readonly act: "erf" | "tanh";
  /** LayerNorm epsilon (`layer_norm_eps`), 1e-12 by default. */
  readonly eps: number;
}

/** The settings of a config other than the four dimensions of a preset. */
export type BertSettings = Omit<BertConfig, "layers" | "hidden" | "heads" | "intermediate">;

/** The settings every preset shares. */
export const BERT_DEFAULTS: Readonly<BertSettings> = Object.freeze({
  seq: 128,
  vocab: 30522,
  maxPositions: 512,
  typeVocab: 2,
  labels: 2,
  seed: 0,
  head: true,
  act: "erf",
  eps: 1e-12,
});

/** The name of a preset. */
export type BertPresetName = "bert-tiny" | "bert-mini" | "bert-small" | "bert-base" | "bert-large";

function preset(layers: number, hidden: number, heads: number, intermediate: number): BertConfig {
  return Object.freeze({ layers, hidden, heads, intermediate, ...BERT_DEFAULTS });
}

/** The named model sizes: Google's BERT miniatures (tiny, mini, small) and the two originals. */
export const BERT_PRESETS: Readonly<Record<BertPresetName, BertConfig>> = Object.freeze({
  "bert-tiny": preset(2, 128, 2, 512),
  "bert-mini": preset(4, 256, 4, 1024),
  "bert-small": preset(4, 512, 8, 2048),
  "bert-base": preset(12, 768, 12, 3072),
  "bert-large": preset(24, 1024, 16, 4096),
});

/** The preset names, in size order. */
export const BERT_PRESET_NAMES: readonly BertPresetName[] = Object.keys(BERT_PRESETS) as BertPresetName[];

/** Whether `name` is a preset. */
export function isBertPreset(name: string): name is BertPresetName {
  return Object.hasOwn(BERT_PRESETS, name);
}

/** A preset with some settings changed. */
export function bertConfig(name: BertPresetName, overrides: Partial<BertConfig> = {}): BertConfig {
  return { ...BERT_PRESETS[name], ...overrides };
}

/** The prefix of synthetic model specs. */
export const SYNTHETIC_PREFIX = "synthetic:";

/**
 * The config of a spec `synthetic:<preset>`, e.g. `synthetic:bert-base`. Throws an Error with a
 * one-line message for anything else.
 */
export function parseSyntheticSpec(spec: string): BertConfig {
  const presets = BERT_PRESET_NAMES.map((n) => SYNTHETIC_PREFIX + n).join(", ");
  if (!spec.startsWith(SYNTHETIC_PREFIX)) {
    throw new Error(`'${spec}' is not a synthetic model spec; expected one of ${presets}`);
  }
  const name = spec.slice(SYNTHETIC_PREFIX.length);
  if (!isBertPreset(name)) throw new Error(`unknown synthetic model '${name}'; expected one of ${presets}`);
  return bertConfig(name);
}

/** The problems of a config, one line each; empty when it can be built. */
export function checkBertConfig(c: BertConfig): string[] {
  const problems: string[] = [];
  const positive = ["layers", "hidden", "heads", "intermediate", "seq", "vocab", "maxPositions", "typeVocab"];
  if (c.head) positive.push("labels");
  for (const key of positive) {
    const v = c[key as keyof BertConfig];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      problems.push(`${key} must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) {
    problems.push(`seed must be a non-negative integer, got ${c.seed}`);
  }
  if (c.act !== "erf" && c.act !== "tanh") problems.push(`act must be erf or tanh, got ${c.act}`);
  if (typeof c.eps !== "number" || !(c.eps >= 0) || !Number.isFinite(c.eps)) {
    problems.push(`eps must be a finite number >= 0, got ${c.eps}`);
  }
  if (typeof c.head !== "boolean") problems.push(`head must be true or false, got ${c.head}`);
  if (problems.length > 0) return problems;
  if (c.hidden % c.heads !== 0) {
    problems.push(`hidden (${c.hidden}) must be divisible by heads (${c.heads})`);
  }
  if (c.seq > c.maxPositions) {
    problems.push(
      `seq (${c.seq}) must be at most maxPositions (${c.maxPositions}), the position table's size`,
    );
  }
  const tensors: [string, number][] = [
    ["vocab x hidden", c.vocab * c.hidden],
    ["maxPositions x hidden", c.maxPositions * c.hidden],
    ["intermediate x hidden", c.intermediate * c.hidden],
    ["seq x intermediate", c.seq * c.intermediate],
    ["heads x seq x seq", c.heads * c.seq * c.seq],
  ];
  for (const [what, n] of tensors) {
    if (n > MAX_ELEMENTS) problems.push(`${what} is ${n} elements, over the IR's limit of ${MAX_ELEMENTS}`);
  }
  return problems;
}

function requireValid(c: BertConfig): void {
  const problems = checkBertConfig(c);
  if (problems.length > 0) throw new RangeError(`invalid BERT config: ${problems.join("; ")}`);
}

/** The preset a config has the dimensions of, if any (other settings may differ). */
export function bertPresetOf(c: BertConfig): BertPresetName | undefined {
  return BERT_PRESET_NAMES.find((n) => {
    const p = BERT_PRESETS[n];
    return p.layers === c.layers && p.hidden === c.hidden && p.heads === c.heads &&
      p.intermediate === c.intermediate;
  });
}

/** The module name: the preset's (`bert-base`), else `bert-L4-H256-A4-I1024` after Google's naming. */
export function bertModelName(c: BertConfig): string {
  return bertPresetOf(c) ?? `bert-L${c.layers}-H${c.hidden}-A${c.heads}-I${c.intermediate}`;
}

/** How a weight is filled. */
type Init = "normal" | "gamma";

/** One weight of the checkpoint. */
export interface BertWeightSpec {
  /** The name as in the checkpoint, with `bert.` before the BertModel part when there is a head. */
  readonly name: string;
  /** The shape; Linear weights are `[out, in]`. */
  readonly shape: readonly number[];
  /** normal: N(0, 0.02²); gamma (LayerNorm scale): 1 + N(0, 0.02²). */
  readonly init: Init;
}

/** Standard deviation of the random weights (BERT's `initializer_range`). */
export const INIT_STD = 0.02;

/**
 * What sits on the encoder, after Hugging Face's model classes:
 * - `classifier`: `BertForSequenceClassification`, pooler + classifier, returns the logits `[1, labels]`;
 * - `question-answering`: `BertForQuestionAnswering`, `qa_outputs` (`[2, H]`), returns the start and
 *   end logits, `[1, S]` each;
 * - `pooler`: `BertModel` with its pooling layer, returns the last hidden state and the pooled output;
 * - `none`: `BertModel` without it, returns the last hidden state.
 */
export type BertHead = "classifier" | "question-answering" | "pooler" | "none";

/** The head a config asks for: `classifier` with `head`, `none` without. */
export function defaultBertHead(c: BertConfig): BertHead {
  return c.head ? "classifier" : "none";
}

/** The prefix of the BertModel part's weight names: `bert.` under a task head, none in a BertModel. */
export function bertWeightPrefix(head: BertHead): string {
  return head === "classifier" || head === "question-answering" ? "bert." : "";
}

/**
 * The weights of the model, in the order of the PyTorch `state_dict` (the order of a real
 * checkpoint's header), for the config's head or the one given.
 */
export function bertWeightSpecs(c: BertConfig, head: BertHead = defaultBertHead(c)): BertWeightSpec[] {
  const p = bertWeightPrefix(head);
  const H = c.hidden;
  const specs: BertWeightSpec[] = [];
  const add = (name: string, shape: number[], init: Init = "normal") => specs.push({ name, shape, init });
  const linear = (name: string, out: number, inp: number) => {
    add(`${name}.weight`, [out, inp]);
    add(`${name}.bias`, [out]);
  };
  const layerNorm = (name: string) => {
    add(`${name}.weight`, [H], "gamma");
    add(`${name}.bias`, [H]);
  };
  add(`${p}embeddings.word_embeddings.weight`, [c.vocab, H]);
  add(`${p}embeddings.position_embeddings.weight`, [c.maxPositions, H]);
  add(`${p}embeddings.token_type_embeddings.weight`, [c.typeVocab, H]);
  layerNorm(`${p}embeddings.LayerNorm`);
  for (let i = 0; i < c.layers; i++) {
    const l = `${p}encoder.layer.${i}`;
    linear(`${l}.attention.self.query`, H, H);
    linear(`${l}.attention.self.key`, H, H);
    linear(`${l}.attention.self.value`, H, H);
    linear(`${l}.attention.output.dense`, H, H);
    layerNorm(`${l}.attention.output.LayerNorm`);
    linear(`${l}.intermediate.dense`, c.intermediate, H);
    linear(`${l}.output.dense`, H, c.intermediate);
    layerNorm(`${l}.output.LayerNorm`);
  }
  if (head === "classifier" || head === "pooler") linear(`${p}pooler.dense`, H, H);
  if (head === "classifier") linear("classifier", c.labels, H);
  if (head === "question-answering") linear("qa_outputs", 2, H);
  return specs;
}

/** The number of parameters (weight elements). */
export function bertParamCount(c: BertConfig): number {
  return bertWeightSpecs(c).reduce((n, s) => n + numel(s.shape), 0);
}

/** The module attributes recording a config. */
function moduleAttrs(c: BertConfig): ModuleAttrs {
  return {
    layers: c.layers,
    hidden: c.hidden,
    heads: c.heads,
    intermediate: c.intermediate,
    seq: c.seq,
    seed: c.seed,
    vocab: c.vocab,
    max_positions: c.maxPositions,
    type_vocab: c.typeVocab,
    ...(c.head ? { labels: c.labels } : {}),
    head: c.head,
    act: c.act,
    eps: c.eps,
  };
}

/** A scalar f32 constant literal, `dense<v>`. */
function splat(value: number): { value: DenseLiteral } {
  return { value: { shape: [], values: [value], float: true } };
}

/** How `buildBertModule` names, heads and describes the module; every field is optional. */
export interface BertBuildOptions {
  /** The head on the encoder; `defaultBertHead(c)` by default. */
  readonly head?: BertHead;
  /**
   * The name each weight has in the weights file, given its `bertWeightSpecs` name; unchanged by
   * default. Importers use it to keep a checkpoint's own names.
   */
  readonly weightName?: (name: string) => string;
  /** The module name; `bertModelName(c)` by default. */
  readonly name?: string;
  /** The module's leading comment lines, without `// `; the synthetic model's by default. */
  readonly comments?: readonly string[];
  /** Module attributes; the config's settings by default. */
  readonly attrs?: ModuleAttrs;
}

/**
 * Builds the IR of the model for batch 1 and sequence length `c.seq`:
 * `@main(%input_ids, %token_type_ids, %attention_mask: tensor<1xSxi64>)` returning the logits
 * `tensor<1xLxf32>` (with the head) or the last hidden state `tensor<1xSxHxf32>` (without);
 * `options.head` picks another head (see {@link BertHead}).
 * `weightsFile` is the safetensors path written into the IR, relative to the IR file.
 * Throws a RangeError for an invalid config.
 */
export function buildBertModule(
  c: BertConfig,
  weightsFile: string | undefined,
  options: BertBuildOptions = {},
): Module {
  requireValid(c);
  const head = options.head ?? defaultBertHead(c);
  const S = c.seq, H = c.hidden, A = c.heads, D = H / A;
  const name = options.name ?? bertModelName(c);
  const b = new ModuleBuilder(name, { weightsFile, attrs: options.attrs ?? moduleAttrs(c) });
  const m = b.module;
  if (options.comments) m.comments.leading.push(...options.comments.map((line) => `// ${line}`));
  else {
    m.comments.leading.push(
      `// Synthetic ${name}: Hugging Face ${c.head ? "BertForSequenceClassification" : "BertModel"} ` +
        `with seeded random weights (seed ${c.seed}).`,
      `// Batch 1, sequence length ${S}; Linear weights are [out, in] as in PyTorch.`,
    );
  }

  // Weights, in checkpoint order, with a comment heading each group.
  const p = bertWeightPrefix(head);
  const groups = new Map<string, string>([[`${p}embeddings.word_embeddings.weight`, "embeddings"]]);
  for (let i = 0; i < c.layers; i++) {
    groups.set(`${p}encoder.layer.${i}.attention.self.query.weight`, `layer ${i}`);
  }
  if (head === "classifier") groups.set(`${p}pooler.dense.weight`, "pooler and classifier");
  if (head === "pooler") groups.set(`${p}pooler.dense.weight`, "pooler");
  if (head === "question-answering") groups.set("qa_outputs.weight", "question answering");
  const rename = options.weightName ?? ((n: string) => n);
  const weights = new Map<string, Weight>();
  for (const s of bertWeightSpecs(c, head)) {
    const group = groups.get(s.name);
    weights.set(s.name, b.weight(rename(s.name), tensorType(s.shape), group));
  }
  const w = (name: string): Weight => weights.get(p + name)!;

  const ids = tensorType([1, S], "i64");
  const f = b.func("main", [["input_ids", ids], ["token_type_ids", ids], ["attention_mask", ids]]);
  const [inputIds, tokenTypeIds, attentionMask] = f.params;
  const f32 = (...shape: number[]) => tensorType(shape);

  // BertEmbeddings: word + token type + position, then LayerNorm.
  f.section("embeddings");
  const word = f.op("gather", [w("embeddings.word_embeddings.weight"), inputIds], {}, { name: "emb.word" });
  const type = f.op("gather", [w("embeddings.token_type_embeddings.weight"), tokenTypeIds], {}, {
    name: "emb.type",
  });
  const pos = f.op("slice", [w("embeddings.position_embeddings.weight")], {
    starts: [0],
    ends: [S],
    axes: [0],
  }, { name: "emb.pos" });
  const wordType = f.op("add", [word, type], {}, { name: "emb.word_type" });
  const sum = f.op("add", [wordType, pos], {}, { name: "emb.sum" });
  const layerNorm = (x: Value, prefix: string, name: string) =>
    f.op("layer_norm", [x, w(`${prefix}.weight`), w(`${prefix}.bias`)], { epsilon: c.eps }, { name });
  let hidden = layerNorm(sum, "embeddings.LayerNorm", "emb");

  // The extended attention mask: 0 where attended, -10000 where masked, broadcast over heads and queries.
  f.section("attention mask: (1 - mask) * -10000, as 1x1x1xS");
  const maskF = f.op("cast", [attentionMask], {}, { name: "mask.f32", type: f32(1, S) });
  const one = f.op("constant", [], splat(1), { name: "one", type: f32() });
  const inverted = f.op("sub", [one, maskF], {}, { name: "mask.inv" });
  const big = f.op("constant", [], splat(-10000), { name: "mask.min", type: f32() });
  const additive = f.op("mul", [inverted, big], {}, { name: "mask.add" });
  const mask = f.op("reshape", [additive], {}, { name: "mask", type: f32(1, 1, 1, S) });
  const scale = f.op("constant", [], splat(1 / Math.sqrt(D)), { name: "attn.scale", type: f32() });

  const dense = (x: Value, prefix: string, name: string) =>
    f.op("dense", [x, w(`${prefix}.weight`), w(`${prefix}.bias`)], { transpose_b: true }, { name });

  for (let i = 0; i < c.layers; i++) {
    f.section(`layer ${i}`);
    const l = `encoder.layer.${i}`, n = `l${i}`;
    const x = hidden;
    // BertSelfAttention: project, split heads, scaled dot product with the mask, merge heads.
    // q and v become [1, A, S, D]; k becomes [1, A, D, S], transposed for the scores.
    const heads = (proj: string, perm: number[]) => {
      const y = dense(x, `${l}.attention.self.${proj}`, `${n}.${proj[0]}`);
      const split = f.op("reshape", [y], {}, { name: `${n}.${proj[0]}.heads`, type: f32(1, S, A, D) });
      return f.op("transpose", [split], { perm }, { name: `${n}.${proj[0]}.t` });
    };
    const q = heads("query", [0, 2, 1, 3]);
    const k = heads("key", [0, 2, 3, 1]);
    const v = heads("value", [0, 2, 1, 3]);
    const scores = f.op("batch_matmul", [q, k], {}, { name: `${n}.scores` });
    const scaled = f.op("mul", [scores, scale], {}, { name: `${n}.scaled` });
    const probs = f.op("softmax", [scaled, mask], { axis: -1 }, { name: `${n}.probs` });
    const ctx = f.op("batch_matmul", [probs, v], {}, { name: `${n}.ctx` });
    const ctxT = f.op("transpose", [ctx], { perm: [0, 2, 1, 3] }, { name: `${n}.ctx.t` });
    const merged = f.op("reshape", [ctxT], {}, { name: `${n}.ctx.merged`, type: f32(1, S, H) });
    // BertSelfOutput: dense, residual, LayerNorm.
    const attnOut = dense(merged, `${l}.attention.output.dense`, `${n}.attn_out`);
    const attnRes = f.op("add", [attnOut, x], {}, { name: `${n}.attn_res` });
    const ln1 = layerNorm(attnRes, `${l}.attention.output.LayerNorm`, `${n}.ln1`);
    // BertIntermediate and BertOutput: dense, GELU, dense, residual, LayerNorm.
    const inter = dense(ln1, `${l}.intermediate.dense`, `${n}.inter`);
    const act = f.op("gelu", [inter], { approximation: c.act }, { name: `${n}.gelu` });
    const out = dense(act, `${l}.output.dense`, `${n}.out`);
    const outRes = f.op("add", [out, ln1], {}, { name: `${n}.out_res` });
    hidden = layerNorm(outRes, `${l}.output.LayerNorm`, `${n}.ln2`);
  }

  if (head === "classifier" || head === "pooler") {
    // BertPooler (dense + tanh of the [CLS] row), then the classifier.
    f.section(head === "classifier" ? "pooler and classifier" : "pooler");
    const cls = f.op("slice", [hidden], { starts: [0], ends: [1], axes: [1] }, { name: "cls" });
    const flat = f.op("reshape", [cls], {}, { name: "cls.flat", type: f32(1, H) });
    const pooledDense = dense(flat, "pooler.dense", "pooler.dense");
    const pooled = f.op("tanh", [pooledDense], {}, { name: "pooled" });
    if (head === "pooler") {
      f.ret(hidden, pooled);
      return m;
    }
    const logits = f.op(
      "dense",
      [pooled, weights.get("classifier.weight")!, weights.get("classifier.bias")!],
      {
        transpose_b: true,
      },
      { name: "logits" },
    );
    f.ret(logits);
  } else if (head === "question-answering") {
    // qa_outputs gives [1, S, 2]; its two columns, squeezed, are the start and end logits.
    f.section("question answering: start and end logits");
    const qa = f.op(
      "dense",
      [hidden, weights.get("qa_outputs.weight")!, weights.get("qa_outputs.bias")!],
      { transpose_b: true },
      { name: "qa" },
    );
    const column = (k: number, name: string) => {
      const col = f.op("slice", [qa], { starts: [k], ends: [k + 1], axes: [2] }, { name: `qa.${name}` });
      return f.op("reshape", [col], {}, { name: `${name}_logits`, type: f32(1, S) });
    };
    f.ret(column(0, "start"), column(1, "end"));
  } else {
    f.ret(hidden);
  }
  return m;
}

/**
 * Seeded random weights for the model, in checkpoint order: N(0, 0.02²) for embeddings, Linear
 * weights and all biases and LayerNorm shifts; 1 + N(0, 0.02²) for LayerNorm scales. Each
 * tensor has its own stream, seeded by the config's seed and the tensor's name without the
 * `bert.` prefix, so a tensor does not depend on the others (the same seed gives the same
 * layer 0 whatever the depth, and BertModel the same encoder as the classifier).
 * Throws a RangeError for an invalid config.
 */
export function syntheticBertWeights(c: BertConfig): TensorToWrite[] {
  requireValid(c);
  return bertWeightSpecs(c).map((s) => {
    const data = new Float32Array(numel(s.shape));
    const stream = deriveSeed(c.seed, s.name.startsWith("bert.") ? s.name.slice(5) : s.name);
    fillNormal(data, stream, s.init === "gamma" ? 1 : 0, INIT_STD);
    return { name: s.name, dtype: "F32", shape: [...s.shape], data };
  });
}

/** The weights file of an IR file: beside it, `<name without extension>.safetensors`. */
export function syntheticWeightsPath(irPath: string): string {
  const ext = extname(irPath);
  const stem = basename(irPath, ext);
  return join(dirname(irPath), `${stem}.safetensors`);
}

/** What `writeSyntheticBert` wrote. */
export interface WrittenModel {
  /** The IR file. */
  readonly irPath: string;
  /** The weights file beside it. */
  readonly weightsPath: string;
  /** Size of the IR file in bytes. */
  readonly irBytes: number;
  /** Size of the weights file in bytes. */
  readonly weightsBytes: number;
  /** Parameter count. */
  readonly params: number;
}

/**
 * Writes the model's IR to `irPath` and its weights beside it (`<name>.safetensors`, referenced
 * relatively from the IR), creating the folder when needed. The weights are written first and
 * atomically, then the IR to a temporary file renamed into place, so a failure leaves no partly
 * written file (at worst a complete weights file without its IR).
 * Throws a RangeError for an invalid config or an IR path ending in `.safetensors`.
 */
export async function writeSyntheticBert(c: BertConfig, irPath: string): Promise<WrittenModel> {
  const weightsPath = syntheticWeightsPath(irPath);
  if (extname(irPath) === ".safetensors") {
    throw new RangeError(`the IR path ${irPath} must not end in .safetensors (the weights go there)`);
  }
  const m = buildBertModule(c, basename(weightsPath));
  const diagnostics = verify(m);
  if (diagnostics.length > 0) {
    throw new Error(`internal error: the built module does not verify:\n${formatDiagnostics(diagnostics)}`);
  }
  const text = print(m);
  const tensors = syntheticBertWeights(c);
  await Deno.mkdir(dirname(irPath), { recursive: true });
  await writeSafetensors(weightsPath, tensors, {
    format: "pt",
    generator: "sparrow synthetic-bert",
    config: JSON.stringify(c),
  });
  await writeFileAtomic(irPath, text);
  return {
    irPath,
    weightsPath,
    irBytes: new TextEncoder().encode(text).length,
    weightsBytes: (await Deno.stat(weightsPath)).size,
    params: tensors.reduce((n, t) => n + numel(t.shape), 0),
  };
}
