/**
 * Optimized kernels from the first run, for the hosts that embed V8 with a Node API (Deno, Node).
 *
 * V8 compiles WebAssembly in two tiers: a fast baseline compiler (Liftoff) at load, then the
 * optimizing compiler (TurboFan) for the functions that have run enough ("dynamic tiering"), on
 * background threads. A compiled model calls most kernels once or twice a run (each weight has
 * its own), and while the model's threads keep the cores busy the background compiles lag: in
 * `deno task bench table1` (eight models loaded, one warm-up run each) 2 threads ran BERT-base
 * int8 80% 4x4 in 54-57 ms, against 37.5 ms after five warm-up runs (AMD EPYC Zen 5). So the
 * runtime compiles its kernel module with dynamic tiering off (`--no-wasm-dynamic-tiering`:
 * TurboFan for every function, at load) and turns it back on after, so that other modules of the
 * process compile as before. The flag is V8's, set through `node:v8`; a browser has no such
 * switch, and there V8 tiers up as the model runs.
 */

import { setFlagsFromString } from "node:v8";

/** Runs `compile` (a `WebAssembly.compile` of the kernels) with V8's dynamic tiering off. */
export async function compileOptimized<T>(compile: () => Promise<T>): Promise<T> {
  setFlagsFromString("--no-wasm-dynamic-tiering");
  try {
    return await compile();
  } finally {
    setFlagsFromString("--wasm-dynamic-tiering");
  }
}
