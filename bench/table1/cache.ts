/**
 * The benchmark cache under `--out/cache`: compiled artifacts (one folder each, with a
 * `bench.json` of how it was built beside the artifact's files), onnxruntime-node reference
 * outputs (`reference-*.f32`) and dense ONNX exports. Every name carries a key hashing what
 * decides the content: the model config, the pipeline text, the seed and, for what the compiler
 * builds, a fingerprint of the compiler's sources (bench/fingerprint.ts), so a compiler change
 * rebuilds instead of reusing an old artifact's figures.
 */

import { join } from "node:path";
import type { BertConfig } from "../../frontend/synthetic_bert.ts";
import { compilerFingerprint } from "../fingerprint.ts";

/** A short hex SHA-256 of `value` as JSON. */
export async function cacheKey(value: unknown): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(value)));
  return [...new Uint8Array(digest)].slice(0, 8).map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Writes `data` to `path` through a temporary file and a rename. */
export async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.partial-${Deno.pid}`;
  if (typeof data === "string") await Deno.writeTextFile(tmp, data);
  else await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The bytes cached at `path`, or else `make()`'s, written there. */
export async function cachedFile(path: string, make: () => Uint8Array): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch {
    const bytes = make();
    await writeAtomic(path, bytes);
    return bytes;
  }
}

/** The path of the dense ONNX export of the model `name` with `config` under the cache `root`. */
export async function denseOnnxPath(root: string, name: string, config: BertConfig): Promise<string> {
  return join(root, `${name}-s${config.seq}-${await cacheKey({ config, what: "dense onnx" })}.onnx`);
}

/** What decides a compiled artifact or a reference output besides the compiler. */
export interface Recipe {
  config: BertConfig;
  /** The full pipeline text (for a reference, the pipeline up to and with the pruning). */
  pipeline: string;
  seed: number;
}

/** The metadata written beside a cached artifact. */
export interface Meta extends Recipe {
  compileMs: number;
  stats: Record<string, number>;
  log: string[];
}

/** Where an artifact of the model `name` is cached. */
export interface CacheEntry {
  key: string;
  dir: string;
  /** Whether the cache has it (and `fresh` did not ask to rebuild it). */
  cached: boolean;
}

/**
 * The cache entry of artifact `id` of the model `name` built by `recipe` (`tune`: its sparse
 * schedules timed); `fresh` counts it as missing.
 */
export async function artifactEntry(
  root: string,
  name: string,
  id: string,
  recipe: Recipe,
  o: { tune?: boolean; fresh?: boolean },
): Promise<CacheEntry> {
  const key = await cacheKey({
    config: recipe.config,
    pipeline: recipe.pipeline,
    seed: recipe.seed,
    compiler: await compilerFingerprint(),
    ...(o.tune ? { tune: true } : {}),
  });
  const dir = join(root, `${name}-s${recipe.config.seq}-${id}-${key}`);
  const cached = !o.fresh && await exists(join(dir, "plan.json")) && await exists(join(dir, "bench.json"));
  return { key, dir, cached };
}

/** The files to write beside a compiled artifact so that `readCachedArtifact` finds it. */
export function metaFiles(meta: Meta): Record<string, string> {
  return { "bench.json": JSON.stringify(meta, null, 1) + "\n" };
}

/** The metadata of the cached artifact in `dir`, and the bytes of its wasm memory. */
export async function readCachedArtifact(
  dir: string,
): Promise<{ meta: Meta; memoryBytes: number; weightBytes: number }> {
  const meta = JSON.parse(await Deno.readTextFile(join(dir, "bench.json"))) as Meta;
  const plan = JSON.parse(await Deno.readTextFile(join(dir, "plan.json")));
  return {
    meta,
    memoryBytes: (plan.memory?.pages ?? 0) * 65536,
    weightBytes: plan.memory?.weights?.size ?? 0,
  };
}

/** The path of the onnxruntime-node reference output of the model `name` pruned by `recipe`. */
export async function referencePath(root: string, name: string, recipe: Recipe): Promise<string> {
  const key = await cacheKey({
    config: recipe.config,
    pipeline: recipe.pipeline,
    seed: recipe.seed,
    what: "ort reference",
    compiler: await compilerFingerprint(),
  });
  return join(root, `reference-${name}-s${recipe.config.seq}-${key}.f32`);
}

/** The reference output cached at `path`; undefined when there is none or `fresh` asks to recompute it. */
export async function readReference(path: string, fresh?: boolean): Promise<Float32Array | undefined> {
  if (fresh || !await exists(path)) return undefined;
  const bytes = await Deno.readFile(path);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** Caches the reference output `data` at `path`. */
export async function writeReference(path: string, data: Float32Array): Promise<void> {
  await writeAtomic(path, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
