/**
 * `--tune`: times every candidate schedule of a sparse product on this machine (one thread,
 * random inputs with the weight's real pattern) and returns the median time of each. The
 * candidates are `bsrVariants`', so a weight with few block-row patterns has its row-grouped
 * kernel (codegen/wasm/grouped_bsr.ts) timed beside the index-driven ones.
 */

import { bsrKernel, type BsrSpec, variantKey } from "./wasm/bsr.ts";
import { bsrVariants } from "./wasm/bsr_cost.ts";
import { packBsrData, packBsrIndex } from "./bsr_pack.ts";
import { assembleWat } from "./wasm/assemble.ts";
import type { KernelTarget, WasmKernel } from "./wasm/kernel.ts";
import { WASM_HELPERS } from "./wasm/math.ts";
import { kernelModuleWat } from "./wasm/module.ts";
import { alignUp } from "./memory_plan.ts";

/** Median of a non-empty list. */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Times each candidate schedule of `spec` (`repeats` runs after a warm-up); returns ms by variant key. */
export async function timeBsrVariants(
  spec: BsrSpec,
  blockData: Float32Array,
  target: KernelTarget,
  repeats = 7,
): Promise<Record<string, number>> {
  const candidates = bsrVariants(spec).map((variant) => {
    const g = bsrKernel(spec, variant, target);
    return { variant, ...g, data: packBsrData(spec, variant, blockData), index: packBsrIndex(spec, variant) };
  });
  let at = 64;
  const place = (bytes: number) => {
    const p = at;
    at = alignUp(at + Math.max(bytes, 4));
    return p;
  };
  const x = place(spec.M * spec.K * 4), bias = place(spec.N * 4), y = place(spec.M * spec.N * 4);
  const layout = candidates.map((c) => ({
    data: place(c.data.byteLength),
    index: c.index ? place(c.index.byteLength) : undefined,
    scratch: place(c.scratchBytes),
  }));
  const pages = Math.ceil(at / 65536) + 1;
  const kernels: WasmKernel[] = candidates.flatMap((c) => (c.prepare ? [c.prepare, c.kernel] : [c.kernel]));
  const wasm = await assembleWat("tune.wat", kernelModuleWat(kernels, WASM_HELPERS, pages));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(wasm as BufferSource), {
    env: { memory },
  });
  const exports = instance.exports as Record<string, (...args: number[]) => void>;
  const f32 = new Float32Array(memory.buffer);
  for (let i = 0; i < spec.M * spec.K; i++) f32[x / 4 + i] = Math.sin(i) * 0.5;
  const timings: Record<string, number> = {};
  candidates.forEach((c, i) => {
    const l = layout[i];
    new Float32Array(memory.buffer, l.data, c.data.length).set(c.data);
    if (c.index && l.index !== undefined) new Int32Array(memory.buffer, l.index, c.index.length).set(c.index);
    const args = [
      x,
      l.data,
      ...(l.index !== undefined ? [l.index] : []),
      ...(spec.bias ? [bias] : []),
      y,
      l.scratch,
    ];
    const prepare = c.prepare ? exports[c.prepare.name] : undefined;
    const kernel = exports[c.kernel.name];
    const once = () => {
      const t = performance.now();
      prepare?.(x, l.scratch, 0, 1);
      kernel(...args, 0, 1);
      return performance.now() - t;
    };
    once();
    timings[variantKey(c.variant)] = median(Array.from({ length: repeats }, once));
  });
  return timings;
}
