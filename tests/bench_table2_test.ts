/**
 * `deno task bench table2 --quick --int8`: the smoke test of the paper's Table 2 benchmark
 * (accuracy against sparsity). Runs dense and 1x32 at 80% with magnitude and reconstruction on the
 * first 20 dev rows with 16 calibration sentences into a temporary folder, with int8 variants of
 * dense and reconstruct, compiles and times each model, and checks the JSON, the Markdown and the
 * accuracy-against-latency plot; then re-renders from the JSON, and from the same JSON with the
 * int8 results taken out (a run from before `--int8`). Takes about 35 s on two cores. Then the same
 * quick run with `--finetune` of magnitude for two steps, and the 4x4 int8 kernel.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CAN_RUN, runTask } from "./compile_cli.ts";

/** A configuration's name, as the bench writes it. */
const label = (x: { method: string; block?: string; sparsity?: number }) =>
  x.method === "dense" ? "dense" : `${x.method} ${x.block} ${x.sparsity! * 100}%`;

interface Int8 {
  accuracy: number;
  correct: number;
  rows: number;
  artifact: string;
  pipeline: string;
  quantizedWeights: number;
  qdenseSteps: { bsr: number; dense: number };
  checkMaxAbs: number;
  spread: number;
  tolerance: number;
  latency: Record<string, { median: number; n: number }>;
}

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
  int8?: Int8;
  finetuned?: Finetuned;
}

interface Finetuned {
  accuracy: number;
  correct: number;
  rows: number;
  steps: number;
  trainSeconds: number;
  trainerAccuracy: number;
  sparsityAchieved: number;
  checkpoint: string;
  startWeights: string;
  artifact: string;
  pipeline: string;
  checkMaxAbs: number;
  latency: Record<string, { median: number; n: number }>;
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
        "--int8",
      );
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(await Deno.readTextFile(join(out, "table2.json"))) as {
        setting: {
          limit: number;
          calibration: number;
          blocks: string[];
          sparsities: number[];
          int8Methods?: string[];
        };
        results: Result[];
        paretoFront: string[];
      };
      assert.equal(json.setting.limit, 20);
      assert.equal(json.setting.calibration, 16);
      assert.deepEqual(json.setting.blocks, ["1x32"]);
      assert.deepEqual(json.setting.sparsities, [0.8]);
      assert.deepEqual(json.results.map((x) => x.method), ["reconstruct", "magnitude", "dense"]);
      assert.deepEqual(json.setting.int8Methods, ["dense", "reconstruct"]);
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
      // int8 variants of dense and reconstruct (the default --int8-methods), none of magnitude.
      assert.equal(json.results.find((x) => x.method === "magnitude")!.int8, undefined);
      for (const x of json.results.filter((x) => x.method !== "magnitude")) {
        const q = x.int8!;
        assert.ok(q, `${x.method}: no int8 variant`);
        assert.equal(q.rows, 20);
        assert.ok(q.accuracy >= 0 && q.accuracy <= 1 && q.correct === Math.round(q.accuracy * 20));
        // int8 stays close to its f32 model (docs/int8.md: within 0.5 points on all 872 rows): here
        // at most 2 of 20 predictions apart.
        assert.ok(Math.abs(q.correct - x.correct) <= 2, `${x.method}: int8 ${q.correct}, f32 ${x.correct}`);
        assert.notEqual(q.artifact, x.artifact);
        assert.ok((await Deno.stat(join(q.artifact, "plan.json"))).isFile, q.artifact);
        assert.match(
          q.pipeline,
          x.method === "dense" ? /,fuse,quantize,dce$/ : /,bsr-lower\{[^}]*\},quantize,dce$/,
        );
        // 4 layers x 6 encoder weights, and the embedding tables (embeddings=true).
        assert.ok(q.quantizedWeights > 24, `${q.quantizedWeights}`);
        // 1x32 blocks are not made of 4x4 ones: the int8 dense kernel on the densified weight.
        assert.equal(q.qdenseSteps.bsr, 0);
        assert.ok(q.qdenseSteps.dense >= 24, JSON.stringify(q.qdenseSteps));
        assert.ok(q.spread >= 0);
        assert.equal(q.tolerance, Math.max(2 * q.spread, 1e-3));
        assert.ok(q.checkMaxAbs <= q.tolerance, `${x.method} int8: ${q.checkMaxAbs} > ${q.tolerance}`);
        assert.equal(q.latency["1"].n, 3);
        assert.ok(q.latency["1"].median > 0);
      }
      const rec = json.results.find((x) => x.method === "reconstruct")!;
      assert.equal(rec.layers!.length, 24, "4 layers x 6 dense weights");
      for (const l of rec.layers!) assert.ok(l.reconstructed <= l.magnitude, JSON.stringify(l));
      // The front, over the f32 and int8 points together.
      const points = [
        ...json.results.map((x) => ({ name: label(x), ms: x.latency["1"].median, acc: x.accuracy })),
        ...json.results.filter((x) => x.int8).map((x) => ({
          name: `${label(x)} int8`,
          ms: x.int8!.latency["1"].median,
          acc: x.int8!.accuracy,
        })),
      ];
      assert.equal(points.length, 5);
      assert.ok(json.paretoFront.length >= 1);
      for (const p of points) {
        const dominated = points.some((q) =>
          q.ms <= p.ms && q.acc >= p.acc && (q.ms < p.ms || q.acc > p.acc)
        );
        assert.equal(json.paretoFront.includes(p.name), !dominated, p.name);
      }
      const svg = await Deno.readTextFile(join(out, "table2.svg"));
      assert.match(svg, /^<svg /);
      assert.match(svg, /Pareto front/);
      assert.equal(
        (svg.match(/<title>(dense|magnitude|reconstruct)[^<]*: [\d.]+, [\d.]+<\/title>/g) ?? []).length,
        5,
      );
      // int8 points: their own marker (squares) and legend entry.
      assert.equal((svg.match(/<rect [^>]*><title>[^<]* int8: [\d.]+, [\d.]+<\/title>/g) ?? []).length, 2);
      assert.match(svg, />int8 \(dense, reconstruct\)</);
      const md = await Deno.readTextFile(join(out, "table2.md"));
      assert.match(md, /^\| dense \| [\d.]+ \| 1\.00 \| 90\.0 \|/m);
      assert.match(md, /^\| dense int8 \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/m);
      // Table 2 with the int8 column beside reconstruct's, marked as running the dense int8 kernel.
      assert.match(
        md,
        /^\| block \| 80% magnitude \| 80% reconstruct \| 80% reconstruct int8 \| 80% reference \|$/m,
      );
      assert.match(md, /^\| 1x32 \| [\d.]+ \| [\d.]+ \| [\d.]+ † \| 60\.1 \|$/m);
      assert.match(md, /^† int8 1x32: .*int8 dense kernel on the densified weight/m);
      // The int8 table: accuracy and latency beside f32, and the difference.
      assert.match(
        md,
        /^\| configuration \| f32 accuracy % \| int8 accuracy % \| int8 − f32 \(points\) \| f32 ms \| int8 ms \|/m,
      );
      for (const x of json.results.filter((x) => x.int8)) {
        const d = 100 * (x.int8!.accuracy - x.accuracy);
        assert.ok(
          md.includes(
            `| ${label(x)} | ${(100 * x.accuracy).toFixed(1)} | ${(100 * x.int8!.accuracy).toFixed(1)} | ${
              d >= 0 ? "+" : ""
            }${d.toFixed(1)} | ${x.latency["1"].median.toFixed(2)} | ${
              x.int8!.latency["1"].median.toFixed(2)
            } |`,
          ),
          label(x),
        );
      }
      assert.match(md, /Per-weight relative output error/);
      assert.ok(r.stdout.includes(md.trim()), "prints the Markdown");
      // The results section: rewritten between its markers as computed (not formatted), the rest kept;
      // the plot beside it.
      const text = await Deno.readTextFile(results);
      assert.doesNotMatch(text, /stale/);
      assert.match(
        text,
        /<!-- table2:begin -->\nWritten by `deno task bench table2 --int8` on \d{4}-\d\d-\d\d: 20 dev rows/,
      );
      assert.match(text, /The int8 artifacts' logits are within/);
      assert.match(text, /^\| reconstruct 1x32 80% \| [\d.]+ \| [\d.]+ \| [+-][\d.]+ \|/m);
      assert.match(text, /reconstruction recovers [\d.]+ of the [\d.]+ points/);
      assert.match(text, /^!\[accuracy against latency\]\(table2\.svg\)$/m);
      assert.match(text, /<!-- table2:end -->\n\nkept\n$/);
      assert.equal(await Deno.readTextFile(join(out, "docs", "table2.svg")), svg);

      // --from-json renders the same again; and a JSON from before --int8 (no int8 results) renders without them.
      const again = join(out, "again"), old = join(out, "old");
      const r2 = await runTask(
        "bench",
        "table2",
        "--from-json",
        join(out, "table2.json"),
        "--out",
        again,
        "--no-results",
      );
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(await Deno.readTextFile(join(again, "table2.md")), md);
      assert.equal(await Deno.readTextFile(join(again, "table2.svg")), svg);
      // --retime times the same artifacts again (here 2 rounds): same accuracies, new latencies.
      const retimed = join(out, "retimed");
      const rt = await runTask(
        "bench",
        "table2",
        "--from-json",
        join(out, "table2.json"),
        "--retime",
        "--repeat",
        "2",
        "--out",
        retimed,
        "--no-results",
      );
      assert.equal(rt.code, 0, rt.stderr);
      const rj = JSON.parse(await Deno.readTextFile(join(retimed, "table2.json"))) as { results: Result[] };
      assert.deepEqual(rj.results.map((x) => x.accuracy), json.results.map((x) => x.accuracy));
      for (const x of rj.results) assert.ok(x.latency["1"].n === 2 && x.latency["1"].median > 0, x.method);
      assert.equal((await runTask("bench", "table2", "--retime", "--no-results")).code === 0, false);
      const stripped = JSON.parse(await Deno.readTextFile(join(out, "table2.json")));
      delete stripped.setting.int8Methods;
      for (const x of stripped.results) delete x.int8;
      await Deno.writeTextFile(join(out, "old.json"), JSON.stringify(stripped));
      const r3 = await runTask(
        "bench",
        "table2",
        "--from-json",
        join(out, "old.json"),
        "--out",
        old,
        "--no-results",
      );
      assert.equal(r3.code, 0, r3.stderr);
      const oldMd = await Deno.readTextFile(join(old, "table2.md"));
      assert.match(oldMd, /^\| 1x32 \| [\d.]+ \| [\d.]+ \| 60\.1 \|$/m);
      assert.doesNotMatch(oldMd, /int8/);
      const oldSvg = await Deno.readTextFile(join(old, "table2.svg"));
      assert.equal(
        (oldSvg.match(/<title>(dense|magnitude|reconstruct)[^<]*: [\d.]+, [\d.]+<\/title>/g) ?? []).length,
        3,
      );
      assert.doesNotMatch(oldSvg, /int8/);
      const oldJson = JSON.parse(await Deno.readTextFile(join(old, "table2.json")));
      assert.ok(oldJson.paretoFront.every((n: string) => !n.endsWith(" int8")));
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "bench table2 --int8 runs 4x4 blocks on the int8 block-sparse kernel",
  ignore: !CAN_RUN,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "sparrow-table2-int8-" });
    try {
      const r = await runTask(
        "bench",
        "table2",
        "--methods",
        "magnitude",
        "--blocks",
        "4x4",
        "--sparsities",
        "0.8",
        "--int8",
        "--int8-methods",
        "magnitude",
        "--limit",
        "5",
        "--repeat",
        "1",
        "--out",
        out,
        "--no-results",
      );
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(await Deno.readTextFile(join(out, "table2.json"))) as { results: Result[] };
      assert.equal(json.results.length, 1);
      const q = json.results[0].int8!;
      assert.equal(q.rows, 5);
      assert.match(q.pipeline, /bsr-lower\{block=4x4 [^}]*\},quantize,dce$/);
      // Every encoder weight on the int8 block-sparse kernel, none densified.
      assert.deepEqual(q.qdenseSteps, { bsr: 24, dense: 0 });
      assert.ok(q.checkMaxAbs <= q.tolerance, `${q.checkMaxAbs} > ${q.tolerance}`);
      const md = await Deno.readTextFile(join(out, "table2.md"));
      assert.match(
        md,
        /^\| block \| 80% magnitude \| 80% magnitude int8 \| 80% reconstruct \| 80% reference \|$/m,
      );
      assert.match(md, /^\| 4x4 \| [\d.]+ \| [\d.]+ \| - \| 73\.3 \|$/m);
      assert.match(
        md,
        /^\| magnitude 4x4 80% \| [\d.]+ \| [\d.]+ \| [+-][\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| block-sparse \|$/m,
      );
      assert.doesNotMatch(md, /†/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test({
  name: "bench table2 --quick --finetune fine-tunes, compiles, times and plots the fine-tuned model",
  ignore: !CAN_RUN,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "sparrow-table2-ft-" });
    try {
      // Magnitude pruning (no calibration) and two fine-tuning steps on 64 rows keep this cheap.
      const r = await runTask(
        "bench",
        "table2",
        "--quick",
        "--methods",
        "dense,magnitude",
        "--finetune",
        "--finetune-methods",
        "magnitude",
        "--finetune-steps",
        "2",
        "--finetune-train-rows",
        "64",
        "--limit",
        "20",
        "--repeat",
        "2",
        "--out",
        out,
        "--no-results",
      );
      assert.equal(r.code, 0, r.stderr);
      const json = JSON.parse(await Deno.readTextFile(join(out, "table2.json"))) as {
        setting: { finetune?: Record<string, unknown> };
        results: Result[];
        paretoFront: string[];
      };
      assert.deepEqual(json.setting.finetune, {
        methods: ["magnitude"],
        sparsities: [0.8],
        steps: 2,
        lr: 5e-5,
        warmup: 1,
        batch: 32,
        seed: 0,
        trainRows: 64,
        temperature: 2,
        alpha: 0.5,
        threads: 1,
        ema: 0.99,
      });
      assert.deepEqual(json.results.map((x) => x.method), ["magnitude", "dense"]);
      assert.equal(json.results[1].finetuned, undefined);
      const x = json.results[0], f = x.finetuned!;
      assert.ok(f, "magnitude 1x32 80% has no fine-tuned variant");
      assert.equal(f.steps, 2);
      assert.ok(f.trainSeconds > 0);
      assert.equal(f.rows, 20);
      assert.ok(f.accuracy >= 0 && f.accuracy <= 1 && f.correct === Math.round(f.accuracy * 20));
      assert.ok(f.trainerAccuracy >= 0 && f.trainerAccuracy <= 1);
      // Masked fine-tuning keeps exactly the pruned zeros (the bench checks them entry by entry).
      assert.equal(f.sparsityAchieved, x.sparsityAchieved);
      // The checkpoint trainSst2 wrote, and how it was trained.
      const report = JSON.parse(await Deno.readTextFile(join(f.checkpoint, "training.json")));
      assert.deepEqual(report.objective, { kind: "masked" });
      assert.deepEqual(report.distill, { temperature: 2, alpha: 0.5, hidden: null, teacher: null });
      assert.deepEqual(report.frozen, ["word embeddings"]);
      assert.equal(report.stepsOn, "compiled artifacts");
      assert.equal(report.weights, f.startWeights);
      assert.equal(report.trainRows, 64);
      // Compiled like the one-shot artifact, checked against the interpreter and timed with it.
      assert.notEqual(f.artifact, x.artifact);
      assert.ok((await Deno.stat(join(f.artifact, "plan.json"))).isFile, f.artifact);
      assert.match(f.pipeline, /bsr-lower\{block=1x32 [^}]*\},dce$/);
      assert.ok(f.checkMaxAbs <= 1e-3, `${f.checkMaxAbs}`);
      assert.equal(f.latency["1"].n, 2);
      assert.ok(f.latency["1"].median > 0);
      // The front over the one-shot and fine-tuned points together.
      const points = [
        ...json.results.map((x) => ({ name: label(x), ms: x.latency["1"].median, acc: x.accuracy })),
        { name: `${label(x)} fine-tuned`, ms: f.latency["1"].median, acc: f.accuracy },
      ];
      for (const p of points) {
        const dominated = points.some((q) =>
          q.ms <= p.ms && q.acc >= p.acc && (q.ms < p.ms || q.acc > p.acc)
        );
        assert.equal(json.paretoFront.includes(p.name), !dominated, p.name);
      }
      const svg = await Deno.readTextFile(join(out, "table2.svg"));
      assert.equal((svg.match(/<title>(dense|magnitude)[^<]*: [\d.]+, [\d.]+<\/title>/g) ?? []).length, 3);
      // Fine-tuned points: diamonds in the block's colour, their own legend entry; the dense diamond is black.
      assert.match(
        svg,
        /<polygon [^>]*fill="#[0-9a-f]{6}"[^>]*><title>magnitude 1x32 80% fine-tuned: [\d.]+, [\d.]+<\/title>/,
      );
      assert.match(svg, />fine-tuned \(magnitude\)</);
      assert.match(svg, />dense, f32 \(black\)</);
      const md = await Deno.readTextFile(join(out, "table2.md"));
      assert.match(
        md,
        /^\| block \| 80% magnitude \| 80% magnitude fine-tuned \| 80% reconstruct \| 80% reference \|$/m,
      );
      assert.ok(
        md.includes(
          `| 1x32 | ${(100 * x.accuracy).toFixed(1)} | ${(100 * f.accuracy).toFixed(1)} | - | 60.1 |`,
        ),
      );
      const d = 100 * (f.accuracy - x.accuracy);
      assert.ok(
        md.includes(
          `| magnitude 1x32 80% | ${(100 * x.accuracy).toFixed(1)} | ${(100 * f.accuracy).toFixed(1)} | ${
            d >= 0 ? "+" : ""
          }${d.toFixed(1)} | 2 | `,
        ),
        "the fine-tuning table",
      );
      assert.match(md, /^\| magnitude 1x32 80% fine-tuned \| [\d.]+ \| 80\.0% \| - \| [\d.]+ \|/m);
      assert.match(md, /^\| magnitude 1x32 80% fine-tuned \| [\d.]+ \| [\d.]+ \| [\d.]+ \| (★)? \|$/m);

      // --from-json renders the same again; a JSON from before --finetune renders without it.
      const again = join(out, "again"), old = join(out, "old");
      const r2 = await runTask(
        "bench",
        "table2",
        "--from-json",
        join(out, "table2.json"),
        "--out",
        again,
        "--no-results",
      );
      assert.equal(r2.code, 0, r2.stderr);
      assert.equal(await Deno.readTextFile(join(again, "table2.md")), md);
      assert.equal(await Deno.readTextFile(join(again, "table2.svg")), svg);
      const stripped = JSON.parse(await Deno.readTextFile(join(out, "table2.json")));
      delete stripped.setting.finetune;
      for (const x of stripped.results) delete x.finetuned;
      await Deno.writeTextFile(join(out, "old.json"), JSON.stringify(stripped));
      const r3 = await runTask(
        "bench",
        "table2",
        "--from-json",
        join(out, "old.json"),
        "--out",
        old,
        "--no-results",
      );
      assert.equal(r3.code, 0, r3.stderr);
      assert.doesNotMatch(await Deno.readTextFile(join(old, "table2.md")), /fine-tuned/);
      assert.doesNotMatch(await Deno.readTextFile(join(old, "table2.svg")), /fine-tuned/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
