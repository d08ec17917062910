/**
 * `deno task bench table2 --quick`: the smoke test of the paper's Table 2 benchmark (accuracy
 * against sparsity). Runs dense and 1x32 at 80% with magnitude and reconstruction on the first 20
 * dev rows with 16 calibration sentences into a temporary folder, compiles and times each pruned
 * model, and checks the JSON, the Markdown and the accuracy-against-latency plot. Takes about 25 s
 * on two cores.
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
  artifact: string;
  checkMaxAbs: number;
  latency: Record<string, { median: number; n: number }>;
  layers?: { weight: string; magnitude: number; reconstructed: number }[];
}

Deno.test({
  name: "bench table2 --quick writes the accuracy table and the JSON",
  ignore: !CAN_RUN,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "sparrow-table2-" });
    try {
      // The results page where the repository has it: in docs/, which deno fmt excludes.
      await Deno.writeTextFile(join(out, "deno.json"), JSON.stringify({ fmt: { exclude: ["docs/"] } }));
      await Deno.mkdir(join(out, "docs"));
      const results = join(out, "docs", "results.md");
      await Deno.writeTextFile(results, "# t\n\n<!-- table2:begin -->\nstale\n<!-- table2:end -->\n\nkept\n");
      const r = await runTask(
        "bench",
        "table2",
        "--quick",
        "--limit",
        "20",
        "--calibration",
        "16",
        "--repeat",
        "3",
        "--out",
        out,
        "--results",
        results,
      );
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(await Deno.readTextFile(join(out, "table2.json"))) as {
        setting: { limit: number; calibration: number; blocks: string[]; sparsities: number[] };
        results: Result[];
        paretoFront: string[];
      };
      assert.equal(json.setting.limit, 20);
      assert.equal(json.setting.calibration, 16);
      assert.deepEqual(json.setting.blocks, ["1x32"]);
      assert.deepEqual(json.setting.sparsities, [0.8]);
      assert.deepEqual(json.results.map((x) => x.method), ["reconstruct", "magnitude", "dense"]);
      for (const x of json.results) {
        assert.equal(x.rows, 20);
        assert.ok(x.accuracy >= 0 && x.accuracy <= 1 && x.correct === Math.round(x.accuracy * 20));
        // Measured on the compiled artifact, checked against the interpreter, then timed.
        assert.ok((await Deno.stat(join(x.artifact, "plan.json"))).isFile, x.artifact);
        assert.ok(x.checkMaxAbs <= 1e-3, `${x.method}: ${x.checkMaxAbs}`);
        assert.equal(x.latency["1"].n, 3);
        assert.ok(x.latency["1"].median > 0);
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
      // The front: dense is the most accurate here, so the fastest of the rest is on it unless dense is faster.
      const dense = json.results.find((x) => x.method === "dense")!;
      assert.ok(json.paretoFront.length >= 1);
      for (const x of json.results) {
        const dominated = json.results.some((y) =>
          y.latency["1"].median <= x.latency["1"].median && y.accuracy >= x.accuracy &&
          (y.latency["1"].median < x.latency["1"].median || y.accuracy > x.accuracy)
        );
        const name = x.method === "dense" ? "dense" : `${x.method} ${x.block} ${x.sparsity! * 100}%`;
        assert.equal(json.paretoFront.includes(name), !dominated, name);
      }
      assert.ok(dense.latency["1"].median > 0);
      const svg = await Deno.readTextFile(join(out, "table2.svg"));
      assert.match(svg, /^<svg /);
      assert.match(svg, /Pareto front/);
      assert.equal(
        (svg.match(/<title>(dense|magnitude|reconstruct)[^<]*: [\d.]+, [\d.]+<\/title>/g) ?? []).length,
        3,
      );
      const md = await Deno.readTextFile(join(out, "table2.md"));
      assert.match(md, /^\| dense \| [\d.]+ \| 1\.00 \| 90\.0 \|/m);
      assert.match(md, /^\| 1x32 \| [\d.]+ \| [\d.]+ \| 60\.1 \|$/m);
      assert.match(md, /Per-weight relative output error/);
      assert.ok(r.stdout.includes(md.trim()), "prints the Markdown");
      // The results section: rewritten between its markers as computed (not formatted), the rest kept;
      // the plot beside it.
      const text = await Deno.readTextFile(results);
      assert.doesNotMatch(text, /stale/);
      assert.match(
        text,
        /<!-- table2:begin -->\nWritten by `deno task bench table2` on \d{4}-\d\d-\d\d: 20 dev rows/,
      );
      assert.match(text, /reconstruction recovers [\d.]+ of the [\d.]+ points/);
      assert.match(text, /^!\[accuracy against latency\]\(table2\.svg\)$/m);
      assert.match(text, /<!-- table2:end -->\n\nkept\n$/);
      assert.equal(await Deno.readTextFile(join(out, "docs", "table2.svg")), svg);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
