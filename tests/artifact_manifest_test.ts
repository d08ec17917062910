/**
 * The artifact's manifest: the runtime reads only the files it lists, each a regular file inside
 * the folder with the size and SHA-256 the manifest gives, so a truncated, altered, swapped or
 * out-of-folder file is an error naming it before anything of it is used (and never a hang).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bertConfig,
  buildBertModule,
  compile,
  loadCompiled,
  memoryStore,
  Tensor,
  writeArtifact,
} from "../mod.ts";
import { syntheticBertWeights } from "../frontend/synthetic_bert.ts";
import { tensorType } from "../ir/types.ts";

/** A compiled bert-tiny artifact in a fresh temp folder (removed afterwards). */
async function withArtifact(fn: (dir: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "sparrow-manifest-" });
  try {
    const c = bertConfig("bert-tiny", { seq: 8, layers: 1 });
    const weights = memoryStore(
      new Map(
        syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
      ),
    );
    const dir = join(root, "a");
    await writeArtifact(await compile({ module: buildBertModule(c, "w.safetensors"), weights }), dir);
    await fn(dir);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

async function readJson(path: string) {
  return JSON.parse(await Deno.readTextFile(path));
}

Deno.test("the manifest lists every file of the artifact with its size and SHA-256", async () => {
  await withArtifact(async (dir) => {
    const manifest = await readJson(join(dir, "manifest.json"));
    assert.equal(manifest.format, "sparrow-artifact");
    const names = [];
    for await (const e of Deno.readDir(dir)) if (e.name !== "manifest.json") names.push(e.name);
    assert.deepEqual(Object.keys(manifest.files).sort(), names.sort());
    for (const [name, e] of Object.entries(manifest.files) as [string, { bytes: number; sha256: string }][]) {
      const bytes = await Deno.readFile(join(dir, name));
      const sha = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
        .map((b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal(e.bytes, bytes.length, name);
      assert.equal(e.sha256, sha, name);
    }
    (await loadCompiled(dir, { threads: 1 })).close();
  });
});

Deno.test("an altered file of the same size is caught by its checksum, naming it", async () => {
  await withArtifact(async (dir) => {
    for (const name of ["weights.bin", "kernels.relaxed.wasm", "plan.json"]) {
      const file = join(dir, name);
      const original = await Deno.readFile(file);
      const altered = original.slice();
      altered[altered.length >> 1] ^= 1;
      await Deno.writeFile(file, altered);
      await assert.rejects(() => loadCompiled(dir, { threads: 1 }), new RegExp(`${name}: checksum mismatch`));
      await Deno.writeFile(file, original);
    }
    (await loadCompiled(dir, { threads: 1 })).close();
  });
});

Deno.test("an artifact is data: wasm kernels, weights and JSON, no code to import", async () => {
  await withArtifact(async (dir) => {
    const manifest = await readJson(join(dir, "manifest.json"));
    const plan = await readJson(join(dir, "plan.json"));
    assert.deepEqual(Object.keys(manifest.files).filter((n) => /\.(ts|js|mjs)$/.test(n)), []);
    // bert-tiny gathers its embeddings and casts its mask: those run as wasm kernels too.
    const kernels = plan.buckets[0].steps.map((s: { kernel: string[] }) => s.kernel[0]);
    assert.ok(kernels.some((k: string) => k.startsWith("gather_")), kernels.join(" "));
    assert.ok(kernels.some((k: string) => k.startsWith("cast_")), kernels.join(" "));
  });
});

Deno.test("names outside the folder, unlisted files, links and FIFOs are refused", async () => {
  await withArtifact(async (dir) => {
    const manifestFile = join(dir, "manifest.json");
    const manifest = await readJson(manifestFile);
    const write = (m: unknown) => Deno.writeTextFile(manifestFile, JSON.stringify(m));
    await write({
      ...manifest,
      files: { ...manifest.files, "../escape.bin": manifest.files["weights.bin"] },
    });
    await assert.rejects(
      () => loadCompiled(dir),
      /manifest\.json: bad manifest: "\.\.\/escape\.bin" is not a file name/,
    );
    const { ["weights.bin"]: _weights, ...rest } = manifest.files;
    await write({ ...manifest, files: rest });
    await assert.rejects(() => loadCompiled(dir), /manifest\.json: 'weights\.bin' is not listed/);
    await write(manifest);

    // A link in place of a listed file, even to a file with the right bytes.
    const weights = join(dir, "weights.bin");
    const copy = join(dir, "..", "weights-copy.bin");
    await Deno.rename(weights, copy);
    await Deno.symlink(copy, weights);
    await assert.rejects(() => loadCompiled(dir), /weights\.bin: not a regular file/);
    await Deno.remove(weights);

    // A FIFO in place of a listed file: refused at once, never read (a read would block).
    assert.ok((await new Deno.Command("mkfifo", { args: [weights] }).output()).success, "mkfifo");
    const t0 = performance.now();
    await assert.rejects(() => loadCompiled(dir), /weights\.bin: not a regular file/);
    assert.ok(performance.now() - t0 < 5000);
    await Deno.remove(weights);
    await Deno.rename(copy, weights);
    (await loadCompiled(dir, { threads: 1 })).close();
  });
});
