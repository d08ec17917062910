/**
 * `deno task bench dense`: BERT-base (synthetic, seeded), Sparrow's dense compiled artifact
 * against onnxruntime-node and onnxruntime-web, at 1 and 2 threads, in one run. Every
 * contender's output is checked against onnxruntime-node's before anything is timed; rounds
 * are interleaved so machine drift hits every contender alike; medians are reported.
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { exportOnnx } from "../frontend/onnx/export.ts";
import type { BertPresetName } from "../frontend/synthetic_bert.ts";
import { compile, DEFAULT_PIPELINE, writeArtifact } from "../mod.ts";
import { type Contender, ortNode, ortWeb, sparrow, syntheticWorkload } from "./peers.ts";
import { maxAbsDiff, summarize, type Summary } from "./stats.ts";
import { cpuModel } from "../codegen/tuning_log.ts";

/** Runs the benchmark with command-line `args`. */
export async function denseBench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string", default: "bert-base" },
      seq: { type: "string", default: "128" },
      repeat: { type: "string", default: "10" },
      threads: { type: "string", default: "1,2" },
      "no-web": { type: "boolean" },
      out: { type: "string", default: "out/bench" },
    },
  });
  const seq = Number(values.seq), repeat = Number(values.repeat);
  const threadCounts = values.threads.split(",").map(Number);
  const { m, weights, feeds } = syntheticWorkload(values.model as BertPresetName, seq);

  await Deno.mkdir(values.out, { recursive: true });
  const artifact = join(values.out, `${m.name}-s${seq}-dense`);
  const t0 = performance.now();
  const compiled = await compile({ module: m, weights }, { pipeline: DEFAULT_PIPELINE });
  const compileMs = performance.now() - t0;
  await writeArtifact(compiled, artifact);
  const onnxPath = join(values.out, `${m.name}-s${seq}.onnx`);
  const onnx = exportOnnx(m, weights).bytes;
  await Deno.writeFile(onnxPath, onnx);
  console.error(
    `compiled ${m.name} S=${seq} in ${compileMs.toFixed(0)} ms (passes + codegen); artifact ${artifact}`,
  );

  const contenders: Contender[] = [];
  for (const t of threadCounts) {
    contenders.push(await sparrow("sparrow (dense)", artifact, t, feeds));
    contenders.push(await ortNode(onnx, t, feeds));
    if (!values["no-web"]) contenders.push(await ortWeb(onnxPath, t, feeds));
  }
  const reference = await contenders.find((k) => k.name === "onnxruntime-node")!.run();
  for (const k of contenders) {
    const d = maxAbsDiff(await k.run(), reference);
    console.error(
      `  ${k.name} at ${k.threads} thread(s): max abs diff against onnxruntime-node ${d.toExponential(2)}`,
    );
    if (!(d <= 1e-3)) {
      throw new Error(`${k.name} at ${k.threads} thread(s) differs from onnxruntime-node by ${d}`);
    }
  }
  const times = contenders.map(() => [] as number[]);
  for (let r = 0; r < repeat; r++) {
    for (const [i, k] of contenders.entries()) {
      await new Promise((ok) => setTimeout(ok, 20)); // let other runtimes' spinning threads settle
      const t = performance.now();
      await k.run();
      times[i].push(performance.now() - t);
    }
    console.error(`  round ${r + 1}/${repeat}`);
  }
  for (const k of contenders) await k.close();

  const rows = contenders.map((k, i) => ({ name: k.name, threads: k.threads, ms: summarize(times[i]) }));
  const find = (name: string, t: number) => rows.find((r) => r.name === name && r.threads === t)?.ms;
  const fmt = (s: Summary | undefined) => (s ? `${s.median.toFixed(1)} (±${s.std.toFixed(1)})` : "-");
  const lines = [
    `| contender | ${threadCounts.map((t) => `${t} thread${t > 1 ? "s" : ""}, ms`).join(" | ")} |`,
    `|---|${threadCounts.map(() => "---:").join("|")}|`,
    ...[...new Set(rows.map((r) => r.name))].map((n) =>
      `| ${n} | ${threadCounts.map((t) => fmt(find(n, t))).join(" | ")} |`
    ),
  ];
  const gflop = compiled.artifact!.report.flops / 1e9;
  const ratios = threadCounts.map((t) => {
    const s = find("sparrow (dense)", t)!, w = find("onnxruntime-web", t), n = find("onnxruntime-node", t)!;
    return `${t} thread(s): Sparrow ${(gflop / (s.median / 1e3)).toFixed(1)} GFLOP/s; ` +
      (w ? `${(w.median / s.median).toFixed(2)}x faster than onnxruntime-web; ` : "") +
      `${(n.median / s.median).toFixed(2)}x onnxruntime-node's speed`;
  });
  const s1 = find("sparrow (dense)", 1), s2 = find("sparrow (dense)", 2);
  if (s1 && s2) ratios.push(`Sparrow 2 threads vs 1: ${(s1.median / s2.median).toFixed(2)}x`);
  console.log(
    `${m.name}, S=${seq}, batch 1, ${
      gflop.toFixed(2)
    } GFLOP; medians over ${repeat} interleaved rounds (std)\n`,
  );
  console.log(lines.join("\n"));
  console.log(`\n${ratios.join("\n")}\ncompile time (passes + codegen): ${(compileMs / 1000).toFixed(2)} s`);
  await Deno.writeTextFile(
    join(values.out, `dense-${m.name}-s${seq}.json`),
    JSON.stringify(
      { model: m.name, seq, repeat, gflop, compileMs, rows, date: new Date().toISOString(), cpu: cpuModel() },
      null,
      2,
    ),
  );
}
