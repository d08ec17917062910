/**
 * `deno task bench table2 --quick`: the smoke test of the paper's Table 2 benchmark (accuracy
 * against sparsity). Runs dense and 1x32 at 80% with magnitude and reconstruction on the first 20
 * dev rows with 16 calibration sentences into a temporary folder, and checks the JSON and the
 * Markdown. Takes about 20 s on two cores.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CAN_RUN, runTask } from "./compile_cli.ts";

interface Result {
  method: string;
  block?: string;
  sparsity?: number;
  accuracy: number;
  correct: number;
  rows: number;
  sparsityAchieved: number;
  layers?: { weight: string; magnitude: number; reconstructed: number }[];
}

Deno.test({
  name: "bench table2 --quick writes the accuracy table and the JSON",
  ignore: !CAN_RUN,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "sparrow-table2-" });
    try {
      const r = await runTask(
        "bench",
        "table2",
        "--quick",
        "--limit",
        "20",
        "--calibration",
        "16",
        "--out",
        out,
      );
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(await Deno.readTextFile(join(out, "table2.json"))) as {
        setting: { limit: number; calibration: number; blocks: string[]; sparsities: number[] };
        results: Result[];
      };
      assert.equal(json.setting.limit, 20);
      assert.equal(json.setting.calibration, 16);
      assert.deepEqual(json.setting.blocks, ["1x32"]);
      assert.deepEqual(json.setting.sparsities, [0.8]);
      assert.deepEqual(json.results.map((x) => x.method), ["reconstruct", "magnitude", "dense"]);
      for (const x of json.results) {
        assert.equal(x.rows, 20);
        assert.ok(x.accuracy >= 0 && x.accuracy <= 1 && x.correct === Math.round(x.accuracy * 20));
        if (x.method === "dense") {
          assert.equal(x.sparsityAchieved, 0);
          // sst2-bert-mini gets 18 of the first 20 dev rows right (its golden predictions).
          assert.equal(x.correct, 18);
        } else {
          assert.ok(Math.abs(x.sparsityAchieved - 0.8) < 0.001, `${x.method}: ${x.sparsityAchieved}`);
        }
      }
      const rec = json.results.find((x) => x.method === "reconstruct")!;
      assert.equal(rec.layers!.length, 24, "4 layers x 6 dense weights");
      for (const l of rec.layers!) assert.ok(l.reconstructed <= l.magnitude, JSON.stringify(l));
      const md = await Deno.readTextFile(join(out, "table2.md"));
      assert.match(md, /^\| 1x32 \| [\d.]+ \| [\d.]+ \| 60\.1 \|$/m);
      assert.match(md, /Per-weight relative output error/);
      assert.ok(r.stdout.includes(md.trim()), "prints the Markdown");
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
