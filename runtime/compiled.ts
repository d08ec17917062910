/**
 * The runtime for Deno: loads a compiled artifact from a folder (read with `node:fs`, every file
 * checked against the manifest) or from memory, and runs it on web workers. The core is
 * runtime/model.ts; runtime/node.ts is the same for Node.
 */

import { folderReader } from "./folder.ts";
import {
  type ArtifactData,
  type CompiledModel,
  type LoadOptions,
  loadWith,
  type RuntimeHost,
  type WorkerHandle,
} from "./model.ts";
import type { WorkerInit } from "./worker.ts";

export {
  type ArtifactData,
  type ArtifactReader,
  CompiledModel,
  type InputData,
  type LoadOptions,
  type RuntimeHost,
  type SizeCheck,
  type StepProfile,
  type WorkerHandle,
} from "./model.ts";
import { compileOptimized } from "./tiering.ts";

/** Deno as the runtime's host: web workers running runtime/worker_web.ts. */
export const denoHost: RuntimeHost = {
  cores: navigator.hardwareConcurrency,
  compileOptimized,
  startWorker(init: WorkerInit): Promise<WorkerHandle> {
    const w = new Worker(new URL("./worker_web.ts", import.meta.url), { type: "module" });
    return new Promise((ready, fail) => {
      w.onmessage = () => ready(w);
      w.onerror = (e) => {
        e.preventDefault();
        fail(new Error(`runtime worker ${init.tid} failed to start: ${e.message}`));
      };
      w.postMessage(init);
    });
  },
};

/**
 * Loads a compiled artifact: a folder written by `writeArtifact`, or one held in memory, as
 * `compile` returns it. Throws an ArtifactError naming the file that is missing, truncated,
 * altered or malformed.
 */
export function loadCompiled(
  source: string | ArtifactData,
  options: LoadOptions = {},
): Promise<CompiledModel> {
  return loadWith(denoHost, folderReader, source, options);
}
