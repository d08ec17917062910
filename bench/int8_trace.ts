/**
 * `deno run -A bench/int8_trace.ts [preset] [seq] [pipeline]`: where an int8 artifact and the
 * reference interpreter part, layer by layer. Compiles the synthetic `preset` (default bert-base,
 * S=128) with `pipeline` (default canonicalize,cse,fuse,quantize,dce), makes every `qdense` input a
 * result too, and prints for each the max abs difference of the compiled artifact (1 thread) from
 * the clean interpreter, beside that of the interpreter with ±1-ulp noise in every f32 op
 * (bench/ulp_noise.ts, seed 1). When the two grow alike from layer to layer, the artifact differs
 * only by where its f32 ops round; a bug shows as a jump the noise does not make.
 */

import { compile, interpret, loadCompiled, type Module, type WeightStore } from "../mod.ts";
import type { BertPresetName } from "../frontend/synthetic_bert.ts";
import { syntheticWorkload } from "./peers.ts";
import { ulpNoiseRegistry } from "./ulp_noise.ts";

const [preset = "bert-base", seqText = "128", pipeline = "canonicalize,cse,fuse,quantize,dce"] = Deno.args;
const { m, weights, inputs, feeds } = syntheticWorkload(preset as BertPresetName, Number(seqText));
const passed = await compile({ module: m, weights }, { pipeline, codegen: false, log: () => {} });
const module = passed.module as Module, store = passed.weights as WeightStore;
const f = module.funcs[0];
const traced = [...new Set(f.body.filter((op) => op.name === "qdense").map((op) => op.operands[0]))];
f.returns.push(...traced);

const clean = interpret(module, inputs, store);
const noisy = interpret(module, inputs, store, { registry: ulpNoiseRegistry(1) });
const compiled = await compile({ module, weights: store }, { pipeline: "", log: () => {} });
const model = await loadCompiled(compiled.artifact!, { threads: 1 });
const outputs = Object.values(model.run(feeds));
model.close();

/** Max abs difference, as a share of the largest |want| too, and how many elements differ. */
function diff(got: ArrayLike<number>, want: ArrayLike<number>): string {
  let d = 0, top = 0, n = 0;
  for (let i = 0; i < want.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    d = Math.max(d, e);
    top = Math.max(top, Math.abs(want[i]));
    if (e > 1e-6 * Math.max(1, Math.abs(want[i]))) n++;
  }
  return `${d.toExponential(2)} (${((d / (top || 1)) * 100).toFixed(3)}%, ${n} elements)`;
}

console.log(`${module.name} ${pipeline}: ${traced.length} qdense inputs traced`);
console.log(`${"value".padEnd(24)} ${"artifact vs interpreter".padEnd(36)} interpreter with 1-ulp noise`);
clean.forEach((want, i) => {
  const label = i === 0 ? "output" : traced[i - 1].ref;
  console.log(
    `${label.padEnd(24)} ${diff(outputs[i], want.data).padEnd(36)} ${diff(noisy[i].data, want.data)}`,
  );
});
