/**
 * Assembles WebAssembly text (WAT) into a binary with wabt, the WebAssembly Binary Toolkit's
 * own parser and encoder compiled to JS. See README "Design notes" for why Sparrow emits WAT
 * text rather than encoding bytes itself.
 */

import initWabt from "npm:wabt@1.0.39";

/** The wasm features Sparrow's kernels use. */
const FEATURES = { simd: true, relaxed_simd: true, threads: true, bulk_memory: true } as const;

let wabt: Awaited<ReturnType<typeof initWabt>> | undefined;

/**
 * Assembles `wat` into a wasm binary. A syntax error throws with wabt's message, which names
 * `filename`, the line and the column. Validation is left to the engine (`WebAssembly.compile`):
 * wabt's validator refuses shared memories even with the threads feature on.
 */
export async function assembleWat(filename: string, wat: string): Promise<Uint8Array> {
  wabt ??= await initWabt();
  let mod;
  try {
    mod = wabt.parseWat(filename, wat, FEATURES);
  } catch (e) {
    throw new Error(`cannot assemble ${filename}: ${(e as Error).message}`);
  }
  try {
    return mod.toBinary({ log: false, write_debug_names: true }).buffer;
  } finally {
    mod.destroy();
  }
}
