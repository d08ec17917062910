/**
 * The runtime for Node (20 and later): loads a compiled artifact from a folder or from memory and
 * runs it on worker_threads. Node cannot run TypeScript, so this file is meant to be bundled
 * (`deno task build`, into `dist/node/`), with the worker entry beside it as `worker.mjs`.
 *
 * ```js
 * import { loadCompiled } from "./dist/node/sparrow-runtime.mjs";
 * const model = await loadCompiled("out/mini-4x4", { threads: 2 });
 * console.log(model.run({ input_ids, token_type_ids, attention_mask }).logits);
 * model.close();
 * ```
 */

import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
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

export { ArtifactError, InputError } from "./plan.ts";
export {
  type ArtifactData,
  CompiledModel,
  type InputData,
  type LoadOptions,
  type StepProfile,
} from "./model.ts";
import { compileOptimized } from "./tiering.ts";

/** The bundled worker entry (runtime/worker_node.ts), beside the bundled runtime. */
const WORKER = new URL("./worker.mjs", import.meta.url);

/** Node as the runtime's host: worker_threads running the bundled worker entry. */
export const nodeHost: RuntimeHost = {
  cores: availableParallelism(),
  compileOptimized,
  startWorker(init: WorkerInit): Promise<WorkerHandle> {
    const w = new Worker(WORKER);
    return new Promise((ready, fail) => {
      w.once("message", () => ready({ terminate: () => void w.terminate() }));
      w.once(
        "error",
        (e: Error) => fail(new Error(`runtime worker ${init.tid} failed to start: ${e.message}`)),
      );
      w.postMessage(init);
    });
  },
};

/**
 * Loads a compiled artifact: a folder written by Sparrow's `writeArtifact`, or one held in memory.
 * Throws an ArtifactError naming the file that is missing, truncated, altered or malformed.
 */
export function loadCompiled(
  source: string | ArtifactData,
  options: LoadOptions = {},
): Promise<CompiledModel> {
  return loadWith(nodeHost, folderReader, source, options);
}
