/**
 * The compiled artifact against onnxruntime-node on the same model and inputs: BERT-base at
 * S=128 within 1e-3 max abs, small BERTs within 1e-4 (at 2 threads; the output has the bare
 * encoder's hidden states when `head` is off, so every value is compared). Needs `--allow-ffi`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { exportOnnx } from "../../frontend/onnx/export.ts";
import {
  type BertConfig,
  bertConfig,
  buildBertModule,
  syntheticBertWeights,
} from "../../frontend/synthetic_bert.ts";
import { seededInputs } from "../../ir/inputs.ts";
import { compile, loadCompiled, memoryStore, Tensor, tensorType, writeArtifact } from "../../mod.ts";

const CAN_ORT = Deno.permissions.querySync({ name: "ffi" }).state === "granted";

/** Max abs difference between the compiled model and onnxruntime-node on config `c`. */
async function compiledVsOrt(c: BertConfig): Promise<number> {
  const ort = await import("onnxruntime-node");
  const m = buildBertModule(c, "w.safetensors");
  const weights = memoryStore(
    new Map(
      syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
    ),
  );
  const f = m.funcs[0];
  const inputs = seededInputs(f, 3);
  const session = await ort.InferenceSession.create(exportOnnx(m, weights).bytes, { logSeverityLevel: 3 });
  const feeds = Object.fromEntries(
    f.params.map((
      p,
      i,
    ) => [p.name, new ort.Tensor("int64", BigInt64Array.from(inputs[i].data, BigInt), [...p.type.shape])]),
  );
  const expected = (await session.run(feeds))[session.outputNames[0]].data as Float32Array;
  await session.release();

  const dir = await Deno.makeTempDir({ prefix: "sparrow-ort-" });
  try {
    await writeArtifact(await compile({ module: m, weights }), join(dir, "a"));
    const model = await loadCompiled(join(dir, "a"), { threads: 2 });
    try {
      const out = model.run(Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data])));
      const got = out[f.returns[0].name];
      assert.equal(got.length, expected.length);
      let d = 0;
      for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - expected[i]));
      return d;
    } finally {
      model.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "compiled small BERTs match onnxruntime within 1e-4 (hidden states and logits)",
  ignore: !CAN_ORT,
  async fn() {
    for (
      const c of [bertConfig("bert-mini", { seq: 64, head: false }), bertConfig("bert-tiny", { act: "tanh" })]
    ) {
      const d = await compiledVsOrt(c);
      console.log(`${c.layers}/${c.hidden} head=${c.head} act=${c.act}: max abs diff ${d.toExponential(2)}`);
      assert.ok(d <= 1e-4, `max abs diff ${d}`);
    }
  },
});

Deno.test({
  name: "compiled BERT-base (S=128) matches onnxruntime within 1e-3",
  ignore: !CAN_ORT,
  async fn() {
    const d = await compiledVsOrt(bertConfig("bert-base", { head: false }));
    console.log(`bert-base S=128 hidden states: max abs diff ${d.toExponential(2)}`);
    assert.ok(d <= 1e-3, `max abs diff ${d}`);
  },
});
