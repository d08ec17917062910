/**
 * train/checkpoint.ts on the real sst2-bert-mini (ignored without ../shared): the written folder
 * has the input's tensors under the same names, dtypes, shapes and data order, the trained values
 * where given and the rest byte for byte, the config and tokenizer files, and imports with
 * frontend/hf.ts like any checkpoint; the input folder is refused. Also train/data.ts's encoding
 * with the checkpoint's tokenizer, as evaluation fits rows.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { readHfBert } from "../../frontend/hf.ts";
import { fitToLength } from "../../frontend/sst2.ts";
import { loadTokenizer } from "../../frontend/tokenizer.ts";
import { readSafetensors, readSafetensorsHeader } from "../../ir/safetensors.ts";
import { CheckpointError, writeHfCheckpoint } from "../../train/checkpoint.ts";
import { encodeRows } from "../../train/data.ts";

const MODEL = "../shared/models/sst2-bert-mini";
const present = (() => {
  try {
    return Deno.statSync(join(MODEL, "model.safetensors")).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "a trained checkpoint keeps the input's layout and imports like any checkpoint",
  ignore: !present,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "sparrow-ckpt-" });
    try {
      const input = await readSafetensors(join(MODEL, "model.safetensors"));
      const q = "bert.encoder.layer.0.attention.self.query.weight";
      const trained = new Map([
        [q, input.float32(q).map((x, i) => (i % 3 === 0 ? 0 : x * 1.5))],
        ["classifier.bias", Float32Array.of(0.25, -0.5)],
      ]);
      const r = await writeHfCheckpoint(MODEL, out, trained, { "training.json": "{}\n" });
      assert.equal(r.replaced, 2);
      assert.equal(r.copied, input.tensors.size - 2);
      for (const f of ["config.json", "vocab.txt", "tokenizer.json", "training.json"]) {
        assert.ok(Deno.statSync(join(out, f)).isFile, f);
      }
      await assert.rejects(Deno.stat(join(out, "golden_dev.jsonl")), Deno.errors.NotFound);
      assert.equal(
        Deno.readTextFileSync(join(out, "config.json")),
        Deno.readTextFileSync(join(MODEL, "config.json")),
      );

      const a = await readSafetensorsHeader(join(MODEL, "model.safetensors"));
      const b = await readSafetensorsHeader(join(out, "model.safetensors"));
      const order = (h: typeof a) =>
        [...h.tensors.values()].sort((x, y) => x.byteOffset - y.byteOffset).map((
          t,
        ) => [t.name, t.dtype, t.shape]);
      assert.deepEqual(order(b), order(a));
      assert.deepEqual(b.metadata, a.metadata);

      const written = await readSafetensors(join(out, "model.safetensors"));
      for (const name of input.tensors.keys()) {
        const want = trained.get(name);
        if (want) assert.deepEqual(written.float32(name), want, name);
        else assert.deepEqual(written.raw(name), input.raw(name), name);
      }
      const imported = await readHfBert(out, { seq: 16 });
      assert.equal(imported.architecture, "BertForSequenceClassification");
      assert.deepEqual([...imported.weights.get(imported.module.weights.get(q)!).data], [...trained.get(q)!]);

      await assert.rejects(writeHfCheckpoint(MODEL, MODEL, trained), CheckpointError);
      await assert.rejects(writeHfCheckpoint(MODEL, `${MODEL}/`, trained), /input checkpoint's folder/);
      await assert.rejects(
        writeHfCheckpoint(MODEL, out, new Map([["nope.weight", new Float32Array(2)]])),
        /has no tensor 'nope.weight'/,
      );
      await assert.rejects(
        writeHfCheckpoint(MODEL, out, new Map([["classifier.bias", new Float32Array(3)]])),
        /has 2 values/,
      );
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "training rows are encoded as evaluation fits them",
  ignore: !present,
  async fn() {
    const tok = await loadTokenizer(MODEL);
    const rows = [{ sentence: "it 's a charming and often affecting journey . ", label: 1 }, {
      sentence: "word ".repeat(100),
      label: 0,
    }];
    const [short, long] = encodeRows(rows, tok, 16);
    assert.deepEqual([...short.ids], fitToLength(tok.encode(rows[0].sentence), 16, tok.sepId, tok.padId).ids);
    assert.deepEqual([...short.ids.slice(0, 12)], [
      101,
      2009,
      1005,
      1055,
      1037,
      11951,
      1998,
      2411,
      12473,
      4990,
      1012,
      102,
    ]);
    assert.equal(short.length, 12);
    assert.deepEqual([...short.mask], [...Array(12).fill(1), 0, 0, 0, 0]);
    assert.equal(long.length, 16);
    assert.equal(long.ids[15], tok.sepId);
    assert.deepEqual([short.label, long.label], [1, 0]);
  },
});
