/**
 * Writing a trained model as a checkpoint in its input's Hugging Face layout, so that it imports
 * like any checkpoint (`frontend/hf.ts`): the same `model.safetensors` (or the same shards and
 * `model.safetensors.index.json`) with every tensor under its own name, dtype and shape, in the
 * input's data order and with its `__metadata__`; the trained values replace the tensors they
 * name, converted to the tensor's dtype, and every other tensor (`position_ids`, a masked-LM head)
 * is copied byte for byte. `config.json` and the tokenizer files are copied; the input's
 * `README.md` and goldens are not (they describe the input model).
 *
 * Every file is written atomically (a temp file, then a rename; `ir/atomic_write.ts`), and the
 * input folder is never written to.
 *
 * ```ts
 * await writeHfCheckpoint("../shared/models/sst2-bert-mini", "out/mini-ft", trained);
 * await readHfBert("out/mini-ft", { seq: 64 }); // imports like any checkpoint
 * ```
 */

import { basename, join, resolve } from "node:path";
import { readCheckpoint, SINGLE } from "../frontend/hf_checkpoint.ts";
import { writeFileAtomic } from "../ir/atomic_write.ts";
import { readSafetensors, type TensorToWrite, writeSafetensors } from "../ir/safetensors.ts";

/** Files of a checkpoint folder copied as they are, when present (besides the weights). */
export const COPIED_FILES = [
  "config.json",
  "model.safetensors.index.json",
  "vocab.txt",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
] as const;

/** A checkpoint that cannot be written; the message is one line. */
export class CheckpointError extends Error {
  /** An error with a one-line message. */
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

/** What {@link writeHfCheckpoint} wrote. */
export interface WrittenCheckpoint {
  /** The files written, in order. */
  readonly files: string[];
  /** Tensors whose values came from the trained weights. */
  readonly replaced: number;
  /** Tensors copied unchanged from the input. */
  readonly copied: number;
}

async function realPathOrSelf(path: string): Promise<string> {
  try {
    return await Deno.realPath(path);
  } catch {
    return resolve(path);
  }
}

/** `values` (f32) as the bytes of a tensor of `dtype`. */
function encode(values: Float32Array, dtype: string, name: string): ArrayBufferView {
  switch (dtype) {
    case "F32":
      return values;
    case "F64":
      return Float64Array.from(values);
    case "F16": {
      const view = new DataView(new ArrayBuffer(values.length * 2));
      for (let i = 0; i < values.length; i++) view.setFloat16(2 * i, values[i], true);
      return view;
    }
    case "BF16": {
      const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) {
        const b = bits[i];
        const isNaN = (b & 0x7fffffff) > 0x7f800000;
        // Round to nearest, ties to even, on the 16 bits dropped.
        out[i] = isNaN ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
      return out;
    }
    default:
      throw new CheckpointError(
        `tensor '${name}' is ${dtype}; trained values can replace only float tensors`,
      );
  }
}

/**
 * Throws a CheckpointError when `outDir` cannot take a checkpoint written from `inputDir`: it is
 * the input folder itself, or exists and is not a folder. Called before anything is written (and
 * by callers before a long training run).
 */
export async function checkOutputFolder(inputDir: string, outDir: string): Promise<void> {
  if (await realPathOrSelf(inputDir) === await realPathOrSelf(outDir)) {
    throw new CheckpointError(
      `${outDir} is the input checkpoint's folder; write the result to another folder`,
    );
  }
  const info = await Deno.stat(outDir).catch(() => undefined);
  if (info && !info.isDirectory) throw new CheckpointError(`${outDir} exists and is not a folder`);
}

/**
 * Writes the checkpoint in `inputDir`, with `weights` (by checkpoint tensor name, f32) replacing
 * those tensors, to the folder `outDir` (created when needed; files of the same names in it are
 * replaced). `extra` files (name: text) are written beside, e.g. a training log.
 *
 * @throws CheckpointError when `outDir` is the input folder, a weight is not in the checkpoint or
 *   has the wrong number of values, or a replaced tensor is not a float tensor
 */
export async function writeHfCheckpoint(
  inputDir: string,
  outDir: string,
  weights: ReadonlyMap<string, Float32Array>,
  extra: Readonly<Record<string, string>> = {},
): Promise<WrittenCheckpoint> {
  await checkOutputFolder(inputDir, outDir);
  const ckpt = await readCheckpoint(inputDir);
  for (const [name, w] of weights) {
    const entry = ckpt.tensors.get(name);
    if (!entry) throw new CheckpointError(`${inputDir}: the checkpoint has no tensor '${name}' to replace`);
    const n = entry.info.shape.reduce((a, b) => a * b, 1);
    if (n !== w.length) {
      throw new CheckpointError(
        `tensor '${name}' has ${n} values in ${entry.file}, the trained weight ${w.length}`,
      );
    }
  }
  // Every file's tensors are checked and encoded before anything is written.
  const planned: { path: string; tensors: TensorToWrite[]; metadata: Record<string, string> }[] = [];
  let replaced = 0, copied = 0;
  for (const file of ckpt.files) {
    const st = await readSafetensors(file);
    const infos = [...st.tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset);
    const tensors = infos.map((t): TensorToWrite => {
      const w = weights.get(t.name);
      // In a sharded checkpoint, only the shard the index assigns a tensor to holds it.
      const mine = ckpt.tensors.get(t.name)?.file === file;
      if (w && mine) replaced++;
      else copied++;
      return {
        name: t.name,
        dtype: t.dtype,
        shape: [...t.shape],
        data: w && mine ? encode(w, t.dtype, t.name) : st.raw(t.name).slice(),
      };
    });
    planned.push({ path: join(outDir, basename(file)), tensors, metadata: st.metadata });
  }
  await Deno.mkdir(outDir, { recursive: true });
  const files: string[] = [];
  for (const p of planned) {
    const hasMeta = Object.keys(p.metadata).length > 0;
    await writeSafetensors(p.path, p.tensors, hasMeta ? p.metadata : undefined);
    files.push(p.path);
  }
  for (const name of COPIED_FILES) {
    if (name === "model.safetensors.index.json" && !ckpt.sharded) continue;
    const from = join(inputDir, name);
    const stat = await Deno.stat(from).catch(() => undefined);
    if (!stat?.isFile) continue;
    await writeFileAtomic(join(outDir, name), await Deno.readFile(from));
    files.push(join(outDir, name));
  }
  for (const [name, text] of Object.entries(extra)) {
    if (name === SINGLE || name.includes("/") || (COPIED_FILES as readonly string[]).includes(name)) {
      throw new CheckpointError(`extra file '${name}' would replace a checkpoint file`);
    }
    await writeFileAtomic(join(outDir, name), text);
    files.push(join(outDir, name));
  }
  return { files, replaced, copied };
}
