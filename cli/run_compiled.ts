/**
 * `deno task run <artifact-dir>`: runs a compiled model on seeded or given inputs, and prints
 * a summary of the outputs and latency statistics (median, min, max), or a per-op profile.
 */

import {
  ArtifactError,
  type CompiledModel,
  type InputData,
  InputError,
  loadCompiled,
  type PlanBucket,
  Random,
  type ShapeOf,
  writeSafetensors,
} from "../mod.ts";
import { parseCli, readInputsJson, threadsFlag, UsageError } from "./common.ts";

/** The usage text of `deno task run`, both forms (an IR file, an artifact folder). */
export const RUN_USAGE =
  `usage: deno task run <model.sir> [options]      the reference interpreter, on seeded inputs
       deno task run <artifact-dir> [options]   a compiled artifact (deno task compile ... -o DIR)

  with an IR file (.sir):
  --seed N         seed of the random inputs (default 0)
  --func NAME      the function to run (default main)
  --json           print a summary of each output as JSON
  --save FILE      save the outputs as safetensors

  with an artifact folder:
  --bucket BxS     the compiled shape to run (batch x length), e.g. 1x64; default the first
  --seq N          use N real tokens (mask 1), padding the rest (mask 0); default: the bucket's length
  --seed N         seed of the random inputs (default 0)
  --inputs FILE    inputs as JSON: {"input_ids": [...], ...}, every input the model takes
  --text S         classify sentence S with the artifact's tokenizer and labels (repeatable)
  --threads N      threads to run on (default: the number of cores)
  --repeat N       timed runs after one warm-up run (default 10)
  --profile        print the time per op class and the slowest kernel calls
  --json           print the results as JSON
  --save FILE      save the outputs as safetensors

  -h, --help       print this help`;

/** Classifies `texts` with the artifact's tokenizer and labels, printing a line (or JSON) each. */
function classifyTexts(model: CompiledModel, texts: readonly string[], json: boolean): void {
  const results = texts.map((text) => {
    const t0 = performance.now();
    let c;
    try {
      [c] = model.classify([text]);
    } catch (e) {
      if (e instanceof InputError) throw new UsageError(`--text: ${e.message}`);
      throw e;
    }
    return { text, ...c, ms: performance.now() - t0 };
  });
  if (json) return void console.log(JSON.stringify({ threads: model.threads, results }, null, 2));
  const labels = model.labels!;
  for (const r of results) {
    const probs = r.probabilities.map((p, i) => `${labels[i]} ${p.toFixed(4)}`).join(", ");
    console.log(
      `${r.label}  (${probs}; ${r.ms.toFixed(1)} ms${
        r.truncated ? "; truncated to the model's length" : ""
      })  ${JSON.stringify(r.text)}`,
    );
  }
}

/** A corrupt or missing artifact file: reported as a file-system problem (exit 1). */
class ArtifactProblem extends Deno.errors.NotFound {}

/** Deterministic inputs, as `seededInputs` makes them for the IR: indices within range, masks of ones. */
export function seededPlanInputs(bucket: PlanBucket, seed: number, seq?: number): Record<string, InputData> {
  const rng = new Random(seed);
  const inputs: Record<string, InputData> = {};
  for (const t of bucket.inputs) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const last = t.shape.at(-1) ?? 1;
    const real = (i: number) => seq === undefined || i % last < seq;
    const fill = t.dtype === "f32"
      ? () => rng.normal()
      : t.limit !== undefined
      ? () => rng.int(t.limit!)
      : /mask/i.test(t.name)
      ? () => 1
      : () => 0;
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const v = fill();
      data[i] = /mask/i.test(t.name) && !real(i) ? 0 : v;
    }
    inputs[t.name] = data;
  }
  return inputs;
}

const integer = (name: string, v: string | undefined, min: number): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got '${v}'`);
  }
  return n;
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** The bucket `--bucket BATCHxSEQ` names; by default the first (the only one, or batch 1 at the shortest length). */
function bucketFlag(model: CompiledModel, text: string | undefined): ShapeOf {
  const list = model.buckets.map((b) => `${b.batch}x${b.seq}`);
  if (text === undefined) return model.buckets[0];
  const k = list.indexOf(text.trim());
  if (k < 0) {
    throw new UsageError(`--bucket ${text}: the artifact has buckets ${list.join(", ")} (BATCHxSEQ)`);
  }
  return model.buckets[k];
}

/** Runs `deno task run` on an artifact directory; returns the exit code. */
export async function runCompiled(dir: string, args: string[]): Promise<number | void> {
  const { values } = parseCli(args, {
    seq: { type: "string" },
    bucket: { type: "string" },
    seed: { type: "string", default: "0" },
    inputs: { type: "string" },
    text: { type: "string", multiple: true },
    threads: { type: "string" },
    repeat: { type: "string", default: "10" },
    profile: { type: "boolean" },
    json: { type: "boolean" },
    save: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return void console.log(RUN_USAGE);
  const seed = integer("seed", values.seed, 0)!;
  const repeat = integer("repeat", values.repeat, 1)!;
  const threads = threadsFlag(values.threads);
  const seq = integer("seq", values.seq, 1);

  const t0 = performance.now();
  let model;
  try {
    model = await loadCompiled(dir, { threads });
  } catch (e) {
    if (e instanceof ArtifactError) throw new ArtifactProblem(e.message);
    throw e;
  }
  const loadMs = performance.now() - t0;
  try {
    const shape = bucketFlag(model, values.bucket);
    const bucket = model.plan.buckets[
      model.buckets.findIndex((b) => b.batch === shape.batch && b.seq === shape.seq)
    ];
    const compiledSeq = shape.seq;
    if (seq !== undefined && compiledSeq !== undefined && seq > compiledSeq) {
      throw new UsageError(`--seq ${seq} is longer than the compiled sequence length ${compiledSeq}`);
    }
    if (values.text) return classifyTexts(model, values.text, values.json ?? false);
    const inputs = values.inputs ? {} as Record<string, InputData> : seededPlanInputs(bucket, seed, seq);
    if (values.inputs) {
      // Nothing is filled in: every input comes from the file, checked against the bucket's inputs.
      Object.assign(inputs, await readInputsJson(values.inputs, bucket.inputs));
    }
    let outputs;
    try {
      outputs = model.run(inputs, { bucket: shape }); // warm-up
    } catch (e) {
      if (e instanceof InputError) throw new UsageError(e.message);
      if (e instanceof ArtifactError) throw new ArtifactProblem(e.message);
      throw e;
    }
    const times: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const t = performance.now();
      model.run(inputs, { profile: values.profile, bucket: shape });
      times.push(performance.now() - t);
    }
    const latency = {
      medianMs: median(times),
      minMs: Math.min(...times),
      maxMs: Math.max(...times),
      runs: repeat,
    };
    const memory = { rssBytes: Deno.memoryUsage().rss, weightsBytes: model.plan.memory.weights.size };
    const summary = bucket.outputs.map((t) => {
      const d = outputs[t.name];
      let min = Infinity, max = -Infinity, sum = 0;
      for (const v of d) (min = Math.min(min, v)), (max = Math.max(max, v)), (sum += v);
      return { name: t.name, shape: t.shape, min, max, mean: sum / d.length, first: [...d.slice(0, 8)] };
    });
    const profile = values.profile ? profileTable(model, shape) : undefined;
    if (values.save) {
      await writeSafetensors(
        values.save,
        bucket.outputs.map((t) => ({
          name: t.name,
          dtype: "F32" as const,
          shape: t.shape,
          data: outputs[t.name],
        })),
      );
    }
    if (values.json) {
      const info = { threads: model.threads, relaxedSimd: model.relaxedSimd, loadMs, memory };
      return void console.log(
        JSON.stringify(
          {
            artifact: dir,
            bucket: shape,
            seed,
            seq,
            ...info,
            latency,
            outputs: summary,
            profile: profile?.rows,
          },
          null,
          2,
        ),
      );
    }
    const f = (v: number) => v.toPrecision(6);
    console.log(
      `${dir}: ${model.plan.model}, ${model.threads} thread(s), ${
        model.relaxedSimd ? "relaxed SIMD" : "SIMD"
      }, loaded in ${loadMs.toFixed(0)} ms`,
    );
    for (const s of summary) {
      console.log(`  ${s.name} [${s.shape}]  min ${f(s.min)}  max ${f(s.max)}  mean ${f(s.mean)}`);
      console.log(`    first values: ${s.first.map(f).join(", ")}`);
    }
    console.log(
      `  latency over ${repeat} runs: median ${latency.medianMs.toFixed(2)} ms, min ${
        latency.minMs.toFixed(2)
      } ms, max ${latency.maxMs.toFixed(2)} ms`,
    );
    const mib = (b: number) => (b / 2 ** 20).toFixed(0);
    console.log(
      `  RSS ${mib(memory.rssBytes)} MiB after the runs (weights ${mib(memory.weightsBytes)} MiB, +${
        mib(memory.rssBytes - memory.weightsBytes)
      } MiB)`,
    );
    if (profile) console.log(profile.text);
    if (values.save) console.log(`  outputs saved to ${values.save}`);
  } finally {
    model.close();
  }
}

/** Time per op class, and the slowest steps, from the model's profile. */
function profileTable(model: CompiledModel, bucket: ShapeOf) {
  const steps = model.profile(bucket);
  const total = steps.reduce((a, s) => a + s.ms, 0);
  const byOp = new Map<string, { ms: number; flops: number; calls: number }>();
  for (const s of steps) {
    const e = byOp.get(s.op) ?? { ms: 0, flops: 0, calls: 0 };
    e.ms += s.ms;
    e.flops += s.flops;
    e.calls++;
    byOp.set(s.op, e);
  }
  const rows = [...byOp].map(([op, e]) => ({
    op,
    calls: e.calls,
    ms: e.ms,
    share: e.ms / total,
    gflops: e.flops ? e.flops / (e.ms * 1e6) : undefined,
  })).sort((a, b) => b.ms - a.ms);
  const lines = [`  profile (mean per run, thread 0, barrier waits included): total ${total.toFixed(2)} ms`];
  lines.push(
    `    ${"op".padEnd(24)} ${"calls".padStart(5)} ${"ms".padStart(9)} ${"share".padStart(6)}  GFLOP/s`,
  );
  for (const r of rows) {
    lines.push(
      `    ${r.op.padEnd(24)} ${String(r.calls).padStart(5)} ${r.ms.toFixed(3).padStart(9)} ${
        (100 * r.share).toFixed(1).padStart(5)
      }%  ${r.gflops ? r.gflops.toFixed(1) : "-"}`,
    );
  }
  const slowest = [...steps].sort((a, b) => b.ms - a.ms).slice(0, 8);
  lines.push(`  slowest calls:`);
  for (const s of slowest) {
    lines.push(`    ${s.ms.toFixed(3).padStart(8)} ms  ${s.value} (${s.op}) ${s.kernel}`);
  }
  return { rows, text: lines.join("\n") };
}
