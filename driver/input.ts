/**
 * What `compile` starts from: a `.sir` file with its weights, a Hugging Face checkpoint folder, an
 * ONNX file, or a module already in memory with its weight store. Each becomes a verified module
 * and a weight store; nothing is written.
 */

import { dirname, extname, resolve } from "node:path";
import type { Diagnostic } from "../ir/diagnostics.ts";
import { loadModule, loadWeights, weightsPath } from "../ir/load.ts";
import type { Module } from "../ir/module.ts";
import { parse } from "../ir/parse.ts";
import { memoryStore, type WeightStore } from "../ir/weights.ts";
import { HfImportError, readHfBert } from "../frontend/hf.ts";
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
    return await readInput(input, options);
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

/** What reading an input path touches, for a sandbox, and where its tokenizer may be. */
export interface InputFiles {
  /** Files and folders reading it reads (where links lead included). */
  readonly reads: readonly string[];
  /** Folders that may hold the model's tokenizer, in order of preference. */
  readonly modelDirs: readonly string[];
}

/**
 * The files and folders reading `path` touches, for a sandbox to grant, without reading the model:
 * an IR file and the weights file its header names, a checkpoint folder (and where its links
 * lead), an ONNX file's folder (external data lies beside it).
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
  const text = await Deno.readTextFile(path).catch(() => undefined);
  const m = text === undefined ? undefined : parse(text, { file: path }).module;
  const w = m && weightsPath(m, path);
  return { reads: [resolve(path), ...(w ? [w] : [])], modelDirs: sirModelDirs(path, w) };
}

/** Where an IR file's tokenizer may be: its folder, else its weights file's (an imported checkpoint's). */
function sirModelDirs(path: string, weights: string | undefined): string[] {
  return [dirname(resolve(path)), ...(weights ? [dirname(weights)] : [])];
}
