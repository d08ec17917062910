/**
 * The artifact side of a `deno task bench table2` configuration, shared by the one-shot, int8 and
 * fine-tuned variants: compile a model with given weights in the configuration's block shape into
 * its own folder, measure the artifact's SST-2 dev accuracy and its logits on the first dev row,
 * and the reference interpreter's logits to check them against.
 */

import { join } from "node:path";
import { type EvalRunner, evaluateSst2, fitToLength, type Sst2Row } from "../../frontend/sst2.ts";
import type { BertTokenizer } from "../../frontend/tokenizer.ts";
import { interpret } from "../../ir/interpreter.ts";
import type { Module } from "../../ir/module.ts";
import { Tensor } from "../../ir/tensor.ts";
import type { WeightStore } from "../../ir/weights.ts";
import { compile, loadCompiled, writeArtifact } from "../../mod.ts";
import type { Job, Setting } from "./job.ts";

/** What pruning gave: the weights after it, the ones it changed, and the passes' log lines. */
export interface Pruned {
  readonly weights: WeightStore;
  readonly changed: ReadonlyMap<string, Tensor>;
  readonly logs: string[];
}

/** The folder name of a configuration. */
export function jobId(j: Job): string {
  return j.method === "dense" ? "dense" : `${j.method}-${j.block}-${Math.round(j.sparsity! * 100)}`;
}

/** A variant of a configuration built beside its f32 artifact, into `<configuration>-<variant>/`. */
export type Variant = "int8" | "finetuned";

/**
 * Compiles `module` (the model at the artifact length) with `pruned.weights`, `bsr-lower` in the
 * job's block shape for a pruned model, into `s.artifacts/<id>`; fails unless every pruned weight
 * was lowered. Variant `int8` adds `quantize` after `bsr-lower` (after `fuse` for dense); a variant
 * writes `s.artifacts/<id>-<variant>`.
 */
export async function build(s: Setting, module: Module, job: Job, pruned: Pruned, variant?: Variant) {
  const quantize = variant === "int8" ? "quantize," : "";
  const pipeline = job.method === "dense"
    ? `canonicalize,cse,fuse,${quantize}dce`
    : `canonicalize,cse,fuse,bsr-lower{block=${job.block} sparsity-threshold=0.3},${quantize}dce`; // not the dense pooler
  const r = await compile({ module, weights: pruned.weights }, {
    pipeline,
    log: () => {}, // the counts are checked below
  });
  const count = (pass: string) =>
    r.stats.filter((x) => x.pass === pass && x.name === "weights").reduce((n, x) => n + x.value, 0);
  const lowered = count("bsr-lower");
  const name = jobId(job) + (variant ? `-${variant}` : "");
  if (lowered !== pruned.changed.size) {
    throw new Error(`${name}: bsr-lower lowered ${lowered} of the ${pruned.changed.size} pruned weights`);
  }
  const dir = join(s.artifacts, name);
  await writeArtifact(r, dir);
  return {
    dir,
    pipeline,
    memoryBytes: r.artifact!.plan.memory.pages * 65536,
    result: r,
    quantized: count("quantize"),
  };
}

/** The model inputs of one dev row fitted to `seq`. */
export function rowInputs(tokenizer: BertTokenizer, row: Sst2Row, seq: number): Record<string, number[]> {
  const fit = fitToLength(tokenizer.encode(row.sentence), seq, tokenizer.sepId, tokenizer.padId);
  return { input_ids: fit.ids, token_type_ids: fit.ids.map(() => 0), attention_mask: fit.mask };
}

/** The reference interpreter's logits of `m` on `values`. */
export function interpreterLogits(
  m: Module,
  store: WeightStore,
  values: Record<string, number[]>,
): Float32Array {
  const f = m.func("main")!;
  const inputs = f.params.map((p) => Tensor.from(p.type.shape, p.type.dtype, values[p.name]));
  return Float32Array.from(interpret(m, inputs, store)[0].data);
}

/** The accuracy of the artifact in `dir` on every row, and its logits on the first (the timing input). */
export async function evaluateArtifact(
  s: Setting,
  l: { readonly tokenizer: BertTokenizer; readonly rows: Sst2Row[] },
  dir: string,
) {
  const model = await loadCompiled(dir, { threads: 1 });
  try {
    const out = model.plan.buckets[0].outputs[0].name;
    const runner: EvalRunner = {
      seq: s.seq,
      labels: model.plan.buckets[0].outputs[0].shape[1],
      run: (values) => model.run(values)[out],
    };
    const acc = evaluateSst2(runner, l.tokenizer, l.rows);
    return { acc, first: Float32Array.from(runner.run(rowInputs(l.tokenizer, l.rows[0], s.seq))) };
  } finally {
    model.close();
  }
}

/** The largest absolute difference between two arrays. */
export const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k] - b[k]));
  return m;
};
