/**
 * What `compile` starts from: a `.sir` file with its weights, a Hugging Face checkpoint folder, an
 * ONNX file, or a module already in memory with its weight store. Each becomes a verified module
 * and a weight store; nothing is written.
 */

import { basename, dirname, extname, join, resolve } from "node:path";
import type { Diagnostic } from "../ir/diagnostics.ts";
import { loadModule, loadWeights, MAX_IR_BYTES, weightsPath } from "../ir/load.ts";
import type { Module } from "../ir/module.ts";
import { parse } from "../ir/parse.ts";
import { memoryStore, type WeightStore } from "../ir/weights.ts";
import type { TextFiles } from "../runtime/classify.ts";
import { HfImportError, readHfBert } from "../frontend/hf.ts";
import { MAX_TOKENIZER_BYTES, readBoundedText } from "../frontend/tokenizer.ts";
import { OnnxImportError, onnxToModule } from "../frontend/onnx/import.ts";
import { SafetensorsError } from "../ir/safetensors.ts";
import { createPassRegistry } from "../passes/index.ts";
import { runPipeline } from "../passes/manager.ts";
import { parsePipeline } from "../passes/pipeline.ts";

/** A model in memory: a module and the data of its weights. */
export interface ModuleInput {
  /** The module; it is never changed (passes run on a copy). */
  readonly module: Module;
  /** The data of its weights; none by default. */
  readonly weights?: WeightStore;
  /** Where it came from, if anywhere: messages name it and a tokenizer is looked for beside it. */
  readonly path?: string;
}

/** What `compile` accepts: a `.sir` path, a Hugging Face folder, a `.onnx` path, or a module in memory. */
export type CompileInput = string | ModuleInput;

/** The kinds of input. */
export type InputKind = "sir" | "hf" | "onnx" | "memory";

/** An input read into memory. */
export interface LoadedInput {
  /** What it was. */
  readonly kind: InputKind;
  /** The verified module. */
  readonly module: Module;
  /** The data of its weights. */
  readonly weights: WeightStore;
  /** The path it was read from, if any. */
  readonly path?: string;
  /** The IR text of a `.sir` input, for diagnostics with source lines. */
  readonly text?: string;
  /** The weights file the module names (absolute), if it reads its weights from one. */
  readonly weightsPath?: string;
  /** Folders that may hold the model's tokenizer, in order of preference. */
  readonly modelDirs: readonly string[];
  /** The checkpoint's tokenizer and label names, from the first model folder with a `tokenizer.json`. */
  readonly textFiles?: TextFiles;
}

/** An input that cannot be read: a one-line message, with diagnostics for IR files. */
export class InputError extends Error {
  /** A failure to read `path`; `diagnostics` and `text` locate problems in IR. */
  constructor(
    message: string,
    readonly diagnostics: readonly Diagnostic[] = [],
    readonly text = "",
  ) {
    super(message);
    this.name = "InputError";
  }
}

/** Options of {@link loadInput}. */
export interface InputOptions {
  /** The static sequence length a checkpoint or ONNX model is imported at. */
  readonly seq?: number;
}

/** The kind of a path: a folder is a checkpoint, `.onnx` an ONNX model, anything else IR. */
export async function inputKind(path: string): Promise<Exclude<InputKind, "memory">> {
  const isDir = await Deno.stat(path).then((s) => s.isDirectory, () => false);
  return isDir ? "hf" : extname(path).toLowerCase() === ".onnx" ? "onnx" : "sir";
}

/**
 * Reads an input into a verified module and its weights. Throws InputError (a malformed IR file,
 * checkpoint, ONNX model or weights file, with a one-line message naming it) and Deno's file errors.
 */
export async function loadInput(input: CompileInput, options: InputOptions = {}): Promise<LoadedInput> {
  try {
    const loaded = await readInput(input, options);
    return { ...loaded, textFiles: await textFiles(loaded.modelDirs) };
  } catch (e) {
    const malformed = e instanceof HfImportError || e instanceof OnnxImportError ||
      e instanceof SafetensorsError;
    if (malformed) throw new InputError((e as Error).message);
    throw e;
  }
}

async function readInput(input: CompileInput, options: InputOptions): Promise<LoadedInput> {
  if (typeof input !== "string") {
    const weights = input.weights ?? memoryStore(new Map());
    return {
      kind: "memory",
      module: input.module,
      weights,
      path: input.path,
      modelDirs: input.path ? [dirname(resolve(input.path))] : [],
    };
  }
  const kind = await inputKind(input);
  if (kind === "hf") {
    const r = await readHfBert(input, { seq: options.seq });
    return {
      kind,
      module: r.module,
      weights: r.weights,
      path: input,
      weightsPath: r.weightsPath && resolve(r.weightsPath),
      modelDirs: [resolve(input)],
    };
  }
  if (kind === "onnx") {
    if (!(await Deno.stat(input)).isFile) {
      throw new InputError(`${input}: not a regular file (a folder, FIFO or device); expected an ONNX file`);
    }
    const bytes = await Deno.readFile(input);
    const converted = onnxToModule(bytes, { seq: options.seq, source: input, baseDir: dirname(input) });
    const lengths = converted.module.funcs[0]?.params.flatMap((p) =>
      p.type.shape.length >= 2 ? [p.type.shape[1]] : []
    );
    if (options.seq !== undefined && !lengths?.includes(options.seq)) {
      throw new InputError(
        `${input}: the model's inputs have a fixed sequence length (${[...new Set(lengths)].join(", ")}); ` +
          `seq ${options.seq} applies only to a symbolic one`,
      );
    }
    const weights = memoryStore(converted.weights);
    // ONNX exporters decompose LayerNorm and GELU; `recognize` puts them back, as `deno task import` does.
    const recognized = runPipeline(converted.module, parsePipeline("recognize", createPassRegistry()), {
      weights,
    });
    return {
      kind,
      module: recognized.module,
      weights: recognized.weights,
      path: input,
      modelDirs: [dirname(resolve(input))],
    };
  }
  if (options.seq !== undefined) {
    throw new InputError(
      `${input}: an IR file has its own sequence length; seq applies to checkpoints and ONNX`,
    );
  }
  const loaded = await loadModule(input);
  if (!loaded.module) {
    throw new InputError(`${input}: the model does not load`, loaded.diagnostics, loaded.text);
  }
  const wp = weightsPath(loaded.module, input);
  return {
    kind,
    module: loaded.module,
    weights: await loadWeights(loaded.module, input),
    path: input,
    text: loaded.text,
    weightsPath: wp,
    modelDirs: sirModelDirs(input, wp),
  };
}

/** The files, beside a model, that give its tokenizer and label names. */
const TEXT_SOURCES = ["tokenizer.json", "tokenizer_config.json", "config.json"];

/**
 * The tokenizer and label names of the first of `dirs` holding a `tokenizer.json`: its
 * `tokenizer_config.json`, and `id2label` of its `config.json` as a list (when it names them).
 */
async function textFiles(dirs: readonly string[]): Promise<TextFiles | undefined> {
  // Bounded and regular files only (a FIFO named tokenizer.json would block); unreadable is absent.
  const read = (path: string) =>
    readBoundedText(path, MAX_TOKENIZER_BYTES, (m) => new InputError(m)).catch((e) => {
      if (e instanceof Deno.errors.NotCapable) return undefined;
      throw e;
    });
  for (const dir of dirs) {
    const tokenizer = await read(join(dir, "tokenizer.json"));
    if (tokenizer === undefined) continue;
    const config = await read(join(dir, "config.json"));
    let labels: string | undefined;
    try {
      const id2label = config === undefined ? undefined : JSON.parse(config).id2label;
      if (id2label && typeof id2label === "object") {
        const names = Object.keys(id2label).sort((a, b) => Number(a) - Number(b)).map((k) =>
          String(id2label[k])
        );
        labels = JSON.stringify(names);
      }
    } catch { /* a config.json that is not JSON names no labels; importing it says why */ }
    return { tokenizer, tokenizerConfig: await read(join(dir, "tokenizer_config.json")), labels };
  }
  return undefined;
}

/** What reading an input path touches, for a sandbox, and where its tokenizer may be. */
export interface InputFiles {
  /** Files and folders reading it reads (where links lead included). */
  readonly reads: readonly string[];
  /** Folders that may hold the model's tokenizer, in order of preference. */
  readonly modelDirs: readonly string[];
  /**
   * Why the IR file's weights line is refused, when it is (one line naming the IR file and the
   * weights file); the weights file is then not in `reads`.
   */
  readonly refused?: string;
}

/**
 * The files and folders reading `path` touches, for a sandbox to grant, without reading the model:
 * an IR file and the weights file its header names, a checkpoint folder (and where its links
 * lead), an ONNX file's folder (external data lies beside it).
 *
 * An IR file is text anyone may hand over, so its weights line is not trusted to name any file:
 * the weights file must be named `*.safetensors`, and so must where its links lead (or be a blob
 * of a Hugging Face cache, `.../blobs/<hash>`). Otherwise (`/etc/passwd`, a `w.safetensors` link to
 * `~/.ssh/id_rsa`) it is left out of `reads` and `refused` says why. Where it lies is not
 * restricted: Sparrow's own outputs name their input's weights relatively (`../m.safetensors`)
 * and an imported checkpoint's file in place.
 */
export async function inputFiles(path: string): Promise<InputFiles> {
  const kind = await inputKind(path);
  const real = (p: string) => Deno.realPath(p).then((r) => [r], () => []);
  if (kind === "hf") {
    const links: string[] = [];
    try {
      for await (const e of Deno.readDir(path)) {
        if (e.isSymlink) links.push(...await real(resolve(path, e.name)));
      }
    } catch { /* unreadable: reading the checkpoint will say so */ }
    return { reads: [resolve(path), ...await real(path), ...links], modelDirs: [resolve(path)] };
  }
  if (kind === "onnx") {
    const dirs = [dirname(resolve(path)), ...(await real(path)).map((r) => dirname(r))];
    return { reads: dirs, modelDirs: [dirname(resolve(path))] };
  }
  // Only a regular IR file of at most MAX_IR_BYTES is read here; loading it says what is wrong.
  const info = await Deno.stat(path).catch(() => undefined);
  const text = info?.isFile && info.size <= MAX_IR_BYTES
    ? await Deno.readTextFile(path).catch(() => undefined)
    : undefined;
  const m = text === undefined ? undefined : parse(text, { file: path }).module;
  let w = m && weightsPath(m, path);
  const refusal = async (file: string): Promise<string | undefined> => {
    const named = `${path}: its weights line names '${m!.weightsFile}'`;
    if (!/\.safetensors$/i.test(file)) return `${named}, which is not a .safetensors file`;
    // Where a link leads must be a weights file too: named so, or a blob of a Hugging Face cache.
    const target = (await real(file))[0];
    if (target !== undefined && !/\.safetensors$/i.test(target) && basename(dirname(target)) !== "blobs") {
      return `${named}, a link to ${target}, which is not a .safetensors file`;
    }
    return undefined;
  };
  const refused = w && await refusal(w);
  if (refused) w = undefined;
  const modelDirs = sirModelDirs(path, w);
  const beside = modelDirs.flatMap((d) => TEXT_SOURCES.map((f) => join(d, f)));
  const links = w ? await real(w) : [];
  return {
    reads: [resolve(path), ...(w ? [w, ...links] : []), ...beside],
    modelDirs,
    ...(refused ? { refused } : {}),
  };
}

/** Where an IR file's tokenizer may be: its folder, else its weights file's (an imported checkpoint's). */
function sirModelDirs(path: string, weights: string | undefined): string[] {
  return [dirname(resolve(path)), ...(weights ? [dirname(weights)] : [])];
}
