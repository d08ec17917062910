/**
 * Hugging Face BERT import (`frontend/hf.ts`, `deno task import <folder>`).
 *
 * - The real checkpoints in `../shared/models/` (ignored when absent): imported, verified, and run
 *   by the reference interpreter on rows of their `golden_dev.jsonl`, padded to the static
 *   sequence length with attention_mask 0, against the Hugging Face logits; and sst2-bert-mini
 *   on all 872 dev rows, each at its own length (about 80 s).
 * - A sharded copy of sst2-bert-mini gives the same weights and logits as the single file.
 * - Small synthetic checkpoints written as Hugging Face folders: every architecture, name style
 *   and dtype, compared with the synthetic BERT's IR on the same weights; and one per
 *   unsupported or inconsistent input, each an HfImportError naming the file and the field.
 * - The CLI, spawned as deno.json's import task runs it (needs `--allow-run`, else ignored).
 */

import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { HfImportError, type HfImportResult, importHfBert } from "../frontend/hf.ts";
import {
  type BertConfig,
  bertConfig,
  buildBertModule,
  syntheticBertWeights,
} from "../frontend/synthetic_bert.ts";
import {
  formatDiagnostics,
  interpret,
  loadModule,
  loadWeights,
  memoryStore,
  type Module,
  print,
  readSafetensors,
  readSafetensorsHeader,
  Tensor,
  type TensorToWrite,
  tensorType,
  type WeightStore,
  writeSafetensors,
} from "../mod.ts";
import { assertOneLineError, CAN_RUN, runTask } from "./compile_cli.ts";

const MODELS = fileURLToPath(new URL("../../shared/models/", import.meta.url));

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const hasModel = (name: string) =>
  ["config.json", "model.safetensors", "golden_dev.jsonl"].every((f) => exists(join(MODELS, name, f)));

/** Runs `fn` with a fresh temp folder, removed afterwards. */
async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-hf-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `@main` on token ids, padded to `seq` with id 0 and attention_mask 0; token types are 0. */
function run(m: Module, weights: WeightStore, ids: readonly number[], seq: number): Tensor[] {
  const pad = seq - ids.length;
  assert.ok(pad >= 0, `${ids.length} tokens do not fit in ${seq}`);
  const input = (values: number[]) => Tensor.from([1, seq], "i64", values);
  return interpret(m, {
    input_ids: input([...ids, ...new Array(pad).fill(0)]),
    token_type_ids: input(new Array(seq).fill(0)),
    attention_mask: input([...ids.map(() => 1), ...new Array(pad).fill(0)]),
  }, weights);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

const argmax = (xs: ArrayLike<number>) =>
  Array.prototype.reduce.call(
    xs,
    (best, x, i, all) => (x as number) > (all as ArrayLike<number>)[best as number] ? i : best,
    0,
  ) as number;

interface GoldenRow {
  idx: number;
  input_ids: number[];
  logits: number[];
  pred: number;
}

/** The first `count` rows of a golden file that fit in `seq` tokens. */
async function goldenRows(model: string, seq: number, count: number): Promise<GoldenRow[]> {
  const text = await Deno.readTextFile(join(MODELS, model, "golden_dev.jsonl"));
  const rows = text.trim().split("\n").map((l) => JSON.parse(l) as GoldenRow);
  return rows.filter((r) => r.input_ids.length <= seq).slice(0, count);
}

// ---------------------------------------------------------------------------------------------
// The real checkpoints against their golden Hugging Face logits.

const REAL = [
  { model: "sst2-bert-mini", seq: 64, rows: 40 },
  { model: "sst2-bert-small", seq: 32, rows: 15 },
  { model: "sst2-bert-mini-pruned-1x32-80", seq: 32, rows: 20 },
];

for (const { model, seq, rows: count } of REAL) {
  Deno.test({
    name: `${model}: imports with the checkpoint's names and reproduces the golden logits`,
    ignore: !hasModel(model),
    fn: () =>
      withTempDir(async (dir) => {
        const dirIn = join(MODELS, model);
        const irPath = join(dir, "out", `${model}.sir`);
        const r = await importHfBert(dirIn, irPath, { seq });
        assert.equal(r.architecture, "BertForSequenceClassification");
        assert.equal(r.head, "classifier");
        assert.equal(r.config.seq, seq);
        // The checkpoint's own file, by a relative path; nothing copied.
        assert.equal(r.wroteWeights, false);
        assert.ok(!r.weightsFile.startsWith("/"), r.weightsFile);
        assert.equal(resolve(dir, "out", r.weightsFile), resolve(dirIn, "model.safetensors"));
        assert.deepEqual([...Deno.readDirSync(join(dir, "out"))].map((e) => e.name), [`${model}.sir`]);
        // Every checkpoint tensor is declared, with its name, in checkpoint order.
        const header = await readSafetensorsHeader(join(dirIn, "model.safetensors"));
        assert.deepEqual([...r.module.weights.keys()], [...header.tensors.keys()]);
        assert.deepEqual(r.unused, []);
        const loaded = await loadModule(irPath);
        assert.equal(loaded.diagnostics.length, 0, formatDiagnostics(loaded.diagnostics, loaded.text));

        const weights = await loadWeights(r.module, irPath);
        const rows = await goldenRows(model, seq, count);
        assert.equal(rows.length, count);
        let worst = 0;
        for (const row of rows) {
          const [logits] = run(r.module, weights, row.input_ids, seq);
          const d = maxAbsDiff(logits.data, row.logits);
          worst = Math.max(worst, d);
          assert.ok(d <= 1e-4, `row ${row.idx}: ${logits.data} vs ${row.logits}`);
          assert.equal(argmax(logits.data), row.pred, `row ${row.idx}: prediction`);
        }
        assert.ok(worst <= 1e-4, `max abs logit difference ${worst}`);
      }),
  });
}

Deno.test({
  name:
    "sst2-bert-mini on the reference interpreter: golden logits (1e-4) and predictions on all 872 dev rows",
  ignore: !hasModel("sst2-bert-mini"),
  fn: () =>
    withTempDir(async (dir) => {
      const dirIn = join(MODELS, "sst2-bert-mini");
      const text = await Deno.readTextFile(join(dirIn, "golden_dev.jsonl"));
      const rows = text.trim().split("\n").map((l) => JSON.parse(l) as GoldenRow);
      assert.equal(rows.length, 872);
      // Each row at its own length, nothing padded: one import per length, the weights read once.
      const byLength = new Map<number, Module>();
      let weights: WeightStore | undefined;
      let worst = 0;
      for (const row of rows) {
        const seq = row.input_ids.length;
        let m = byLength.get(seq);
        if (!m) {
          const irPath = join(dir, `mini-${seq}.sir`);
          m = (await importHfBert(dirIn, irPath, { seq })).module;
          weights ??= await loadWeights(m, irPath);
          byLength.set(seq, m);
        }
        const [logits] = run(m, weights!, row.input_ids, seq);
        const d = maxAbsDiff(logits.data, row.logits);
        worst = Math.max(worst, d);
        assert.ok(d <= 1e-4, `row ${row.idx}: ${logits.data} vs ${row.logits}`);
        assert.equal(argmax(logits.data), row.pred, `row ${row.idx}: prediction`);
      }
      assert.ok(worst <= 1e-4, `max abs logit difference ${worst}`);
    }),
});

Deno.test({
  name: "a sharded sst2-bert-mini (two shards and an index) gives the single file's weights and logits",
  ignore: !hasModel("sst2-bert-mini"),
  fn: () =>
    withTempDir(async (dir) => {
      const src = join(MODELS, "sst2-bert-mini");
      const file = await readSafetensors(join(src, "model.safetensors"));
      const names = [...file.tensors.keys()];
      const half = Math.ceil(names.length / 2);
      const shards = [names.slice(0, half), names.slice(half)];
      const ckpt = join(dir, "sharded");
      await Deno.mkdir(ckpt);
      await Deno.copyFile(join(src, "config.json"), join(ckpt, "config.json"));
      const weightMap: Record<string, string> = {};
      for (const [i, part] of shards.entries()) {
        const shard = `model-0000${i + 1}-of-00002.safetensors`;
        await writeSafetensors(
          join(ckpt, shard),
          part.map((n) => ({ name: n, dtype: "F32", shape: file.info(n).shape, data: file.float32(n) })),
          { format: "pt" },
        );
        for (const n of part) weightMap[n] = shard;
      }
      // An index lists its tensors sorted by name, as transformers writes it.
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => a < b ? -1 : 1));
      await Deno.writeTextFile(
        join(ckpt, "model.safetensors.index.json"),
        JSON.stringify({ metadata: { total_size: 0 }, weight_map: sorted }),
      );

      const seq = 16;
      const single = await importHfBert(src, join(dir, "single.sir"), { seq });
      const merged = await importHfBert(ckpt, join(dir, "out", "merged.sir"), { seq });
      assert.equal(merged.wroteWeights, true);
      assert.equal(merged.shards, 2);
      assert.equal(merged.weightsFile, "merged.safetensors");
      assert.match(print(merged.module), /imported from sharded \(config\.json, 2 shards merged\)/);
      // The merged file holds the same tensors, in checkpoint order, with the same bytes.
      const written = await readSafetensors(join(dir, "out", "merged.safetensors"));
      assert.deepEqual([...written.tensors.keys()], names);
      for (const n of names) assert.deepEqual(written.raw(n), file.raw(n), n);
      // The same IR apart from the header, and the same logits.
      const body = (m: Module) => print(m).slice(print(m).indexOf("  func @main"));
      assert.equal(body(merged.module), body(single.module));
      const ws = await loadWeights(single.module, single.irPath);
      const wm = await loadWeights(merged.module, merged.irPath);
      for (const row of await goldenRows("sst2-bert-mini", seq, 3)) {
        const a = run(single.module, ws, row.input_ids, seq)[0];
        const b = run(merged.module, wm, row.input_ids, seq)[0];
        assert.deepEqual(b.data, a.data);
        assert.ok(maxAbsDiff(b.data, row.logits) <= 1e-4);
      }
    }),
});

// ---------------------------------------------------------------------------------------------
// Small synthetic checkpoints written as Hugging Face folders.

/** bert-tiny with a small vocabulary and position table, three labels. */
const TINY: BertConfig = bertConfig("bert-tiny", { vocab: 64, maxPositions: 32, seq: 8, labels: 3, seed: 7 });
const IDS = [1, 17, 42, 5, 63, 9];

/** A config.json for `c`, as transformers writes it, with `extra` fields set (undefined deletes). */
function configJson(c: BertConfig, architecture: string, extra: Record<string, unknown> = {}): string {
  const json: Record<string, unknown> = {
    architectures: [architecture],
    model_type: "bert",
    vocab_size: c.vocab,
    hidden_size: c.hidden,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    intermediate_size: c.intermediate,
    hidden_act: c.act === "erf" ? "gelu" : "gelu_new",
    hidden_dropout_prob: 0.1,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocab,
    layer_norm_eps: c.eps,
    pad_token_id: 0,
    position_embedding_type: "absolute",
    id2label: Object.fromEntries(Array.from({ length: c.labels }, (_, i) => [String(i), `LABEL_${i}`])),
    torch_dtype: "float32",
    ...extra,
  };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete json[k];
  return JSON.stringify(json, null, 2);
}

/** The synthetic classifier's weights of `c`, renamed and filtered for another checkpoint layout. */
function tinyTensors(
  c: BertConfig,
  rename: (name: string) => string | undefined = (n) => n,
): TensorToWrite[] {
  return syntheticBertWeights(c).flatMap((t) => {
    const name = rename(t.name);
    return name === undefined ? [] : [{ ...t, name }];
  });
}

/** qa_outputs weights: [2, H] and [2], small deterministic values. */
function qaTensors(c: BertConfig): TensorToWrite[] {
  const w = Float32Array.from({ length: 2 * c.hidden }, (_, i) => Math.sin(i) * 0.05);
  return [
    { name: "qa_outputs.weight", dtype: "F32", shape: [2, c.hidden], data: w },
    { name: "qa_outputs.bias", dtype: "F32", shape: [2], data: Float32Array.of(0.1, -0.2) },
  ];
}

/** Writes a checkpoint folder: config.json and model.safetensors. */
async function writeCheckpoint(dir: string, config: string, tensors: TensorToWrite[]): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "config.json"), config);
  if (tensors.length > 0) await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  return dir;
}

/** The synthetic BERT's IR of `c` run on its own seeded weights. */
function synthetic(c: BertConfig): Tensor[] {
  const store = memoryStore(
    new Map(
      syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
    ),
  );
  return run(buildBertModule(c, "w.safetensors"), store, IDS, c.seq);
}

async function runImported(r: HfImportResult): Promise<Tensor[]> {
  return run(r.module, await loadWeights(r.module, r.irPath), IDS, r.config.seq);
}

Deno.test("BertForSequenceClassification: the synthetic BERT's graph, the checkpoint's file, equal logits", () =>
  withTempDir(async (dir) => {
    const ckpt = await writeCheckpoint(
      join(dir, "tiny"),
      configJson(TINY, "BertForSequenceClassification"),
      tinyTensors(TINY),
    );
    const r = await importHfBert(ckpt, join(dir, "tiny.sir"), { seq: 8 });
    assert.equal(r.weightsFile, "tiny/model.safetensors");
    assert.equal(r.wroteWeights, false);
    assert.deepEqual({ ...r.config, seed: TINY.seed }, TINY);
    const text = print(r.module);
    assert.match(text, /^\/\/ Hugging Face BertForSequenceClassification imported from tiny/);
    assert.match(
      text,
      /module @tiny attributes \{architecture = "BertForSequenceClassification", layers = 2,/,
    );
    assert.match(text, /labels = 3, act = "erf", eps = 1e-12\}/);
    const ours = print(buildBertModule(TINY, "tiny/model.safetensors"));
    assert.equal(text.slice(text.indexOf("  weights")), ours.slice(ours.indexOf("  weights")));
    const [logits] = await runImported(r);
    assert.deepEqual(logits.shape, [1, 3]);
    assert.deepEqual(logits.data, synthetic(TINY)[0].data);
    // The default sequence length is 128, capped by max_position_embeddings (32 here).
    assert.equal((await importHfBert(ckpt, join(dir, "default.sir"))).config.seq, 32);
  }));

Deno.test("BertModel: names without `bert.`, the pooled output as a second result, extra tensors unused", () =>
  withTempDir(async (dir) => {
    const base = { ...TINY, head: false };
    const tensors = tinyTensors(
      TINY,
      (n) => n.startsWith("classifier.") ? undefined : n.replace(/^bert\./, ""),
    );
    const extra: TensorToWrite[] = [
      { name: "embeddings.position_ids", dtype: "I64", shape: [1, 32], data: new BigInt64Array(32) },
      { name: "cls.predictions.bias", dtype: "F32", shape: [64], data: new Float32Array(64) },
    ];
    const ckpt = await writeCheckpoint(join(dir, "base"), configJson(base, "BertModel"), [
      ...tensors,
      ...extra,
    ]);
    const r = await importHfBert(ckpt, join(dir, "base.sir"), { seq: 8 });
    assert.equal(r.head, "pooler");
    assert.deepEqual(r.unused, ["embeddings.position_ids", "cls.predictions.bias"]);
    assert.ok(r.module.weights.has("pooler.dense.weight"));
    assert.ok(r.module.weights.has("embeddings.word_embeddings.weight"));
    const [hidden, pooled] = await runImported(r);
    assert.deepEqual(hidden.shape, [1, 8, 128]);
    assert.deepEqual(pooled.shape, [1, 128]);
    assert.deepEqual(hidden.data, synthetic(base)[0].data);
    for (const v of pooled.data) assert.ok(Math.abs(v) <= 1); // tanh

    // Without the pooler: the last hidden state only. No architectures: BertModel.
    const noPooler = await writeCheckpoint(
      join(dir, "nopool"),
      configJson(base, "BertModel", { architectures: undefined }),
      tensors.filter((t) => !t.name.startsWith("pooler.")),
    );
    const r2 = await importHfBert(noPooler, join(dir, "nopool.sir"), { seq: 8 });
    assert.equal(r2.architecture, "BertModel");
    assert.equal(r2.head, "none");
    const out = await runImported(r2);
    assert.equal(out.length, 1);
    assert.deepEqual(out[0].data, synthetic(base)[0].data);
  }));

Deno.test("BertForQuestionAnswering: start and end logits are the two columns of qa_outputs", () =>
  withTempDir(async (dir) => {
    const tensors = [
      ...tinyTensors(TINY, (n) => n.startsWith("classifier.") || n.startsWith("bert.pooler") ? undefined : n),
      ...qaTensors(TINY),
    ];
    const ckpt = await writeCheckpoint(
      join(dir, "qa"),
      configJson(TINY, "BertForQuestionAnswering", { id2label: undefined }),
      tensors,
    );
    const r = await importHfBert(ckpt, join(dir, "qa.sir"), { seq: 8 });
    assert.equal(r.head, "question-answering");
    const text = print(r.module);
    assert.match(
      text,
      /%qa = dense %l1\.ln2, @qa_outputs\.weight, @qa_outputs\.bias \{transpose_b = true\} : tensor<1x8x2xf32>/,
    );
    assert.match(text, /return %start_logits, %end_logits/);
    const [start, end] = await runImported(r);
    assert.deepEqual(start.shape, [1, 8]);
    assert.deepEqual(end.shape, [1, 8]);
    const hidden = synthetic({ ...TINY, head: false })[0].data;
    const [w, b] = qaTensors(TINY).map((t) => t.data as Float32Array);
    const H = TINY.hidden;
    for (let s = 0; s < 8; s++) {
      for (const [k, out] of [[0, start], [1, end]] as const) {
        let want = b[k];
        for (let h = 0; h < H; h++) want += hidden[s * H + h] * w[k * H + h];
        assert.ok(Math.abs(out.data[s] - want) < 1e-5, `${k} at ${s}: ${out.data[s]} vs ${want}`);
      }
    }
  }));

Deno.test("hidden_act gelu_new and gelu_pytorch_tanh use the tanh GELU; LayerNorm gamma/beta names are kept", () =>
  withTempDir(async (dir) => {
    const tanh = { ...TINY, act: "tanh" as const };
    for (const act of ["gelu_new", "gelu_pytorch_tanh"]) {
      const ckpt = await writeCheckpoint(
        join(dir, act),
        configJson(tanh, "BertForSequenceClassification", { hidden_act: act }),
        tinyTensors(
          tanh,
          (n) =>
            n.replace(/LayerNorm\.weight$/, "LayerNorm.gamma").replace(/LayerNorm\.bias$/, "LayerNorm.beta"),
        ),
      );
      const r = await importHfBert(ckpt, join(dir, `${act}.sir`), { seq: 8 });
      const text = print(r.module);
      assert.match(text, /%l0\.gelu = gelu %l0\.inter \{approximation = tanh\}/);
      assert.match(text, /@bert\.encoder\.layer\.0\.output\.LayerNorm\.gamma : tensor<128xf32>/);
      assert.doesNotMatch(text, /LayerNorm\.weight/);
      assert.deepEqual((await runImported(r))[0].data, synthetic(tanh)[0].data);
    }
  }));

Deno.test("an f16 checkpoint is converted to an f32 weights file beside the IR", () =>
  withTempDir(async (dir) => {
    const tensors = tinyTensors(TINY).map((t) => {
      const src = t.data as Float32Array;
      const data = new Uint8Array(src.length * 2);
      const view = new DataView(data.buffer);
      src.forEach((v, i) => view.setFloat16(2 * i, v, true));
      return { ...t, dtype: "F16" as const, data };
    });
    const ckpt = await writeCheckpoint(
      join(dir, "half"),
      configJson(TINY, "BertForSequenceClassification"),
      tensors,
    );
    const r = await importHfBert(ckpt, join(dir, "out", "half.sir"), { seq: 8 });
    assert.equal(r.wroteWeights, true);
    assert.equal(r.weightsFile, "half.safetensors");
    const header = await readSafetensorsHeader(join(dir, "out", "half.safetensors"));
    assert.ok([...header.tensors.values()].every((t) => t.dtype === "F32"));
    const d = maxAbsDiff((await runImported(r))[0].data, synthetic(TINY)[0].data);
    assert.ok(d < 1e-2, `f16 rounding moved the logits by ${d}`);
  }));

// Each input that cannot be imported: a config change or a checkpoint change, and the message.
const TINY_JSON = configJson(TINY, "BertForSequenceClassification");
const UNSUPPORTED: [string, Record<string, unknown>, RegExp][] = [
  [
    "relative positions",
    { position_embedding_type: "relative_key" },
    /config\.json: position_embedding_type 'relative_key' is not supported \(only 'absolute'\)$/,
  ],
  [
    "relu",
    { hidden_act: "relu" },
    /config\.json: hidden_act 'relu' is not supported \(gelu, gelu_new, gelu_pytorch_tanh\)$/,
  ],
  [
    "a masked-LM head",
    { architectures: ["BertForMaskedLM"] },
    /config\.json: architectures 'BertForMaskedLM' is not supported \(BertModel, BertForSequenceClassification, BertForQuestionAnswering\)$/,
  ],
  [
    "another model type",
    { model_type: "roberta" },
    /config\.json: model_type 'roberta' is not supported \(only 'bert'\)$/,
  ],
  ["a decoder", { is_decoder: true }, /config\.json: is_decoder true is not supported/],
  ["pruned heads", { pruned_heads: { "0": [1] } }, /config\.json: pruned_heads is not supported/],
  [
    "a quantized model",
    { quantization_config: { bits: 8 } },
    /config\.json: quantization_config is not supported/,
  ],
  [
    "a non-integer size",
    { hidden_size: "big" },
    /config\.json: hidden_size must be a positive integer, got "big"$/,
  ],
  [
    "a zero size",
    { num_hidden_layers: 0 },
    /config\.json: num_hidden_layers must be a positive integer, got 0$/,
  ],
  [
    "heads that do not divide the hidden size",
    { num_attention_heads: 3 },
    /config\.json: hidden_size 128 is not a multiple of num_attention_heads 3$/,
  ],
  ["a bad epsilon", { layer_norm_eps: "tiny" }, /config\.json: layer_norm_eps must be a finite number >= 0/],
  [
    "a feed-forward size the tensors do not have",
    { intermediate_size: 64 },
    /model\.safetensors: tensor 'bert\.encoder\.layer\.0\.intermediate\.dense\.weight' has shape \[512, 128\] but .*config\.json implies \[64, 128\] \(\[intermediate_size, hidden_size\]\)$/,
  ],
  [
    "fewer labels than the classifier has",
    { id2label: { "0": "no", "1": "yes" } },
    /model\.safetensors: tensor 'classifier\.weight' has shape \[3, 128\] but .*config\.json implies \[2, 128\] \(\[num_labels, hidden_size\]\)$/,
  ],
  [
    "a bigger vocabulary",
    { vocab_size: 100 },
    /tensor 'bert\.embeddings\.word_embeddings\.weight' has shape \[64, 128\] but .* implies \[100, 128\] \(\[vocab_size, hidden_size\]\)$/,
  ],
  [
    "more layers than the checkpoint has",
    { num_hidden_layers: 3 },
    /model\.safetensors: tensor 'bert\.encoder\.layer\.2\.attention\.self\.query\.weight' is missing \(BertForSequenceClassification needs it; .*config\.json has num_hidden_layers 3\)$/,
  ],
  [
    "fewer layers than the checkpoint has",
    { num_hidden_layers: 1 },
    /config\.json: num_hidden_layers is 1 but the checkpoint has 'bert\.encoder\.layer\.1\.attention\.self\.query\.weight'$/,
  ],
  [
    "question answering without qa_outputs",
    { architectures: ["BertForQuestionAnswering"], id2label: undefined },
    /model\.safetensors: tensor 'qa_outputs\.weight' is missing \(BertForQuestionAnswering needs it\)$/,
  ],
  [
    "question answering with three labels",
    { architectures: ["BertForQuestionAnswering"] },
    /config\.json: BertForQuestionAnswering with 3 labels is not supported/,
  ],
];

for (const [what, change, pattern] of UNSUPPORTED) {
  Deno.test(`unsupported: ${what}`, () =>
    withTempDir(async (dir) => {
      const ckpt = join(dir, "ckpt");
      await Deno.mkdir(ckpt);
      await Deno.writeTextFile(
        join(ckpt, "config.json"),
        configJson(TINY, "BertForSequenceClassification", change),
      );
      await writeSafetensors(join(ckpt, "model.safetensors"), tinyTensors(TINY));
      await assertRejected(importHfBert(ckpt, join(dir, "out", "m.sir"), { seq: 8 }), pattern, dir);
    }));
}

/** Asserts an HfImportError whose one-line message matches, and that nothing was written. */
async function assertRejected(p: Promise<unknown>, pattern: RegExp, dir: string): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof HfImportError, String(e));
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
  assert.equal(exists(join(dir, "out")), false, "nothing was written");
}

Deno.test("unsupported: missing or broken files, tensors and options", () =>
  withTempDir(async (dir) => {
    const out = join(dir, "out", "m.sir");
    const good = tinyTensors(TINY);
    const cases: [string, string | undefined, TensorToWrite[], RegExp, number?][] = [
      ["noconfig", undefined, good, /noconfig\/config\.json: not found \(a Hugging Face checkpoint folder/],
      ["notjson", "{ hidden_size: 1", good, /notjson\/config\.json: not valid JSON/],
      ["array", "[1, 2]", good, /array\/config\.json: not a JSON object$/],
      ["noweights", TINY_JSON, [], /noweights: no model\.safetensors or model\.safetensors\.index\.json/],
      [
        "notensor",
        TINY_JSON,
        good.filter((t) => t.name !== "bert.encoder.layer.1.output.dense.bias"),
        /notensor\/model\.safetensors: tensor 'bert\.encoder\.layer\.1\.output\.dense\.bias' is missing \(BertForSequenceClassification needs it\)$/,
      ],
      [
        "intweights",
        TINY_JSON,
        good.map((t) =>
          t.name === "classifier.bias" ? { ...t, dtype: "I32" as const, data: new Int32Array(3) } : t
        ),
        /model\.safetensors: tensor 'classifier\.bias' has dtype I32; weights must be floats$/,
      ],
      ["longseq", TINY_JSON, good, /seq 64 is more than .*config\.json's max_position_embeddings 32$/, 64],
    ];
    for (const [name, config, tensors, pattern, seq] of cases) {
      const ckpt = join(dir, name);
      await Deno.mkdir(ckpt);
      if (config !== undefined) await Deno.writeTextFile(join(ckpt, "config.json"), config);
      if (tensors.length > 0) await writeSafetensors(join(ckpt, "model.safetensors"), tensors);
      await assertRejected(importHfBert(ckpt, out, { seq: seq ?? 8 }), pattern, dir);
    }
    // Only PyTorch weights: named as what cannot be read.
    const bin = join(dir, "bin");
    await Deno.mkdir(bin);
    await Deno.writeTextFile(join(bin, "config.json"), TINY_JSON);
    await Deno.writeFile(join(bin, "pytorch_model.bin"), new Uint8Array(8));
    await assertRejected(
      importHfBert(bin, out),
      /bin: no model\.safetensors or model\.safetensors\.index\.json \(the weights\); pytorch_model\.bin cannot be read \(convert it to safetensors\)$/,
      dir,
    );
    // Sharded: a shard that is not there, a tensor the shard does not hold, a malformed index.
    const sharded = join(dir, "sharded");
    await Deno.mkdir(sharded);
    await Deno.writeTextFile(join(sharded, "config.json"), TINY_JSON);
    await writeSafetensors(join(sharded, "model-1.safetensors"), good);
    const index = (map: unknown) =>
      Deno.writeTextFile(join(sharded, "model.safetensors.index.json"), JSON.stringify({ weight_map: map }));
    const all = Object.fromEntries(good.map((t) => [t.name, "model-1.safetensors"]));
    await index({ ...all, "classifier.bias": "model-2.safetensors" });
    await assertRejected(
      importHfBert(sharded, out),
      /weight_map: the shard 'model-2\.safetensors' of 'classifier\.bias' is not found$/,
      dir,
    );
    await index({ ...all, "cls.extra": "model-1.safetensors" });
    await assertRejected(
      importHfBert(sharded, out),
      /weight_map: 'cls\.extra' is not in the shard .*model-1\.safetensors$/,
      dir,
    );
    await index({ ...all, "classifier.bias": "../x.safetensors" });
    await assertRejected(
      importHfBert(sharded, out),
      /weight_map: 'classifier\.bias' has the file "\.\.\/x\.safetensors"$/,
      dir,
    );
    await index(["model-1.safetensors"]);
    await assertRejected(
      importHfBert(sharded, out),
      /model\.safetensors\.index\.json: weight_map must be an object/,
      dir,
    );
    // Not a folder; an IR path where the weights would go.
    await assertRejected(importHfBert(join(dir, "nowhere"), out), /nowhere: no such folder$/, dir);
    await assertRejected(
      importHfBert(bin, join(dir, "out", "m.safetensors")),
      /must not end in \.safetensors/,
      dir,
    );
    // A sharded import whose merged weights would overwrite the checkpoint's own file.
    await index(all);
    await assertRejected(
      importHfBert(sharded, join(sharded, "model-1.sir")),
      /the weights to write, .*model-1\.safetensors, would overwrite the checkpoint's/,
      dir,
    );
    assert.equal(exists(join(sharded, "model-1.sir")), false);
  }));

// ---------------------------------------------------------------------------------------------
// The CLI, spawned as `deno task import` runs it.

Deno.test({
  name: "import CLI: a Hugging Face folder, ONNX, unsupported configs and write failures",
  ignore: !CAN_RUN,
  fn: () =>
    withTempDir(async (dir) => {
      const ckpt = await writeCheckpoint(
        join(dir, "tiny"),
        configJson(TINY, "BertForSequenceClassification"),
        tinyTensors(TINY),
      );
      const irPath = join(dir, "out", "tiny.sir");
      const ok = await runTask("import", ckpt, "-o", irPath, "--seq", "16");
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(
        ok.stdout,
        /^wrote tiny \(BertForSequenceClassification, [\d.]+K params, seq 16\): .*tiny\.sir \([\d.]+ KB\) \+ \.\.\/tiny\/model\.safetensors \(the checkpoint's, referenced\) in [\d.]+ s\n$/,
      );
      const loaded = await loadModule(irPath);
      assert.ok(loaded.module, formatDiagnostics(loaded.diagnostics, loaded.text));
      assert.match(loaded.text, /seq = 16,/);

      assertOneLineError(
        await runTask("import", "missing.onnx", "-o", irPath),
        2,
        /^error: missing\.onnx: cannot read the file: /,
      );
      assertOneLineError(
        await runTask("import", ckpt, "-o", irPath, "--hidden", "64"),
        2,
        /--hidden is for synthetic models/,
      );
      assertOneLineError(
        await runTask("import", ckpt, "-o", irPath, "--seq", "0"),
        2,
        /--seq must be a positive integer/,
      );
      assertOneLineError(await runTask("import", ckpt), 2, /missing -o/);

      const relu = await writeCheckpoint(
        join(dir, "relu"),
        configJson(TINY, "BertForSequenceClassification", { hidden_act: "relu" }),
        tinyTensors(TINY),
      );
      assertOneLineError(
        await runTask("import", relu, "-o", irPath),
        2,
        /relu\/config\.json: hidden_act 'relu' is not supported \(gelu, gelu_new, gelu_pytorch_tanh\)/,
      );
      assertOneLineError(await runTask("import", join(dir, "nowhere"), "-o", irPath), 2, /no such folder/);
      // The output's folder is a file: an I/O failure, exit code 1.
      assertOneLineError(
        await runTask("import", ckpt, "-o", join(ckpt, "config.json", "m.sir")),
        1,
        /^error: cannot import .*tiny: /,
      );
    }),
});
