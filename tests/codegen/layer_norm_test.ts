import assert from "node:assert/strict";
import { addLayerNorm } from "../../ir/ops/add_layer_norm.ts";
import { layerNorm } from "../../ir/ops/layer_norm.ts";
import type { KernelTarget } from "../../codegen/wasm/kernel.ts";
import { layerNormKernel, type LayerNormSpec } from "../../codegen/wasm/layer_norm.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { float, run, t } from "../ops/helpers.ts";
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

/** `n` values uniform in [offset - spread, offset + spread). */
function data(n: number, next: () => number, offset = 0, spread = 1): Float32Array {
  return Float32Array.from({ length: n }, () => offset + (next() * 2 - 1) * spread);
}

/** Where the kernel's output goes: fresh memory, or over x or residual. */
type Into = "fresh" | "x" | "residual";

/** Runs the kernel on random data with 1..3 threads and compares with the op's reference. */
async function check(
  spec: LayerNormSpec,
  target: KernelTarget,
  seed: number,
  into: Into = "fresh",
): Promise<void> {
  const next = rng(seed);
  const { rows, cols } = spec;
  const hasBeta = spec.beta ?? true;
  const n = rows * cols;
  const x = data(n, next, 3, 2);
  const residual = data(n, next, -1, 4);
  const gamma = data(cols, next, 1, 0.5);
  const beta = data(cols, next, 0, 0.5);
  const attrs = { epsilon: float(spec.epsilon) };
  const operands = [t([rows, cols], Array.from(x))];
  if (spec.residual) operands.push(t([rows, cols], Array.from(residual)));
  operands.push(t([cols], Array.from(gamma)));
  if (hasBeta) operands.push(t([cols], Array.from(beta)));
  const want = run(spec.residual ? addLayerNorm : layerNorm, operands, attrs).data;

  const kernel = layerNormKernel(spec, target);
  const h = await KernelHarness.create([kernel], WASM_HELPERS, 4 << 20);
  for (const threads of [1, 2, 3]) {
    const xa = h.put(x);
    const ra = spec.residual ? [h.put(residual)] : [];
    const ga = h.put(gamma);
    const ba = hasBeta ? [h.put(beta)] : [];
    const ya = into === "x" ? xa : into === "residual" ? ra[0] : h.alloc(n + 4);
    h.run(kernel.name, [xa, ...ra, ga, ...ba, ya], threads);
    const got = h.read(ya, n + 4);
    for (let i = 0; i < n; i++) {
      assert.ok(
        Math.abs(got[i] - want[i]) <= 1e-5,
        `${kernel.name} threads ${threads} y[${i}] = ${got[i]}, want ${want[i]}`,
      );
    }
    if (into === "fresh") {
      for (let i = n; i < n + 4; i++) {
        assert.ok(Number.isNaN(got[i]), `${kernel.name} wrote past the end at ${i}`);
      }
    }
  }
}

const SIZES: [number, number][] = [[1, 1], [3, 3], [2, 4], [2, 7], [5, 13], [4, 16], [3, 33], [7, 64], [
  3,
  770,
]];

for (const target of TARGETS) {
  for (const residual of [false, true]) {
    Deno.test(`${residual ? "add_" : ""}layer_norm kernels match the op (relaxedSimd ${target.relaxedSimd})`, async () => {
      for (const [i, [rows, cols]] of SIZES.entries()) {
        await check({ rows, cols, epsilon: 1e-12, residual }, target, 10 + i);
        await check({ rows, cols, epsilon: 1e-5, residual, beta: false }, target, 30 + i);
      }
    });
  }

  Deno.test(`layer_norm on random sizes (relaxedSimd ${target.relaxedSimd})`, async () => {
    const next = rng(99);
    for (let i = 0; i < 10; i++) {
      const spec = {
        rows: 1 + Math.floor(next() * 9),
        cols: 1 + Math.floor(next() * 200),
        epsilon: 1e-6,
        residual: next() < 0.5,
      };
      await check(spec, target, 50 + i);
    }
  });

  Deno.test(`layer_norm in place (relaxedSimd ${target.relaxedSimd})`, async () => {
    await check({ rows: 3, cols: 37, epsilon: 1e-12, residual: false }, target, 1, "x");
    await check({ rows: 3, cols: 37, epsilon: 1e-12, residual: true }, target, 2, "x");
    await check({ rows: 4, cols: 40, epsilon: 1e-12, residual: true }, target, 3, "residual");
  });
}

Deno.test("add_layer_norm at BERT-base size: [128, 768]", async () => {
  await check({ rows: 128, cols: 768, epsilon: 1e-12, residual: true }, { relaxedSimd: true }, 7);
  await check({ rows: 128, cols: 768, epsilon: 1e-12, residual: false }, { relaxedSimd: false }, 8);
});

Deno.test("layer_norm of a constant row is beta, not NaN", async () => {
  const kernel = layerNormKernel({ rows: 1, cols: 6, epsilon: 1e-12, residual: false }, {
    relaxedSimd: false,
  });
  const h = await KernelHarness.create([kernel], WASM_HELPERS, 1 << 20);
  const y = h.alloc(6);
  const beta = Float32Array.from([1, 2, 3, 4, 5, 6]);
  h.run(kernel.name, [
    h.put(new Float32Array(6).fill(5)),
    h.put(new Float32Array(6).fill(2)),
    h.put(beta),
    y,
  ]);
  assert.deepEqual(Array.from(h.read(y, 6)), Array.from(beta));
});

Deno.test("layer_norm names encode the specialization", () => {
  const fma = { relaxedSimd: true };
  assert.equal(
    layerNormKernel({ rows: 128, cols: 768, epsilon: 1e-12, residual: true }, fma).name,
    "add_layer_norm_128x768_eps1em12_fma",
  );
  const plain = layerNormKernel({ rows: 2, cols: 8, epsilon: 1e-5, residual: false, beta: false }, {
    relaxedSimd: false,
  });
  assert.equal(plain.name, "layer_norm_2x8_eps0p00001_nobeta");
  assert.deepEqual(plain.params, ["x", "gamma", "y"]);
  assert.deepEqual(layerNormKernel({ rows: 2, cols: 8, epsilon: 1e-5, residual: true }, fma).params, [
    "x",
    "residual",
    "gamma",
    "beta",
    "y",
  ]);
});
