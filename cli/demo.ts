/**
 * `deno task demo`: the main job on the embedded default model, end to end. It grows as
 * Sparrow grows. Today: build the synthetic BERT-base, parse and verify its IR against its
 * weights, show one encoder layer, show a diagnostic, run the general passes and fusion, and
 * check with the reference interpreter that they kept the model's meaning.
 */

import { styleText } from "node:util";
import {
  BERT_PRESET_NAMES,
  bertConfig,
  isBertPreset,
  writeSyntheticBert,
} from "../frontend/synthetic_bert.ts";
import { seededInputs } from "../ir/inputs.ts";
import {
  createPassRegistry,
  formatDiagnostics,
  interpret,
  loadModule,
  loadWeights,
  parse,
  parsePipeline,
  print,
  runPipeline,
  TimingInstrument,
  verify,
} from "../mod.ts";
import { main, parseCli, UsageError } from "./common.ts";

const USAGE = `usage: deno task demo [--preset ${BERT_PRESET_NAMES.join("|")}] [--out DIR]`;

/** The passes the demo runs: the general clean-ups, then fusion. */
const PIPELINE = "canonicalize,cse,fuse,dce";

const step = (n: number, text: string) => console.log(`\n${styleText("bold", `${n}. ${text}`)}`);
const ms = (t0: number) => `${(performance.now() - t0).toFixed(1)} ms`;

main(async () => {
  const { values } = parseCli(Deno.args, {
    preset: { type: "string", default: "bert-base" },
    out: { type: "string", default: "out/demo" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return void console.log(USAGE);
  if (!isBertPreset(values.preset)) {
    throw new UsageError(`--preset must be one of ${BERT_PRESET_NAMES.join(", ")}, got '${values.preset}'`);
  }
  const preset = values.preset;
  const config = bertConfig(preset);
  const path = `${values.out}/${preset}.sir`;

  step(1, `Build the embedded default model: synthetic ${preset}`);
  let t0 = performance.now();
  const written = await writeSyntheticBert(config, path);
  console.log(
    `  ${config.layers} layers, hidden ${config.hidden}, ${config.heads} heads, seq ${config.seq}: ` +
      `${(written.params / 1e6).toFixed(1)} M parameters`,
  );
  console.log(`  wrote ${written.irPath} (${written.irBytes} B) and ${written.weightsPath} in ${ms(t0)}`);

  step(2, "Parse and verify the IR, checking every weight against the safetensors header");
  t0 = performance.now();
  const loaded = await loadModule(path);
  if (!loaded.module) throw new Error(formatDiagnostics(loaded.diagnostics, loaded.text));
  const m = loaded.module;
  const f = m.func("main")!;
  console.log(`  ${f.body.length} ops, ${m.weights.size} weights, verified in ${ms(t0)}`);
  console.log(`  print(parse(text)) === text: ${print(m) === loaded.text}`);

  step(3, "One encoder layer, as people read it while debugging");
  const lines = loaded.text.split("\n");
  const body = lines.findIndex((l) => l.trim().startsWith("func @main"));
  const start = lines.findIndex((l, i) => i > body && l.trim() === "// layer 0");
  const end = lines.findIndex((l, i) => i > start && l.trim() === "");
  console.log(lines.slice(start, end).map((l) => l.slice(2)).join("\n"));

  step(4, "A mistake gets a diagnostic that names the place");
  const typo = loaded.text.replace("= gelu %l0.inter", "= gleu %l0.inter");
  const reparsed = parse(typo, { file: path });
  console.log(formatDiagnostics(reparsed.module ? verify(reparsed.module) : reparsed.diagnostics, typo));

  step(5, `Run the pass pipeline '${PIPELINE}', verifying after each pass`);
  const weights = await loadWeights(m, path);
  const timing = new TimingInstrument();
  const result = runPipeline(m, parsePipeline(PIPELINE, createPassRegistry()), {
    weights,
    instruments: [timing],
  });
  console.log(timing.table().replace(/^/gm, "  "));
  for (const s of result.stats) console.log(`  ${s.pass}: ${s.doc}: ${s.value}`);
  const fusedLayer = print(result.module).split("\n").filter((l) => /%l0\.(gelu|ln1) = /.test(l));
  console.log(fusedLayer.map((l) => `  ${l.trim()}`).join("\n"));

  step(6, `Run the reference interpreter on seeded inputs (seq ${config.seq}), before and after the passes`);
  const inputs = seededInputs(f, 0);
  t0 = performance.now();
  const [logits] = interpret(m, inputs, weights);
  console.log(`  logits ${[...logits.data].map((v) => v.toFixed(6)).join(", ")} in ${ms(t0)}`);
  t0 = performance.now();
  const [fused] = interpret(result.module, inputs, weights);
  const diff = Math.max(...logits.data.map((v, i) => Math.abs(v - fused.data[i])));
  console.log(`  after the passes: ${[...fused.data].map((v) => v.toFixed(6)).join(", ")} in ${ms(t0)}`);
  console.log(`  max abs difference: ${diff.toExponential(2)}`);
  console.log(
    `\nNext: deno task compile ${path} --passes '${PIPELINE}' --timing --stats   |   deno task run ${path}`,
  );
});
