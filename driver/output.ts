/**
 * Writing what a compile session produced: the final IR with its weights, or the compiled
 * artifact folder. Both write atomically, so a failure leaves nothing half-written.
 */

import { basename, dirname, join, relative, resolve } from "node:path";
import { writeFileAtomic } from "../ir/atomic_write.ts";
import { print } from "../ir/printer.ts";
import { writeWeights } from "../ir/weights.ts";
import { emitKernels, writeArtifact as writeArtifactFolder } from "../codegen/artifact.ts";
import { TEXT_FILES } from "../runtime/classify.ts";
import type { CompileResult } from "./compile.ts";

/** The IR text of `result`'s module naming `weightsFile` (or no weights file). */
function irText(result: CompileResult, weightsFile: string | undefined): string {
  const m = result.module;
  const own = m.weightsFile;
  m.weightsFile = weightsFile;
  try {
    return print(m);
  } finally {
    m.weightsFile = own;
  }
}

/** A relative path with `/` separators, as an IR weights line holds it. */
function irRelative(fromDir: string, to: string): string {
  return relative(resolve(fromDir), to).split("\\").join("/");
}

/**
 * Writes the final IR to `path` (a `.sir` file). When passes changed weights, or the input had no
 * weights file of its own (a checkpoint converted in memory, an ONNX model), all weights go to
 * `<path without .sir>.safetensors` beside it; otherwise the IR names the input's weights file.
 * Returns the weights file written, if any. Refuses (before writing anything) to overwrite the
 * input model or its weights file.
 */
export async function writeModule(result: CompileResult, path: string): Promise<string | undefined> {
  const hasWeights = result.module.weights.size > 0;
  const own = result.changedWeights.size === 0 && result.inputWeights !== undefined;
  const weightsPath = path.replace(/\.sir$/, "") + ".safetensors";
  const inputs = [result.inputPath, result.inputWeights].filter((p): p is string => p !== undefined);
  for (const target of own || !hasWeights ? [path] : [path, weightsPath]) {
    const clash = await sameFileAsAny(target, inputs);
    if (clash) {
      throw new Deno.errors.AlreadyExists(`${target} would overwrite the input ${clash}; write elsewhere`);
    }
  }
  await Deno.mkdir(dirname(resolve(path)), { recursive: true });
  let written: string | undefined;
  let weightsFile: string | undefined;
  if (own) {
    weightsFile = irRelative(dirname(path), result.inputWeights!);
  } else if (hasWeights) {
    written = weightsPath;
    await writeWeights(written, result.module, result.weights);
    weightsFile = basename(written);
  }
  await writeFileAtomic(path, irText(result, weightsFile));
  return written;
}

/** The one of `inputs` that `target` is (the same path, or the same file through links), if any. */
async function sameFileAsAny(target: string, inputs: readonly string[]): Promise<string | undefined> {
  const real = (p: string) => Deno.realPath(p).catch(() => resolve(p));
  const t = await real(target);
  for (const input of inputs) if (await real(input) === t) return input;
  return undefined;
}

/** Options of {@link writeArtifact}. */
export interface WriteArtifactOptions {
  /** Also write each kernel as text (WAT or TS) into this folder. */
  readonly emitKernels?: string;
  /** More files to put in the artifact folder, by name (a bench's metadata, say). */
  readonly files?: Readonly<Record<string, string>>;
}

/**
 * Writes `result`'s compiled artifact to folder `dir` (replacing an earlier artifact there, never
 * another folder): plan, kernels, weights region, report and the final IR, whose weights are the
 * input's file (named relative to `dir`) or, when passes changed any, `model.safetensors` inside;
 * and the checkpoint's tokenizer and label names when it had a tokenizer (what `classify` reads).
 */
export async function writeArtifact(
  result: CompileResult,
  dir: string,
  options: WriteArtifactOptions = {},
): Promise<void> {
  if (!result.artifact) throw new Error("the compile ran without codegen: there is no artifact to write");
  const changed = result.changedWeights.size > 0 ||
    (result.inputWeights === undefined && result.module.weights.size > 0);
  const weightsFile = changed
    ? "model.safetensors"
    : result.inputWeights && irRelative(dir, result.inputWeights);
  await writeArtifactFolder(dir, result.artifact, irText(result, weightsFile), async (staging) => {
    if (changed) await writeWeights(join(staging, "model.safetensors"), result.module, result.weights);
    const text = result.artifact!.text;
    const carried: Record<string, string | undefined> = {
      [TEXT_FILES.tokenizer]: text?.tokenizer,
      [TEXT_FILES.tokenizerConfig]: text?.tokenizerConfig,
      [TEXT_FILES.labels]: text?.labels,
    };
    for (const [name, content] of Object.entries({ ...carried, ...options.files })) {
      if (content !== undefined) await Deno.writeTextFile(join(staging, basename(name)), content);
    }
  });
  if (options.emitKernels) await emitKernels(options.emitKernels, result.artifact.kernels);
}
