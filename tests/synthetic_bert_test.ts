import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { importMain } from "../cli/import.ts";
import { Rng } from "../frontend/rng.ts";
import {
  BERT_PRESET_NAMES,
  BERT_PRESETS,
  type BertConfig,
  bertConfig,
  bertParamCount,
  bertWeightSpecs,
  buildBertModule,
  checkBertConfig,
  parseSyntheticSpec,
  syntheticBertWeights,
  writeSyntheticBert,
} from "../frontend/synthetic_bert.ts";
import {
  formatDiagnostics,
  interpret,
  loadModule,
  loadWeights,
  memoryStore,
  type Module,
  parse,
  print,
  readSafetensors,
  readSafetensorsHeader,
  safetensorsStore,
  Tensor,
  tensorType,
  verify,
  type WeightStore,
} from "../mod.ts";

const MODELS = fileURLToPath(new URL("../../shared/models/", import.meta.url));
const fileExists = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};
const MINI = join(MODELS, "sst2-bert-mini", "model.safetensors");
const SMALL = join(MODELS, "sst2-bert-small", "model.safetensors");
const MINI_GOLDEN = join(MODELS, "sst2-bert-mini", "golden_dev.jsonl");

function assertVerifies(m: Module): void {
  const ds = verify(m);
  assert.equal(ds.length, 0, formatDiagnostics(ds));
}

/** Weights of a config as an in-memory store. */
function memoryWeights(c: BertConfig): WeightStore {
  return memoryStore(
    new Map(
      syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
    ),
  );
}

/** Runs `@main` on token ids, token types (default 0) and a mask (default all 1). */
function run(m: Module, weights: WeightStore, ids: number[], types?: number[], mask?: number[]): Tensor {
  const S = ids.length;
  const input = (values: number[]) => Tensor.from([1, S], "i64", values);
  return interpret(m, {
    input_ids: input(ids),
    token_type_ids: input(types ?? ids.map(() => 0)),
    attention_mask: input(mask ?? ids.map(() => 1)),
  }, weights)[0];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

Deno.test("presets have the published BERT sizes and valid configs", () => {
  assert.deepEqual(BERT_PRESET_NAMES, ["bert-tiny", "bert-mini", "bert-small", "bert-base", "bert-large"]);
  const base = BERT_PRESETS["bert-base"];
  assert.deepEqual(
    [base.layers, base.hidden, base.heads, base.intermediate, base.seq, base.vocab, base.maxPositions],
    [12, 768, 12, 3072, 128, 30522, 512],
  );
  assert.equal(bertParamCount(base), 109_483_778); // BertForSequenceClassification, 2 labels
  for (const name of BERT_PRESET_NAMES) assert.deepEqual(checkBertConfig(BERT_PRESETS[name]), []);
});

Deno.test("bert-tiny builds, verifies and has the expected signature", () => {
  const m = buildBertModule(BERT_PRESETS["bert-tiny"], "bert-tiny.safetensors");
  assertVerifies(m);
  const f = m.func("main")!;
  assert.deepEqual(f.params.map((p) => p.name), ["input_ids", "token_type_ids", "attention_mask"]);
  for (const p of f.params) assert.deepEqual(p.type, tensorType([1, 128], "i64"));
  assert.deepEqual(f.resultTypes, [tensorType([1, 2])]);
  assert.equal(f.returns[0].name, "logits");
  assert.equal(m.weightsFile, "bert-tiny.safetensors");
  const text = print(m);
  assert.match(
    text,
    /attributes \{layers = 2, hidden = 128, heads = 2, intermediate = 512, seq = 128, seed = 0,/,
  );
  for (const line of ["// embeddings", "// layer 0", "// layer 1", "// pooler and classifier"]) {
    assert.ok(text.includes(`    ${line}\n`), line);
  }
  // No literal position ids: positions are a slice of the table.
  assert.match(
    text,
    /%emb.pos = slice @bert.embeddings.position_embeddings.weight \{starts = \[0\], ends = \[128\]/,
  );
});

Deno.test("every preset and variant builds and verifies", () => {
  for (const name of BERT_PRESET_NAMES) assertVerifies(buildBertModule(BERT_PRESETS[name], "w.safetensors"));
  const odd = bertConfig("bert-mini", { seq: 7, heads: 8, act: "tanh", head: false, vocab: 100, eps: 1e-5 });
  assertVerifies(buildBertModule(odd, "w.safetensors"));
});

Deno.test("print -> parse -> print is identical", () => {
  for (
    const c of [
      BERT_PRESETS["bert-tiny"],
      bertConfig("bert-mini", { head: false, act: "tanh", seq: 12, hidden: 96, heads: 3, eps: 1e-5 }),
    ]
  ) {
    const text = print(buildBertModule(c, "w.safetensors"));
    const parsed = parse(text, { file: "bert.sir" });
    assert.ok(parsed.module, formatDiagnostics(parsed.diagnostics, text));
    assert.equal(print(parsed.module), text);
    assertVerifies(parsed.module);
  }
});

for (const [preset, path] of [["bert-mini", MINI], ["bert-small", SMALL]] as const) {
  Deno.test({
    name: `${preset}: weight names and shapes equal the real checkpoint's`,
    ignore: !fileExists(path),
    async fn() {
      const header = await readSafetensorsHeader(path);
      const c = BERT_PRESETS[preset];
      const ours = bertWeightSpecs(c).map((s) => [s.name, { dtype: "F32", shape: [...s.shape] }] as const);
      const theirs = [...header.tensors.values()].map((t) =>
        [t.name, { dtype: t.dtype, shape: t.shape }] as const
      );
      assert.deepEqual(new Map(ours), new Map(theirs));
      assert.deepEqual(ours.map(([n]) => n), theirs.map(([n]) => n)); // and the state_dict order
      // The IR's declarations verify against the checkpoint itself.
      const ds = verify(buildBertModule(c, path), { weights: header.tensors, weightsSource: path });
      assert.equal(ds.length, 0, formatDiagnostics(ds));
    },
  });
}

Deno.test({
  name: "bert-mini IR on the real checkpoint reproduces the golden Hugging Face logits",
  ignore: !fileExists(MINI) || !fileExists(MINI_GOLDEN),
  async fn() {
    const weights = safetensorsStore(await readSafetensors(MINI));
    const rows = (await Deno.readTextFile(MINI_GOLDEN)).trim().split("\n").slice(0, 3)
      .map((l) => JSON.parse(l) as { input_ids: number[]; logits: number[] });
    for (const row of rows) {
      const S = row.input_ids.length;
      const m = buildBertModule(bertConfig("bert-mini", { seq: S }), MINI);
      const logits = run(m, weights, row.input_ids);
      assert.ok(maxAbsDiff(logits.data, row.logits) < 1e-4, `${logits.data} vs ${row.logits}`);
      // Padded to 32 with attention_mask 0 on the padding: the same logits.
      const pad = 32 - S;
      const padded = buildBertModule(bertConfig("bert-mini", { seq: 32 }), MINI);
      const out = run(
        padded,
        weights,
        [...row.input_ids, ...new Array(pad).fill(0)],
        undefined,
        [...new Array(S).fill(1), ...new Array(pad).fill(0)],
      );
      assert.ok(maxAbsDiff(out.data, row.logits) < 1e-4, `padded: ${out.data} vs ${row.logits}`);
    }
  },
});

Deno.test("without the head: BertModel names, no pooler or classifier, returns the last hidden state", () => {
  const c = bertConfig("bert-tiny", { head: false, seq: 16 });
  const m = buildBertModule(c, "w.safetensors");
  assertVerifies(m);
  const names = [...m.weights.keys()];
  assert.equal(names[0], "embeddings.word_embeddings.weight");
  assert.ok(names.includes("encoder.layer.1.output.LayerNorm.bias"));
  assert.ok(
    names.every((n) => !n.startsWith("bert.") && !n.startsWith("pooler") && !n.startsWith("classifier")),
  );
  assert.deepEqual(m.func("main")!.resultTypes, [tensorType([1, 16, 128])]);
  assert.ok(!print(m).includes("tanh"));
});

Deno.test("weights are seeded: same seed same weights, other seed other weights, shared by name", () => {
  const c = bertConfig("bert-tiny", { vocab: 50, maxPositions: 20, seq: 8 });
  const a = syntheticBertWeights(c);
  const b = syntheticBertWeights(c);
  const other = syntheticBertWeights({ ...c, seed: 1 });
  assert.deepEqual(a.map((t) => t.name), bertWeightSpecs(c).map((s) => s.name));
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(a[i].data, b[i].data, a[i].name);
    assert.notDeepEqual(a[i].data, other[i].data, a[i].name);
  }
  // Each tensor has its own stream: deeper models share the first layers, BertModel the encoder.
  const deeper = new Map(syntheticBertWeights({ ...c, layers: 4 }).map((t) => [t.name, t.data]));
  const bare = new Map(syntheticBertWeights({ ...c, head: false }).map((t) => [`bert.${t.name}`, t.data]));
  assert.equal(bare.size, a.length - 4); // all but the pooler and the classifier
  for (const t of a) {
    if (bare.has(t.name)) assert.deepEqual(bare.get(t.name), t.data, t.name);
    if (deeper.has(t.name)) assert.deepEqual(deeper.get(t.name), t.data, t.name);
  }
});

Deno.test("weights have the BERT initializer's statistics, biases included", () => {
  const c = bertConfig("bert-tiny", { vocab: 1000 });
  const stats = (d: Float32Array) => {
    let sum = 0, sq = 0;
    for (const v of d) sum += v;
    const mean = sum / d.length;
    for (const v of d) sq += (v - mean) ** 2;
    return { mean, std: Math.sqrt(sq / d.length) };
  };
  for (const t of syntheticBertWeights(c)) {
    const d = t.data as Float32Array;
    assert.ok(d.every(Number.isFinite), t.name);
    const { mean, std } = stats(d);
    const gamma = /LayerNorm\.weight$/.test(t.name);
    const tol = 5 * 0.02 / Math.sqrt(d.length) + 1e-9;
    assert.ok(Math.abs(mean - (gamma ? 1 : 0)) < tol, `${t.name}: mean ${mean}`);
    if (d.length >= 512) assert.ok(Math.abs(std - 0.02) < 0.003, `${t.name}: std ${std}`);
    assert.ok(std > 0.01, `${t.name} is random, std ${std}`);
  }
});

/** Erf by Abramowitz and Stegun 7.1.26 (error < 1.5e-7), independent of the IR's. */
function erf(x: number): number {
  const s = Math.sign(x), a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t * Math.exp(-a * a);
  return s * y;
}

/**
 * Hugging Face BERT written out in plain loops over f64, straight from modeling_bert.py, with
 * no reshapes or transposes: the oracle for the wiring of the IR.
 */
function referenceBert(c: BertConfig, ids: number[], types: number[], mask: number[]): number[] {
  const W = new Map(
    syntheticBertWeights(c).map((t) => [t.name.replace(/^bert\./, ""), t.data as Float32Array]),
  );
  const w = (name: string) => W.get(name)!;
  const S = ids.length, H = c.hidden, A = c.heads, D = H / A;
  const linear = (x: number[][], name: string) => {
    const wt = w(`${name}.weight`), b = w(`${name}.bias`), out = b.length, inp = wt.length / out;
    return x.map((row) =>
      Array.from({ length: out }, (_, o) => {
        let s = b[o];
        for (let i = 0; i < inp; i++) s += row[i] * wt[o * inp + i];
        return s;
      })
    );
  };
  const layerNorm = (x: number[][], name: string) =>
    x.map((row) => {
      const mean = row.reduce((s, v) => s + v, 0) / row.length;
      const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / row.length;
      return row.map((v, i) =>
        (v - mean) / Math.sqrt(variance + c.eps) * w(`${name}.weight`)[i] + w(`${name}.bias`)[i]
      );
    });
  const gelu = (v: number) =>
    c.act === "erf"
      ? 0.5 * v * (1 + erf(v / Math.SQRT2))
      : 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const row = (name: string, r: number) => Array.from(w(name).subarray(r * H, (r + 1) * H));
  let x = layerNorm(
    ids.map((id, s) => {
      const word = row("embeddings.word_embeddings.weight", id);
      const type = row("embeddings.token_type_embeddings.weight", types[s]);
      const pos = row("embeddings.position_embeddings.weight", s);
      return word.map((v, i) => v + type[i] + pos[i]);
    }),
    "embeddings.LayerNorm",
  );
  for (let l = 0; l < c.layers; l++) {
    const p = `encoder.layer.${l}`;
    const q = linear(x, `${p}.attention.self.query`);
    const k = linear(x, `${p}.attention.self.key`);
    const v = linear(x, `${p}.attention.self.value`);
    const ctx = x.map(() => new Array<number>(H).fill(0));
    for (let a = 0; a < A; a++) {
      for (let s = 0; s < S; s++) {
        const scores = Array.from({ length: S }, (_, t) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[s][a * D + d] * k[t][a * D + d];
          return dot / Math.sqrt(D) + (1 - mask[t]) * -10000;
        });
        const max = Math.max(...scores);
        const e = scores.map((z) => Math.exp(z - max));
        const sum = e.reduce((u, z) => u + z, 0);
        for (let t = 0; t < S; t++) {
          for (let d = 0; d < D; d++) ctx[s][a * D + d] += e[t] / sum * v[t][a * D + d];
        }
      }
    }
    const attn = linear(ctx, `${p}.attention.output.dense`);
    const x1 = layerNorm(attn.map((r, s) => r.map((z, i) => z + x[s][i])), `${p}.attention.output.LayerNorm`);
    const inter = linear(x1, `${p}.intermediate.dense`).map((r) => r.map(gelu));
    const out = linear(inter, `${p}.output.dense`);
    x = layerNorm(out.map((r, s) => r.map((z, i) => z + x1[s][i])), `${p}.output.LayerNorm`);
  }
  if (!c.head) return x.flat();
  const pooled = linear([x[0]], "pooler.dense").map((r) => r.map(Math.tanh));
  return linear(pooled, "classifier")[0];
}

Deno.test("the IR computes what Hugging Face's BERT computes (plain-loop reference)", () => {
  const ids = [3, 17, 22, 5, 39, 8, 0];
  const types = [0, 0, 0, 1, 1, 1, 0];
  const mask = [1, 1, 1, 1, 1, 0, 0];
  const base: BertConfig = {
    ...BERT_PRESETS["bert-tiny"],
    hidden: 32,
    heads: 4,
    intermediate: 48,
    seq: ids.length,
    vocab: 40,
    maxPositions: 10,
    labels: 3,
    seed: 7,
  };
  for (const c of [base, { ...base, act: "tanh" as const, head: false, eps: 1e-5, layers: 1 }]) {
    const m = buildBertModule(c, "w.safetensors");
    const got = run(m, memoryWeights(c), ids, types, mask);
    const want = referenceBert(c, ids, types, mask);
    assert.deepEqual(got.shape, c.head ? [1, 3] : [1, ids.length, 32]);
    const diff = maxAbsDiff(got.data, want);
    assert.ok(diff < 1e-4, `max abs diff ${diff} (act ${c.act}, head ${c.head})`);
  }
});

Deno.test("writeSyntheticBert writes a loadable model that runs (bert-tiny, seq 16)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const c = bertConfig("bert-tiny", { seq: 16 });
    const irPath = join(dir, "sub", "tiny.sir");
    const written = await writeSyntheticBert(c, irPath);
    assert.equal(written.weightsPath, join(dir, "sub", "tiny.safetensors"));
    assert.equal(written.params, bertParamCount(c));
    assert.deepEqual([...Deno.readDirSync(join(dir, "sub"))].map((e) => e.name).sort(), [
      "tiny.safetensors",
      "tiny.sir",
    ]);
    const loaded = await loadModule(irPath);
    assert.equal(loaded.diagnostics.length, 0, formatDiagnostics(loaded.diagnostics, loaded.text));
    const m = loaded.module!;
    assert.equal(m.weightsFile, "tiny.safetensors"); // relative to the IR
    const file = await readSafetensors(written.weightsPath);
    assert.equal(file.metadata.format, "pt");
    assert.deepEqual(
      file.float32("bert.pooler.dense.bias"),
      syntheticBertWeights(c)[bertWeightSpecs(c).length - 3].data,
    );

    const weights = await loadWeights(m, irPath);
    const rng = new Rng(42);
    const ids = Array.from({ length: 16 }, (_, i) => (i === 0 ? 101 : rng.int(c.vocab)));
    const types = ids.map((_, i) => (i < 8 ? 0 : 1));
    const mask = ids.map((_, i) => (i < 12 ? 1 : 0));
    const logits = run(m, weights, ids, types, mask);
    assert.deepEqual(logits.shape, [1, 2]);
    assert.ok(logits.data.every(Number.isFinite), `${logits.data}`);
    assert.ok(logits.data.some((v) => v !== 0));

    // A masked-out position (attention_mask 0) cannot reach the logits...
    const maskedChange = [...ids];
    maskedChange[14] = (ids[14] + 1234) % c.vocab;
    const same = run(m, weights, maskedChange, types, mask);
    assert.ok(
      maxAbsDiff(same.data, logits.data) <= 1e-5,
      `masked token moved logits: ${same.data} vs ${logits.data}`,
    );
    // ...while an attended one, not [CLS] itself, does through attention.
    const attendedChange = [...ids];
    attendedChange[5] = (ids[5] + 1234) % c.vocab;
    const moved = run(m, weights, attendedChange, types, mask);
    assert.ok(
      maxAbsDiff(moved.data, logits.data) > 1e-5,
      `attended token did not move logits: ${moved.data}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseSyntheticSpec and checkBertConfig", () => {
  assert.deepEqual(parseSyntheticSpec("synthetic:bert-base"), BERT_PRESETS["bert-base"]);
  assert.throws(
    () => parseSyntheticSpec("synthetic:bert-huge"),
    /unknown synthetic model 'bert-huge'.*bert-tiny/,
  );
  assert.throws(() => parseSyntheticSpec("bert-base"), /not a synthetic model spec/);
  const tiny = BERT_PRESETS["bert-tiny"];
  assert.deepEqual(checkBertConfig({ ...tiny, heads: 3 }), ["hidden (128) must be divisible by heads (3)"]);
  assert.match(checkBertConfig({ ...tiny, seq: 513 })[0], /seq \(513\) must be at most maxPositions \(512\)/);
  assert.match(checkBertConfig({ ...tiny, layers: 0 })[0], /layers must be a positive integer, got 0/);
  assert.match(checkBertConfig({ ...tiny, seed: -1 })[0], /seed must be a non-negative integer/);
  assert.throws(() => buildBertModule({ ...tiny, heads: 3 }, "w.safetensors"), /divisible/);
});

Deno.test("the import command: writes a model, and reports mistakes in one line with exit code 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const call = async (...args: string[]) => {
      const out: string[] = [], err: string[] = [];
      const code = await importMain(args, { out: (s) => out.push(s), err: (s) => err.push(s) });
      return { code, out, err };
    };
    const irPath = join(dir, "m.sir");
    const ok = await call("synthetic:bert-tiny", "-o", irPath, "--seq", "8", "--vocab", "64", "--seed", "3");
    assert.equal(ok.code, 0, ok.err.join("\n"));
    assert.equal(ok.out.length, 1);
    assert.match(
      ok.out[0],
      /^wrote bert-tiny \([\d.]+[KM] params, seq 8, seed 3\): .*m\.sir .* in [\d.]+ s$/,
    );
    const loaded = await loadModule(irPath);
    assert.equal(loaded.diagnostics.length, 0, formatDiagnostics(loaded.diagnostics, loaded.text));
    assert.match(loaded.text, /seq = 8, seed = 3, vocab = 64,/);

    const bad: [string[], RegExp][] = [
      [["hf-model-dir", "-o", irPath], /not supported yet.*synthetic:bert-base/],
      [["synthetic:bert-tiny", "-o", irPath, "--bogus"], /unknown option '--bogus'/],
      [["synthetic:bert-tiny", "-o", irPath, "--hidden", "100", "--heads", "3"], /divisible by heads/],
      [["synthetic:bert-tiny", "-o", irPath, "--layers", "two"], /--layers must be a positive integer/],
      [["synthetic:bert-tiny", "-o", irPath, "--seq", "1000"], /at most maxPositions/],
      [["synthetic:bert-tiny", "-o", irPath, "--act", "relu"], /--act must be erf or tanh/],
      [["synthetic:bert-tiny"], /missing -o/],
      [[], /missing the model/],
    ];
    for (const [args, pattern] of bad) {
      const r = await call(...args);
      assert.equal(r.code, 2, args.join(" "));
      assert.equal(r.err.length, 1);
      assert.match(r.err[0], /^error: [^\n]+$/);
      assert.match(r.err[0], pattern);
    }
    assert.equal((await call("--help")).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
