/**
 * `deno task run <model.sir> [--seed N] [--func NAME] [--json] [--save FILE]`: runs the
 * reference interpreter on seeded inputs and prints a summary of each output.
 */

import {
  formatType,
  interpret,
  loadModule,
  loadWeights,
  seededInputs,
  type Tensor,
  writeSafetensors,
} from "../mod.ts";
import { main, parseCli, reportDiagnostics, requireInput, UsageError } from "./common.ts";
import { RUN_USAGE, runCompiled } from "./run_compiled.ts";

/** The options of either form that take a value (the word after them is no model path). */
const TAKES_VALUE = new Set(["--seed", "--func", "--save", "--seq", "--inputs", "--threads", "--repeat"]);

/** Min, max, mean and the first values of a tensor. */
function summarize(t: Tensor) {
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of t.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  return { type: formatType(t.type), min, max, mean: sum / t.data.length, first: [...t.data.slice(0, 8)] };
}

const fmt = (v: number) => v.toPrecision(6);

main(async () => {
  const model = Deno.args.find((a, i) => !a.startsWith("-") && !TAKES_VALUE.has(Deno.args[i - 1]));
  if (model !== undefined) await requireInput(model, "an IR file (.sir) or an artifact folder");
  for (const [i, a] of Deno.args.entries()) {
    if (!a.startsWith("-") && (await Deno.stat(a).catch(() => undefined))?.isDirectory) {
      return await runCompiled(a, Deno.args.toSpliced(i, 1));
    }
  }
  const { values, positionals } = parseCli(Deno.args, {
    seed: { type: "string", default: "0" },
    func: { type: "string", default: "main" },
    json: { type: "boolean" },
    save: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return void console.log(RUN_USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${RUN_USAGE}`);
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got '${values.seed}'`);
  const path = positionals[0];

  const t0 = performance.now();
  const loaded = await loadModule(path);
  if (!loaded.module) {
    reportDiagnostics(loaded.diagnostics, loaded.text);
    return 1;
  }
  const m = loaded.module;
  const f = m.func(values.func);
  if (!f) {
    throw new UsageError(
      `the model has no function '@${values.func}' (it has ${m.funcs.map((g) => "@" + g.name).join(", ")})`,
    );
  }
  const t1 = performance.now();
  const weights = await loadWeights(m, path);
  const t2 = performance.now();
  const outputs = interpret(m, seededInputs(f, seed), weights, { func: f.name });
  const t3 = performance.now();

  const summary = outputs.map((t, i) => ({ name: f.returns[i].ref, ...summarize(t) }));
  const timing = { loadMs: t1 - t0, weightsMs: t2 - t1, interpretMs: t3 - t2 };
  if (values.save) {
    await writeSafetensors(
      values.save,
      outputs.map((t, i) => ({
        name: f.returns[i].name,
        dtype: "F32",
        shape: [...t.shape],
        data: Float32Array.from(t.data),
      })),
    );
  }
  if (values.json) {
    return void console.log(JSON.stringify({ model: path, seed, outputs: summary, timing }, null, 2));
  }
  console.log(`${path} @${f.name}, seeded inputs (seed ${seed})`);
  for (const s of summary) {
    console.log(`  ${s.name} : ${s.type}  min ${fmt(s.min)}  max ${fmt(s.max)}  mean ${fmt(s.mean)}`);
    console.log(`    first values: ${s.first.map(fmt).join(", ")}`);
  }
  console.log(
    `  parse+verify ${timing.loadMs.toFixed(1)} ms, weights ${timing.weightsMs.toFixed(1)} ms, ` +
      `interpreter ${timing.interpretMs.toFixed(1)} ms`,
  );
  if (values.save) console.log(`  outputs saved to ${values.save}`);
});
