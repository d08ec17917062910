/**
 * Gradient checks for the autodiff tests: a case builds a small forward function around one op
 * (or a model), `checkGrad` builds its backward function with `grad`, checks that it verifies and
 * round-trips through print and parse, runs it on the interpreter and compares every gradient
 * with central finite differences of the forward function.
 */

import assert from "node:assert/strict";
import { grad, type GradInfo, runGrad } from "../../ir/autodiff.ts";
import { type FuncBuilder, ModuleBuilder } from "../../ir/builder.ts";
import { formatDiagnostics } from "../../ir/diagnostics.ts";
import { interpret } from "../../ir/interpreter.ts";
import type { Module, Value, Weight } from "../../ir/module.ts";
import type { OpRegistry } from "../../ir/registry.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { Random } from "../../ir/random.ts";
import { BsrTensor, Tensor } from "../../ir/tensor.ts";
import { isFloat, numel, type TensorType } from "../../ir/types.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";

/** An argument of a case's function: its type, and fixed values or the range of its random ones. */
export interface CaseInput {
  readonly name: string;
  readonly type: TensorType;
  /** Fixed values (indices, labels, conditions); random uniform in `range` otherwise. */
  readonly values?: readonly number[];
  /** The range of random values; [-1, 1] by default. */
  readonly range?: readonly [number, number];
}

/** A weight of a case: its type (BSR allowed) and its data. */
export interface CaseWeight {
  readonly name: string;
  readonly type: TensorType;
  readonly data: Tensor;
}

/** A gradient check: a forward function around an op, and how closely to compare. */
export interface GradCase {
  readonly name: string;
  readonly inputs: readonly CaseInput[];
  readonly weights?: readonly CaseWeight[];
  /** Builds the op(s) on the arguments and weights; the loss is `Σ result · r` for a random r. */
  build(f: FuncBuilder, args: Value[], weights: Weight[]): Value;
  /** Finite-difference step; 1e-5 by default (f64). */
  readonly h?: number;
  /** Relative tolerance; 1e-6 by default. */
  readonly tol?: number;
  /** The ops, when the case needs others than the built-in ones. */
  readonly registry?: OpRegistry;
}

/** A seeded uniform tensor. */
export function uniform(type: TensorType, rng: Random, range: readonly [number, number] = [-1, 1]): Tensor {
  const t = Tensor.zeros(type);
  for (let i = 0; i < t.data.length; i++) t.data[i] = range[0] + (range[1] - range[0]) * rng.next();
  return t;
}

/** Indices of the elements to check: all when there are at most `max`, else a seeded sample. */
export function sampleIndices(n: number, max: number, rng: Random): number[] {
  if (n <= max) return Array.from({ length: n }, (_, i) => i);
  const picked = new Set<number>();
  while (picked.size < max) picked.add(rng.int(n));
  return [...picked].sort((a, b) => a - b);
}

/** A copy of a tensor (BSR ones as BSR) with element `i` of its data moved by `delta`. */
export function nudged(t: Tensor, i: number, delta: number): Tensor {
  if (t instanceof BsrTensor) {
    const data = Float32Array.from(t.data as Float32Array);
    data[i] += delta;
    return new BsrTensor(t.sparseType, data, t.indices, t.indptr);
  }
  const data = t.data.slice();
  data[i] += delta;
  return new Tensor(t.type, data);
}

/** Asserts that the module verifies and that print, parse, print gives the same text. */
export function assertRoundTrip(m: Module, registry?: OpRegistry): string {
  const problems = verify(m, { registry });
  assert.equal(problems.length, 0, formatDiagnostics(problems));
  const text = print(m);
  const back = parse(text);
  assert.ok(back.module, formatDiagnostics(back.diagnostics));
  assert.equal(print(back.module), text);
  assert.equal(verify(back.module, { registry }).length, 0);
  return text;
}

/** What `compareGrads` reports: the worst relative error and how many entries were compared. */
export interface Comparison {
  readonly worst: number;
  readonly checked: number;
}

/**
 * Compares the gradient `ad` of the loss wrt one input with central differences
 * `(loss(x + h) - loss(x - h)) / 2h` at the sampled elements; throws naming the first element whose
 * error exceeds `tol · max(|fd|, |ad|, 1e-3 · max|ad|)`.
 */
export function compareGrads(
  label: string,
  ad: Tensor,
  at: readonly number[],
  loss: (i: number, delta: number) => number,
  h: number,
  tol: number,
): Comparison {
  let gmax = 0;
  for (const v of ad.data) gmax = Math.max(gmax, Math.abs(v));
  let worst = 0;
  for (const i of at) {
    const fd = (loss(i, h) - loss(i, -h)) / (2 * h);
    const a = ad.data[i];
    const scale = Math.max(Math.abs(fd), Math.abs(a), 1e-3 * gmax, 1e-12);
    const err = Math.abs(a - fd) / scale;
    worst = Math.max(worst, err);
    assert.ok(
      err <= tol,
      `${label}[${i}]: autodiff ${a}, finite differences ${fd} (relative error ${err} > ${tol})`,
    );
  }
  return { worst, checked: at.length };
}

/** Builds a case's module: `@main(args) -> loss` with loss `Σ build(...) · @r`. */
export function caseModule(c: GradCase, rng: Random): { m: Module; inputs: Tensor[]; weights: WeightStore } {
  const b = new ModuleBuilder("grad_case", { registry: c.registry });
  const ws = (c.weights ?? []).map((w) => b.weight(w.name, w.type));
  const f = b.func("main", c.inputs.map((i) => [i.name, i.type] as const));
  const y = c.build(f, f.params, ws);
  const r = b.weight("r", { shape: [...y.type.shape], dtype: y.type.dtype });
  const weighted = f.op("mul", [y, r], {}, { name: "weighted" });
  const rank = y.type.shape.length;
  const loss = rank === 0
    ? weighted
    : f.op("reduce_sum", [weighted], { axes: [...Array(rank).keys()], keepdims: false }, { name: "loss" });
  f.ret(loss);
  const data = new Map<string, Tensor>((c.weights ?? []).map((w) => [w.name, w.data]));
  data.set("r", uniform(r.type, rng));
  const inputs = c.inputs.map((i) =>
    i.values ? Tensor.from(i.type.shape, i.type.dtype, i.values) : uniform(i.type, rng, i.range)
  );
  return { m: b.module, inputs, weights: memoryStore(data) };
}

/**
 * Checks a case: grad wrt every float argument and every weight of the case, the backward function
 * verifies and round-trips, and each gradient matches finite differences (up to 24 sampled elements
 * per gradient). Returns the worst relative error.
 */
export function checkGrad(c: GradCase, seed = 1): Comparison {
  const rng = new Random(seed);
  const { m, inputs, weights } = caseModule(c, rng);
  const args = c.inputs.filter((i) => isFloat(i.type.dtype) && !i.values).map((i) => i.name);
  const info: GradInfo = grad(m, "main", {
    wrt: (c.weights ?? []).map((w) => w.name),
    args,
    registry: c.registry,
  });
  assertRoundTrip(m, c.registry);
  const { grads } = runGrad(m, info, inputs, weights, { registry: c.registry });
  const h = c.h ?? 1e-5, tol = c.tol ?? 1e-6;
  let worst = 0, checked = 0;
  const lossWith = (ins: Tensor[], store: WeightStore) =>
    interpret(m, ins, store, { registry: c.registry })[0].data[0];
  for (const entry of info.grads) {
    const ad = grads.get(entry.name)!;
    assert.deepEqual(ad.shape, entry.type.shape);
    const at = sampleIndices(numel(ad.shape), 24, rng);
    let loss: (i: number, delta: number) => number;
    if (entry.kind === "arg") {
      const k = c.inputs.findIndex((i) => i.name === entry.name);
      loss = (i, d) => lossWith(inputs.map((t, j) => j === k ? nudged(t, i, d) : t), weights);
    } else {
      const w = m.weights.get(entry.name)!;
      const base = weights.get(w);
      loss = (i, d) =>
        lossWith(inputs, {
          entries: () => weights.entries(),
          get: (x) => x.name === w.name ? nudged(base, i, d) : weights.get(x),
        });
    }
    const r = compareGrads(`${c.name}: d/d${entry.name}`, ad, at, loss, h, tol);
    worst = Math.max(worst, r.worst);
    checked += r.checked;
  }
  assert.ok(checked > 0, `${c.name}: nothing was compared`);
  return { worst, checked };
}
