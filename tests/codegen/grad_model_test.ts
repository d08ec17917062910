/**
 * Compiled training steps end to end: the backward function `grad` builds for a synthetic
 * bert-tiny (and a ragged one with the tanh GELU), its weights turned into arguments by
 * `weightsAsParams`, compiled once and run on 1 and 2 threads with the weights passed at run time,
 * must give the interpreter's loss and every gradient (`runGrad`); the same artifact run again
 * with changed weights must follow them (nothing is baked in). Then `weightsAsParams` itself, and
 * `compiledBertLossAndGrads` (train/compiled.ts) on sst2-bert-mini against the interpreter's
 * `bertLossAndGrads` (skipped without ../shared), with the labels' loss and with distillation
 * against a teacher (`compiledTeacher` against `interpretedTeacher`), logits alone and with
 * hidden-state distillation (the teachers' hidden states compared too).
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { compileModule } from "../../codegen/compile.ts";
import {
  type BertConfig,
  bertConfig,
  buildBertModule,
  syntheticBertWeights,
} from "../../frontend/synthetic_bert.ts";
import { grad, runGrad } from "../../ir/autodiff.ts";
import { withCrossEntropyLoss } from "../../ir/loss.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { weightsAsParams } from "../../ir/params.ts";
import { print } from "../../ir/printer.ts";
import { specializeShapes } from "../../ir/specialize.ts";
import { Tensor } from "../../ir/tensor.ts";
import { tensorType } from "../../ir/types.ts";
import { memoryStore } from "../../ir/weights.ts";
import { loadCompiled } from "../../runtime/compiled.ts";
import {
  bertHiddenStates,
  bertLossAndGrads,
  interpretedTeacher,
  loadBert,
  teacherOutput,
  type TrainableBert,
} from "../../train/bert.ts";
import type { Batch } from "../../train/data.ts";
import { prunableWeights } from "../../train/sparsity.ts";
import {
  compiledBertLossAndGrads,
  type CompiledLossAndGrads,
  compiledTeacher,
} from "../../train/compiled.ts";
import { train } from "../../train/trainer.ts";
import { readExamples } from "../../train/data.ts";

/**
 * The error of each gradient: max |compiled - reference| over max(max |reference|, 1e-3 · the
 * largest |reference| of all gradients). The floor is for gradients that are zero in exact
 * arithmetic (the attention key bias: softmax ignores a shift shared by a row) or cancel across
 * the batch, whose reference values are rounding noise.
 */
function gradErrors(
  got: ReadonlyMap<string, ArrayLike<number>>,
  want: ReadonlyMap<string, ArrayLike<number>>,
): Map<string, number> {
  let top = 0;
  for (const w of want.values()) for (let i = 0; i < w.length; i++) top = Math.max(top, Math.abs(w[i]));
  const errors = new Map<string, number>();
  for (const [name, w] of want) {
    const g = got.get(name);
    assert.ok(g, `no gradient of ${name}`);
    assert.equal(g.length, w.length, name);
    let d = 0, m = 0;
    for (let i = 0; i < w.length; i++) {
      d = Math.max(d, Math.abs(g[i] - w[i]));
      m = Math.max(m, Math.abs(w[i]));
    }
    errors.set(name, d / Math.max(m, 1e-3 * top));
  }
  return errors;
}

/**
 * Asserts the compiled loss within 1e-5 (relative above 1) of the interpreter's and every gradient's
 * error ({@link gradErrors}) at most 1e-4, the worst named after `what`; returns the errors.
 */
function assertMatches(
  got: { loss: number; grads: ReadonlyMap<string, ArrayLike<number>> },
  want: { loss: number; grads: ReadonlyMap<string, ArrayLike<number>> },
  what: string,
): Map<string, number> {
  assert.ok(Math.abs(got.loss - want.loss) <= 1e-5 * Math.max(1, want.loss), `${got.loss} vs ${want.loss}`);
  const errors = gradErrors(got.grads, want.grads);
  const [worst, err] = [...errors].sort((a, b) => b[1] - a[1])[0];
  assert.ok(err <= 1e-4, `${what}${worst} off by ${err}`);
  return errors;
}

/** Compiles bert-tiny's backward function at batch B, length S and checks it against runGrad. */
async function checkTiny(overrides: Partial<BertConfig>, B: number, S: number): Promise<void> {
  const config = bertConfig("bert-tiny", { seq: 16, vocab: 50, maxPositions: 16, ...overrides });
  const m = specializeShapes(buildBertModule(config, "w.safetensors"), { batch: B, seq: S });
  const info = grad(m, withCrossEntropyLoss(m, "main"));
  const params = weightsAsParams(m, info.func);
  assert.equal(params.params.length, m.weights.size);
  const data = new Map(
    syntheticBertWeights(config).map((t) => [t.name, Float32Array.from(t.data as Float32Array)]),
  );
  const store = () =>
    memoryStore(
      new Map([...data].map(([n, d]) => [n, new Tensor(tensorType([...m.weights.get(n)!.type.shape]), d)])),
    );
  const compiled = await compileModule(m, store(), { func: params.func });
  const ids = Array.from({ length: B * S }, (_, i) => (i * 7 + 3) % config.vocab);
  const mask = Array.from({ length: B * S }, (_, i) => (i % S) < S - 1 - (i / S | 0) ? 1 : 0);
  const types = Array.from({ length: B * S }, (_, i) => (i % S) < S / 2 ? 0 : 1);
  const labels = Array.from({ length: B }, (_, i) => (i * 5 + 1) % 2);
  const inputs = {
    input_ids: Tensor.from([B, S], "i64", ids),
    token_type_ids: Tensor.from([B, S], "i64", types),
    attention_mask: Tensor.from([B, S], "i64", mask),
    labels: Tensor.from([B], "i64", labels),
  };
  for (const threads of [1, 2]) {
    const model = await loadCompiled(compiled, { threads });
    try {
      for (const round of [0, 1]) {
        if (round === 1) {
          // new weights, same artifact: a training step's update
          for (const d of data.values()) d.forEach((v, i) => (d[i] = v * (1 + 0.01 * Math.sin(i))));
        }
        const want = runGrad(m, info, inputs, store());
        const feed: Record<string, ArrayLike<number>> = {
          input_ids: ids,
          token_type_ids: types,
          attention_mask: mask,
          labels,
        };
        for (const p of params.params) feed[p.param] = data.get(p.weight)!;
        const out = model.run(feed);
        const names = model.plan.buckets[0].outputs.map((o) => o.name);
        const loss = out[names[0]][0];
        assert.ok(
          Math.abs(loss - want.loss) <= 1e-5 * Math.max(1, want.loss),
          `loss ${loss} vs ${want.loss}`,
        );
        const got = new Map(info.grads.map((g, i) => [g.name, out[names[i + 1]]]));
        const errors = gradErrors(got, new Map([...want.grads].map(([n, t]) => [n, t.data])));
        assert.equal(errors.size, m.weights.size);
        const [worst, err] = [...errors].sort((a, b) => b[1] - a[1])[0];
        assert.ok(err <= 1e-4, `${threads} threads, round ${round}: ${worst} off by ${err}`);
      }
    } finally {
      model.close();
    }
  }
}

Deno.test("compiled bert-tiny backward (batch 2, padded rows) equals runGrad: loss and all gradients, 1-2 threads", async () => {
  await checkTiny({}, 2, 8);
});

Deno.test("compiled ragged BERT backward with the tanh GELU (hidden 36, 3 heads, seq 13) equals runGrad", async () => {
  await checkTiny({ hidden: 36, heads: 3, intermediate: 50, layers: 1, act: "tanh", vocab: 23 }, 3, 13);
});

Deno.test("weightsAsParams: arguments after the function's own, named as the weights, the module verifies", () => {
  const text = `module @m {
  weights "w.safetensors" {
    @w: tensor<3x4xf32>
    @b: tensor<4xf32>
    @unused: tensor<2xf32>
  }
  func @main(%x: tensor<2x3xf32>) -> (tensor<2x4xf32>) {
    %b = dense %x, @w : tensor<2x4xf32>
    %y = add %b, @b : tensor<2x4xf32>
    return %y
  }
}
`;
  const m = parse(text, { file: "p.sir" }).module!;
  const info = weightsAsParams(m, "main");
  assert.equal(info.func, "main_params");
  // %b is taken by a value of the function: the argument of @b is %b.param
  assert.deepEqual(info.params, [{ weight: "w", param: "w" }, { weight: "b", param: "b.param" }]);
  const f = m.func("main_params")!;
  assert.deepEqual(f.params.map((p) => p.name), ["x", "w", "b.param"]);
  assert.ok(f.body.every((op) => op.operands.every((v) => v.kind !== "weight")));
  const printed = print(m);
  assert.match(printed, /%y = add %b, %b\.param/);
  assert.ok(parse(printed, { file: "again.sir" }).module, "prints and parses back");
  const only = weightsAsParams(m, "main", { weights: ["b"], name: "just_b" });
  assert.deepEqual(m.func(only.func)!.params.map((p) => p.name), ["x", "b.param"]);
  assert.throws(
    () => weightsAsParams(m, "main", { weights: ["unused"], name: "u" }),
    /does not use weight '@unused'/,
  );
  assert.throws(
    () => weightsAsParams(m, "main", { weights: ["nope"], name: "u" }),
    /declares no weight '@nope'/,
  );
  assert.throws(() => weightsAsParams(m, "main"), /already has a function '@main_params'/);
  assert.throws(() => weightsAsParams(m, "missing"), /no function '@missing'/);
  assert.equal(m.funcs.length, 3, "failed calls leave the module unchanged");
});

/** bert-tiny as a trainer's problem (what loadBert returns for a checkpoint), at length 32. */
function tinyTrainable(): TrainableBert {
  const config = bertConfig("bert-tiny", { seq: 32, vocab: 60, maxPositions: 32 });
  const module = buildBertModule(config, "w.safetensors");
  const weights = new Map(
    syntheticBertWeights(config).map((t) => [t.name, Float32Array.from(t.data as Float32Array)]),
  );
  const cache = new Map<string, Module>();
  return {
    dir: "synthetic",
    module,
    config,
    seq: 32,
    labels: 2,
    weights,
    prunable: prunableWeights(module),
    tokenizer: undefined as unknown as TrainableBert["tokenizer"],
    moduleAt(batch, seq) {
      const key = `${batch}x${seq}`;
      if (!cache.has(key)) cache.set(key, specializeShapes(module, { batch, seq }));
      return cache.get(key)!;
    },
  };
}

/** A batch of `B` rows of `lengths[r]` tokens each, padded to 32. */
function tinyBatch(lengths: number[]): Batch {
  const B = lengths.length, seq = 32;
  const ids = new Int32Array(B * seq), mask = new Int32Array(B * seq);
  lengths.forEach((n, r) => {
    for (let i = 0; i < n; i++) {
      ids[r * seq + i] = 1 + (r * 13 + i * 7) % 59;
      mask[r * seq + i] = 1;
    }
  });
  return {
    batch: B,
    seq,
    ids,
    mask,
    labels: Int32Array.from(lengths, (_, r) => r % 2),
    maxLength: Math.max(...lengths),
  };
}

Deno.test("compiledBertLossAndGrads equals bertLossAndGrads on bert-tiny: one artifact per length bucket, reused", async () => {
  const model = tinyTrainable();
  const compiledShapes: string[] = [];
  const frozen = (n: string) => n.endsWith("word_embeddings.weight");
  const compiled = compiledBertLossAndGrads(model, {
    threads: 2,
    frozen,
    onCompile: (k) => compiledShapes.push(k),
  });
  const interpreted = bertLossAndGrads(model, { frozen });
  try {
    for (const lengths of [[5, 12, 9], [30, 17, 3], [11, 4, 14]]) {
      const batch = tinyBatch(lengths);
      const got = await compiled(model.weights, batch);
      const want = await interpreted(model.weights, batch);
      assert.ok(!got.grads.has("bert.embeddings.word_embeddings.weight"), "a frozen weight has no gradient");
      const errors = assertMatches(got, want, `${lengths}: `);
      assert.equal(errors.size, model.weights.size - 1);
      // a step, so the next batch runs on other weights
      for (const [n, g] of want.grads) {
        const w = model.weights.get(n)!;
        for (let i = 0; i < w.length; i++) w[i] -= 0.5 * g[i];
      }
    }
    assert.deepEqual(compiledShapes, ["3x16", "3x32"], "lengths 16 and 32 compiled once each");
  } finally {
    compiled.close();
  }
});

Deno.test("distillation: compiled loss and gradients against a compiled teacher equal the interpreter's", async () => {
  const model = tinyTrainable();
  // the teacher: other weights of the same model (a dense model before pruning, say)
  const teacherWeights = new Map(
    [...model.weights].map(([n, w]) => [n, w.map((x, i) => x * (1 + 0.2 * Math.sin(i)))]),
  );
  const teacher = compiledTeacher(model, teacherWeights, { threads: 2 });
  const options = { temperature: 3, alpha: 0.4 };
  const compiled = compiledBertLossAndGrads(model, { threads: 2, distill: { teacher, ...options } });
  const interpreted = bertLossAndGrads(model, {
    distill: { teacher: interpretedTeacher(model, teacherWeights), ...options },
  });
  const plain = bertLossAndGrads(model);
  try {
    for (const lengths of [[5, 12, 9], [30, 17, 3]]) {
      const batch = tinyBatch(lengths);
      const [T, I] = [await teacher(batch, 32), await interpretedTeacher(model, teacherWeights)(batch, 32)]
        .map((o) => teacherOutput(o).logits);
      T.forEach((x, i) => assert.ok(Math.abs(x - I[i]) <= 1e-5, `teacher logit ${i}: ${x} vs ${I[i]}`));
      const got = await compiled(model.weights, batch);
      const want = await interpreted(model.weights, batch);
      assertMatches(got, want, `${lengths}: `);
      const base = await plain(model.weights, batch);
      assert.ok(Math.abs(want.loss - base.loss) > 1e-3, "the teacher's term changes the loss");
    }
  } finally {
    compiled.close();
    teacher.close();
  }
});

Deno.test("hidden-state distillation: compiled loss and gradients against a compiled teacher's hidden states equal the interpreter's", async () => {
  const model = tinyTrainable();
  const teacherWeights = new Map(
    [...model.weights].map(([n, w]) => [n, w.map((x, i) => x * (1 + 0.2 * Math.sin(i)))]),
  );
  // the embeddings' output and both encoder layers'
  const layers = bertHiddenStates(model.module, { embeddings: true });
  assert.equal(layers.length, 3);
  const teacher = compiledTeacher(model, teacherWeights, { threads: 2, hidden: layers });
  const reference = interpretedTeacher(model, teacherWeights, { hidden: layers });
  const options = { temperature: 3, alpha: 0.4, hidden: { beta: 2, layers } };
  const compiled = compiledBertLossAndGrads(model, { threads: 2, distill: { teacher, ...options } });
  const interpreted = bertLossAndGrads(model, { distill: { teacher: reference, ...options } });
  const logitsOnly = bertLossAndGrads(model, {
    distill: { teacher: interpretedTeacher(model, teacherWeights), temperature: 3, alpha: 0.4 },
  });
  try {
    for (const lengths of [[5, 12, 9], [30, 17, 3]]) {
      const batch = tinyBatch(lengths);
      const [T, I] = [await teacher(batch, 32), await reference(batch, 32)].map(teacherOutput);
      assert.equal(T.hidden.length, 3);
      T.hidden.forEach((h, k) => {
        assert.equal(h.length, 3 * 32 * model.config.hidden);
        h.forEach((x, i) =>
          assert.ok(Math.abs(x - I.hidden[k][i]) <= 1e-4, `hidden ${k}[${i}]: ${x} vs ${I.hidden[k][i]}`)
        );
      });
      const got = await compiled(model.weights, batch);
      const want = await interpreted(model.weights, batch);
      assertMatches(got, want, `${lengths}: `);
      const base = await logitsOnly(model.weights, batch);
      assert.ok(
        want.loss - base.loss > 1e-2,
        `the hidden term adds to the loss: ${want.loss} vs ${base.loss}`,
      );
    }
  } finally {
    compiled.close();
    teacher.close();
  }
});

Deno.test("the trainer runs on compiledBertLossAndGrads: five AdamW steps with masking give the interpreter path's losses and weights", async () => {
  const batches = [[5, 12, 9], [30, 17, 3], [11, 4, 14], [7, 7, 25], [16, 2, 9]].map(tinyBatch);
  const run = async (compiled: boolean) => {
    const model = tinyTrainable();
    // a pruned entry per prunable matrix: masked training keeps it 0
    for (const mat of model.prunable) model.weights.get(mat.name)![0] = 0;
    const f = compiled ? compiledBertLossAndGrads(model, { threads: 2 }) : bertLossAndGrads(model);
    let i = 0;
    try {
      const result = await train({
        weights: model.weights,
        prunable: model.prunable,
        lossAndGrads: f,
        batches: { next: () => batches[i++ % batches.length] },
        steps: 5,
        lr: 1e-3,
        warmup: 1,
        objective: { kind: "masked" },
      });
      return { losses: result.losses, weights: model.weights, prunable: model.prunable };
    } finally {
      if ("close" in f) (f as CompiledLossAndGrads).close();
    }
  };
  const got = await run(true);
  const want = await run(false);
  assert.equal(got.losses.length, 5);
  got.losses.forEach((l, i) =>
    assert.ok(Math.abs(l - want.losses[i]) <= 1e-5, `step ${i + 1}: ${l} vs ${want.losses[i]}`)
  );
  assert.ok(want.losses[4] < want.losses[0], "the loss goes down");
  for (const mat of got.prunable) assert.equal(got.weights.get(mat.name)![0], 0, `${mat.name} stays pruned`);
  let worst = 0;
  for (const [n, w] of want.weights) {
    const g = got.weights.get(n)!;
    for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(g[i] - w[i]));
  }
  assert.ok(worst <= 1e-5, `weights differ by ${worst} after 5 steps`);
});

const MINI = fileURLToPath(new URL("../../../shared/models/sst2-bert-mini", import.meta.url));
const DEV = fileURLToPath(new URL("../../../shared/data/sst2/dev.tsv", import.meta.url));
const hasMini = await Deno.stat(MINI).then(() => Deno.stat(DEV)).then(() => true, () => false);

Deno.test({
  name: "compiledBertLossAndGrads on sst2-bert-mini equals the interpreter's bertLossAndGrads (73 gradients)",
  ignore: !hasMini,
  async fn() {
    const model = await loadBert(MINI, { seq: 64 });
    const rows = (await readExamples(DEV, model.tokenizer, 64)).slice(0, 3);
    const batch = {
      batch: rows.length,
      seq: 64,
      ids: Int32Array.from(rows.flatMap((r) => [...r.ids])),
      mask: Int32Array.from(rows.flatMap((r) => [...r.mask])),
      labels: Int32Array.from(rows.map((r) => r.label)),
      maxLength: Math.max(...rows.map((r) => r.length)),
    };
    const compiled = compiledBertLossAndGrads(model, { threads: 2 });
    try {
      const got = await compiled(model.weights, batch);
      const want = await bertLossAndGrads(model)(model.weights, batch);
      assert.equal(assertMatches(got, want, "").size, 73);
    } finally {
      compiled.close();
    }
  },
});
