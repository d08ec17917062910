/**
 * The work of `deno task compile`: parses and verifies a model, runs a pass pipeline over
 * it, and prints the result or writes it. Nothing is written unless every pass succeeded.
 * It runs in a worker whose permissions `cli/compile.ts` narrows to the files involved.
 */

import { basename, dirname, join, resolve } from "node:path";
import type { ParseArgsOptionsConfig } from "node:util";
import {
  compile,
  CompileError,
  type CompileOptions,
  type CompileResult,
  DEFAULT_PIPELINE,
  didYouMean,
  formatPatternReportJson,
  formatReport,
  type Instrument,
  passRegistry,
  patternReport,
  type Pipeline,
  pipelineOf,
  print,
  printPipeline,
  REPRODUCER_PIPELINE,
  REPRODUCER_PLUGIN,
  tuningLogTemp,
  writeArtifact,
  writeModule,
} from "../mod.ts";
import { parseCli, reportDiagnostics, requireInput, UsageError, writeTextAtomic } from "./common.ts";
import { listPasses } from "./list_passes.ts";

/** The usage text of `deno task compile`. */
export const USAGE = `usage: deno task compile <model> [options]

  <model>                     an IR file (.sir), a Hugging Face checkpoint folder, or an ONNX file (.onnx)

  -o, --output FILE.sir|DIR   FILE.sir: write the IR (and changed weights beside it) instead of printing it;
                              DIR: compile to an artifact directory (IR, wasm, weights, plan, report)
  --seq N[,N...]              the sequence length a checkpoint or ONNX model is imported at (default 128);
                              several (e.g. 16,32,64,128): with an artifact, one bucket per length
                              sharing the weights (imported at the longest); the runtime picks the
                              smallest that fits
  --batch N[,N...]            with an artifact: the batch sizes to compile buckets for (default 1)
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
  --reproducer FILE.sir       when a pass fails, write the module given to it and the rest of the pipeline
                              there (default with -o: <out>.reproducer.sir beside the output)
  --run-reproducer FILE.sir   replay a crash reproducer: compile it with the pipeline its header names
  --dump-dir DIR              write 00-input.sir and NN-<pass>.sir after each pass
  --no-verify-each            do not verify after each pass (on by default)
  --pass-timeout SECONDS      stop a pass (or the loading of plugins) that runs longer (default 300)
  --max-memory MIB            stop the compile when it uses more memory (default: half the RAM, at most 3584)
  --quiet                     print no report, pass log lines or progress on stderr (errors still show)
  --timing                    print each pass's wall time and op count
  --stats                     print the statistics passes counted
  --report FILE.json          with dedup-patterns in --passes: write the sparsity-pattern report as JSON
  -h, --help                  print this help`;

/** The options of `deno task compile`. */
export const COMPILE_OPTIONS = {
  output: { type: "string", short: "o" },
  passes: { type: "string", default: "" },
  seq: { type: "string" },
  batch: { type: "string" },
  "pass-timeout": { type: "string" },
  "max-memory": { type: "string" },
  plugin: { type: "string", multiple: true, default: [] as string[] },
  "list-passes": { type: "boolean" },
  "print-ir-before": { type: "string", multiple: true, default: [] as string[] },
  "print-ir-after": { type: "string", multiple: true, default: [] as string[] },
  "print-ir-after-all": { type: "boolean" },
  "print-ir-after-change": { type: "boolean" },
  "dump-dir": { type: "string" },
  reproducer: { type: "string" },
  "run-reproducer": { type: "string" },
  "emit-kernels": { type: "string" },
  tune: { type: "boolean" },
  "tuning-log": { type: "string", default: "tuning-log.json" },
  "no-verify-each": { type: "boolean" },
  quiet: { type: "boolean" },
  timing: { type: "boolean" },
  stats: { type: "boolean" },
  report: { type: "string" },
  help: { type: "boolean", short: "h" },
} satisfies ParseArgsOptionsConfig;

/**
 * The first lines of an artifact's report: the pipeline that ran and, when it left out passes of
 * the default clean-up ({@link DEFAULT_PIPELINE}), a note naming them.
 */
export function pipelineLines(pipeline: Pipeline): string[] {
  const ran = new Set(pipeline.entries.map((e) => e.pass.name));
  const missing = DEFAULT_PIPELINE.split(",").filter((name) => !ran.has(name));
  const lines = [`pipeline: ${printPipeline(pipeline) || "(empty)"}`];
  if (missing.length > 0) {
    lines.push(
      `note: ${missing.join(", ")} of the default clean-up (${DEFAULT_PIPELINE}) did not run: ` +
        `--passes replaces the default pipeline; append ',${DEFAULT_PIPELINE}' to run it`,
    );
  }
  return lines;
}

/** The positive integers of a comma-separated flag value, ascending and distinct; undefined when not given. */
function sizeList(flag: string, text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const sizes = text.split(",").map((w) => Number(w.trim()));
  if (text.trim() === "" || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 65536)) {
    throw new UsageError(`${flag} must be positive integers separated by commas, got '${text}'`);
  }
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/** The largest --max-memory default, in MiB: below V8's heap limit of about 4 GiB, at which it aborts. */
const MAX_MEMORY_CAP = 3584;

/** Half the machine's RAM in MiB (from /proc/meminfo), at most {@link MAX_MEMORY_CAP}. */
function defaultMaxMemory(): number {
  try {
    const kib = Number(/^MemTotal:\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]);
    if (kib > 0) return Math.min(MAX_MEMORY_CAP, Math.floor(kib / 2048));
  } catch { /* not Linux: the cap */ }
  return MAX_MEMORY_CAP;
}

/** The limits the launcher enforces on the compile job: a pass's time and the process's memory. */
export interface JobLimits {
  /** A pass, or the loading of the plugins, is stopped after this many seconds. */
  readonly seconds: number;
  /** The compile is stopped when the process's resident memory passes this many MiB. */
  readonly mib: number;
}

/** The limits `--pass-timeout` and `--max-memory` set (or their defaults); UsageError when malformed. */
export function jobLimits(values: ReturnType<typeof parseCli<typeof COMPILE_OPTIONS>>["values"]): JobLimits {
  const timeout = values["pass-timeout"] ?? "300";
  const seconds = Number(timeout);
  if (!/^\d+(\.\d+)?$/.test(timeout.trim()) || !(seconds > 0) || seconds > 86400) {
    throw new UsageError(`--pass-timeout must be a number of seconds in (0, 86400], got '${timeout}'`);
  }
  const memory = values["max-memory"];
  const mib = memory === undefined ? defaultMaxMemory() : Number(memory);
  if (memory !== undefined && (!/^\d+$/.test(memory.trim()) || mib < 128 || mib > 1 << 20)) {
    throw new UsageError(`--max-memory must be a whole number of MiB, at least 128, got '${memory}'`);
  }
  return { seconds, mib };
}

/**
 * What the job tells the launcher's watchdog: what is running now that the time limit applies to
 * (`pass 'NAME'`, `loading the plugins`), or undefined when that ended.
 */
export type OnWatch = (what: string | undefined) => void;

/** What loading these plugins is called in the time limit's message; undefined for none. */
export function pluginsLabel(plugins: readonly string[]): string | undefined {
  if (plugins.length === 0) return undefined;
  return plugins.length === 1 ? `loading plugin ${plugins[0]}` : `loading the plugins ${plugins.join(", ")}`;
}

/** An instrument that tells `onWatch` when each pass starts and ends. */
function watchInstrument(onWatch: OnWatch): Instrument {
  return {
    beforePass: (pass) => onWatch(`pass '${pass.name}'`),
    afterPass: () => onWatch(undefined),
    afterFailure: () => onWatch(undefined),
  };
}

/**
 * Runs `deno task compile` with these arguments; returns the exit code. `onPhase` hears codegen's
 * phases, `onWatch` when plugins load and each pass starts and ends.
 */
export async function compileJob(
  args: string[],
  onPhase?: CompileOptions["onPhase"],
  onWatch?: OnWatch,
): Promise<number | void> {
  const { values, positionals } = parseCli(args, COMPILE_OPTIONS);
  const artifact = values.output !== undefined && !values.output.endsWith(".sir");
  if (values["emit-kernels"] && !artifact) throw new UsageError("--emit-kernels needs -o DIR (an artifact)");
  const fileOut = values.output && /\.(onnx|safetensors|json|wasm|bin)$/i.exec(values.output);
  if (fileOut) {
    const hint = fileOut[1].toLowerCase() === "onnx"
      ? "; for ONNX, compile to out.sir and run deno task export out.sir -o " + values.output
      : "";
    throw new UsageError(
      `-o ${values.output}: compile writes IR (-o FILE.sir) or an artifact folder (-o DIR), not a ${
        fileOut[1]
      } file${hint}`,
    );
  }
  if (artifact && !values.passes) values.passes = DEFAULT_PIPELINE;
  if (values.help) return void console.log(USAGE);

  onWatch?.(pluginsLabel(values.plugin));
  const registry = await passRegistry(values.plugin).catch((e) => {
    throw e instanceof CompileError ? new UsageError(e.message) : e;
  });
  onWatch?.(undefined);
  if (values["list-passes"]) return void console.log(listPasses(registry));
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${USAGE}`);
  const pipeline = (() => {
    try {
      return pipelineOf(values.passes, registry);
    } catch (e) {
      throw e instanceof CompileError ? new UsageError(e.message.replace(/^pipeline:/, "--passes:")) : e;
    }
  })();
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

  const seq = sizeList("--seq", values.seq);
  const batch = sizeList("--batch", values.batch);
  if (!artifact && ((seq?.length ?? 0) > 1 || batch !== undefined)) {
    throw new UsageError(
      `${batch !== undefined ? "--batch" : "several --seq lengths"} need -o DIR (buckets are an artifact's)`,
    );
  }
  let result: CompileResult;
  try {
    result = await compile(positionals[0], {
      seq: seq?.length === 1 ? seq[0] : seq,
      batch,
      pipeline,
      registry,
      print: {
        before: values["print-ir-before"],
        after: values["print-ir-after"],
        afterAll: values["print-ir-after-all"],
        afterChange: values["print-ir-after-change"],
        write: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
      },
      dumpDir: values["dump-dir"],
      reproducer: reproducerPath(values),
      plugins: values.plugin,
      log: values.quiet ? () => {} : undefined,
      verifyEach: !values["no-verify-each"],
      codegen: artifact,
      tuning: { log: values["tuning-log"], tune: values.tune ?? false },
      onPhase,
      instruments: onWatch ? [watchInstrument(onWatch)] : [],
    });
  } catch (e) {
    if (!(e instanceof CompileError)) throw e;
    if (e.stage === "usage") throw new UsageError(e.message);
    if (e.stage === "input" && e.diagnostics.length > 0) {
      reportDiagnostics(e.diagnostics, e.source);
      return 1;
    }
    if (e.stage === "pass" && e.diagnostics.length > 0) {
      console.error(`error: pass '${e.pass}' left IR that does not verify:`);
      reportDiagnostics(e.diagnostics, e.source);
    } else {
      console.error(/\berror: /.test(e.message) ? e.message : `error: ${e.message}`);
    }
    // An input that cannot be read stops the compile before it started: one line says it all.
    if (e.stage === "pass" && e.reproducer) {
      console.error(`the output was not written; pipeline: ${values.passes}`);
      console.error(
        `wrote the crash reproducer ${e.reproducer} (replay: deno task compile --run-reproducer ${e.reproducer})`,
      );
    } else if (e.stage !== "input") {
      console.error(
        e.stage === "pass" ? `nothing was written; pipeline: ${values.passes}` : "nothing was written",
      );
    }
    if (e.reproducerProblem) console.error(`could not write the crash reproducer: ${e.reproducerProblem}`);
    return 1;
  }

  /** A line of the report on stderr, unless --quiet. */
  const say = (text: string) => values.quiet || console.error(text);
  if (values.timing) console.error(result.timingTable);
  if (values.stats) {
    for (const s of result.stats) console.error(`${s.pass}: ${s.doc}: ${s.value}`);
  }
  // The pattern report of the final module, written after the output.
  const report = values.report && formatPatternReportJson(patternReport(result.module, result.weights));
  const writeReport = async () => {
    if (!values.report || !report) return;
    await writeTextAtomic(values.report, report);
    say(`wrote ${values.report}`);
  };
  if (!values.output) {
    Deno.stdout.writeSync(new TextEncoder().encode(print(result.module)));
    return await writeReport();
  }
  const out = values.output;
  if (artifact) {
    await writeArtifact(result, out, { emitKernels: values["emit-kernels"] });
    const kernels = values["emit-kernels"]
      ? ` and ${result.artifact!.kernels.length} kernels to ${values["emit-kernels"]}`
      : "";
    say(pipelineLines(result.pipeline).join("\n"));
    say(formatReport(result.artifact!.report));
    say(`wrote ${out}${kernels}`);
  } else {
    await writeModule(result, out);
    say(`wrote ${out}`);
  }
  await writeReport();
}

/** `files` (in one folder) and, when that folder is missing, the folder too (so it can be created). */
function fileWrites(...files: string[]): string[] {
  const dir = dirname(files[0]);
  const missing = (() => {
    try {
      Deno.statSync(dir);
      return false;
    } catch {
      return true;
    }
  })();
  return [...files, ...(missing ? [dir] : [])];
}

/**
 * Where a failing pass's crash reproducer goes: `--reproducer`, or beside `-o` as
 * `<out>.reproducer.sir` (`x.sir` gives `x.reproducer.sir`, a folder `art` gives `art.reproducer.sir`).
 */
export function reproducerPath(
  values: ReturnType<typeof parseCli<typeof COMPILE_OPTIONS>>["values"],
): string | undefined {
  if (values.reproducer !== undefined) return values.reproducer;
  if (values.output === undefined) return undefined;
  return values.output.replace(/[\\/]+$/, "").replace(/\.sir$/, "") + ".reproducer.sir";
}

/**
 * The arguments of a compile that replays `--run-reproducer FILE`: FILE as the model, the pipeline
 * and plugins its header names, and the other flags as given. Other arguments come back as they are.
 */
export async function reproducerArgs(args: string[]): Promise<string[]> {
  const { values, positionals } = parseCli(args, COMPILE_OPTIONS);
  const file = values["run-reproducer"];
  if (file === undefined) return args;
  if (positionals.length > 0) {
    throw new UsageError(
      `--run-reproducer ${file} replays that file: give no model (got '${positionals[0]}')`,
    );
  }
  if (values.passes || values.plugin.length > 0) {
    throw new UsageError(
      `--run-reproducer ${file}: the pipeline and plugins come from its header; drop --passes and --plugin`,
    );
  }
  await requireInput(file, "a crash reproducer written by a failing compile");
  const header = (await Deno.readTextFile(file)).split("\n").filter((l) => l.startsWith("//"));
  const pipeline = header.find((l) => l.startsWith(REPRODUCER_PIPELINE));
  if (pipeline === undefined) {
    throw new UsageError(`${file}: not a crash reproducer (no '${REPRODUCER_PIPELINE.trim()}' line)`);
  }
  const plugins = header.filter((l) => l.startsWith(REPRODUCER_PLUGIN)).map((l) => {
    try {
      return String(JSON.parse(l.slice(REPRODUCER_PLUGIN.length)));
    } catch {
      throw new UsageError(`${file}: a malformed plugin line: ${l}`);
    }
  });
  const rest = args.filter((a, i) =>
    a !== "--run-reproducer" && args[i - 1] !== "--run-reproducer" && !a.startsWith("--run-reproducer=")
  );
  return [
    file,
    "--passes",
    pipeline.slice(REPRODUCER_PIPELINE.length),
    ...plugins.flatMap((p) => ["--plugin", p]),
    ...rest,
  ];
}

/** What `deno task compile` with these arguments writes, for the launcher's sandbox. */
export function compileWrites(
  values: ReturnType<typeof parseCli<typeof COMPILE_OPTIONS>>["values"],
): string[] {
  const out = values.output;
  const artifact = out !== undefined && !out.endsWith(".sir");
  const reproducer = reproducerPath(values);
  return [
    ...(out && !artifact ? [dirname(resolve(out))] : []),
    // An artifact is written to a staging folder beside it, then renamed into place.
    ...(out && artifact
      ? [resolve(out), join(dirname(resolve(out)), `.${basename(resolve(out))}.partial-${Deno.pid}`)]
      : []),
    ...(values["dump-dir"] ? [resolve(values["dump-dir"])] : []),
    ...(values["emit-kernels"] ? [resolve(values["emit-kernels"])] : []),
    ...(values.report ? [dirname(resolve(values.report))] : []),
    // The tuning log, the temporary file it is written through, and its folder if it does not exist yet.
    ...(artifact
      ? fileWrites(resolve(values["tuning-log"]), tuningLogTemp(resolve(values["tuning-log"])))
      : []),
    // The crash reproducer and the weights file beside it.
    ...(reproducer
      ? fileWrites(resolve(reproducer), resolve(reproducer.replace(/\.sir$/, "") + ".safetensors"))
      : []),
  ];
}
