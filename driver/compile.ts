/**
 * The compile session: one call from a model to a compiled artifact in memory. It reads the input
 * (IR, Hugging Face folder, ONNX file or a module in memory), loads plugins, parses the pipeline,
 * prepares what passes declared they read (calibration sentences), runs the passes with the
 * instruments asked for, and compiles the final module. Writing the result and loading it into the
 * runtime are separate calls (`driver/output.ts`, `loadCompiled`). Every entry point (CLI, demo,
 * benches, tests) calls this.
 */

import { dirname, relative, resolve } from "node:path";
import type { Diagnostic } from "../ir/diagnostics.ts";
import type { Module } from "../ir/module.ts";
import type { Tensor } from "../ir/tensor.ts";
import type { WeightStore } from "../ir/weights.ts";
import { CalibrationError, prepareSentences } from "./calibration.ts";
import { bsrLowerSkips } from "../passes/bsr_lower.ts";
import { createPassRegistry } from "../passes/index.ts";
import {
  dumpDirInstrument,
  printIrInstrument,
  type PrintIrOptions,
  ReproducerInstrument,
  TimingInstrument,
  type TimingRow,
} from "../passes/instruments.ts";
import {
  type Instrument,
  PassError,
  type PassRun,
  type PassStatistic,
  runPipeline,
} from "../passes/manager.ts";
import type { AnyPass } from "../passes/pass.ts";
import { parsePipeline, type Pipeline, PipelineError } from "../passes/pipeline.ts";
import { loadPlugin, PluginError } from "../passes/plugin.ts";
import type { PassRegistry } from "../passes/registry.ts";
import { type Compiled, compileModule, type CompileOptions as CodegenOptions } from "../codegen/compile.ts";
import { CodegenError } from "../codegen/lower/context.ts";
import { emptyLog, readTuningLog, type TuningLog } from "../codegen/tuning_log.ts";
import type { TextFiles } from "../runtime/classify.ts";
import { type CompileInput, InputError, type InputKind, inputKind, loadInput } from "./input.ts";
import { bucketOf, SpecializeError } from "../ir/specialize.ts";

/** The passes run when a compile names none: clean-up and fusion. */
export const DEFAULT_PIPELINE = "canonicalize,cse,fuse,dce";

/**
 * The temporary file a tuning log is written to before it is renamed over `log`: a fixed name
 * (per process) beside it, so a sandbox can grant exactly the log and this file.
 */
export function tuningLogTemp(log: string): string {
  return `${log}.partial-${Deno.pid}`;
}

/** Writes the tuning log atomically through {@link tuningLogTemp}, creating its folder if missing. */
async function writeTuningLog(path: string, text: string): Promise<void> {
  const tmp = tuningLogTemp(path);
  try {
    await Deno.writeTextFile(tmp, text).catch(async (e) => {
      // Only a missing folder is created: a sandbox may grant the log and not its folder.
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      await Deno.mkdir(dirname(resolve(path)), { recursive: true });
      await Deno.writeTextFile(tmp, text);
    });
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/** Options of {@link compile}. */
export interface CompileOptions {
  /**
   * Pipeline text (`"prune{sparsity=0.8 block=1x32},bsr-lower,dce"`), passes, or a parsed pipeline;
   * {@link DEFAULT_PIPELINE} by default.
   */
  readonly pipeline?: string | readonly AnyPass[] | Pipeline;
  /** Plugins: paths of `.ts`/`.js` modules exporting passes, or pass objects; their passes join the registry. */
  readonly plugins?: readonly (string | AnyPass)[];
  /**
   * The passes pipeline text may name; by default the built-in passes and the plugins' (see
   * {@link passRegistry}). Given a registry, the plugin paths only name the plugins a crash reproducer lists.
   */
  readonly registry?: PassRegistry;
  /** Print the IR around passes (`before`, `after`, `afterAll`, `afterChange`, `write`). */
  readonly print?: PrintIrOptions;
  /** Write `00-input.sir` and `NN-<pass>.sir` after each pass into this folder. */
  readonly dumpDir?: string;
  /**
   * When a pass fails, write a crash reproducer here: the module given to the failing pass, with the
   * pipeline from that pass on in a header (see `ReproducerInstrument`).
   */
  readonly reproducer?: string;
  /** More instruments to run around every pass. */
  readonly instruments?: readonly Instrument[];
  /** Verify after every pass that changed the module; on by default. */
  readonly verifyEach?: boolean;
  /** Compile to an artifact after the passes; on by default (off: passes only). */
  readonly codegen?: boolean;
  /** Tuning of sparse products: the log (a path, read and, after new measurements, rewritten; or a log object) and whether to measure what it lacks. */
  readonly tuning?: { readonly log?: string | TuningLog; readonly tune?: boolean };
  /** Force plain SIMD when tuning measures schedules (relaxed SIMD by default). */
  readonly simd?: "relaxed" | "plain";
  /**
   * The sequence length a checkpoint or ONNX model is imported at. Several lengths (with
   * `codegen`) compile one bucket per length and batch size into the artifact, sharing the weights;
   * a checkpoint or ONNX model is then imported at the longest. For an IR file (which has its own
   * length) or a module, any `seq` means buckets.
   */
  readonly seq?: number | readonly number[];
  /** The batch sizes to compile buckets for (with `seq`'s lengths, or the model's own); default 1. */
  readonly batch?: number | readonly number[];
  /** Where passes' log lines go; stderr by default. */
  readonly log?: (line: string) => void;
  /** Hears codegen's phases, for a progress display. */
  readonly onPhase?: CodegenOptions["onPhase"];
}

/** What {@link compile} produced. Nothing is written. */
export interface CompileResult {
  /** What the input was. */
  readonly inputKind: InputKind;
  /** The input's path, if it had one. */
  readonly inputPath?: string;
  /** The weights file the input module reads, if any (absolute). */
  readonly inputWeights?: string;
  /** The pipeline that ran. */
  readonly pipeline: Pipeline;
  /** The registry the pipeline was parsed with (built-in passes and plugins). */
  readonly registry: PassRegistry;
  /** The module after the passes. */
  readonly module: Module;
  /** The weights after the passes: the input's, with the passes' replacements over them. */
  readonly weights: WeightStore;
  /** The weights the passes replaced, by name. */
  readonly changedWeights: ReadonlyMap<string, Tensor>;
  /** What the passes counted (`--stats`). */
  readonly stats: readonly PassStatistic[];
  /** Every pass run, in order. */
  readonly runs: readonly PassRun[];
  /** Each pass's wall time and the op count after it. */
  readonly timing: readonly TimingRow[];
  /** The timing as a table. */
  readonly timingTable: string;
  /** The compiled artifact, in memory (absent with `codegen: false`), with the checkpoint's tokenizer and labels when it had a tokenizer. */
  readonly artifact?: Compiled & { readonly text?: TextFiles };
}

/**
 * A compile that failed: one line naming the place, with the verifier's diagnostics (and the IR
 * text they point into) when the input or a pass's output did not verify. `stage` says where.
 */
export class CompileError extends Error {
  /** A failure in `stage`. */
  constructor(
    readonly stage: "usage" | "input" | "plugin" | "pipeline" | "pass" | "codegen",
    message: string,
    detail: {
      diagnostics?: readonly Diagnostic[];
      source?: string;
      pass?: string;
      reproducer?: string;
      reproducerProblem?: string;
    } = {},
  ) {
    super(message);
    this.name = "CompileError";
    this.diagnostics = detail.diagnostics ?? [];
    this.source = detail.source ?? "";
    this.pass = detail.pass;
    this.reproducer = detail.reproducer;
    this.reproducerProblem = detail.reproducerProblem;
  }

  /** The verifier's diagnostics, when IR did not verify. */
  readonly diagnostics: readonly Diagnostic[];
  /** The IR text the diagnostics point into. */
  readonly source: string;
  /** The pass that failed, for stage `pass`. */
  readonly pass?: string;
  /** The crash reproducer written for the failing pass (see `CompileOptions.reproducer`). */
  readonly reproducer?: string;
  /** Why the crash reproducer asked for could not be written. */
  readonly reproducerProblem?: string;
}

/** A registry of the built-in passes and the plugins' passes. */
export async function passRegistry(plugins: readonly (string | AnyPass)[] = []): Promise<PassRegistry> {
  const registry = createPassRegistry();
  for (const plugin of plugins) {
    try {
      if (typeof plugin === "string") await loadPlugin(plugin, registry);
      else registry.register(plugin);
    } catch (e) {
      if (e instanceof PluginError || typeof plugin !== "string") {
        throw new CompileError("plugin", (e as Error).message);
      }
      throw e;
    }
  }
  return registry;
}

const isPassList = (p: unknown): p is readonly AnyPass[] => Array.isArray(p);

/** Parses pipeline text (or takes passes) against `registry`; a syntax error points at its column. */
export function pipelineOf(
  pipeline: string | readonly AnyPass[] | Pipeline,
  registry: PassRegistry,
): Pipeline {
  if (isPassList(pipeline)) return { entries: pipeline.map((pass) => ({ pass, written: new Map() })) };
  if (typeof pipeline !== "string") return pipeline;
  try {
    return parsePipeline(pipeline, registry);
  } catch (e) {
    if (!(e instanceof PipelineError)) throw e;
    throw new CompileError(
      "pipeline",
      `pipeline:${e.col}: ${e.message}\n  ${pipeline}\n  ${" ".repeat(e.col - 1)}^`,
    );
  }
}

/** The sizes an option lists, ascending and distinct; undefined when not given. */
function sizes(name: string, value: number | readonly number[] | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const list = typeof value === "number" ? [value] : [...value];
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1 || n > 65536)) {
    throw new CompileError("usage", `${name} must be positive integers, got ${JSON.stringify(value)}`);
  }
  return [...new Set(list)].sort((a, b) => a - b);
}

/**
 * Compiles a model: reads `input`, runs the pipeline over it and compiles the result to an
 * artifact in memory. Throws {@link CompileError} (one line, with diagnostics where IR failed to
 * verify); the input is never changed.
 *
 * ```ts
 * const r = await compile("../shared/models/sst2-bert-mini", {
 *   seq: 64,
 *   pipeline: "prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4},canonicalize,cse,fuse,dce",
 * });
 * const model = await loadCompiled(r.artifact!, { threads: 2 });
 * ```
 */
export async function compile(input: CompileInput, options: CompileOptions = {}): Promise<CompileResult> {
  const registry = options.registry ?? await passRegistry(options.plugins);
  const pipeline = pipelineOf(options.pipeline ?? DEFAULT_PIPELINE, registry);
  if (
    typeof input === "string" &&
    !await Deno.stat(input).then(() => true, (e) => !(e instanceof Deno.errors.NotFound))
  ) {
    throw new CompileError(
      "input",
      `${input}: no such file or folder (expected an IR file, a checkpoint folder or an ONNX file)`,
    );
  }
  const seqs = sizes("seq", options.seq);
  const batches = sizes("batch", options.batch);
  const kind = typeof input === "string" ? await inputKind(input) : "memory";
  const imported = kind === "hf" || kind === "onnx";
  const bucketed = batches !== undefined || (seqs !== undefined && (seqs.length > 1 || !imported));
  if (bucketed && options.codegen === false) {
    throw new CompileError(
      "usage",
      "buckets (several seq lengths, or batch sizes) are compiled into an artifact; codegen is off",
    );
  }
  let loaded;
  try {
    loaded = await loadInput(input, { seq: imported && seqs ? Math.max(...seqs) : undefined });
  } catch (e) {
    if (e instanceof InputError) {
      throw new CompileError("input", e.message, { diagnostics: e.diagnostics, source: e.text });
    }
    throw e;
  }
  let sentences;
  try {
    sentences = await prepareSentences(pipeline, loaded.modelDirs);
  } catch (e) {
    if (e instanceof CalibrationError) throw new CompileError("input", e.message);
    throw e;
  }

  const timing = new TimingInstrument();
  const instruments: Instrument[] = [
    ...(options.print ? [printIrInstrument(options.print)] : []),
    timing,
    ...(options.instruments ?? []),
  ];
  if (options.dumpDir) {
    const dumpWeights = loaded.weightsPath && relative(resolve(options.dumpDir), loaded.weightsPath);
    instruments.push(dumpDirInstrument(options.dumpDir, dumpWeights));
  }
  const reproducer = options.reproducer === undefined ? undefined : new ReproducerInstrument(
    options.reproducer,
    pipeline,
    {
      inputWeights: loaded.weightsPath,
      plugins: (options.plugins ?? []).filter((p) => typeof p === "string").map((p) => resolve(p)),
    },
  );
  if (reproducer) instruments.push(reproducer);
  let result;
  try {
    result = runPipeline(loaded.module, pipeline, {
      verifyEach: options.verifyEach ?? true,
      instruments,
      weights: loaded.weights,
      log: options.log,
      sentences,
    });
  } catch (e) {
    if (!(e instanceof PassError)) throw e;
    throw new CompileError("pass", e.message, {
      diagnostics: e.diagnostics,
      source: loaded.text,
      pass: e.pass,
      reproducer: reproducer?.written,
      reproducerProblem: reproducer?.problem,
    });
  }

  let artifact: Compiled | undefined;
  if (options.codegen ?? true) {
    const logPath = typeof options.tuning?.log === "string" ? options.tuning.log : undefined;
    const tuningLog = typeof options.tuning?.log === "object"
      ? options.tuning.log
      : logPath
      ? await readTuningLog(logPath).catch((e) => {
        throw new CompileError("usage", `tuning log: ${(e as Error).message}`);
      })
      : emptyLog();
    try {
      const own = bucketed ? bucketOf(result.module) : undefined;
      artifact = await compileModule(result.module, result.weights, {
        buckets: own &&
          (batches ?? [1]).flatMap((batch) => (seqs ?? [own.seq]).map((seq) => ({ batch, seq }))),
        tune: options.tuning?.tune ?? false,
        tuningLog,
        relaxedSimd: options.simd !== "plain",
        onPhase: options.onPhase,
      });
    } catch (e) {
      if (!(e instanceof CodegenError || e instanceof SpecializeError)) throw e;
      throw new CompileError("codegen", e.message);
    }
    artifact.report.bsrSkips = bsrLowerSkips(result.module, result.weights, pipeline);
    if (logPath && artifact.report.tuned > 0) {
      await writeTuningLog(logPath, JSON.stringify(tuningLog, null, 1) + "\n").catch((e) => {
        throw new CompileError("codegen", `cannot write the tuning log ${logPath}: ${(e as Error).message}`);
      });
    }
  }
  return {
    inputKind: loaded.kind,
    inputPath: loaded.path,
    inputWeights: loaded.weightsPath,
    pipeline,
    registry,
    module: result.module,
    weights: result.weights,
    changedWeights: result.changedWeights,
    stats: result.stats,
    runs: result.runs,
    timing: timing.rows,
    timingTable: timing.table(),
    artifact: artifact && { ...artifact, text: loaded.textFiles },
  };
}
