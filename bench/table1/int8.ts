/**
 * `table1 --int8`: INT8 on top of sparsity (issue 18). Per block shape made of 4x4 blocks (the int8
 * block-sparse kernel's unit) the pruned model is also compiled with `quantize`, the dense model
 * too, and onnxruntime-node joins as a peer on the dense model quantized by `quantize` and written
 * by Sparrow's ONNX exporter in onnxruntime's own int8 form (`quantization: "onnxruntime"`:
 * DynamicQuantizeLinear and MatMulInteger, which its optimizer fuses into its fast kernels).
 * Sparrow's int8 outputs are checked against the reference interpreter on the quantized module,
 * within twice what the
 * interpreter itself moves under ±2-ulp noise in its f32 ops (bench/ulp_noise.ts), cached like
 * the onnxruntime references.
 */

import { join } from "node:path";
import { exportOnnx, loadCompiled, loadModule, loadWeights, seededInputs } from "../../mod.ts";
import type { Feeds } from "../peers.ts";
import { ulpNoiseSpread } from "../ulp_noise.ts";
import { BenchError } from "./args.ts";
import type { Artifact, Workload } from "./build.ts";
import { cachedFile, cacheKey, readReference, writeAtomic, writeReference } from "./cache.ts";
import { compilerFingerprint } from "../fingerprint.ts";

/** The int8 pipeline tail after pruning (dense: no bsr-lower). */
export function int8Tail(block?: string): string {
  return block ? `fuse,bsr-lower{block=${block}},quantize,dce` : "fuse,quantize,dce";
}

/** Whether the int8 block-sparse kernel runs blocks of this shape (rows and columns multiples of 4). */
export function int8Block(block: string): boolean {
  const [r, c] = block.split("x").map(Number);
  return r % 4 === 0 && c % 4 === 0;
}

/** The interpreter's output on an int8 artifact's module and the bound its checks use. */
export interface Int8Reference {
  output: Float32Array;
  /** Largest max-abs difference of four ±2-ulp noisy interpreter runs from the clean one (bench/ulp_noise.ts). */
  spread: number;
  /** The check's tolerance: twice the spread. */
  tolerance: number;
}

/** The module and weights an artifact was compiled from (its `model.sir`). */
async function artifactModule(a: Artifact) {
  const path = join(a.dir, "model.sir");
  const loaded = await loadModule(path);
  if (!loaded.module) throw new BenchError(`${path}: ${loaded.diagnostics[0]?.message ?? "cannot load"}`);
  return { module: loaded.module, weights: await loadWeights(loaded.module, path) };
}

/** The interpreter reference of the int8 artifact `a` (cached beside the others under `w.cacheRoot`). */
export async function int8Reference(w: Workload, a: Artifact, fresh?: boolean): Promise<Int8Reference> {
  const key = await cacheKey({
    artifact: a.key,
    what: "int8 reference",
    compiler: await compilerFingerprint(),
  });
  const path = join(w.cacheRoot, `int8-reference-${w.name}-s${w.config.seq}-${key}.f32`);
  const spreadPath = path.replace(/\.f32$/, ".json");
  let output = await readReference(path, fresh);
  let spread: number | undefined;
  if (output) {
    spread = await Deno.readTextFile(spreadPath).then((t) => JSON.parse(t).spread as number, () => undefined);
  }
  if (!output || spread === undefined) {
    const { module, weights } = await artifactModule(a);
    const r = ulpNoiseSpread(module, seededInputs(w.module.funcs[0], 0), weights);
    output = r.output;
    spread = r.spread;
    await writeReference(path, output);
    await writeAtomic(spreadPath, JSON.stringify({ spread }) + "\n");
  }
  return { output, spread, tolerance: 2 * spread };
}

/**
 * The ONNX export of the int8 artifact `a`'s module in onnxruntime's int8 form (onnxruntime-node's
 * int8 peer), cached. Its activations are quantized per tensor to uint8 (not per row to 7 bits),
 * so it is checked against the f32 model: within {@link ORT_INT8_TOLERANCE} of its largest output.
 */
export async function int8Onnx(w: Workload, a: Artifact): Promise<Uint8Array> {
  const path = join(w.cacheRoot, `${w.name}-s${w.config.seq}-int8-ort-${a.key}.onnx`);
  const { module, weights } = await artifactModule(a);
  return await cachedFile(path, () => exportOnnx(module, weights, { quantization: "onnxruntime" }).bytes);
}

/** onnxruntime's int8 model against the f32 one: max abs difference at most 5% of the largest |output|. */
export const ORT_INT8_TOLERANCE = 0.05;

/**
 * Mean GOP/s (or GFLOP/s) of the steps whose op matches `op`, over `runs` profiled runs of the
 * artifact at one thread: the rate per core.
 */
export async function opRate(a: Artifact, feeds: Feeds, op: RegExp, runs = 3): Promise<number> {
  const model = await loadCompiled(a.dir, { threads: 1 });
  try {
    model.run(feeds);
    for (let i = 0; i < runs; i++) model.run(feeds, { profile: true });
    const steps = model.profile().filter((s) => op.test(s.op));
    const ms = steps.reduce((n, s) => n + s.ms, 0), flops = steps.reduce((n, s) => n + s.flops, 0);
    return flops / (ms * 1e6);
  } finally {
    model.close();
  }
}
