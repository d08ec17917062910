/**
 * Runs the fold-attention-scale example plugin (`examples/plugins/fold-attention-scale/`)
 * through the CLI, exactly as `deno task compile --plugin` does, on a synthetic bert-tiny, and
 * checks what it made: the scaled weights hold the old data times the scale, the `mul` is gone,
 * and the interpreter computes the same logits. Spawning the CLI needs `--allow-run`; without it
 * these tests are ignored.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  bertConfig,
  BsrTensor,
  interpret,
  loadModule,
  loadWeights,
  type Module,
  writeSyntheticBert,
} from "../../mod.ts";
import { seededInputs } from "../../ir/inputs.ts";
import { CAN_RUN, compile } from "../compile_cli.ts";

const PLUGIN = "examples/plugins/fold-attention-scale/fold-attention-scale.ts";
const QUERY = (layer: number, what: "weight" | "bias") =>
  `bert.encoder.layer.${layer}.attention.self.query.${what}`;

/** A temp folder with `bert-tiny.sir` (seq 16) and its weights. */
async function withModel(fn: (model: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-fold-scale-" });
  try {
    const model = join(dir, "bert-tiny.sir");
    await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16 }), model);
    await fn(model, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A model written by the CLI, loaded with its weights. */
async function load(path: string) {
  const { module, diagnostics } = await loadModule(path);
  assert.ok(module, JSON.stringify(diagnostics));
  return { module, weights: await loadWeights(module, path) };
}

/** The logits of `m` on seeded inputs. */
function logits(m: { module: Module; weights: Awaited<ReturnType<typeof loadWeights>> }): Float32Array {
  const [out] = interpret(m.module, seededInputs(m.module.funcs[0], 7), m.weights);
  return out.data as Float32Array;
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

Deno.test({
  name: "fold-attention-scale: new scaled query weights, no scale mul, same logits",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model, dir) => {
      const out = join(dir, "folded.sir");
      const r = await compile(
        model,
        "--plugin",
        PLUGIN,
        "--passes",
        "fold-attention-scale,dce",
        "--stats",
        "-o",
        out,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^fold-attention-scale: scales folded: 2$/m);
      assert.match(r.stderr, /^fold-attention-scale: weights created: 4$/m);
      assert.match(
        r.stderr,
        /^fold-attention-scale: %l0\.scaled: 0\.125 folded into @bert\.encoder\.layer\.0\.attention\.self\.query\.weight\.scaled, @bert\.encoder\.layer\.0\.attention\.self\.query\.bias\.scaled$/m,
      );
      assert.match(r.stderr, /^dce: weight declarations dropped: 4$/m, "the old query weights");

      const before = await load(model);
      const after = await load(out);
      const text = await Deno.readTextFile(out);
      assert.doesNotMatch(text, /= mul %l\d\.scores/);
      assert.doesNotMatch(text, /%attn\.scale/, "dce erased the unused constant");
      assert.match(text, /%l0\.probs = softmax %l0\.scores, %mask/);
      for (const layer of [0, 1]) {
        for (const what of ["weight", "bias"] as const) {
          const name = QUERY(layer, what);
          assert.ok(!after.module.weights.has(name), name);
          const scaled = after.weights.get(after.module.weights.get(`${name}.scaled`)!);
          const old = before.weights.get(before.module.weights.get(name)!);
          assertClose(scaled.data, Float32Array.from(old.data, (x) => x * 0.125), 0, name);
        }
      }
      assertClose(logits(after), logits(before), 1e-5, "logits");
    }),
});

Deno.test({
  name: "fold-attention-scale: after bsr-lower, the scaled weights stay BSR with the same pattern",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model, dir) => {
      const prune = "prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4}";
      const [plain, folded] = [join(dir, "plain.sir"), join(dir, "folded.sir")];
      const r1 = await compile(model, "--passes", prune, "-o", plain);
      assert.equal(r1.code, 0, r1.stderr);
      const r2 = await compile(
        model,
        "--plugin",
        PLUGIN,
        "--passes",
        `${prune},fold-attention-scale,dce`,
        "-o",
        folded,
      );
      assert.equal(r2.code, 0, r2.stderr);
      const [a, b] = [await load(plain), await load(folded)];
      const name = QUERY(0, "weight");
      const w = b.module.weights.get(`${name}.scaled`)!;
      assert.deepEqual(w.type.sparse?.block, [4, 4]);
      const old = a.weights.get(a.module.weights.get(name)!) as BsrTensor;
      const scaled = b.weights.get(w) as BsrTensor;
      assert.ok(scaled instanceof BsrTensor);
      assert.deepEqual([...scaled.indptr], [...old.indptr]);
      assert.deepEqual([...scaled.indices], [...old.indices]);
      assertClose(scaled.data, Float32Array.from(old.data, (x) => x * 0.125), 0, name);
      assertClose(logits(b), logits(a), 1e-5, "logits");
    }),
});

Deno.test({
  name: "fold-attention-scale: a second run finds nothing to fold",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model) => {
      const r = await compile(
        model,
        "--plugin",
        PLUGIN,
        "--passes",
        "fold-attention-scale,fold-attention-scale",
        "--timing",
        "--stats",
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /^1\s+fold-attention-scale\s+[\d.]+\s+\d+\s+changed$/m);
      assert.match(r.stderr, /^2\s+fold-attention-scale\s+[\d.]+\s+\d+\s+unchanged$/m);
      assert.match(r.stderr, /^fold-attention-scale: scales folded: 2$/m);
    }),
});
