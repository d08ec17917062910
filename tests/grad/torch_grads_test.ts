/**
 * Sparrow's gradients of the whole sst2-bert-mini against PyTorch's: the loss and gradients of
 * the mean cross-entropy over four dev sentences, from the IR's autodiff (`ir/autodiff.ts`) run by
 * `train/bert.ts` on the reference interpreter in f32, padded to a length bucket, compared with
 * the float64 golden `tests/fixtures/grad/mini_grads.json` (written once by
 * `tests/fixtures/grad/gen_torch_grads.py` with Debian's python3-torch, unpadded at batch 1).
 * Every weight's gradient norm, and the entries kept for fifteen weights of each kind, must agree
 * to a relative error of 1e-5 (they agree to about 1e-7; of the weight's kept entries' norm). The key biases are the
 * exception: their gradient is exactly zero (a bias added to every key shifts a query's scores by
 * a constant, which softmax ignores), so in f32 they must be zero up to rounding, at most 1e-7 of
 * the whole gradient's norm. Ignored without ../shared.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bertLossAndGrads, loadBert } from "../../train/bert.ts";
import { makeBatch } from "../../train/data.ts";

const MODEL = "../shared/models/sst2-bert-mini";
const GOLDEN = new URL("../fixtures/grad/mini_grads.json", import.meta.url);
const present = (() => {
  try {
    return Deno.statSync(join(MODEL, "model.safetensors")).isFile;
  } catch {
    return false;
  }
})();

interface Golden {
  readonly loss: number;
  readonly rows: { input_ids: number[]; label: number }[];
  readonly weights: Record<string, { shape: number[]; norm: number; indices?: number[]; values?: number[] }>;
}

const TOLERANCE = 1e-5;

Deno.test({
  name: "sst2-bert-mini's loss and gradients agree with PyTorch's",
  ignore: !present,
  async fn() {
    const golden: Golden = JSON.parse(await Deno.readTextFile(GOLDEN));
    const model = await loadBert(MODEL, { seq: 64 });
    const seq = model.seq;
    const batch = makeBatch(golden.rows.map((r) => {
      const ids = new Int32Array(seq), mask = new Int32Array(seq);
      ids.set(r.input_ids);
      mask.fill(1, 0, r.input_ids.length);
      return { ids, mask, label: r.label, length: r.input_ids.length };
    }));
    const { loss, grads } = await bertLossAndGrads(model)(model.weights, batch);
    assert.ok(Math.abs(loss - golden.loss) <= 1e-5 * golden.loss, `loss ${loss} vs torch ${golden.loss}`);
    assert.deepEqual([...grads.keys()].sort(), Object.keys(golden.weights).sort());
    const failures: string[] = [];
    let detailed = 0;
    const total = Math.sqrt(Object.values(golden.weights).reduce((s, w) => s + w.norm ** 2, 0));
    for (const [name, want] of Object.entries(golden.weights)) {
      const g = grads.get(name)!;
      assert.equal(g.length, want.shape.reduce((a, b) => a * b, 1), name);
      const norm = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
      if (/attention\.self\.key\.bias$/.test(name)) {
        assert.ok(want.norm <= 1e-12 * total, `${name}: torch's gradient is zero`);
        if (!(norm <= 1e-7 * total)) failures.push(`${name}: norm ${norm}, not zero up to rounding`);
      } else if (!(Math.abs(norm - want.norm) <= TOLERANCE * want.norm)) {
        failures.push(`${name}: norm ${norm} vs torch ${want.norm}`);
      }
      if (!want.indices) continue;
      detailed++;
      let diff = 0, ref = 0;
      want.indices.forEach((i, k) => {
        diff += (g[i] - want.values![k]) ** 2;
        ref += want.values![k] ** 2;
      });
      const rel = Math.sqrt(diff / ref);
      if (!(rel <= TOLERANCE)) {
        failures.push(`${name}: relative error ${rel.toExponential(2)} over its entries`);
      }
    }
    assert.equal(detailed, 15);
    assert.deepEqual(failures, []);
  },
});
