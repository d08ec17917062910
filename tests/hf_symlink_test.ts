/**
 * Checkpoints reached through symbolic links compile, as the Hugging Face hub cache lays them out:
 * `models--ORG--NAME/snapshots/REV/<file>` are relative links into `../../blobs/<hash>`, and users
 * often link the snapshot folder itself somewhere handy. The compile sandbox must grant the files
 * the links resolve to, for the weights, the config and a calibrating pass's tokenizer.
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CAN_RUN, ROOT, runTask } from "./compile_cli.ts";
import { readSafetensors } from "../mod.ts";

const MINI = join(ROOT, "../shared/models/sst2-bert-mini");
const FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];

/** A hub-cache copy of sst2-bert-mini under `root`; returns the snapshot folder and a link to it. */
async function hubCache(root: string): Promise<{ snapshot: string; link: string }> {
  const repo = join(root, "models--sparrow--mini");
  const snapshot = join(repo, "snapshots", "0123abcd");
  await Deno.mkdir(join(repo, "blobs"), { recursive: true });
  await Deno.mkdir(snapshot, { recursive: true });
  for (const [i, f] of FILES.entries()) {
    const blob = `blob${i}`;
    await Deno.copyFile(join(MINI, f), join(repo, "blobs", blob));
    await Deno.symlink(join("..", "..", "blobs", blob), join(snapshot, f));
  }
  const link = join(root, "mini");
  await Deno.symlink(snapshot, link);
  return { snapshot, link };
}

/** The logits `deno task run` saves for an artifact (seeded inputs, one thread). */
async function logits(dir: string, artifact: string): Promise<number[]> {
  const saved = join(dir, `${artifact.replaceAll("/", "_")}.safetensors`);
  const r = await runTask("run", artifact, "--threads", "1", "--repeat", "1", "--save", saved);
  assert.equal(r.code, 0, r.stderr);
  return [...(await readSafetensors(saved)).float32("logits")];
}

Deno.test({
  name: "a checkpoint in the Hugging Face hub cache layout compiles through its links",
  ignore: !CAN_RUN || !existsSync(join(MINI, "config.json")),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-hub-" });
    try {
      const { snapshot, link } = await hubCache(dir);
      const direct = join(dir, "direct");
      const r0 = await runTask("compile", MINI, "--seq", "16", "-o", direct);
      assert.equal(r0.code, 0, r0.stderr);
      const expected = await logits(dir, direct);
      for (const [name, model] of [["snapshot", snapshot], ["link", link]]) {
        const out = join(dir, `via-${name}`);
        const r = await runTask("compile", model, "--seq", "16", "-o", out);
        assert.equal(r.code, 0, `${name}: ${r.stderr}`);
        assert.deepEqual(await logits(dir, out), expected, name);
      }
      // A pass that reads the model's tokenizer (through its link) is granted it too.
      const pruned = join(dir, "pruned.sir");
      const passes = "prune-reconstruct{sparsity=0.5 block=4x4 calibration=4 " +
        `calibration-data=${JSON.stringify(join(ROOT, "../shared/data/sst2/dev.tsv"))}}`;
      const r = await runTask("compile", link, "--seq", "16", "--passes", passes, "-o", pruned);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /calibration: 4 sentences/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
