/**
 * Runs the gelu-tanh plugin through the CLI, exactly as `deno task compile` does, on a
 * synthetic bert-tiny. Spawning the CLI needs `--allow-run`; without it these tests are ignored.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bertConfig, writeSyntheticBert } from "../../../frontend/synthetic_bert.ts";
import { CAN_RUN, compile } from "../../../tests/compile_cli.ts";
import { seededInputs } from "../../../ir/inputs.ts";
import { interpret, loadModule, loadWeights } from "../../../mod.ts";

const PLUGIN = "examples/plugins/gelu-tanh/gelu-tanh.ts";

/** A temp folder with `bert-tiny.sir` (seq 16) and its weights. */
async function withModel(
  fn: (model: string, dir: string) => Promise<void>,
  act: "erf" | "tanh" = "erf",
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-gelu-" });
  try {
    const model = join(dir, "bert-tiny.sir");
    await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16, act }), model);
    await fn(model, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const count = (text: string, re: RegExp) => text.match(re)?.length ?? 0;

Deno.test({
  name: "gelu-tanh: rewrites every erf gelu, counted in --stats",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model) => {
      const r = await compile(model, "--plugin", PLUGIN, "--passes", "gelu-tanh", "--stats");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(count(r.stdout, /gelu %l\d+\.inter \{approximation = tanh\}/g), 2, r.stdout);
      assert.equal(count(r.stdout, /approximation = erf/g), 0);
      assert.match(r.stderr, /^gelu-tanh: gelus rewritten: 2$/m);
      // Nothing else changed.
      const input = await Deno.readTextFile(model);
      assert.equal(r.stdout, input.replaceAll("approximation = erf", "approximation = tanh"));
    }),
});

Deno.test({
  name: "gelu-tanh: the written model loads, verifies and computes nearly the same logits",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model, dir) => {
      const out = join(dir, "out", "bert-tiny-tanh.sir");
      const r = await compile(model, "--plugin", PLUGIN, "--passes", "gelu-tanh", "-o", out);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /wrote .*bert-tiny-tanh\.sir/);
      assert.equal(r.stdout, "");
      const again = await compile(out);
      assert.equal(again.code, 0, again.stderr);

      const before = (await loadModule(model)).module!;
      const after = (await loadModule(out)).module!;
      const inputs = seededInputs(before.funcs[0], 1);
      const [want] = interpret(before, inputs, await loadWeights(before, model));
      const [got] = interpret(after, inputs, await loadWeights(after, out));
      want.data.forEach((w, i) =>
        assert.ok(Math.abs(got.data[i] - w) < 1e-4, `logit ${i}: ${got.data[i]} vs ${w}`)
      );
    }),
});

Deno.test({
  name: "gelu-tanh: a model already on tanh is left unchanged, and nothing is counted",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model) => {
      const r = await compile(model, "--plugin", PLUGIN, "--passes", "gelu-tanh", "--stats", "--timing");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, await Deno.readTextFile(model));
      const ops = r.stdout.match(/^ +%\S+ = /gm)!.length;
      assert.match(r.stderr, new RegExp(`^1\\s+gelu-tanh\\s+[\\d.]+\\s+${ops}\\s+unchanged$`, "m"));
      assert.doesNotMatch(r.stderr, /gelus rewritten/);
    }, "tanh"),
});
