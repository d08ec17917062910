/**
 * Writes a compiled model as a self-contained directory: `plan.json`, the kernel modules,
 * `weights.bin` (the weights region byte for byte), the final IR (`model.sir`), `report.json` / `report.txt`, and last `manifest.json`, the size and
 * SHA-256 of every other file, which the runtime checks before using any. The directory is
 * written beside its final place and renamed into it, so a failure leaves no half-written artifact.
 */

import { basename, dirname, join, resolve } from "node:path";
import type { Compiled, KernelInfo } from "./compile.ts";
import { formatReport } from "./report.ts";
import { createHash } from "node:crypto";
import { type Manifest, MANIFEST_FILE } from "../runtime/manifest.ts";
import { isPlainFileName } from "../runtime/plan.ts";

/** Whether `dir` may be replaced: it does not exist, is empty, or holds an earlier artifact. */
async function replaceable(dir: string): Promise<boolean> {
  const entries = [];
  try {
    for await (const e of Deno.readDir(dir)) entries.push(e.name);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return true;
    throw e;
  }
  return entries.length === 0 || entries.includes("plan.json");
}

/**
 * Writes `compiled` and the final IR text to `dir`; `extra`, if given, may write more files into
 * the staging directory it is passed (e.g. the IR's changed weights). Throws when `dir` holds
 * something other than an artifact.
 */
export async function writeArtifact(
  dir: string,
  compiled: Compiled,
  irText: string,
  extra?: (staging: string) => Promise<void>,
): Promise<void> {
  const target = resolve(dir);
  if (!(await replaceable(target))) {
    throw new Deno.errors.AlreadyExists(
      `${dir} exists and is not a Sparrow artifact (no plan.json); not overwriting it`,
    );
  }
  const staging = join(dirname(target), `.${basename(target)}.partial-${Deno.pid}`);
  await Deno.remove(staging, { recursive: true }).catch(() => {});
  await Deno.mkdir(staging, { recursive: true });
  try {
    const { plan } = compiled;
    await Deno.writeFile(join(staging, plan.wasm.relaxed), compiled.wasm.relaxed);
    await Deno.writeFile(join(staging, plan.wasm.simd), compiled.wasm.simd);
    await Deno.writeFile(join(staging, plan.memory.weights.file), compiled.weights);
    await Deno.writeTextFile(join(staging, "model.sir"), irText);
    await extra?.(staging);
    await Deno.writeTextFile(join(staging, "report.json"), JSON.stringify(compiled.report, null, 2) + "\n");
    await Deno.writeTextFile(join(staging, "report.txt"), formatReport(compiled.report) + "\n");
    await Deno.writeTextFile(join(staging, "plan.json"), JSON.stringify(plan, null, 1) + "\n");
    await writeManifest(staging);
    await Deno.remove(target, { recursive: true }).catch(() => {});
    await Deno.rename(staging, target);
  } catch (e) {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** Writes `manifest.json` into `dir`: the size and SHA-256 of every file in it. */
async function writeManifest(dir: string): Promise<void> {
  const files: Manifest["files"] = {};
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !isPlainFileName(e.name)) {
      throw new Error(`${join(dir, e.name)}: not a plain file of the artifact`);
    }
    names.push(e.name);
  }
  for (const name of names.sort()) {
    const hash = createHash("sha256");
    let bytes = 0;
    const f = await Deno.open(join(dir, name));
    for await (const chunk of f.readable) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    files[name] = { bytes, sha256: hash.digest("hex") };
  }
  const manifest: Manifest = { format: "sparrow-artifact", version: 1, files };
  await Deno.writeTextFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 1) + "\n");
}

/** Writes each kernel as readable text to `dir`: `<name>.wat`, headed by the IR values it computes. */
export async function emitKernels(dir: string, kernels: readonly KernelInfo[]): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  for (const k of kernels) {
    const header = [
      `;; ${k.name}: ${k.ops.join(" + ")}`,
      `;; computes ${k.values.length} value(s): ${k.values.join(", ")}`,
    ].join("\n");
    await Deno.writeTextFile(join(dir, `${k.name}.wat`), `${header}\n${k.text}\n`);
  }
}
