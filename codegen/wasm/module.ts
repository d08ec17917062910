/**
 * Puts kernels together into one wasm module's text: the imported shared memory, the helper
 * functions the kernels use, and the kernels, each once.
 */

import type { WasmKernel } from "./kernel.ts";
import { importMemory, module } from "./wat.ts";

/** The WAT text of a module holding `kernels` (deduplicated by name) and the helpers they use. */
export function kernelModuleWat(
  kernels: readonly WasmKernel[],
  helpers: Readonly<Record<string, string>>,
  memoryPages: number,
): string {
  const unique = new Map<string, WasmKernel>();
  for (const k of kernels) if (!unique.has(k.name)) unique.set(k.name, k);
  const used = new Set<string>();
  for (const k of unique.values()) {
    for (const h of k.uses) {
      if (!Object.hasOwn(helpers, h)) throw new Error(`kernel ${k.name} uses unknown helper '${h}'`);
      used.add(h);
    }
  }
  return module([
    importMemory("env", "memory", memoryPages, { shared: true }),
    ...[...used].sort().map((h) => helpers[h]),
    ...[...unique.values()].map((k) => k.wat),
  ]);
}
