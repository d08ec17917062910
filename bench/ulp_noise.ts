/**
 * The reference interpreter's own sensitivity to rounding, the bound of the int8 output checks.
 *
 * An int8 model quantizes activations, so a value one ulp away can land on the other side of a
 * rounding step of the quantizer, and the step then travels through every later layer. The wasm
 * kernels compute `qdense` bit for bit like the interpreter on equal inputs
 * (tests/codegen/qgemm_test.ts), but the f32 ops around it (layer norm, softmax, GELU, the f32
 * GEMMs of attention) round differently by ulps (FMA, summation order, another erf), as do
 * onnxruntime's. So an int8 implementation is checked against the interpreter within what the
 * interpreter itself moves when every arithmetic op's f32 results are moved by ±2 ulps at random:
 * a rounding difference stays inside that, a wrong scale, offset or index does not.
 *
 * `deno run -A bench/int8_trace.ts` shows the two side by side, layer by layer, on BERT-base.
 */

import {
  builtinRegistry,
  interpret,
  type Module,
  type OpDef,
  OpRegistry,
  type Tensor,
  type WeightStore,
} from "../mod.ts";
import { maxAbsDiff } from "./stats.ts";

/** Ops that only move or select values: exact in every implementation, so left unperturbed. */
const EXACT_OPS = new Set(["cast", "concat", "constant", "gather", "reshape", "slice", "transpose", "where"]);

/** The built-in ops, with every arithmetic op's f32 elements moved by ±`ulps` ulp with probability 1/2 (seeded). */
export function ulpNoiseRegistry(seed: number, ulps = 1): OpRegistry {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const noisy = (d: OpDef): OpDef => ({
    ...d,
    interpret(inputs, attrs, result) {
      const out = d.interpret(inputs, attrs, result);
      if (!(out.data instanceof Float32Array)) return out;
      const bits = new Int32Array(out.data.buffer, out.data.byteOffset, out.data.length);
      for (let i = 0; i < bits.length; i++) {
        if (next() < 0.5 && Number.isFinite(out.data[i]) && out.data[i] !== 0) {
          bits[i] += next() < 0.5 ? ulps : -ulps;
        }
      }
      return out;
    },
  });
  return new OpRegistry(
    builtinRegistry.names().map((n) => {
      const d = builtinRegistry.get(n)!;
      return EXACT_OPS.has(n) ? d : noisy(d);
    }),
  );
}

/**
 * The interpreter's output of `m`, and the largest max-abs difference from it over noisy runs
 * (`seeds`, each op's elements moved by ±`ulps`). A flip is a rare event on a small model (on
 * bert-mini one seed in four moved the output by 1.7e-2 at 1 ulp, the others by 2e-6), so the
 * default takes four seeds at 2 ulps.
 */
export function ulpNoiseSpread(
  m: Module,
  inputs: readonly Tensor[],
  weights: WeightStore,
  seeds: readonly number[] = [1, 2, 3, 4],
  ulps = 2,
): { output: Float32Array; spread: number } {
  const [clean] = interpret(m, inputs, weights);
  let spread = 0;
  for (const seed of seeds) {
    const [y] = interpret(m, inputs, weights, { registry: ulpNoiseRegistry(seed, ulps) });
    spread = Math.max(spread, maxAbsDiff(y.data as Float32Array, clean.data as Float32Array));
  }
  return { output: clean.data as Float32Array, spread };
}
