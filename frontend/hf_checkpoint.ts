/**
 * Reading a Hugging Face checkpoint folder's weights index: `model.safetensors`, or the shards
 * `model.safetensors.index.json` lists, from their headers (no tensor data is read).
 */

import { isAbsolute, join } from "node:path";
import { readSafetensorsHeader, type TensorInfo } from "../ir/safetensors.ts";
import { HfImportError } from "./hf.ts";
import { jsonTooDeep, MAX_JSON_DEPTH, readBoundedText } from "./tokenizer.ts";

/** The most shard files an index may name (each header is read and checked). */
export const MAX_SHARDS = 1024;

/** The largest config.json or index file read. */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A checkpoint tensor and the file it lives in. */
export interface Entry {
  readonly info: TensorInfo;
  readonly file: string;
}

/** The tensors of a checkpoint folder, by name in checkpoint order, from the safetensors headers. */
export interface Checkpoint {
  readonly tensors: Map<string, Entry>;
  /** The safetensors files, in order. */
  readonly files: string[];
  /** Whether the tensors come from shards listed by an index. */
  readonly sharded: boolean;
}

export const SINGLE = "model.safetensors";
export const INDEX = "model.safetensors.index.json";
const OTHER_FORMATS = ["pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "model.onnx"];

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Reads and parses a JSON file of a checkpoint folder (`what` says what it is, for a missing one).
 * Throws an HfImportError for a missing file, one that is no regular file or larger than
 * {@link MAX_JSON_BYTES} (before reading it), invalid JSON, or JSON nested deeper than
 * {@link MAX_JSON_DEPTH} levels.
 */
export async function readJson(path: string, what: string): Promise<unknown> {
  const text = await readBoundedText(path, MAX_JSON_BYTES, (m) => new HfImportError(m));
  if (text === undefined) throw new HfImportError(`${path}: not found (${what})`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HfImportError(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  const deep = jsonTooDeep(json);
  if (deep) throw new HfImportError(`${path}: nests deeper than ${MAX_JSON_DEPTH} levels at ${deep}`);
  return json;
}

/** Reads the headers of a folder's `model.safetensors`, or of the shards its index lists. */
export async function readCheckpoint(dir: string): Promise<Checkpoint> {
  const single = join(dir, SINGLE);
  if (await isFile(single)) {
    const header = await readSafetensorsHeader(single);
    const tensors = new Map([...header.tensors].map(([n, info]) => [n, { info, file: single }]));
    return { tensors, files: [single], sharded: false };
  }
  const indexPath = join(dir, INDEX);
  if (!(await isFile(indexPath))) {
    const others = [];
    for (const f of OTHER_FORMATS) if (await isFile(join(dir, f))) others.push(f);
    const hint = others.length > 0 ? `; ${others.join(", ")} cannot be read (convert it to safetensors)` : "";
    throw new HfImportError(`${dir}: no ${SINGLE} or ${INDEX} (the weights)${hint}`);
  }
  const index = await readJson(indexPath, "the index of the sharded weights");
  const map = isObject(index) ? index.weight_map : undefined;
  if (!isObject(map)) throw new HfImportError(`${indexPath}: weight_map must be an object of tensor: file`);
  const shards = new Map<string, Map<string, TensorInfo>>();
  const tensors = new Map<string, Entry>();
  for (const [name, shard] of Object.entries(map)) {
    if (
      typeof shard !== "string" || shard === "" || isAbsolute(shard) || shard.split(/[\\/]/).includes("..")
    ) {
      throw new HfImportError(`${indexPath}: weight_map: '${name}' has the file ${JSON.stringify(shard)}`);
    }
    const file = join(dir, shard);
    let header = shards.get(file);
    if (!header && shards.size === MAX_SHARDS) {
      throw new HfImportError(`${indexPath}: weight_map names more than ${MAX_SHARDS} shards`);
    }
    if (!header) {
      if (!(await isFile(file))) {
        throw new HfImportError(`${indexPath}: weight_map: the shard '${shard}' of '${name}' is not found`);
      }
      header = (await readSafetensorsHeader(file)).tensors;
      shards.set(file, header);
    }
    const info = header.get(name);
    if (!info) throw new HfImportError(`${indexPath}: weight_map: '${name}' is not in the shard ${file}`);
    tensors.set(name, { info, file });
  }
  // Tensors in file order, then header order: the state_dict order when the shards were cut in order.
  const files = [...shards.keys()].sort();
  const ordered = [...tensors].sort(([, a], [, b]) =>
    files.indexOf(a.file) - files.indexOf(b.file) || a.info.byteOffset - b.info.byteOffset
  );
  return { tensors: new Map(ordered), files, sharded: true };
}
