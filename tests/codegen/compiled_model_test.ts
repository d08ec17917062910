/**
 * End to end: synthetic BERTs compiled to an artifact, loaded and run at 1 and 2 threads, must
 * match the reference interpreter on the same seeded inputs (1e-4 max abs), unfused and after
 * the default pipeline; and the artifact's files, errors and report behave.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type BertConfig,
  bertConfig,
  buildBertModule,
  syntheticBertWeights,
} from "../../frontend/synthetic_bert.ts";
import { seededInputs } from "../../ir/inputs.ts";
import { emptyLog } from "../../codegen/tuning_log.ts";
import {
  compile,
  compileModule,
  interpret,
  loadCompiled,
  memoryStore,
  type Module,
  parse,
  Tensor,
  tensorType,
  type WeightStore,
  writeArtifact,
} from "../../mod.ts";

function bert(overrides: Partial<BertConfig>): { m: Module; weights: WeightStore } {
  const c = bertConfig("bert-tiny", overrides);
  const weights = memoryStore(
    new Map(
      syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
    ),
  );
  return { m: buildBertModule(c, "w.safetensors"), weights };
}

/** Max abs difference of two arrays. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Compiles `m`, runs the artifact at 1 and 2 threads (and with dynamic tiering), and compares with the interpreter. */
async function checkAgainstInterpreter(m: Module, weights: WeightStore, tol: number): Promise<number> {
  const f = m.funcs[0];
  const inputs = seededInputs(f, 7);
  const expected = interpret(m, inputs, weights);
  const compiled = await compile({ module: m, weights }, { pipeline: "" });
  const dir = await Deno.makeTempDir({ prefix: "sparrow-artifact-" });
  try {
    await writeArtifact(compiled, join(dir, "out"));
    let worst = 0;
    // All loaded at once from the same folder: each must keep its own memory. The third leaves
    // V8's dynamic tiering on (the others compile optimized code at load: runtime/tiering.ts).
    const models = [
      await loadCompiled(join(dir, "out"), { threads: 1 }),
      await loadCompiled(join(dir, "out"), { threads: 2 }),
      await loadCompiled(join(dir, "out"), { threads: 2, dynamicTiering: true }),
    ];
    try {
      const given = Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data]));
      for (let run = 0; run < 2; run++) {
        for (const model of models) {
          const out = model.run(given);
          f.returns.forEach((r, i) => {
            const d = maxDiff(out[r.name], expected[i].data);
            assert.ok(
              d <= tol,
              `${m.name} ${r.ref} at ${model.threads} thread(s), run ${run}: max abs diff ${d} > ${tol}`,
            );
            worst = Math.max(worst, d);
          });
        }
      }
    } finally {
      for (const model of models) model.close();
    }
    return worst;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const defaultPipeline = async (m: Module, weights: WeightStore) =>
  (await compile({ module: m, weights }, { codegen: false })).module;

Deno.test("compiled bert-tiny matches the interpreter (unfused and fused, 1 and 2 threads)", async () => {
  const { m, weights } = bert({ seq: 32 });
  const unfused = await checkAgainstInterpreter(m, weights, 1e-4);
  const fused = await checkAgainstInterpreter(await defaultPipeline(m, weights), weights, 1e-4);
  console.log(
    `bert-tiny S=32: max abs diff ${unfused.toExponential(2)} unfused, ${fused.toExponential(2)} fused`,
  );
});

Deno.test("compiled BERTs with ragged sizes and the tanh GELU match the interpreter", async () => {
  for (
    const o of [
      { seq: 13, hidden: 36, heads: 3, intermediate: 50, layers: 1, act: "tanh" as const },
      { seq: 7, hidden: 20, heads: 2, intermediate: 30, layers: 2, head: false },
    ]
  ) {
    const { m, weights } = bert(o);
    const d = await checkAgainstInterpreter(await defaultPipeline(m, weights), weights, 1e-4);
    console.log(`${JSON.stringify(o)}: max abs diff ${d.toExponential(2)}`);
  }
});

Deno.test("an op without a kernel is a compile error naming its place", async () => {
  const text = `module @m {
  func @main(%x: tensor<4xf32>) -> (tensor<4xf32>) {
    %y = reduce_mean %x {axes = [0], keepdims = true} : tensor<1xf32>
    %z = add %x, %y : tensor<4xf32>
    return %z
  }
}
`;
  const m = parse(text, { file: "w.sir" }).module!;
  await assert.rejects(
    () => compileModule(m, memoryStore(new Map())),
    /w\.sir:3:5: error: no kernel for op 'reduce_mean'/,
  );
});

Deno.test("loadCompiled names the file of a missing or corrupt artifact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-artifact-" });
  try {
    await assert.rejects(() => loadCompiled(dir), /manifest\.json: cannot read/);
    await Deno.writeTextFile(join(dir, "manifest.json"), "{not json");
    await assert.rejects(() => loadCompiled(dir), /manifest\.json: not JSON/);
    const { m, weights } = bert({ seq: 8, layers: 1 });
    await writeArtifact(await compile({ module: m, weights }, { pipeline: "" }), join(dir, "a"));
    const weightsFile = join(dir, "a", "weights.bin");
    const bytes = await Deno.readFile(weightsFile);
    await Deno.writeFile(weightsFile, bytes.subarray(0, bytes.length - 4));
    await assert.rejects(
      () => loadCompiled(join(dir, "a")),
      /weights\.bin: the weights file has \d+ bytes, the plan expects/,
    );
    await Deno.writeFile(join(dir, "a", "kernels.relaxed.wasm"), new Uint8Array([0, 97, 115, 109, 9]));
    await assert.rejects(
      () => loadCompiled(join(dir, "a")),
      /kernels\.relaxed\.wasm: has 5 bytes, the manifest says/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("pruned and BSR-lowered BERTs compile to sparse kernels that match the interpreter", async () => {
  for (const block of ["1x1", "1x32", "32x1", "4x4", "16x16"]) {
    const { m, weights } = bert({ seq: 16, hidden: 64, heads: 2, intermediate: 96, layers: 1, head: false });
    const pipeline = `prune{sparsity=0.8 block=${block}},fuse,bsr-lower,dce`;
    const { module: sparse, weights: store } = await compile({ module: m, weights }, {
      pipeline,
      codegen: false,
    });
    const ops = sparse.funcs[0].body.map((op) => op.name);
    assert.ok(ops.includes("bsr_dense"), `${block}: bsr-lower made bsr_dense ops`);
    const d = await checkAgainstInterpreter(sparse, store, 1e-4);
    console.log(`bsr ${block}: max abs diff ${d.toExponential(2)}`);
  }
});

Deno.test("--tune times each sparse product's schedules once; the next compile reuses the log", async () => {
  const { m, weights } = bert({ seq: 16, hidden: 64, heads: 2, intermediate: 96, layers: 1, head: false });
  const pipeline = "prune{sparsity=0.8 block=4x4},fuse,bsr-lower,dce";
  const { module: sparse, weights: store } = await compile({ module: m, weights }, {
    pipeline,
    codegen: false,
  });
  const tuningLog = emptyLog();
  const first = await compileModule(sparse, store, { tune: true, tuningLog });
  const keys = Object.keys(tuningLog.entries);
  assert.ok(first.report.tuned >= 1 && first.report.tuned === keys.length, `tuned ${first.report.tuned}`);
  for (const e of Object.values(tuningLog.entries)) {
    assert.ok(Object.keys(e.timings).length >= 2, "several candidates timed");
    assert.ok(Object.values(e.timings).every((ms) => ms > 0));
    assert.equal(e.best, Object.entries(e.timings).sort((a, b) => a[1] - b[1])[0][0]);
  }
  assert.ok(
    first.report.schedules.every((s) => s.why.startsWith("tuning log:")),
    JSON.stringify(first.report.schedules),
  );
  const again = await compileModule(sparse, store, { tune: true, tuningLog });
  assert.equal(again.report.tuned, 0);
  assert.deepEqual(Object.keys(tuningLog.entries), keys);
  const untuned = await compileModule(sparse, store);
  assert.ok(untuned.report.schedules.every((s) => !s.why.startsWith("tuning log:")));
});

Deno.test("a tampered plan is an error naming plan.json, never a hang or a stray write", async () => {
  // Checksums catch an altered file; a plan altered with its manifest entry to match (a hostile
  // artifact) must still be refused by the plan's own checks, on disk and in memory.
  const dir = await Deno.makeTempDir({ prefix: "sparrow-artifact-" });
  try {
    const { m, weights } = bert({ seq: 8, layers: 1 });
    const result = await compile({ module: m, weights }, { pipeline: "" });
    await writeArtifact(result, join(dir, "a"));
    const planFile = join(dir, "a", "plan.json");
    const plan = JSON.parse(await Deno.readTextFile(planFile));
    const manifestFile = join(dir, "a", "manifest.json");
    const manifest = JSON.parse(await Deno.readTextFile(manifestFile));
    await Deno.writeTextFile(planFile, JSON.stringify({ ...plan, model: "altered" }));
    await assert.rejects(
      () => loadCompiled(join(dir, "a")),
      /plan\.json: has \d+ bytes, the manifest says|checksum/,
    );
    const tamper = async (edit: (p: typeof plan) => void, pattern: RegExp) => {
      const p = structuredClone(plan);
      edit(p);
      const bytes = new TextEncoder().encode(JSON.stringify(p));
      await Deno.writeFile(planFile, bytes);
      const sha256 = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
        .map((b) => b.toString(16).padStart(2, "0")).join("");
      const files = { ...manifest.files, "plan.json": { bytes: bytes.length, sha256 } };
      await Deno.writeTextFile(manifestFile, JSON.stringify({ ...manifest, files }));
      await assert.rejects(() => loadCompiled(join(dir, "a"), { threads: 2 }), pattern);
      await assert.rejects(() => loadCompiled({ ...result.artifact!, plan: p }, { threads: 2 }), pattern);
    };
    await tamper(
      (p) => (p.buckets[0].steps[3].args[0] = 8),
      /plan\.json: bad plan: buckets\[0\]\.steps\[3\] .*address 8 is outside/,
    );
    await tamper(
      (p) => (p.buckets[0].steps[2].kernel = ["nope", "nope"]),
      /plan\.json: buckets\[0\]\.steps\[2\] .*no wasm kernel 'nope'/,
    );
    await tamper((p) => (p.memory.pages = 0), /plan\.json: bad plan: memory\.pages/);
    await tamper(
      (p) => (p.buckets[0].inputs[0].offset = 2 ** 40),
      /plan\.json: bad plan: buckets\[0\]\.inputs\[0\]/,
    );
    await tamper(
      (p) => (p.wasm.simd = "../../etc/passwd"),
      /plan\.json: bad plan: wasm\.simd must name a file inside the artifact/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runs at 2 and 3 threads with idle spells between them give the same outputs every time", async () => {
  // Sleeps between runs change how long threads spin at barriers (runtime/executor.ts); whatever the
  // budget, every run must meet every barrier and compute the same thing.
  const { m, weights } = bert({ seq: 8 });
  const f = m.funcs[0];
  const inputs = seededInputs(f, 3);
  const given = Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data]));
  const dir = await Deno.makeTempDir({ prefix: "sparrow-idle-" });
  try {
    await writeArtifact(await compile({ module: m, weights }, { pipeline: "" }), join(dir, "a"));
    const one = await loadCompiled(join(dir, "a"), { threads: 1 });
    const expected = one.run(given);
    one.close();
    for (const threads of [2, 3]) {
      const model = await loadCompiled(join(dir, "a"), { threads });
      try {
        for (let run = 0; run < 40; run++) {
          if (run % 4 === 1) await new Promise((ok) => setTimeout(ok, run % 8 === 1 ? 15 : 1));
          const out = model.run(given);
          for (const r of f.returns) {
            assert.deepEqual(out[r.name], expected[r.name], `${threads} threads, run ${run}, ${r.ref}`);
          }
        }
      } finally {
        model.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a chain of 2,000 element-wise ops compiles in kernels of at most 32 fused ops and runs", async () => {
  const lines = ["module @chain {", "  func @main(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>) {"];
  let prev = "%x";
  for (let i = 0; i < 2000; i++) {
    lines.push(`    %a${i} = add ${prev}, %x : tensor<4x8xf32>`);
    prev = `%a${i}`;
  }
  lines.push(`    return ${prev}`, "  }", "}");
  const { module } = parse(lines.join("\n") + "\n", { file: "chain.sir" });
  const result = await compile({ module: module!, weights: memoryStore(new Map()) }, { pipeline: "" });
  const kernels = result.artifact!.report.kernels;
  assert.ok(kernels.every((k) => k.ops.split("+").length <= 32), kernels.map((k) => k.ops).join(" "));
  const model = await loadCompiled(result.artifact!, { threads: 1 });
  try {
    const x = Float32Array.from({ length: 32 }, (_, i) => i - 16);
    const got = model.run({ x }).a1999;
    // Sums of integers below 2^24 are exact in f32.
    assert.deepEqual([...got], [...x].map((v) => 2001 * v));
  } finally {
    model.close();
  }
});
