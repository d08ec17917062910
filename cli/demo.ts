/**
 * `deno task demo`: the main job on the embedded default model, end to end, in about a minute:
 * build the synthetic BERT-base, verify it, prune it to 80% with 1x32 blocks, lower it to BSR
 * and deduplicate its patterns (IR dumps after each pass), compile it dense and sparse, run
 * both on every core, check the sparse outputs, and print the speedup and the pattern report.
 */

import { join } from "node:path";
import { styleText } from "node:util";
import {
  BERT_PRESET_NAMES,
  bertConfig,
  compile,
  type CompileResult,
  formatDiagnostics,
  formatPatternTable,
  isBertPreset,
  loadCompiled,
  loadInput,
  parse,
  patternReport,
  print,
  seededInputs,
  verify,
  writeArtifact,
  writeSyntheticBert,
} from "../mod.ts";
import { main, parseCli, threadsFlag, UsageError } from "./common.ts";
import { linePlot, PALETTE } from "./plot.ts";

const USAGE = `usage: deno task demo [--preset ${
  BERT_PRESET_NAMES.join("|")
}] [--out DIR] [--threads N] [--repeat N]`;

/** The sparsity step: prune every encoder dense weight to 80% in 1x32 blocks, lower to BSR, share patterns. */
const SPARSE_PIPELINE = "prune{sparsity=0.8 block=1x32},canonicalize,cse,fuse,bsr-lower,dedup-patterns,dce";
/** The dense baseline's passes. */
const DENSE_PIPELINE = "canonicalize,cse,fuse,dce";
/** The negative control: the pruned weights without bsr-lower (the paper's unmodified compiler). */
const CONTROL_PIPELINE = "prune{sparsity=0.8 block=1x32},canonicalize,cse,fuse,dce";

const step = (n: number, text: string) => console.log(`\n${styleText("bold", `${n}. ${text}`)}`);
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

main(async () => {
  const { values } = parseCli(Deno.args, {
    preset: { type: "string", default: "bert-base" },
    out: { type: "string", default: "out/demo" },
    threads: { type: "string" },
    repeat: { type: "string", default: "10" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return void console.log(USAGE);
  if (!isBertPreset(values.preset)) {
    throw new UsageError(`--preset must be one of ${BERT_PRESET_NAMES.join(", ")}, got '${values.preset}'`);
  }
  const threads = threadsFlag(values.threads);
  const repeat = Number(values.repeat);
  if (!(Number.isInteger(repeat) && repeat >= 1)) throw new UsageError(`--repeat must be a positive integer`);
  const start = performance.now();
  const config = bertConfig(values.preset);
  const path = join(values.out, `${values.preset}.sir`);

  step(1, `Build the embedded default model: synthetic ${values.preset}, verified against its weights`);
  let t0 = performance.now();
  const written = await writeSyntheticBert(config, path);
  // Read once; each compile below starts from this module in memory.
  const model = await loadInput(path);
  const m = model.module;
  const input = { module: m, weights: model.weights, path };
  console.log(
    `  ${config.layers} layers, hidden ${config.hidden}, ${config.heads} heads, seq ${config.seq}: ` +
      `${(written.params / 1e6).toFixed(1)} M parameters; ${m.func("main")!.body.length} ops; ${path} in ${
        seconds(t0)
      }`,
  );
  const typo = model.text!.replace("= gelu %l0.inter", "= gleu %l0.inter");
  const reparsed = parse(typo, { file: path });
  console.log("  a typo gets a diagnostic that names the place:");
  console.log(
    formatDiagnostics(reparsed.module ? verify(reparsed.module) : reparsed.diagnostics, typo).replace(
      /^/gm,
      "    ",
    ),
  );

  step(2, `Prune to 80% with 1x32 blocks, lower to BSR, deduplicate patterns: ${SPARSE_PIPELINE}`);
  t0 = performance.now();
  const dumps = join(values.out, "ir");
  const logs: string[] = [];
  const sparse = await compile(input, {
    pipeline: SPARSE_PIPELINE,
    dumpDir: dumps,
    log: (l) => logs.push(l),
  });
  const sparseTime = seconds(t0);
  console.log(`  passes and codegen done in ${sparseTime}; the IR after each pass is in ${dumps}/`);
  for (const pass of ["prune", "bsr-lower"]) {
    const lines = logs.filter((l) => l.startsWith(`${pass}: `));
    console.log(
      `  ${lines[0]}${lines.length > 1 ? `\n    ... and ${lines.length - 1} more lines like it` : ""}`,
    );
  }
  const layer = print(sparse.module).split("\n").filter((l) => /%l0\.(q|gelu) = /.test(l));
  console.log(layer.map((l) => `  ${l.trim()}`).join("\n"));
  const report = patternReport(sparse.module, sparse.weights);
  console.log(
    formatPatternTable(report).slice(0, 4).concat(["  ..."], formatPatternTable(report).slice(-3)).join("\n"),
  );

  step(3, "Compile: dense, pruned without bsr-lower (the negative control), and sparse");
  const artifacts: Record<string, string> = {};
  const results: CompileResult[] = [];
  for (
    const [name, pipeline] of [["dense", DENSE_PIPELINE], ["pruned, no bsr-lower", CONTROL_PIPELINE], [
      "sparse (BSR)",
      undefined,
    ]] as const
  ) {
    t0 = performance.now();
    const result = pipeline ? await compile(input, { pipeline, log: () => {} }) : sparse;
    const took = pipeline ? seconds(t0) : `${sparseTime} (step 2)`;
    const dir = join(values.out, name.split(/[ ,(]/)[0]);
    await writeArtifact(result, dir);
    artifacts[name] = dir;
    results.push(result);
    const r = result.artifact!.report;
    console.log(
      `  ${name.padEnd(21)} ${dir}: ${r.kernels.length} kernels, ${(r.flops / 1e9).toFixed(2)} GFLOP/run, ` +
        `weights ${(r.weightsBytes / 2 ** 20).toFixed(0)} MiB, compiled in ${took}`,
    );
  }

  step(4, `Run all three on seeded inputs, interleaved, ${repeat} rounds`);
  const f = m.func("main")!;
  const inputs = seededInputs(f, 0);
  const feeds = Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data]));
  let plotPath = "";
  // Loaded from memory: no round trip through the folders just written.
  const models = await Promise.all(results.map((r) => loadCompiled(r.artifact!, { threads })));
  try {
    const out = models.map((model) => model.run(feeds).logits);
    const diff = Math.max(...out[2].map((v, i) => Math.abs(v - out[1][i])));
    console.log(`  sparse vs pruned-dense logits: max abs difference ${diff.toExponential(2)}`);
    if (!(diff <= 1e-3)) {
      throw new Error(`the sparse model's outputs differ from the pruned dense model's by ${diff}`);
    }
    const times = models.map(() => [] as number[]);
    for (let r = 0; r < repeat; r++) {
      models.forEach((model, i) => {
        const t = performance.now();
        model.run(feeds);
        times[i].push(performance.now() - t);
      });
    }
    const med = times.map(median);
    Object.keys(artifacts).forEach((name, i) =>
      console.log(`  ${name.padEnd(21)} median ${med[i].toFixed(1)} ms`)
    );
    plotPath = join(values.out, "latency.svg");
    await Deno.writeTextFile(
      plotPath,
      linePlot({
        title: `${values.preset}, S=${config.seq}, 80% sparsity in 1x32 blocks`,
        subtitle: `median of ${repeat} interleaved runs at ${models[0].threads} thread(s)`,
        xLabel: "artifact",
        yLabel: "inference time, ms",
        categories: Object.keys(artifacts),
        series: [{ name: "Sparrow", color: PALETTE[0], values: med }],
      }),
    );
    step(5, `Result at ${models[0].threads} thread(s)`);
    console.log(
      `  sparse / dense = ${(med[2] / med[0]).toFixed(2)} (${(med[0] / med[2]).toFixed(2)}x faster); ` +
        `pruned without bsr-lower / dense = ${(med[1] / med[0]).toFixed(2)}: the zeros alone buy nothing`,
    );
  } finally {
    for (const model of models) model.close();
  }
  console.log(
    `\n  whole demo: ${seconds(start)}. Artifacts: ${
      Object.values(artifacts).join(", ")
    }; IR dumps: ${dumps}/; plot: ${plotPath}`,
  );
  console.log(`  next: deno task run ${artifacts["sparse (BSR)"]} --profile   |   deno task bench table1`);
});
