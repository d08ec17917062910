/**
 * `deno task import model.onnx`: a synthetic BERT exported to ONNX comes back through the
 * import command, with `recognize` run, and computes the same logits as the original.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { importMain } from "../cli/import.ts";
import { exportOnnx } from "../frontend/onnx/export.ts";
import { bertConfig, writeSyntheticBert } from "../frontend/synthetic_bert.ts";
import { seededInputs } from "../ir/inputs.ts";
import { interpret, loadModule, loadWeights } from "../mod.ts";

Deno.test("import CLI: an exported bert-tiny comes back from ONNX with its GELUs recognized", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-import-onnx-" });
  try {
    const original = join(dir, "tiny.sir");
    await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16 }), original);
    const loaded = await loadModule(original);
    const weights = await loadWeights(loaded.module!, original);
    await Deno.writeFile(join(dir, "tiny.onnx"), exportOnnx(loaded.module!, weights).bytes);

    const lines: string[] = [];
    const io = { out: (s: string) => lines.push(s), err: (s: string) => lines.push(s) };
    const code = await importMain([join(dir, "tiny.onnx"), "-o", join(dir, "back", "tiny.sir")], io);
    assert.equal(code, 0, lines.join("\n"));
    assert.match(lines[0], /recognize: .*decomposed GELUs replaced by gelu[^:]*: 2/);

    const back = await loadModule(join(dir, "back", "tiny.sir"));
    assert.deepEqual(back.diagnostics, []);
    assert.ok(back.module!.funcs[0].body.some((op) => op.name === "gelu"));
    const inputs = seededInputs(loaded.module!.funcs[0], 3);
    const [want] = interpret(loaded.module!, inputs, weights);
    const [got] = interpret(
      back.module!,
      inputs,
      await loadWeights(back.module!, join(dir, "back", "tiny.sir")),
    );
    const diff = Math.max(...want.data.map((v, i) => Math.abs(v - got.data[i])));
    assert.ok(diff <= 1e-5, `logits differ by ${diff}`);

    const bad = await importMain([join(dir, "tiny.onnx"), "-o", join(dir, "x.sir"), "--layers", "2"], io);
    assert.equal(bad, 2);
    assert.equal(lines.at(-1), "error: --layers is for synthetic models");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
