/**
 * `deno task bench table1 --quick`: the smoke test of the paper's Table 1 / Figure 2
 * benchmark. Runs it (bert-mini, three block shapes, two rounds) into a temporary folder,
 * checks the JSON, Markdown and SVG, then runs it again and checks the compiled artifacts
 * came from the cache.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { linePlot } from "../cli/plot.ts";
import { CAN_RUN, runTask } from "./compile_cli.ts";

interface Summary {
  mean: number;
  std: number;
  n: number;
}

interface Table1Json {
  setting: { blocks: string[]; threads: number[]; repeat: number };
  machine: { cpu: string; cores: number; deno: string; v8: string; date: string };
  peers: Record<string, Record<string, Summary>>;
  rows: {
    block: string;
    threads: number;
    negativeControl: Summary;
    bsr: Summary;
    ratio: { mean: number; std: number };
    check: { negativeControl: number; bsr: number; bsrVsNegativeControl: number };
    cached: { negativeControl: boolean; bsr: boolean };
  }[];
}

Deno.test({
  name: "bench table1 --quick writes the table, the plot and the JSON, and reuses its cache",
  ignore: !CAN_RUN,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "sparrow-table1-" });
    try {
      const first = await runTask("bench", "table1", "--quick", "--out", out);
      assert.equal(first.code, 0, first.stderr);
      const json = JSON.parse(await Deno.readTextFile(join(out, "table1.json"))) as Table1Json;
      const { blocks, threads, repeat } = json.setting;
      assert.deepEqual(blocks, ["1x1", "1x32", "16x16"]);
      assert.deepEqual(threads, [1, 2]);
      assert.equal(repeat, 2);
      assert.ok(json.machine.cores >= 1 && json.machine.deno && json.machine.v8 && json.machine.date);
      for (const t of threads) {
        for (const name of ["onnxruntime-node", "sparrow-dense"]) {
          const s = json.peers[t][name];
          assert.ok(s && s.mean > 0 && s.n === repeat, `${name} at ${t} thread(s): ${JSON.stringify(s)}`);
        }
        for (const b of blocks) {
          const row = json.rows.find((r) => r.block === b && r.threads === t);
          assert.ok(row, `no row for ${b} at ${t} thread(s)`);
          assert.ok(row.negativeControl.mean > 0 && row.negativeControl.n === repeat);
          assert.ok(row.bsr.mean > 0 && row.bsr.n === repeat);
          assert.ok(row.ratio.mean > 0);
          assert.ok(
            row.check.bsr <= 1e-3 && row.check.negativeControl <= 1e-3 &&
              row.check.bsrVsNegativeControl <= 1e-3,
          );
        }
      }
      assert.equal(json.rows.length, blocks.length * threads.length);

      const md = await Deno.readTextFile(join(out, "table1.md"));
      assert.match(md, /\| Dense \|/);
      assert.match(md, /\| Irregular sparsity \| 1×1 \|/);
      assert.match(md, /\| Structured sparsity \| 1×32 \|/);
      assert.match(md, /## 2 threads/);
      const svg = await Deno.readTextFile(join(out, "table1.svg"));
      assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
      assert.match(svg, /<polyline /);
      assert.match(svg, /<\/svg>\n$/);

      // A second run compiles nothing.
      const second = await runTask("bench", "table1", "--quick", "--out", out);
      assert.equal(second.code, 0, second.stderr);
      const again = JSON.parse(await Deno.readTextFile(join(out, "table1.json"))) as Table1Json;
      assert.ok(again.rows.every((r) => r.cached.bsr && r.cached.negativeControl));
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "bench table1 --int8 adds int8 Sparrow and onnxruntime-node int8, checked, with rates and weight bytes",
  ignore: !CAN_RUN,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "sparrow-table1-int8-" });
    try {
      const r = await runTask(
        "bench",
        "table1",
        "--quick",
        "--int8",
        "--blocks",
        "4x4,1x32",
        "--threads",
        "1",
        "--repeat",
        "1",
        "--out",
        out,
      );
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(await Deno.readTextFile(join(out, "table1.json")));
      for (const name of ["onnxruntime-node-int8", "sparrow-int8-dense"]) {
        assert.ok(json.peers[1][name].mean > 0);
      }
      const row4 = json.rows.find((r: { block: string }) => r.block === "4x4");
      assert.ok(row4.int8.time.mean > 0 && row4.int8.check <= row4.int8.tolerance && row4.int8.tolerance > 0);
      assert.equal(json.rows.find((r: { block: string }) => r.block === "1x32").int8, undefined);
      assert.ok(json.int8.qgemmGopsPerCore > 0 && json.int8.gemmGflopsPerCore > 0);
      // int8 weights are smaller than f32 ones (bert-mini's f32 word embeddings are most of both).
      assert.ok(json.int8.weightBytes["int8 dense"] < json.int8.weightBytes["f32 dense"]);
      assert.ok(json.notes.some((n: string) => /no int8 block-sparse kernel for 1x32/.test(n)));
      const md = await Deno.readTextFile(join(out, "table1.md"));
      assert.match(md, /## INT8/);
      assert.match(md, /\| Sparrow int8 BSR 4x4 \|/);
      assert.match(md, /\| onnxruntime-node int8 dense \|/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("linePlot draws series, error bars, reference lines and a legend", () => {
  const svg = linePlot({
    title: "t <&>",
    xLabel: "x",
    yLabel: "ms",
    categories: ["a", "b", "c"],
    series: [{ name: "s", color: "#000", values: [1, null, 3], errors: [0.5, null, 0.1] }],
    hlines: [{ name: "peer", color: "#f00", dash: "4 2", value: 2 }],
  });
  assert.match(svg, /t &lt;&amp;&gt;/);
  assert.equal((svg.match(/<circle /g) ?? []).length, 3); // a marker per value, and the legend's
  assert.doesNotMatch(svg, /<polyline /); // the gap at "b" leaves no two consecutive points
  assert.match(svg, /stroke-dasharray="4 2"/);
  assert.match(svg, />peer</);
});
