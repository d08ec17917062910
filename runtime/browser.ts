/**
 * The runtime for browsers: loads a compiled artifact from a base URL (every file fetched and
 * checked against the manifest, as the folder reader checks it) or from memory, and runs it on web
 * workers. Browsers cannot run TypeScript, so this file is meant to be bundled (`deno task build`,
 * into `dist/web/`), with the worker entry (runtime/worker_web.ts) beside it as `worker.js`.
 *
 * Threads share one wasm memory, which a page may post to workers only when it is cross-origin
 * isolated (served with `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp`), and the calling thread waits for the others at
 * each step's barrier (`Atomics.wait`), which a page's main thread may not: more than one thread
 * needs both an isolated page and a caller in a worker. Elsewhere the runtime runs on one thread.
 *
 * ```js
 * // in a module worker of the page (web/classifier.js does this):
 * import { loadCompiled } from "./sparrow-runtime.js";
 * const model = await loadCompiled("/artifact/");
 * console.log(model.classify(["a gripping, funny film"])[0].label);
 * ```
 */

import { checkBytes, type ManifestEntry } from "./manifest.ts";
import {
  type ArtifactData,
  type ArtifactReader,
  type CompiledModel,
  type LoadOptions,
  loadWith,
  type RuntimeHost,
  type SizeCheck,
  type WorkerHandle,
} from "./model.ts";
import { ArtifactError } from "./plan.ts";
import type { WorkerInit } from "./worker.ts";

export { ArtifactError, InputError } from "./plan.ts";
export type { Classification, ClassifyOptions } from "./classify.ts";
export {
  type ArtifactData,
  CompiledModel,
  type InputData,
  type LoadOptions,
  type StepProfile,
} from "./model.ts";

/** The bundled worker entry (runtime/worker_web.ts), beside the bundled runtime. */
const WORKER = new URL("./worker.js", import.meta.url);

/**
 * Whether this page may share memory with workers (it is cross-origin isolated): only then can the
 * runtime use more than one thread.
 */
export const crossOriginIsolated: boolean =
  (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;

/** Whether this is a page's main thread, which may not wait for other threads (`Atomics.wait`). */
const mainThread = "document" in globalThis;

/** The browser as the runtime's host: module web workers running the bundled worker entry. */
export const browserHost: RuntimeHost = {
  cores: crossOriginIsolated && !mainThread ? navigator.hardwareConcurrency : 1,
  startWorker(init: WorkerInit): Promise<WorkerHandle> {
    const w = new Worker(WORKER, { type: "module" });
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
 * A reader of the artifact at `base` (a URL of its folder; relative to the page), with `fetch`:
 * each file must answer 200 with exactly the bytes the manifest gives; the weights are hashed
 * (`crypto.subtle`) before they are copied into the shared memory.
 */
export function urlReader(base: string | URL): ArtifactReader {
  const root = new URL(base, globalThis.location?.href);
  if (!root.pathname.endsWith("/")) root.pathname += "/";
  const where = (name: string) => name === "" ? root.href : new URL(encodeURIComponent(name), root).href;
  const mismatch = (name: string, size: number, bytes: number) =>
    new ArtifactError(where(name), `has ${size} bytes, the manifest says ${bytes} (truncated or altered)`);
  const get = async (name: string, what: string): Promise<Uint8Array> => {
    const response = await fetch(where(name)).catch((e) => {
      throw new ArtifactError(where(name), `cannot ${what}: ${(e as Error).message}`);
    });
    if (!response.ok) {
      throw new ArtifactError(where(name), `cannot ${what}: HTTP ${response.status} ${response.statusText}`);
    }
    return new Uint8Array(
      await response.arrayBuffer().catch((e) => {
        throw new ArtifactError(where(name), `cannot ${what}: ${(e as Error).message}`);
      }),
    );
  };
  return {
    where,
    async read(name: string, check: SizeCheck): Promise<Uint8Array> {
      const bytes = await get(name, "read");
      if ("exactly" in check ? bytes.length !== check.exactly : bytes.length > check.atMost) {
        throw mismatch(name, bytes.length, "exactly" in check ? check.exactly : check.atMost);
      }
      return bytes;
    },
    async fillWeights(name: string, entry: ManifestEntry, into: Uint8Array): Promise<void> {
      // The shared memory cannot be hashed in place: fetch into a private buffer, check, then copy.
      const bytes = await get(name, "fetch the weights");
      if (bytes.length !== into.length) {
        throw new ArtifactError(
          where(name),
          `the weights file has ${bytes.length} bytes, the plan expects ${into.length}`,
        );
      }
      await checkBytes(where(name), entry, bytes);
      into.set(bytes);
    },
  };
}

/**
 * Loads a compiled artifact: the one at URL `source` (its folder, served as files), or one held in
 * memory. Threads default to the cores in a worker of a cross-origin isolated page, else one; more
 * than one elsewhere is refused. Throws an ArtifactError naming the file that is missing,
 * truncated, altered or malformed.
 */
export function loadCompiled(
  source: string | URL | ArtifactData,
  options: LoadOptions = {},
): Promise<CompiledModel> {
  const threads = options.threads ?? 1;
  if (threads > 1 && (!crossOriginIsolated || mainThread)) {
    return Promise.reject(
      new Error(
        crossOriginIsolated
          ? `${threads} threads need the caller in a worker: a page's main thread cannot wait for them`
          : `${threads} threads need a cross-origin isolated page (COOP and COEP headers)`,
      ),
    );
  }
  return loadWith(browserHost, urlReader, source instanceof URL ? source.href : source, options);
}
