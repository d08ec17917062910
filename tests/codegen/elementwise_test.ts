import assert from "node:assert/strict";
import { broadcastOffsets } from "../../ir/ops/common.ts";
import { erfFn } from "../../ir/ops/erf_fn.ts";
import {
  type ElementwiseExpr,
  elementwiseKernel,
  type ElementwiseSpec,
} from "../../codegen/wasm/elementwise.ts";
import type { KernelTarget } from "../../codegen/wasm/kernel.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { KernelHarness, TARGETS } from "./wasm_harness.ts";

/** A seeded uniform generator on [0, 1) (mulberry32). */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let r = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const f = Math.fround;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** The reference value of `e`, each op rounded to f32 as the IR's ops store their results. */
function evaluate(e: ElementwiseExpr, input: (i: number) => number): number {
  if ("input" in e) return input(e.input);
  if ("constant" in e) return f(e.constant);
  const [a, b] = e.args.map((x) => evaluate(x, input));
  switch (e.op) {
    case "add":
      return f(a + b);
    case "sub":
      return f(a - b);
    case "mul":
      return f(a * b);
    case "div":
      return f(a / b);
    case "pow":
      return f(Math.pow(a, b));
    case "max":
      return Math.max(a, b);
    case "min":
      return Math.min(a, b);
    case "neg":
      return -a;
    case "abs":
      return Math.abs(a);
    case "sqrt":
      return f(Math.sqrt(a));
    case "exp":
      return f(Math.exp(a));
    case "erf":
      return f(erfFn(a));
    case "tanh":
      return f(Math.tanh(a));
    case "gelu":
      return f(0.5 * a * (1 + erfFn(a / Math.SQRT2)));
    case "gelu_tanh":
      return f(0.5 * a * (1 + Math.tanh(SQRT_2_OVER_PI * (a + 0.044715 * a * a * a))));
  }
}

/** True when the expression has only ops the kernel computes exactly (correctly rounded). */
function exact(e: ElementwiseExpr): boolean {
  if (!("op" in e)) return true;
  if (["erf", "tanh", "gelu", "gelu_tanh", "exp"].includes(e.op)) return false;
  if (e.op === "pow") {
    const c = e.args[1];
    if (!("constant" in c) || ![0, 1, 2, 0.5, -1].includes(c.constant)) return false;
  }
  return e.args.every(exact);
}

const sameValue = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

interface Run {
  spec: ElementwiseSpec;
  data?: Float32Array[];
  /** Write the output over this input (which must have the output's shape). */
  inPlace?: number;
  /** Absolute tolerance (plus the same relative) for expressions that are not exact. */
  tol?: number;
}

/** Runs the kernel with 1..3 threads on `target`; checks every element and the NaN guard. */
async function check(r: Run, target: KernelTarget, seed: number): Promise<void> {
  const { spec } = r;
  const next = rng(seed);
  const data = r.data ??
    spec.inputs.map((inp) => Float32Array.from({ length: numel(inp.shape) }, () => next() * 6 - 3));
  const n = numel(spec.shape);
  const offsets = spec.inputs.map((inp) => broadcastOffsets(inp.shape, spec.shape));
  const want = Array.from({ length: n }, (_, i) => evaluate(spec.expr, (k) => data[k][offsets[k][i]]));
  const isExact = exact(spec.expr);
  const tol = r.tol ?? 1e-6;
  const kernel = elementwiseKernel(spec, target);
  const floats = data.reduce((a, d) => a + d.length + 16, n + 20);
  const h = await KernelHarness.create([kernel], WASM_HELPERS, 3 * 4 * floats + (1 << 16));
  for (const threads of [1, 2, 3]) {
    const addrs = data.map((d) => h.put(d));
    const out = r.inPlace !== undefined ? addrs[r.inPlace] : h.alloc(n + 4);
    h.run(kernel.name, [...addrs, out], threads);
    const got = h.read(out, n + 4);
    for (let i = 0; i < n; i++) {
      const msg = `${kernel.name} threads ${threads} out[${i}] = ${got[i]}, want ${want[i]}`;
      if (isExact) assert.ok(sameValue(got[i], want[i]), msg);
      else if (!Number.isFinite(want[i])) assert.ok(sameValue(got[i], want[i]), msg);
      else assert.ok(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])), msg);
    }
    if (r.inPlace === undefined) {
      for (let i = n; i < n + 4; i++) {
        assert.ok(Number.isNaN(got[i]), `${kernel.name} wrote past the end at ${i}`);
      }
    }
  }
}

const x = (input: number): ElementwiseExpr => ({ input });
const c = (constant: number): ElementwiseExpr => ({ constant });
const op = (name: string, ...args: ElementwiseExpr[]) => ({ op: name, args }) as ElementwiseExpr;

/** Every broadcast form: same shape, bias along leading dims, scalars, and general broadcasts. */
const BROADCASTS: [number[], number[][]][] = [
  [[1, 128, 768], [[1, 128, 768], [1, 128, 768]]],
  [[37], [[37], [37]]],
  [[2, 3, 7], [[2, 3, 7], [7]]],
  [[5, 13], [[13], [5, 13]]],
  [[1, 128, 768], [[1, 128, 768], [768]]],
  [[3, 4, 6], [[3, 4, 6], [4, 6]]],
  [[2, 9], [[2, 9], []]],
  [[2, 9], [[1, 1], [2, 9]]],
  [[4, 5], [[4, 1], [1, 5]]],
  [[6, 7], [[6, 7], [6, 1]]],
  [[2, 4, 3], [[2, 1, 3], [1, 4, 1]]],
  [[3, 4, 5], [[3, 1, 5], [3, 4, 1]]],
  [[2, 3, 4, 5], [[2, 3, 4, 5], [3, 1, 5]]],
  [[1, 12, 16, 16], [[1, 12, 16, 16], [1, 1, 1, 16]]],
  [[1, 12, 16, 16], [[1, 12, 16, 16], [1, 12, 1, 16]]],
  [[2, 1, 3], [[2, 1, 3], [1]]],
  [[1], [[1], [1]]],
  [[3], [[], []]],
];

for (const target of TARGETS) {
  Deno.test(`elementwise binary ops over every broadcast form (relaxedSimd ${target.relaxedSimd})`, async () => {
    for (const [i, [shape, shapes]] of BROADCASTS.entries()) {
      const inputs = shapes.map((s) => ({ shape: s }));
      for (const name of numel(shape) > 10000 ? ["add"] : ["add", "sub", "mul", "div", "max", "min"]) {
        await check({ spec: { shape, inputs, expr: op(name, x(0), x(1)) } }, target, i);
      }
    }
  });

  Deno.test(`elementwise unary ops and chains (relaxedSimd ${target.relaxedSimd})`, async () => {
    const inputs = [{ shape: [3, 37] }, { shape: [37] }];
    for (const name of ["neg", "sqrt", "abs", "exp", "erf", "tanh", "gelu", "gelu_tanh"]) {
      await check({ spec: { shape: [3, 37], inputs, expr: op(name, x(0)) } }, target, 1);
      await check({ spec: { shape: [3, 37], inputs, expr: op(name, op("add", x(0), x(1))) } }, target, 2);
    }
    // gelu written out: x·0.5·(1 + erf(x/√2)), with x used three times
    const gelu = op(
      "mul",
      op("mul", x(0), c(0.5)),
      op("add", c(1), op("erf", op("div", x(0), c(Math.SQRT2)))),
    );
    await check({ spec: { shape: [3, 37], inputs, expr: gelu } }, target, 3);
  });

  Deno.test(`elementwise pow: exact for 0, 1, 2, 0.5, -1; close otherwise (relaxedSimd ${target.relaxedSimd})`, async () => {
    const special = Float32Array.from([
      0,
      -0,
      1,
      -1,
      2.5,
      -2.5,
      1e-3,
      7,
      Infinity,
      -Infinity,
      NaN,
      3e19,
      1e-30,
    ]);
    const shape = [special.length];
    const inputs = [{ shape }];
    for (const e of [0, 1, 2, 0.5, -1, 3, -2, 4, 7, -0.5]) {
      await check(
        { spec: { shape, inputs, expr: op("pow", x(0), c(e)) }, data: [special], tol: 1e-6 },
        target,
        4,
      );
    }
    // a general pow: positive bases, any exponents; and negative bases with integer exponents
    const base = Float32Array.from({ length: 41 }, (_, i) => 0.05 + i * 0.25);
    const exps = Float32Array.from({ length: 41 }, (_, i) => -3 + i * 0.15);
    const general = { shape: [41], inputs: [{ shape: [41] }, { shape: [41] }], expr: op("pow", x(0), x(1)) };
    await check({ spec: general, data: [base, exps], tol: 5e-6 }, target, 5);
    const negative = Float32Array.from({ length: 41 }, (_, i) => -0.5 - i * 0.1);
    const ints = Float32Array.from({ length: 41 }, (_, i) => (i % 9) - 4);
    await check({ spec: general, data: [negative, ints], tol: 5e-6 }, target, 6);
    await check(
      { spec: { ...general, expr: op("pow", x(0), c(1.5)) }, data: [base, exps], tol: 5e-6 },
      target,
      7,
    );
  });

  Deno.test(`elementwise in place (relaxedSimd ${target.relaxedSimd})`, async () => {
    const expr = op("add", op("mul", x(0), x(1)), x(2));
    const inputs = [{ shape: [5, 19] }, { shape: [19] }, { shape: [5, 19] }];
    await check({ spec: { shape: [5, 19], inputs, expr }, inPlace: 0 }, target, 8);
    await check({ spec: { shape: [5, 19], inputs, expr }, inPlace: 2 }, target, 9);
    await check(
      { spec: { shape: [100], inputs: [{ shape: [100] }], expr: op("gelu", x(0)) }, inPlace: 0 },
      target,
      10,
    );
  });

  Deno.test(`elementwise random expressions and shapes (relaxedSimd ${target.relaxedSimd})`, async () => {
    const next = rng(1234);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
    for (let trial = 0; trial < 25; trial++) {
      const rank = 1 + Math.floor(next() * 4);
      const shape = Array.from({ length: rank }, () => 1 + Math.floor(next() * 9));
      const inputs = Array.from({ length: 1 + Math.floor(next() * 3) }, () => {
        const keep = Math.floor(next() * (rank + 1));
        return { shape: shape.slice(rank - keep).map((n) => next() < 0.3 ? 1 : n) };
      });
      inputs[0] = { shape };
      const gen = (depth: number): ElementwiseExpr => {
        const r = next();
        if (depth === 0 || r < 0.25) {
          return next() < 0.8 ? x(Math.floor(next() * inputs.length)) : c(next() * 2 - 1);
        }
        if (r < 0.45) return op(pick(["neg", "abs", "tanh", "erf", "gelu", "gelu_tanh"]), gen(depth - 1));
        return op(pick(["add", "sub", "mul", "max", "min"]), gen(depth - 1), gen(depth - 1));
      };
      await check({ spec: { shape, inputs, expr: gen(3) }, tol: 2e-6 }, target, 300 + trial);
    }
  });
}

Deno.test("elementwise gelu and the unfused layer-norm chain at BERT-base size", async () => {
  const target = { relaxedSimd: true };
  await check(
    { spec: { shape: [1, 128, 3072], inputs: [{ shape: [1, 128, 3072] }], expr: op("gelu", x(0)) } },
    target,
    11,
  );
  // (x - mean) / sqrt(var + eps) · gamma + beta, with mean and var [1,128,1]
  const expr = op(
    "add",
    op("mul", op("div", op("sub", x(0), x(1)), op("pow", op("add", x(2), c(1e-12)), c(0.5))), x(3)),
    x(4),
  );
  const inputs = [[1, 128, 768], [1, 128, 1], [1, 128, 1], [768], [768]].map((shape) => ({ shape }));
  const next = rng(12);
  const data = inputs.map((inp) => Float32Array.from({ length: numel(inp.shape) }, () => next() * 2 + 0.1));
  await check({ spec: { shape: [1, 128, 768], inputs, expr }, data }, target, 12);
});

Deno.test("elementwise names encode the specialization", () => {
  const t = { relaxedSimd: false };
  const spec = {
    shape: [1, 128, 768],
    inputs: [{ shape: [1, 128, 768] }, { shape: [768] }],
    expr: op("add", x(0), x(1)),
  };
  const k = elementwiseKernel(spec, t);
  assert.match(k.name, /^eltwise_add_1x128x768_[0-9a-f]{8}$/);
  assert.deepEqual(k.params, ["in0", "in1", "out"]);
  assert.equal(elementwiseKernel(structuredClone(spec), { relaxedSimd: true }).wat, k.wat);
  const other = [
    { ...spec, inputs: [{ shape: [1, 128, 768] }, { shape: [1, 128, 768] }] },
    { ...spec, expr: op("add", x(1), x(0)) },
    { ...spec, expr: op("sub", x(0), x(1)) },
    { ...spec, expr: op("add", x(0), c(1)) },
  ];
  for (const o of other) assert.notEqual(elementwiseKernel(o, t).name, k.name);
  const gelu = { ...spec, expr: op("gelu", op("add", x(0), x(1))) };
  assert.deepEqual(elementwiseKernel(gelu, t).uses, []); // inlined
  assert.match(
    elementwiseKernel(gelu, { relaxedSimd: true }).name,
    /^eltwise_gelu_add_1x128x768_[0-9a-f]{8}_fma$/,
  );
  assert.deepEqual(elementwiseKernel({ ...spec, expr: op("pow", x(0), x(1)) }, t).uses, ["pow_f32x4"]);
  assert.throws(() => elementwiseKernel({ ...spec, expr: x(2) }, t), /input 2/);
  assert.throws(
    () => elementwiseKernel({ ...spec, inputs: [{ shape: [128, 768] }, { shape: [3] }] }, t),
    /broadcast/,
  );
});
