/**
 * The training kernels (codegen/lower/grad.ts, codegen/wasm/grad_kernels.ts, and the element-wise
 * gelu_grad, exp and log) against the interpreter: each op family is one function of many cases
 * with ragged shapes, compiled, run on 1-3 real threads on both SIMD targets, and compared output
 * by output with the reference interpreter on seeded inputs. Index inputs repeat values (so a
 * scatter_add adds several rows into one) and the run-time table of a gather is a function input.
 * The run-time pack of a GEMM's B operand must equal codegen/pack.ts's compile-time layout.
 */

import assert from "node:assert/strict";
import { compileModule } from "../../codegen/compile.ts";
import { interpret } from "../../ir/interpreter.ts";
import type { Func } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { Tensor } from "../../ir/tensor.ts";
import { memoryStore } from "../../ir/weights.ts";
import { loadCompiled } from "../../runtime/compiled.ts";
import type { KernelTarget, WasmKernel } from "../../codegen/wasm/kernel.ts";
import {
  crossEntropyGradKernel,
  crossEntropyKernel,
  layerNormGradKernel,
  reduceSumKernel,
  scatterAddKernel,
  softmaxGradKernel,
} from "../../codegen/wasm/grad_kernels.ts";
import { packKernel } from "../../codegen/wasm/grad_pack.ts";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";
import { packB } from "../../codegen/pack.ts";
import { rng } from "./kernel_runner.ts";
import { KernelHarness } from "./wasm_harness.ts";

/** One op of a case function: its params (name: type), the op line, and its result's type. */
interface Line {
  params: [string, string][];
  op: string;
  type: string;
}

const f32 = (shape: readonly number[]) => `tensor<${shape.length ? `${shape.join("x")}x` : ""}f32>`;
const i64 = (shape: readonly number[]) => `tensor<${shape.join("x")}xi64>`;

/** Seeded inputs: floats in [-2, 2), and for integer params values below `limits[name]`. */
function inputsOf(f: Func, seed: number, limits: Record<string, number>): Tensor[] {
  const next = rng(seed);
  return f.params.map((p) => {
    const n = p.type.shape.reduce((a, b) => a * b, 1);
    if (p.type.dtype === "f32") {
      return Tensor.from(p.type.shape, "f32", Array.from({ length: n }, () => 4 * next() - 2));
    }
    const limit = limits[p.name] ?? 1;
    return Tensor.from(
      p.type.shape,
      p.type.dtype,
      Array.from({ length: n }, () => Math.floor(next() * limit)),
    );
  });
}

/**
 * Compiles the function made of `lines`, runs it on 1-3 threads on both targets and checks each
 * output against the interpreter: |got - want| <= tol · max(1, max |want|).
 */
async function check(lines: Line[], limits: Record<string, number> = {}, tol = 2e-6): Promise<void> {
  const params = lines.flatMap((l) => l.params).map(([n, t]) => `%${n}: ${t}`);
  const text = `module @t {
  func @main(${params.join(", ")}) -> (${lines.map((l) => l.type).join(", ")}) {
${lines.map((l, i) => `    %y${i} = ${l.op} : ${l.type}`).join("\n")}
    return ${lines.map((_, i) => `%y${i}`).join(", ")}
  }
}
`;
  const parsed = parse(text, { file: "t.sir" });
  assert.ok(parsed.module, parsed.diagnostics.map((d) => d.message).join("\n"));
  const m = parsed.module;
  const f = m.funcs[0];
  const inputs = inputsOf(f, 5, limits);
  const want = interpret(m, inputs, memoryStore(new Map()));
  const compiled = await compileModule(m, memoryStore(new Map()));
  const feed = Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data]));
  for (const noRelaxedSimd of [false, true]) {
    for (const threads of [1, 2, 3]) {
      const model = await loadCompiled(compiled, { threads, noRelaxedSimd });
      try {
        const got = model.run(feed);
        f.returns.forEach((r, k) => {
          const w = want[k].data, g = got[r.name];
          let scale = 1;
          for (const v of w) scale = Math.max(scale, Math.abs(v));
          for (let i = 0; i < w.length; i++) {
            if (!(Math.abs(g[i] - w[i]) <= tol * scale)) {
              assert.fail(
                `${lines[k].op} (${noRelaxedSimd ? "SIMD" : "relaxed SIMD"}, ${threads} threads): ` +
                  `out[${i}] = ${g[i]}, want ${w[i]}`,
              );
            }
          }
        });
      } finally {
        model.close();
      }
    }
  }
}

Deno.test("reduce_sum kernels match the interpreter: leading, trailing, middle and all axes, ragged", async () => {
  const cases: [number[], number[], boolean][] = [
    [[5, 7], [0], true],
    [[5, 7], [1], true],
    [[5, 7], [1], false],
    [[3, 6, 8], [0, 1], true],
    [[3, 6, 8], [0, 1], false],
    [[3, 6, 8], [1], true],
    [[3, 5, 9], [1], false],
    [[2, 1, 5, 4], [2], true],
    [[2, 3, 4], [0, 1, 2], false],
    [[9], [0], true],
    [[1, 2], [0], true],
    [[4, 1, 12], [0, 1], true],
    [[130, 3], [0], false],
    [[64, 1, 36], [0], false],
  ];
  await check(
    cases.map(([shape, axes, keep], i) => {
      const out = keep
        ? shape.map((d, a) => axes.includes(a) ? 1 : d)
        : shape.filter((_, a) => !axes.includes(a));
      return {
        params: [[`x${i}`, f32(shape)]],
        op: `reduce_sum %x${i} {axes = [${axes}], keepdims = ${keep}}`,
        type: f32(out),
      };
    }),
    {},
    1e-6,
  );
});

Deno.test("scatter_add kernels match the interpreter: repeated indices, axis 0 and 1, ragged rows", async () => {
  // [table shape, indices shape, axis]
  const cases: [number[], number[], number][] = [
    [[7, 8], [2, 5], 0],
    [[7, 5], [11], 0],
    [[3, 12], [4, 4], 0],
    [[2, 6, 3], [9], 1],
    [[2, 4, 8], [1, 3], 1],
    [[5, 1], [6], 0],
    [[40, 36], [3, 13], 0],
  ];
  const limits: Record<string, number> = {};
  await check(
    cases.map(([shape, idx, axis], i) => {
      limits[`i${i}`] = shape[axis];
      const updates = [...shape.slice(0, axis), ...idx, ...shape.slice(axis + 1)];
      return {
        params: [[`u${i}`, f32(updates)], [`i${i}`, i64(idx)]],
        op: `scatter_add %u${i}, %i${i} {axis = ${axis}}`,
        type: f32(shape),
      };
    }),
    limits,
    1e-6,
  );
});

Deno.test("slice_grad kernels match the interpreter: views, strided and stepped places", async () => {
  // [result shape, starts, ends, axes, steps]
  const cases: [number[], number[], number[], number[], number[]][] = [
    [[1, 8, 12], [0], [1], [1], [1]],
    [[2, 9, 5], [2], [7], [1], [1]],
    [[6, 7], [1, 0], [5, 7], [0, 1], [2, 3]],
    [[3, 10], [4], [10], [1], [1]],
    [[4, 5, 6], [1, 2], [3, 6], [0, 2], [1, 2]],
  ];
  await check(
    cases.map(([shape, starts, ends, axes, steps], i) => {
      const dy = [...shape];
      axes.forEach((a, k) => (dy[a] = Math.ceil((Math.min(ends[k], shape[a]) - starts[k]) / steps[k])));
      return {
        params: [[`d${i}`, f32(dy)]],
        op:
          `slice_grad %d${i} {starts = [${starts}], ends = [${ends}], axes = [${axes}], steps = [${steps}]}`,
        type: f32(shape),
      };
    }),
    {},
    0,
  );
});

Deno.test("softmax_grad and layer_norm_grad kernels match the interpreter on ragged rows", async () => {
  const shapes = [[1, 1], [3, 7], [2, 4, 16], [5, 33], [2, 2, 3, 9], [17, 128]];
  const lines: Line[] = shapes.flatMap((s, i) => {
    const g = f32([s.at(-1)!]);
    return [
      {
        params: [[`sd${i}`, f32(s)], [`sy${i}`, f32(s)]] as [string, string][],
        op: `softmax_grad %sd${i}, %sy${i}`,
        type: f32(s),
      },
      {
        params: [[`ld${i}`, f32(s)], [`lx${i}`, f32(s)], [`lg${i}`, g]] as [string, string][],
        op: `layer_norm_grad %ld${i}, %lx${i}, %lg${i} {axis = -1, epsilon = 1e-12}`,
        type: f32(s),
      },
    ];
  });
  // two normalized axes
  lines.push({
    params: [["md", f32([3, 4, 5])], ["mx", f32([3, 4, 5])], ["mg", f32([4, 5])]],
    op: "layer_norm_grad %md, %mx, %mg {axis = 1, epsilon = 1e-5}",
    type: f32([3, 4, 5]),
  });
  await check(lines, {}, 1e-5);
});

Deno.test("cross_entropy and cross_entropy_grad kernels match the interpreter", async () => {
  const cases: [number, number][] = [[1, 2], [3, 2], [7, 5], [32, 2], [2, 11]];
  const limits: Record<string, number> = {};
  const lines: Line[] = cases.flatMap(([B, C], i) => {
    limits[`cl${i}`] = C;
    limits[`gl${i}`] = C;
    return [
      {
        params: [[`cz${i}`, f32([B, C])], [`cl${i}`, i64([B])]] as [string, string][],
        op: `cross_entropy %cz${i}, %cl${i}`,
        type: f32([]),
      },
      {
        params: [[`gd${i}`, f32([])], [`gz${i}`, f32([B, C])], [`gl${i}`, i64([B])]] as [string, string][],
        op: `cross_entropy_grad %gd${i}, %gz${i}, %gl${i}`,
        type: f32([B, C]),
      },
    ];
  });
  await check(lines, limits, 2e-6);
});

Deno.test("gelu_grad (erf and tanh forms), exp and log fuse into element-wise kernels matching the interpreter", async () => {
  const shapes = [[5], [3, 7], [2, 4, 16], [130]];
  const lines: Line[] = shapes.flatMap((s, i) => [
    {
      params: [[`gd${i}`, f32(s)], [`gx${i}`, f32(s)]] as [string, string][],
      op: `gelu_grad %gd${i}, %gx${i}`,
      type: f32(s),
    },
    {
      params: [[`td${i}`, f32(s)], [`tx${i}`, f32(s)]] as [string, string][],
      op: `gelu_grad %td${i}, %tx${i} {approximation = "tanh"}`,
      type: f32(s),
    },
    { params: [[`e${i}`, f32(s)]] as [string, string][], op: `exp %e${i}`, type: f32(s) },
  ]);
  await check(lines, {}, 2e-6);
  // log of positive values: exp then log, fused into one kernel
  const text = `module @t {
  func @main(%x: tensor<4x9xf32>) -> (tensor<4x9xf32>) {
    %e = exp %x : tensor<4x9xf32>
    %l = log %e : tensor<4x9xf32>
    return %l
  }
}
`;
  const m = parse(text, { file: "t.sir" }).module!;
  const compiled = await compileModule(m, memoryStore(new Map()));
  assert.equal(compiled.plan.buckets[0].steps.length, 1, "exp and log fuse into one kernel");
  const x = inputsOf(m.funcs[0], 3, {})[0];
  const want = interpret(m, [x], memoryStore(new Map()))[0].data;
  for (const noRelaxedSimd of [false, true]) {
    const model = await loadCompiled(compiled, { threads: 2, noRelaxedSimd });
    const got = model.run({ x: x.data }).l;
    model.close();
    for (let i = 0; i < want.length; i++) {
      assert.ok(Math.abs(got[i] - want[i]) <= 1e-6, `${got[i]} vs ${want[i]}`);
    }
  }
});

Deno.test("gather from a run-time table (a function input) matches the interpreter", async () => {
  await check(
    [
      {
        params: [["t0", f32([9, 12])], ["i0", i64([2, 5])]],
        op: "gather %t0, %i0 {axis = 0}",
        type: f32([2, 5, 12]),
      },
      {
        params: [["t1", f32([4, 3])], ["i1", i64([7])]],
        op: "gather %t1, %i1 {axis = 0}",
        type: f32([7, 3]),
      },
    ],
    { i0: 9, i1: 4 },
    0,
  );
});

Deno.test("the training kernels write their whole output and nothing past it, on every thread split", async () => {
  const cases: {
    kernel: (t: KernelTarget) => WasmKernel;
    inputs: (Float32Array | Int32Array)[];
    out: number;
  }[] = [
    { kernel: () => reduceSumKernel(3, 5, 8), inputs: [new Float32Array(120)], out: 24 },
    { kernel: () => reduceSumKernel(2, 4, 7), inputs: [new Float32Array(56)], out: 14 },
    {
      kernel: () => scatterAddKernel({ outer: 1, n: 6, count: 5, inner: 12, indexDtype: "i32" }),
      inputs: [new Float32Array(60), Int32Array.from([1, 5, 1, 0, 5])],
      out: 72,
    },
    {
      kernel: () => scatterAddKernel({ outer: 2, n: 3, count: 4, inner: 5, indexDtype: "i64" }),
      inputs: [new Float32Array(40), Int32Array.from([2, 0, 2, 0, 1, 0, 2, 0])],
      out: 30,
    },
    { kernel: () => softmaxGradKernel(5, 9), inputs: [new Float32Array(45), new Float32Array(45)], out: 45 },
    {
      kernel: () => layerNormGradKernel(4, 7, 1e-12),
      inputs: [new Float32Array(28), new Float32Array(28), new Float32Array(7)],
      out: 28,
    },
    {
      kernel: (t) => crossEntropyKernel(3, 4, "i32", t),
      inputs: [new Float32Array(12), Int32Array.from([0, 3, 1])],
      out: 1,
    },
    {
      kernel: (t) => crossEntropyGradKernel(3, 4, "i32", t),
      inputs: [Float32Array.from([1]), new Float32Array(12), Int32Array.from([0, 3, 1])],
      out: 12,
    },
  ];
  const next = rng(17);
  for (const c of cases) {
    for (const x of c.inputs) {
      if (x instanceof Float32Array && x.length > 1) x.forEach((_, i) => x[i] = next() - 0.5);
    }
  }
  for (const target of [{ relaxedSimd: true }, { relaxedSimd: false }]) {
    const kernels = cases.map((c) => c.kernel(target));
    const h = await KernelHarness.create(kernels, WASM_HELPERS);
    cases.forEach((c, k) => {
      for (const threads of [1, 2, 3]) {
        h.reset();
        const addrs = c.inputs.map((x) => h.put(x));
        const out = h.alloc(c.out + 16);
        h.run(kernels[k].name, [...addrs, out], threads);
        const got = h.read(out, c.out + 16);
        const where = `${kernels[k].name} on ${threads} thread(s)`;
        assert.ok(
          got.subarray(0, c.out).every(Number.isFinite),
          `${where}: an output element is not written`,
        );
        assert.ok(got.subarray(c.out).every(Number.isNaN), `${where}: wrote past its output`);
        c.inputs.forEach((x, i) => {
          const back = x instanceof Int32Array ? h.readI32(addrs[i], x.length) : h.read(addrs[i], x.length);
          assert.deepEqual(back, x, `${where}: changed input ${i}`);
        });
      }
    });
  }
});

Deno.test("the run-time pack kernel lays B out exactly as packB does, ragged panels, both storages", async () => {
  const shapes: [number, number][] = [[1, 1], [3, 5], [7, 8], [5, 17], [16, 24], [9, 30]];
  const cases = shapes.flatMap(([K, N]) => [false, true].map((t) => ({ K, N, t })));
  const kernels = cases.map((c) => packKernel(c.K, c.N, c.t));
  const h = await KernelHarness.create(kernels, {});
  const next = rng(23);
  cases.forEach((c, k) => {
    const w = Float32Array.from({ length: c.K * c.N }, () => next() - 0.5);
    const want = packB(w, c.K, c.N, c.t);
    for (const threads of [1, 2, 3]) {
      h.reset();
      const src = h.put(w);
      const out = h.alloc(want.length + 16);
      h.run(kernels[k].name, [src, out], threads);
      const got = h.read(out, want.length + 16);
      assert.deepEqual(got.subarray(0, want.length), want, `${kernels[k].name} on ${threads} thread(s)`);
      assert.ok(got.subarray(want.length).every(Number.isNaN), `${kernels[k].name}: wrote past its output`);
    }
  });
});
