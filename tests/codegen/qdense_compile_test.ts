/**
 * INT8 end to end: a synthetic BERT through the `quantize` pass compiles to the int8 kernels
 * (codegen/lower/quant.ts) and runs like the reference interpreter on the quantized module, at 1
 * and 2 threads, with relaxed and plain SIMD; and a quantized model compiled to buckets as well.
 * The int8 sums are exact, but the f32 ops around them (FMA against mul and add) move the
 * activations by an ulp, which can move a rounding step of the quantizer: hence a tolerance.
 */

import assert from "node:assert/strict";
import {
  bertConfig,
  buildBertModule,
  compile,
  interpret,
  loadCompiled,
  memoryStore,
  ModuleBuilder,
  Random,
  seededInputs,
  syntheticBertWeights,
  Tensor,
  tensorType,
} from "../../mod.ts";

const PIPELINE = "quantize,canonicalize,cse,fuse,dce";

Deno.test("a quantized bert-tiny compiles to int8 kernels and runs like the interpreter", async () => {
  const c = bertConfig("bert-tiny", { layers: 2, seq: 16 });
  const weights = memoryStore(
    new Map(
      syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
    ),
  );
  const result = await compile({ module: buildBertModule(c, "w.safetensors"), weights }, {
    pipeline: PIPELINE,
    log: () => {},
  });
  const kernels = result.artifact!.report.kernels.map((k) => k.name);
  assert.ok(kernels.some((k) => k.startsWith("qgemm_")), kernels.join(" "));
  assert.ok(kernels.some((k) => k.startsWith("quantize_rows_")), kernels.join(" "));
  assert.ok(kernels.some((k) => k.startsWith("qgather_")), kernels.join(" ")); // int8 embeddings
  // Query, key and value read one x: quantized once. Per layer: that, the attention output, and the
  // two FFN inputs: 4 row quantizations for 6 qdense ops.
  const quantizations = result.artifact!.report.kernels.filter((k) => k.name.startsWith("quantize_rows_"))
    .reduce((n, k) => n + k.calls, 0);
  assert.equal(quantizations, 4 * c.layers);
  const f = result.module.func("main")!;
  const inputs = seededInputs(f, 3);
  const [want] = interpret(result.module, inputs, result.weights);
  const scale = Math.max(...Array.from(want.data, Math.abs));
  const outputs: Float32Array[] = [];
  for (const noRelaxedSimd of [false, true]) {
    for (const threads of [1, 2]) {
      const model = await loadCompiled(result.artifact!, { threads, noRelaxedSimd });
      try {
        const got =
          Object.values(model.run(Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data]))))[0];
        for (let i = 0; i < got.length; i++) {
          assert.ok(
            Math.abs(got[i] - want.data[i]) <= 1e-2 * scale,
            `logit ${i}: ${got[i]} vs ${want.data[i]}`,
          );
        }
        outputs.push(got);
      } finally {
        model.close();
      }
    }
  }
  // Threads split the work, never the sums: one target gives one answer at any thread count.
  assert.deepEqual(outputs[0], outputs[1]);
  assert.deepEqual(outputs[2], outputs[3]);

  const buckets = await compile({ module: buildBertModule(c, "w.safetensors"), weights }, {
    pipeline: PIPELINE,
    seq: [8, 16],
    batch: [1, 3],
    log: () => {},
  });
  const model = await loadCompiled(buckets.artifact!, { threads: 2 });
  try {
    const got = model.run(Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data])), {
      bucket: { batch: 1, seq: 16 },
    });
    assert.deepEqual(Object.values(got)[0], outputs[1]);
  } finally {
    model.close();
  }
});

Deno.test("qgather compiles to one kernel that computes what the interpreter does, exactly, on 1 and 2 threads", async () => {
  const b = new ModuleBuilder("qgather");
  const table = b.weight("emb.q", { shape: [37, 13], dtype: "i8" });
  const scale = b.weight("emb.scale", { shape: [37], dtype: "f32" });
  const f = b.func("main", [["ids", { shape: [3, 5], dtype: "i32" }]]);
  f.ret(f.op("qgather", [table, scale, f.params[0]]));
  const rnd = new Random(9);
  const weights = memoryStore(
    new Map([
      ["emb.q", new Tensor(table.type, Int8Array.from({ length: 37 * 13 }, () => rnd.int(255) - 127))],
      ["emb.scale", new Tensor(scale.type, Float32Array.from({ length: 37 }, () => rnd.normal(0, 0.01)))],
    ]),
  );
  const result = await compile({ module: b.module, weights }, { pipeline: "", log: () => {} });
  const ids = new Tensor(
    { shape: [3, 5], dtype: "i32" },
    Int32Array.from({ length: 15 }, (_, i) => (i * 11) % 37),
  );
  const [want] = interpret(b.module, [ids], weights);
  for (const threads of [1, 2]) {
    const model = await loadCompiled(result.artifact!, { threads });
    try {
      assert.deepEqual(Object.values(model.run({ ids: ids.data }))[0], want.data);
      assert.throws(() => model.run({ ids: Int32Array.from({ length: 15 }, () => 37) }), /37/);
    } finally {
      model.close();
    }
  }
});
