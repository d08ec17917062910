/**
 * The work of `deno task compile`: parses and verifies a model, runs a pass pipeline over
 * it, and prints the result or writes it. Nothing is written unless every pass succeeded.
 * It runs in a worker whose permissions `cli/compile.ts` narrows to the files involved.
 */

import { basename, dirname, join, relative, resolve } from "node:path";
import type { ParseArgsOptionsConfig } from "node:util";
import {
  createPassRegistry,
  didYouMean,
  dumpDirInstrument,
  formatOptionValue,
  type Instrument,
  loadModule,
  loadPlugin,
  loadWeights,
  type Module,
  parsePipeline,
  PassError,
  PipelineError,
  PluginError,
  print,
  printIrInstrument,
  printPipeline,
  runPipeline,
  TimingInstrument,
  weightsPath,
  writeSafetensors,
} from "../mod.ts";
import { parseCli, reportDiagnostics, UsageError, writeTextAtomic } from "./common.ts";
import type { PassRegistry } from "../passes/registry.ts";
import type { PassOptionSpec } from "../passes/pass.ts";
import type { Tensor } from "../ir/tensor.ts";
import { OverlayStore, type WeightStore } from "../ir/weights.ts";
import { formatPatternReportJson, patternReport } from "../passes/dedup_patterns.ts";
import { compileModule, type CompileOptions } from "../codegen/compile.ts";
import { CodegenError } from "../codegen/lower/context.ts";
import { emitKernels, writeArtifact } from "../codegen/artifact.ts";
import { formatReport } from "../codegen/report.ts";
import { readTuningLog } from "../codegen/tuning_log.ts";

/** The usage text of `deno task compile`. */
export const USAGE = `usage: deno task compile <model.sir> [options]

  -o, --output FILE.sir|DIR   FILE.sir: write the IR (and changed weights beside it) instead of printing it;
                              DIR: compile to an artifact directory (IR, wasm, weights, plan, report)
  --emit-kernels DIR          with an artifact: also write each kernel as text (WAT or TS)
  --tune                      with an artifact: time each sparse product's candidate schedules, log the best
  --tuning-log FILE           the tuning log to read (and, with --tune, update); default tuning-log.json
  --passes PIPELINE           passes to run, e.g. 'dce,cse' or 'prune{sparsity=0.8 block=1x32},dce'
  --plugin FILE               load passes from a TS/JS module (repeatable)
  --list-passes               list the passes and their options
  --print-ir-before NAME      print the IR before each run of pass NAME (repeatable), on stderr
  --print-ir-after NAME       print the IR after each run of pass NAME (repeatable)
  --print-ir-after-all        print the IR after every pass
  --print-ir-after-change     print the IR after every pass that changed it
  --dump-dir DIR              write 00-input.sir and NN-<pass>.sir after each pass
  --no-verify-each            do not verify after each pass (on by default)
  --timing                    print each pass's wall time and op count
  --stats                     print the statistics passes counted
  --report FILE.json          with dedup-patterns in --passes: write the sparsity-pattern report as JSON`;

/** The passes run before codegen when `-o DIR` is given without `--passes`. */
export const DEFAULT_COMPILE_PIPELINE = "canonicalize,cse,fuse,dce";

function listPasses(registry: PassRegistry): string {
  return registry.names().map((name) => {
    const p = registry.get(name)!;
    const opts = (Object.entries(p.options ?? {}) as [string, PassOptionSpec][]).map(([k, s]) =>
      `\n    ${k}=${s.type === "enum" ? s.values!.join("|") : s.type} (default ${
        formatOptionValue(s.default)
      }): ${s.doc}`
    );
    return `  ${name}: ${p.description}${opts.join("")}`;
  }).join("\n");
}

/** Writes all weights, with the changed ones replaced, as a new safetensors file. */
async function writeWeights(
  path: string,
  m: Module,
  base: WeightStore,
  changed: ReadonlyMap<string, Tensor>,
) {
  const tensors = [...m.weights.values()].flatMap((w) => {
    const t = changed.get(w.name) ?? base.get(w);
    const dtype = w.type.dtype.toUpperCase() as "F32";
    if ("indices" in t) {
      const bsr = t as Tensor & { indices: Int32Array; indptr: Int32Array };
      return [
        { name: `${w.name}.data`, dtype, shape: [...t.shape], data: t.data },
        { name: `${w.name}.indices`, dtype: "I32" as const, shape: [bsr.indices.length], data: bsr.indices },
        { name: `${w.name}.indptr`, dtype: "I32" as const, shape: [bsr.indptr.length], data: bsr.indptr },
      ];
    }
    return [{ name: w.name, dtype, shape: [...t.shape], data: t.data }];
  });
  await writeSafetensors(path, tensors);
}

/** The options of `deno task compile`. */
export const COMPILE_OPTIONS = {
  output: { type: "string", short: "o" },
  passes: { type: "string", default: "" },
  plugin: { type: "string", multiple: true, default: [] as string[] },
  "list-passes": { type: "boolean" },
  "print-ir-before": { type: "string", multiple: true, default: [] as string[] },
  "print-ir-after": { type: "string", multiple: true, default: [] as string[] },
  "print-ir-after-all": { type: "boolean" },
  "print-ir-after-change": { type: "boolean" },
  "dump-dir": { type: "string" },
  "emit-kernels": { type: "string" },
  tune: { type: "boolean" },
  "tuning-log": { type: "string", default: "tuning-log.json" },
  "no-verify-each": { type: "boolean" },
  timing: { type: "boolean" },
  stats: { type: "boolean" },
  report: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsOptionsConfig;

/** Runs `deno task compile` with these arguments; returns the exit code. `onPhase` hears codegen's phases. */
export async function compileJob(
  args: string[],
  onPhase?: CompileOptions["onPhase"],
): Promise<number | void> {
  const { values, positionals } = parseCli(args, COMPILE_OPTIONS);
  const artifact = values.output !== undefined && !values.output.endsWith(".sir");
  if (values["emit-kernels"] && !artifact) throw new UsageError("--emit-kernels needs -o DIR (an artifact)");
  if (artifact && !values.passes) values.passes = DEFAULT_COMPILE_PIPELINE;
  if (values.help) return void console.log(USAGE);

  const registry = createPassRegistry();
  for (const plugin of values.plugin) {
    try {
      await loadPlugin(plugin, registry);
    } catch (e) {
      if (e instanceof PluginError) throw new UsageError(e.message);
      throw e;
    }
  }
  if (values["list-passes"]) return void console.log(listPasses(registry));
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${USAGE}`);
  const input = positionals[0];

  let pipeline;
  try {
    pipeline = parsePipeline(values.passes, registry);
  } catch (e) {
    if (!(e instanceof PipelineError)) throw e;
    throw new UsageError(`--passes:${e.col}: ${e.message}\n  ${values.passes}\n  ${" ".repeat(e.col - 1)}^`);
  }
  const inPipeline = pipeline.entries.map((e) => e.pass.name);
  for (const name of [...values["print-ir-before"], ...values["print-ir-after"]]) {
    if (!inPipeline.includes(name)) {
      const known = registry.get(name)
        ? "is not in the pipeline"
        : `is not a pass${didYouMean(name, inPipeline)}`;
      throw new UsageError(
        `--print-ir-before/after: '${name}' ${known}; the pipeline is: ${printPipeline(pipeline)}`,
      );
    }
  }

  if (values.report !== undefined && !inPipeline.includes("dedup-patterns")) {
    const pipelineText = values.passes || "(empty)";
    throw new UsageError(`--report needs dedup-patterns in --passes; the pipeline is: ${pipelineText}`);
  }

  const loaded = await loadModule(input);
  if (!loaded.module) {
    reportDiagnostics(loaded.diagnostics, loaded.text);
    return 1;
  }
  const m = loaded.module;
  const inputWeights = weightsPath(m, input);
  const store = await loadWeights(m, input);

  const timing = new TimingInstrument();
  const instruments: Instrument[] = [
    printIrInstrument({
      before: values["print-ir-before"],
      after: values["print-ir-after"],
      afterAll: values["print-ir-after-all"],
      afterChange: values["print-ir-after-change"],
      write: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
    }),
    timing,
  ];
  const dumpDir = values["dump-dir"];
  if (dumpDir) {
    instruments.push(dumpDirInstrument(dumpDir, inputWeights && relative(resolve(dumpDir), inputWeights)));
  }

  let result;
  try {
    result = runPipeline(m, pipeline, {
      verifyEach: !values["no-verify-each"],
      instruments,
      weights: store,
    });
  } catch (e) {
    if (!(e instanceof PassError)) throw e;
    if (e.diagnostics.length > 0) {
      console.error(`error: pass '${e.pass}' left IR that does not verify:`);
      reportDiagnostics(e.diagnostics, loaded.text);
    } else {
      console.error(e.message);
    }
    console.error(`nothing was written; pipeline: ${values.passes}`);
    return 1;
  }

  if (values.timing) console.error(timing.table());
  if (values.stats) {
    for (const s of result.stats) console.error(`${s.pass}: ${s.doc}: ${s.value}`);
  }
  const out = result.module;
  // The pattern report (passes/dedup_patterns.ts) of the final module, written after the output.
  const finalWeights = new OverlayStore(store);
  for (const [name, t] of result.changedWeights) finalWeights.set(name, t);
  const report = values.report && formatPatternReportJson(patternReport(out, finalWeights));
  const writeReport = async () => {
    if (!values.report || !report) return;
    await writeTextAtomic(values.report, report);
    console.error(`wrote ${values.report}`);
  };
  if (!values.output) {
    Deno.stdout.writeSync(new TextEncoder().encode(print(out)));
    return await writeReport();
  }
  if (artifact) {
    const code = await writeCompiled(out, values.output, {
      input: inputWeights,
      changed: result.changedWeights,
      base: store,
      emitKernels: values["emit-kernels"],
      tune: values.tune ?? false,
      tuningLog: values["tuning-log"],
      onPhase,
      source: loaded.text,
    });
    return code ?? await writeReport();
  }
  const outPath = values.output;
  await Deno.mkdir(dirname(outPath), { recursive: true });
  if (result.changedWeights.size > 0) {
    const newWeights = outPath.replace(/\.sir$/, "") + ".safetensors";
    await writeWeights(newWeights, out, store, result.changedWeights);
    out.weightsFile = basename(newWeights);
  } else if (inputWeights !== undefined) {
    out.weightsFile = relative(dirname(resolve(outPath)), inputWeights);
  }
  await writeTextAtomic(outPath, print(out));
  console.error(`wrote ${outPath}`);
  await writeReport();
}

/** Compiles the final module to an artifact directory and writes it; returns the exit code. */
async function writeCompiled(
  m: Module,
  dir: string,
  o: {
    input: string | undefined;
    changed: ReadonlyMap<string, Tensor>;
    base: WeightStore;
    emitKernels: string | undefined;
    tune: boolean;
    tuningLog: string;
    onPhase: CompileOptions["onPhase"];
    source: string;
  },
): Promise<number | void> {
  const store = new OverlayStore(o.base);
  for (const [name, t] of o.changed) store.set(name, t);
  let compiled;
  try {
    const tuningLog = await readTuningLog(o.tuningLog).catch((e) => {
      throw new UsageError(`--tuning-log: ${(e as Error).message}`);
    });
    compiled = await compileModule(m, store, { onPhase: o.onPhase, tune: o.tune, tuningLog });
    if (compiled.report.tuned > 0) {
      await writeTextAtomic(o.tuningLog, JSON.stringify(tuningLog, null, 1) + "\n");
    }
  } catch (e) {
    if (!(e instanceof CodegenError)) throw e;
    console.error(e.message);
    console.error(`nothing was written`);
    return 1;
  }
  const changed = o.changed.size > 0;
  if (changed) m.weightsFile = "model.safetensors";
  else if (o.input !== undefined) m.weightsFile = relative(resolve(dir), o.input);
  await writeArtifact(dir, compiled, print(m), async (staging) => {
    if (changed) await writeWeights(join(staging, "model.safetensors"), m, o.base, o.changed);
  });
  if (o.emitKernels) await emitKernels(o.emitKernels, compiled.kernels);
  console.error(formatReport(compiled.report));
  console.error(
    `wrote ${dir}${o.emitKernels ? ` and ${compiled.kernels.length} kernels to ${o.emitKernels}` : ""}`,
  );
}
