/**
 * Real exporter output on the compiled path: the small BERTs that `torch.onnx.export` wrote
 * (tests/fixtures/onnx/, made by generate.py at opsets 11 to 17, with and without constant
 * folding and dynamic axes, dense and block-pruned) are imported, compiled with `compile()` and
 * run with `loadCompiled`. Their logits must match torch's (manifest.json) within 1e-4, and so
 * must the reference interpreter's and onnxruntime's on the same inputs. The pooler's
 * `hidden[:, 0]` (a Gather on axis 1, or Slice and Squeeze, inside an If under dynamic axes)
 * must be a view (no kernel runs for it), and the attention's division by sqrt(d) the softmax
 * kernel's scale. Pruned fixtures also compile through `bsr-lower` to sparse kernels, and
 * dynamic ones at batch 2 (where the pooler's selection is a strided copy) against torch and at
 * a second sequence length against onnxruntime.
 *
 * onnxruntime-node needs `--allow-ffi` (`deno task test` grants it); without it only the
 * onnxruntime comparisons are left out.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { onnxToModule } from "../frontend/onnx/import.ts";
import {
  compile,
  type CompileResult,
  interpret,
  loadCompiled,
  memoryStore,
  type Module,
  Tensor,
  type Value,
} from "../mod.ts";

const DIR = new URL("./fixtures/onnx/", import.meta.url).pathname;
const TOL = 1e-4;
const CAN_ORT = Deno.permissions.querySync({ name: "ffi" }).state === "granted";

/** One row of a fixture's goldens: the inputs at batch 1 and torch's logits. */
interface GoldenCase {
  readonly input_ids: number[];
  readonly token_type_ids: number[];
  readonly attention_mask: number[];
  readonly logits: number[];
}

/** A fixture as manifest.json lists it. */
interface Fixture {
  readonly file: string;
  readonly opset: number;
  readonly constantFolding: boolean;
  readonly dynamicAxes: boolean;
  readonly pruned: string | null;
  readonly pooler: "select" | "narrow";
  readonly seq: number;
  readonly cases: readonly GoldenCase[];
}

const manifest: { fixtures: Fixture[] } = JSON.parse(Deno.readTextFileSync(join(DIR, "manifest.json")));

const NAMES = ["input_ids", "token_type_ids", "attention_mask"] as const;

/** The inputs of a case cut to its first `seq` positions, as the compiled model takes them. */
function feeds(c: GoldenCase, seq: number): Record<string, number[]> {
  return Object.fromEntries(NAMES.map((n) => [n, c[n].slice(0, seq)]));
}

/** The max abs difference of two logit vectors of one length. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "logit counts differ");
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Runs the ONNX file with onnxruntime on each input set: the logits of each. */
async function ortLogits(path: string, inputs: readonly Record<string, number[]>[]): Promise<Float32Array[]> {
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(await Deno.readFile(path), { logSeverityLevel: 3 });
  try {
    const out: Float32Array[] = [];
    for (const f of inputs) {
      const tensors = Object.fromEntries(
        NAMES.map((n) => [n, new ort.Tensor("int64", BigInt64Array.from(f[n], BigInt), [1, f[n].length])]),
      );
      const r = await session.run(tensors);
      out.push(Float32Array.from(r[session.outputNames[0]].data as Float32Array));
    }
    return out;
  } finally {
    await session.release();
  }
}

/** Runs the compiled artifact on each input set (at `threads` threads): the logits of each. */
async function compiledLogits(
  result: CompileResult,
  inputs: readonly Record<string, number[]>[],
  threads: number,
): Promise<Float32Array[]> {
  const model = await loadCompiled(result.artifact!, { threads });
  try {
    return inputs.map((f) => Float32Array.from(model.run(f).logits));
  } finally {
    model.close();
  }
}

/** Runs the reference interpreter on each input set: the logits of each. */
function interpretedLogits(
  module: Module,
  weights: CompileResult["weights"],
  inputs: readonly Record<string, number[]>[],
): ArrayLike<number>[] {
  return inputs.map((f) => {
    const args = NAMES.map((n) => Tensor.from([1, f[n].length], "i64", f[n]));
    return interpret(module, args, weights)[0].data;
  });
}

/** Whether `v` depends on a function input (is not computable at compile time). */
function atRunTime(v: Value): boolean {
  if (v.kind === "arg") return true;
  return v.definingOp?.operands.some(atRunTime) ?? false;
}

/**
 * The pooler's first-token selection: the `gather`s and `slice`s of a run-time tensor by
 * compile-time indices. There must be one, and no step of the plan may compute it (it is a view).
 */
function assertFirstTokenIsAView(result: CompileResult, label: string): void {
  const f = result.module.funcs[0];
  const picks = f.body.filter((op) =>
    (op.name === "gather" || op.name === "slice") && atRunTime(op.operands[0]) &&
    op.operands.slice(1).every((v) => !atRunTime(v))
  );
  assert.equal(picks.length, 1, `${label}: one selection of the encoder output (the pooler's [:, 0])`);
  const computed = new Set(result.artifact!.plan.buckets[0].steps.map((s) => s.value));
  assert.ok(!computed.has(picks[0].result.ref), `${label}: ${picks[0].result.ref} is a copy, not a view`);
}

/** Checks `got` against `want` row by row within TOL, with a label naming the fixture, path and row. */
function assertClose(
  label: string,
  what: string,
  got: readonly ArrayLike<number>[],
  want: readonly ArrayLike<number>[],
): number {
  let worst = 0;
  got.forEach((g, i) => {
    const d = maxDiff(g, want[i]);
    worst = Math.max(worst, d);
    assert.ok(d <= TOL, `${label}: ${what}, row ${i}: max abs difference ${d.toExponential(2)} > ${TOL}`);
  });
  return worst;
}

assert.ok(manifest.fixtures.length >= 16, "manifest.json lists the fixtures");

for (const [i, fx] of manifest.fixtures.entries()) {
  const label = fx.file;
  const path = join(DIR, fx.file);
  Deno.test(`torch fixture ${label}: compiled, interpreted and onnxruntime logits match torch`, async () => {
    const inputs = fx.cases.map((c) => feeds(c, fx.seq));
    const torch = fx.cases.map((c) => c.logits);
    const lines: string[] = [];

    const result = await compile(path, { seq: fx.seq, log: () => {} });
    assertFirstTokenIsAView(result, label);
    // torch writes `scores / sqrt(d)`: the division is the softmax kernel's scale, not a kernel of its own.
    const softmaxSteps = result.artifact!.plan.buckets[0].steps.filter((s) => s.op.includes("softmax"));
    assert.deepEqual(softmaxSteps.map((s) => s.op), ["div+softmax", "div+softmax"], label);
    const compiled = await compiledLogits(result, inputs, 1 + (i % 2));
    lines.push(`compiled ${assertClose(label, "compiled vs torch", compiled, torch).toExponential(2)}`);

    // The interpreter, on the compiled module and on the plain import (no passes at all).
    const interpreted = interpretedLogits(result.module, result.weights, inputs);
    lines.push(
      `interpreted ${assertClose(label, "interpreter vs torch", interpreted, torch).toExponential(2)}`,
    );
    const raw = onnxToModule(await Deno.readFile(path), { seq: fx.seq, source: path });
    const rawLogits = interpretedLogits(raw.module, memoryStore(raw.weights), inputs);
    assertClose(label, "interpreter (plain import) vs torch", rawLogits, torch);

    if (CAN_ORT) {
      const ort = await ortLogits(path, inputs);
      lines.push(`onnxruntime ${assertClose(label, "onnxruntime vs torch", ort, torch).toExponential(2)}`);
      assertClose(label, "compiled vs onnxruntime", compiled, ort);
    }

    if (fx.pruned) {
      // The zeros line up with the blocks: bsr-lower takes every encoder weight to sparse kernels.
      const sparse = await compile(path, {
        seq: fx.seq,
        pipeline: `bsr-lower{block=${fx.pruned}},canonicalize,cse,fuse,dce`,
        log: () => {},
      });
      const bsr = sparse.module.funcs[0].body.filter((op) => op.name === "bsr_dense").length;
      assert.equal(bsr, 12, `${label}: every encoder Linear (6 per layer, 2 layers) is bsr_dense`);
      assertFirstTokenIsAView(sparse, `${label} (BSR)`);
      const got = await compiledLogits(sparse, inputs, 2);
      lines.push(`BSR ${assertClose(label, "compiled BSR vs torch", got, torch).toExponential(2)}`);
    }

    if (fx.dynamicAxes) {
      // At batch 2 the first tokens are not contiguous: the pooler's selection is a strided copy.
      const conv = onnxToModule(await Deno.readFile(path), { seq: fx.seq, batch: 2, source: path });
      const batch2 = await compile({ module: conv.module, weights: memoryStore(conv.weights) }, {
        pipeline: "recognize,canonicalize,cse,fuse,dce",
        log: () => {},
      });
      const steps = batch2.artifact!.plan.buckets[0].steps.filter((s) =>
        /^%bert\.pooler\.(Gather|Slice)/.test(s.value)
      );
      assert.deepEqual(steps.map((s) => s.op), [fx.pooler === "select" ? "gather" : "slice"], label);
      const rows = [0, 1].map((r) => inputs[r]);
      const both = Object.fromEntries(NAMES.map((n) => [n, rows.flatMap((f) => f[n])]));
      const [got] = await compiledLogits(batch2, [both], 2);
      const want = [0, 1].flatMap((r) => torch[r]);
      lines.push(
        `batch 2 ${assertClose(label, "compiled at batch 2 vs torch", [got], [want]).toExponential(2)}`,
      );
    }

    if (fx.dynamicAxes && CAN_ORT) {
      // Dynamic batch and sequence axes: the same file compiles at another length.
      const short = fx.cases.map((c) => feeds(c, 8));
      const result8 = await compile(path, { seq: 8, log: () => {} });
      assertFirstTokenIsAView(result8, `${label} at seq 8`);
      const got = await compiledLogits(result8, short, 1);
      const want = await ortLogits(path, short);
      lines.push(
        `seq 8 ${assertClose(label, "compiled vs onnxruntime at seq 8", got, want).toExponential(2)}`,
      );
    }
    console.log(`${label}: max abs difference to torch: ${lines.join(", ")}`);
  });
}
