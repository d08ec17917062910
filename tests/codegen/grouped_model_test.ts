/**
 * Row-grouped kernels end to end: a module of three `bsr_dense` ops over weights with a few
 * shared row patterns compiles to row-grouped kernels (the cost model's choice), whose outputs
 * at 1 and 2 threads match the interpreter; two weights with the same groups on other rows
 * share one kernel; `--tune` times the grouped candidate and the log records it; the compile
 * report lists the grouped schedules and kernels; `dedup-patterns` names the same group
 * signatures the kernels are named by.
 */

import assert from "node:assert/strict";
import { compileModule } from "../../codegen/compile.ts";
import { formatReport } from "../../codegen/report.ts";
import { emptyLog } from "../../codegen/tuning_log.ts";
import { seededInputs } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { BsrTensor, Tensor } from "../../ir/tensor.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";
import { loadCompiled } from "../../runtime/compiled.ts";
import { createPassRegistry } from "../../passes/index.ts";
import { runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";
import { groupedPattern } from "./grouped_cases.ts";
import { rng } from "./kernel_runner.ts";

const rand = rng(42);

/** A BSR weight [N, K] with `groups` row patterns; `reverse` lists its block rows backwards. */
function groupedWeight(
  seed: number,
  N: number,
  K: number,
  block: [number, number],
  groups: number,
  reverse = false,
) {
  const [R, C] = block;
  const nbr = N / R;
  const p = groupedPattern(rng(seed), nbr, K / C, groups, 0.3, true);
  const order = Array.from({ length: nbr }, (_, r) => (reverse ? nbr - 1 - r : r));
  const indptr = new Int32Array(nbr + 1);
  const indices: number[] = [];
  order.forEach((r, i) => {
    indices.push(...p.indices.subarray(p.indptr[r], p.indptr[r + 1]));
    indptr[i + 1] = indices.length;
  });
  const data = Float32Array.from({ length: indices.length * R * C }, () => rand() - 0.5);
  return { indptr, indices: Int32Array.from(indices), data, block, N, K };
}

function model(): { m: Module; weights: WeightStore } {
  const w0 = groupedWeight(1, 96, 64, [1, 8], 4);
  const w1 = groupedWeight(2, 40, 96, [1, 4], 3);
  const w2 = groupedWeight(1, 96, 64, [1, 8], 4, true); // w0's groups, rows reversed
  const ws = { w0, w1, w2 };
  const decl = Object.entries(ws).map(([n, w]) =>
    `    @${n} : tensor<${w.N}x${w.K}xf32, bsr<${w.block[0]}x${w.block[1]}, nnz = ${w.indices.length}>>`
  );
  const text = `module @grouped {
  weights "g.safetensors" {
${decl.join("\n")}
    @b0 : tensor<96xf32>
    @b1 : tensor<40xf32>
  }

  func @main(%x: tensor<3x17x64xf32>) -> (tensor<3x17x40xf32>, tensor<3x17x96xf32>) {
    %h = bsr_dense %x, @w0, @b0 {activation = gelu} : tensor<3x17x96xf32>
    %y = bsr_dense %h, @w1, @b1 : tensor<3x17x40xf32>
    %z = bsr_dense %x, @w2, @b0 {activation = tanh} : tensor<3x17x96xf32>
    return %y, %z
  }
}
`;
  const m = parse(text, { file: "g.sir" }).module!;
  assert.deepEqual(verify(m), []);
  const tensors = new Map<string, Tensor>(
    Object.entries(ws).map(([n, w]) => {
      const t = m.weights.get(n)!.type;
      return [n, new BsrTensor(t, w.data, w.indices, w.indptr)];
    }),
  );
  for (const [n, size] of [["b0", 96], ["b1", 40]] as const) {
    tensors.set(
      n,
      new Tensor(m.weights.get(n)!.type, Float32Array.from({ length: size }, () => rand() - 0.5)),
    );
  }
  return { m, weights: memoryStore(tensors) };
}

Deno.test("grouped model: row-grouped kernels match the interpreter, equal groups share a kernel", async () => {
  const { m, weights } = model();
  const compiled = await compileModule(m, weights);
  const report = compiled.report;
  assert.deepEqual(report.schedules.map((s) => s.variant), [
    "x.grouped.t6x8",
    "x.grouped.t6x8",
    "x.grouped.t6x8",
  ]);
  const grouped = compiled.kernels.map((k) => k.name).filter((n) => n.startsWith("gbsr_"));
  // w0 and w2 (same groups, other rows) share one kernel per epilogue: gelu and tanh differ, so
  // compare without the epilogue part; w1 has its own.
  const base = new Set(grouped.map((n) => n.replace(/_bias.*$/, "")));
  assert.equal(base.size, 2, grouped.join(", "));
  assert.equal(grouped.length, 3, grouped.join(", "));
  const text = formatReport(report);
  assert.match(text, /3x x\.grouped\.t6x8|x\.grouped\.t6x8/);
  assert.match(text, /row-grouped kernels: 3 products, 3 kernels \(2 patterns\)/);

  const inputs = seededInputs(m.funcs[0], 5);
  const expected = interpret(m, inputs, weights);
  for (const threads of [1, 2]) {
    const run = await loadCompiled(compiled, { threads });
    try {
      const out = run.run({ x: inputs[0].data });
      expected.forEach((t, i) => {
        const got = out[["y", "z"][i]];
        let worst = 0;
        for (let j = 0; j < t.data.length; j++) worst = Math.max(worst, Math.abs(got[j] - t.data[j]));
        assert.ok(worst <= 1e-5, `${["y", "z"][i]} at ${threads} thread(s): max abs diff ${worst}`);
      });
    } finally {
      run.close();
    }
  }
});

Deno.test("grouped model: equal patterns in two ops with the same epilogue are one kernel", async () => {
  const { m, weights } = model();
  // Make the third op's epilogue gelu like the first: one kernel for both.
  const z = m.funcs[0].body[2];
  z.attrs.set("activation", m.funcs[0].body[0].attrs.get("activation")!);
  const compiled = await compileModule(m, weights);
  const grouped = compiled.kernels.map((k) => k.name).filter((n) => n.startsWith("gbsr_"));
  assert.equal(grouped.length, 2, grouped.join(", "));
  const calls = compiled.report.kernels.filter((k) => k.name.startsWith("gbsr_")).map((k) => k.calls);
  assert.deepEqual(calls.sort(), [1, 2]);
});

Deno.test("grouped model: --tune times the grouped candidate and logs it", async () => {
  const { m, weights } = model();
  const log = emptyLog();
  const compiled = await compileModule(m, weights, { tune: true, tuningLog: log });
  const entries = Object.entries(log.entries);
  assert.ok(entries.length >= 2);
  for (const [key, e] of entries) {
    assert.match(key, / groups \d+ /);
    assert.ok(e.timings["x.grouped.t6x8"] > 0, `${key}: ${Object.keys(e.timings)}`);
    assert.ok(e.best in e.timings);
  }
  assert.equal(compiled.report.tuned, entries.length);
});

Deno.test("grouped model: dedup-patterns names the group signatures the kernels are named by", async () => {
  const { m, weights } = model();
  const logs: string[] = [];
  const r = runPipeline(m, parsePipeline("dedup-patterns", createPassRegistry()), {
    weights,
    log: (l) => logs.push(l),
  });
  const stat = (name: string) => r.stats.find((s) => s.pass === "dedup-patterns" && s.name === name)?.value;
  // w0 and w2 share a signature; w0's gelu and w2's tanh ops are two kernels, w1 a third.
  assert.deepEqual([stat("grouped"), stat("group-kernels")], [3, 3]);
  const ids = logs.flatMap((l) => /groups (p[0-9a-f]{8,})(-\d+)?: /.exec(l)?.[1] ?? []);
  assert.equal(ids.length, 2, logs.join("\n"));
  assert.match(logs.find((l) => l.includes(`groups ${ids[0]}`))!, /@w0, @w2$/);
  const compiled = await compileModule(r.module, weights);
  const names = compiled.kernels.map((k) => k.name).filter((n) => n.startsWith("gbsr_"));
  for (const id of ids) assert.ok(names.some((n) => n.includes(`_${id}_g`)), `${id} in ${names.join(", ")}`);
});
