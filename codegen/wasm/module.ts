/**
 * Puts kernels together into one wasm module's text: the imported shared memory, the helper
 * functions the kernels use, and the kernels, each once.
 */

import type { WasmKernel } from "./kernel.ts";

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
  const parts = [`(module`, `  (import "env" "memory" (memory ${memoryPages} ${memoryPages} shared))`];
  for (const h of [...used].sort()) parts.push(helpers[h]);
  for (const k of unique.values()) parts.push(k.wat);
  parts.push(`)`);
  return parts.join("\n") + "\n";
}
