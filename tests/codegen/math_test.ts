import assert from "node:assert/strict";
import { erfFn } from "../../ir/ops/erf_fn.ts";
import type { WasmKernel } from "../../codegen/wasm/kernel.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { KernelHarness } from "./wasm_harness.ts";

/** A test kernel applying helper `name` to `count` (a multiple of 4) floats: y[i] = name(x[i]). */
function applyKernel(name: string, count: number): WasmKernel {
  const kernel = `apply_${name}`;
  return {
    name: kernel,
    params: ["x", "y"],
    uses: [name],
    wat:
      `  (func $${kernel} (export "${kernel}") (param $x i32) (param $y i32) (param $tid i32) (param $nt i32)
    (local $i i32)
    (loop $next
      (v128.store (i32.add (local.get $y) (local.get $i))
        (call $${name} (v128.load (i32.add (local.get $x) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const ${count * 4})))))`,
  };
}

/** A test kernel for the two-argument pow helper `name`: z[i] = pow(x[i], y[i]). */
function powKernel(name: string, count: number): WasmKernel {
  return {
    name: `apply_${name}`,
    params: ["x", "y", "z"],
    uses: [name],
    wat:
      `  (func $apply_${name} (export "apply_${name}") (param $x i32) (param $y i32) (param $z i32) (param $tid i32) (param $nt i32)
    (local $i i32)
    (loop $next
      (v128.store (i32.add (local.get $z) (local.get $i))
        (call $${name} (v128.load (i32.add (local.get $x) (local.get $i))) (v128.load (i32.add (local.get $y) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const ${count * 4})))))`,
  };
}

// Inputs: a dense grid on [-10, 10], special values, and values spanning the float range.
const GRID = (() => {
  const xs: number[] = [];
  for (let i = 0; i <= 200000; i++) xs.push(-10 + i * 1e-4);
  xs.push(
    0,
    -0,
    1e-30,
    -1e-30,
    1e-8,
    -1e-8,
    3.9999,
    4,
    4.0001,
    8.9,
    9,
    9.1,
    30,
    -30,
    87,
    -87,
    88.3,
    88.37,
    88.5,
  );
  xs.push(89, -87.3, -87.34, -88, -90, -10000, 10000, 1e30, -1e30, 3e38, -3e38, Infinity, -Infinity);
  while (xs.length % 4) xs.push(0);
  return Float32Array.from(xs);
})();

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const REFERENCE: Record<string, (x: number) => number> = {
  exp_f32x4: Math.exp,
  erf_f32x4: erfFn,
  tanh_f32x4: Math.tanh,
  gelu_f32x4: (x) => 0.5 * x * (1 + erfFn(x / Math.SQRT2)),
  gelu_tanh_f32x4: (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))),
  log_f32x4: Math.log,
};

/** Each helper comes plain and with FMA (`_fma`); the tests run on both. */
const VARIANTS = ["", "_fma"];
const UNARY = Object.keys(REFERENCE).flatMap((n) => VARIANTS.map((v) => n + v));
const harness = await KernelHarness.create(
  [
    ...UNARY.map((n) => applyKernel(n, GRID.length)),
    ...VARIANTS.map((v) => powKernel(`pow_f32x4${v}`, GRID.length)),
  ],
  WASM_HELPERS,
);
const xAddr = harness.put(GRID);

/** Runs helper `name` over GRID. */
function apply(name: string): Float32Array {
  const y = harness.alloc(GRID.length);
  harness.run(`apply_${name}`, [xAddr, y]);
  return harness.read(y, GRID.length);
}

/** Largest |got - want| (and relative error) over inputs where `pick` holds. */
function maxError(name: string, pick: (x: number) => boolean): { abs: number; rel: number } {
  const got = apply(name);
  let abs = 0, rel = 0;
  for (let i = 0; i < GRID.length; i++) {
    const x = GRID[i];
    if (!pick(x)) continue;
    const want = REFERENCE[name.replace(/_fma$/, "")](x);
    const err = Math.abs(got[i] - want);
    abs = Math.max(abs, err);
    if (want !== 0) rel = Math.max(rel, err / Math.abs(want));
  }
  return { abs, rel };
}

const inRange = (x: number) => x >= -10 && x <= 10;

Deno.test("every helper is a func named by its key", () => {
  for (const [name, wat] of Object.entries(WASM_HELPERS)) {
    assert.match(wat, new RegExp(`^\\s*\\(func \\$${name} \\(param \\$x v128\\)`));
    if (name.endsWith("_fma")) assert.match(wat, /relaxed_madd/);
    else assert.doesNotMatch(wat, /relaxed/, `${name} uses plain SIMD128 only`);
    assert.match(wat, /;; /, `${name} has a comment`);
  }
});

for (const v of VARIANTS) {
  Deno.test(`exp_f32x4${v}: relative error < 3e-7, 0 for very negative x, never inf`, () => {
    const { rel } = maxError(`exp_f32x4${v}`, (x) => x > -87 && x < 88.3);
    assert.ok(rel < 3e-7, `relative error ${rel}`);
    const got = apply(`exp_f32x4${v}`);
    for (let i = 0; i < GRID.length; i++) {
      const x = GRID[i];
      assert.ok(Number.isFinite(got[i]), `exp(${x}) = ${got[i]}`);
      if (x < -87.34) assert.equal(got[i], 0, `exp(${x})`);
      if (x === 0) assert.equal(got[i], 1);
    }
  });

  Deno.test(`erf_f32x4${v}: absolute error < 1.5e-7, exact 0 and ±1`, () => {
    const { abs } = maxError(`erf_f32x4${v}`, () => true);
    assert.ok(abs < 1.5e-7, `absolute error ${abs}`);
    const got = apply(`erf_f32x4${v}`);
    for (let i = 0; i < GRID.length; i++) {
      const x = GRID[i];
      if (x === 0) assert.ok(Object.is(got[i], x), `erf(${x}) = ${got[i]}`);
      if (Math.abs(x) >= 4) assert.equal(got[i], Math.sign(x), `erf(${x})`);
      assert.ok(Math.abs(got[i]) <= 1, `|erf(${x})| = ${got[i]}`);
    }
  });

  Deno.test(`tanh_f32x4${v}: absolute error < 1e-7, relative < 1.5e-7 below 1, ±1 far out`, () => {
    assert.ok(maxError(`tanh_f32x4${v}`, () => true).abs < 1e-7);
    const { rel } = maxError(`tanh_f32x4${v}`, (x) => Math.abs(x) < 1);
    assert.ok(rel < 1.5e-7, `relative error ${rel}`);
    const got = apply(`tanh_f32x4${v}`);
    for (let i = 0; i < GRID.length; i++) {
      if (Math.abs(GRID[i]) >= 9.1) assert.equal(got[i], Math.sign(GRID[i]));
    }
  });

  for (const name of [`gelu_f32x4${v}`, `gelu_tanh_f32x4${v}`]) {
    Deno.test(`${name}: absolute error < 6e-7 on [-10, 10], relative 2e-6 for x in [-4, 10], finite`, () => {
      const { abs } = maxError(name, inRange);
      assert.ok(abs < 6e-7, `absolute error ${abs}`);
      const { rel } = maxError(name, (x) => x >= -4 && x <= 10);
      assert.ok(rel < 2e-6, `relative error ${rel}`);
      const got = apply(name);
      for (let i = 0; i < GRID.length; i++) {
        const x = GRID[i];
        if (Number.isFinite(x)) assert.ok(Number.isFinite(got[i]), `${name}(${x}) = ${got[i]}`);
        if (x >= 10 && x < Infinity) assert.ok(Math.abs(got[i] - x) <= 1e-6 * x, `${name}(${x}) = ${got[i]}`);
        if (x <= -10 && x > -Infinity) assert.ok(Math.abs(got[i]) < 1e-6, `${name}(${x}) = ${got[i]}`);
      }
    });
  }

  Deno.test(`log_f32x4${v}: relative error < 2e-7 on normal x, special values`, () => {
    const { rel } = maxError(
      `log_f32x4${v}`,
      (x) => x > 1e-30 && Number.isFinite(x) && Math.abs(Math.log(x)) > 1e-3,
    );
    assert.ok(rel < 2e-7, `relative error ${rel}`);
    const { abs } = maxError(`log_f32x4${v}`, (x) => x > 0.5 && x < 2);
    assert.ok(abs < 1e-7, `absolute error ${abs}`);
    const got = apply(`log_f32x4${v}`);
    for (let i = 0; i < GRID.length; i++) {
      const x = GRID[i];
      if (x === 0) assert.equal(got[i], -Infinity);
      if (x < 0) assert.ok(Number.isNaN(got[i]));
      if (x === Infinity) assert.equal(got[i], Infinity);
    }
  });

  Deno.test(`pow_f32x4${v} matches Math.pow on finite x`, () => {
    const xs: number[] = [], ys: number[] = [];
    const bases = [0, -0, 1, -1, 2, -2, 0.5, -0.5, 3.7, -3.7, 1e-3, 100, 1e10, -1e-5];
    const exps = [0, 1, 2, 3, -1, -2, 0.5, -0.5, 1.5, 2.5, 1 / 3, 7, -3, 1e8, NaN];
    for (const x of bases) {
      for (const y of exps) {
        xs.push(x);
        ys.push(y);
      }
    }
    xs.push(NaN, NaN);
    ys.push(0, 2);
    while (xs.length % 4) xs.push(1), ys.push(1);
    const n = xs.length;
    const h = harness;
    const x = h.put(Float32Array.from(xs)), y = h.put(Float32Array.from(ys)), z = h.alloc(n);
    h.run(`apply_pow_f32x4${v}`, [x, y, z]);
    const got = h.read(z, n);
    for (let i = 0; i < n; i++) {
      const want = Math.fround(Math.pow(Math.fround(xs[i]), Math.fround(ys[i])));
      const msg = `pow(${xs[i]}, ${ys[i]}) = ${got[i]}, want ${want}`;
      if (Number.isNaN(want)) assert.ok(Number.isNaN(got[i]), msg);
      else if (want === 0 || !Number.isFinite(want)) assert.ok(Object.is(got[i], want), msg);
      else {
        const t = Math.abs(ys[i] * Math.log(Math.abs(xs[i]))) || 0;
        assert.ok(Math.abs(got[i] - want) <= (1 + t) * 3e-7 * Math.abs(want), msg);
      }
    }
  });
}

Deno.test("NaN stays NaN in every helper", async () => {
  const nan = new Float32Array([NaN, 1, NaN, -1]);
  const h = await KernelHarness.create(UNARY.map((n) => applyKernel(n, 4)), WASM_HELPERS);
  const x = h.put(nan);
  for (const name of UNARY) {
    const y = h.alloc(4);
    h.run(`apply_${name}`, [x, y]);
    const got = h.read(y, 4);
    assert.ok(Number.isNaN(got[0]) && Number.isNaN(got[2]), `${name}(NaN) = ${got[0]}`);
    assert.ok(!Number.isNaN(got[1]), `${name}(1) = ${got[1]}`);
  }
});
