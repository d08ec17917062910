/**
 * The pass manager: runs a pipeline over a copy of a module, so that the input stays
 * untouched when a pass fails. After each pass that reports a change it verifies the module
 * (unless told not to); a pass that says "unchanged" but changed the text is caught too.
 * Instruments (as TVM's) see every pass before and after it runs: IR printing, dumps and
 * timing are instruments.
 */

import { cloneModule } from "../ir/clone.ts";
import type { Diagnostic } from "../ir/diagnostics.ts";
import type { Func, Loc, Module } from "../ir/module.ts";
import { builtinRegistry } from "../ir/ops/index.ts";
import { print } from "../ir/printer.ts";
import type { OpRegistry } from "../ir/registry.ts";
import type { Tensor } from "../ir/tensor.ts";
import { verify } from "../ir/verifier.ts";
import { OverlayStore, type WeightStore } from "../ir/weights.ts";
import type { Analysis, AnyPass, PassContext, Sentences } from "./pass.ts";
import { PassFailure, thrownMessage } from "./pass.ts";
import { entryOptions, type Pipeline, type PipelineEntry } from "./pipeline.ts";

/** What an instrument learns after a pass ran. */
export interface PassRun {
  /** The pass that ran. */
  readonly pass: AnyPass;
  /** Position in the pipeline, from 1. */
  readonly index: number;
  /** It reported a change. */
  readonly changed: boolean;
  /** Skipped by the pass's filter. */
  readonly skipped: boolean;
  /** Wall time of the pass alone, in milliseconds. */
  readonly ms: number;
}

/** The weights as instruments see them: the pipeline's current data, and whether passes replaced any. */
export interface InstrumentWeights extends WeightStore {
  /** Counts replacements so far: it differs after a pass that replaced weights. */
  readonly version: number;
  /** The weights as they are now, frozen: later replacements do not show in it. */
  snapshot(): WeightStore;
}

/** Hooks around each pass, for printing, dumping and timing; each sees the module and its weights. */
export interface Instrument {
  /** Before a pass runs, with the module as it is. */
  beforePass?(pass: AnyPass, index: number, m: Module, weights: InstrumentWeights): void;
  /** After a pass ran (and was verified), with the module as it is now. */
  afterPass?(run: PassRun, m: Module, weights: InstrumentWeights): void;
  /** After a pass failed, with the module as the pass left it (for print-ir-after-failure). */
  afterFailure?(pass: AnyPass, index: number, m: Module, weights: InstrumentWeights): void;
}

/** Options of `runPipeline`. */
export interface RunOptions {
  /** Verify after every pass that changed the module; on by default. */
  readonly verifyEach?: boolean;
  /** Hooks around every pass. */
  readonly instruments?: readonly Instrument[];
  /** The ops the module may use; the built-in ops by default. */
  readonly registry?: OpRegistry;
  /** Weight data passes may read and replace; none by default. */
  readonly weights?: WeightStore;
  /** Where passes' log lines go; stderr by default. */
  readonly log?: (line: string) => void;
  /** Calibration sentences prepared for the entries whose pass asked for them (`PassDef.inputs`). */
  readonly sentences?: ReadonlyMap<PipelineEntry, Sentences>;
}

/** A statistic a pass counted. */
export interface PassStatistic {
  /** The pass that counted it. */
  readonly pass: string;
  /** Its name, as the pass declared it. */
  readonly name: string;
  /** What it counts, as the pass declared. */
  readonly doc: string;
  /** The count. */
  readonly value: number;
}

/** What a pipeline produced. */
export interface PipelineResult {
  /** The transformed copy of the input. */
  readonly module: Module;
  /** The weights after the pipeline: the input store with the passes' replacements over it. */
  readonly weights: WeightStore;
  /** Weights the passes replaced, by name. */
  readonly changedWeights: ReadonlyMap<string, Tensor>;
  /** What the passes counted. */
  readonly stats: readonly PassStatistic[];
  /** Every pass run, in order. */
  readonly runs: readonly PassRun[];
}

/** A pass failed: names the pass and, where known, the place. */
export class PassError extends Error {
  /** A failure of `pass`, at `loc`, with verifier diagnostics when the IR did not verify. */
  constructor(
    readonly pass: string,
    readonly loc: Loc | undefined,
    readonly detail: string,
    readonly diagnostics: readonly Diagnostic[] = [],
  ) {
    const where = loc ? `${loc.file}:${loc.line}:${loc.col}: ` : "";
    super(`${where}error: pass '${pass}' ${detail}`);
    this.name = "PassError";
  }
}

const EMPTY_STORE: WeightStore = {
  entries: () => new Map(),
  get: (w) => {
    throw new Error(`no weight data for '@${w.name}'`);
  },
};

function hasOp(m: Module, names: readonly string[]): boolean {
  return m.funcs.some((f) => f.body.some((op) => names.includes(op.name)));
}

/** Runs a pipeline over a copy of `input`. Throws PassError; `input` is never changed. */
export function runPipeline(input: Module, pipeline: Pipeline, options: RunOptions = {}): PipelineResult {
  const m = cloneModule(input);
  const registry = options.registry ?? builtinRegistry;
  const base = options.weights ?? EMPTY_STORE;
  const weights = new OverlayStore(base);
  const seen: InstrumentWeights = {
    entries: () => weights.entries(),
    get: (w) => weights.get(w),
    get version() {
      return weights.version;
    },
    snapshot() {
      const frozen = new OverlayStore(base);
      for (const [name, data] of weights.changes) frozen.set(name, data);
      return frozen;
    },
  };
  const verifyEach = options.verifyEach ?? true;
  const cache = new Map<string, unknown>();
  const stats: PassStatistic[] = [];
  const runs: PassRun[] = [];
  let anyChange = false;
  const verifyOrThrow = (passName: string, what: string) => {
    const entries = options.weights ? weights.entries() : undefined;
    const ds = verify(m, { registry, weights: entries, weightsSource: "the weights" });
    if (ds.length > 0) throw new PassError(passName, ds[0].loc, `${what}: ${ds[0].message}`, ds);
  };

  pipeline.entries.forEach((entry, i) => {
    const pass = entry.pass;
    const index = i + 1;
    for (const ins of options.instruments ?? []) ins.beforePass?.(pass, index, m, seen);
    const t0 = performance.now();
    if (pass.filter?.ops && !hasOp(m, pass.filter.ops)) {
      const run = { pass, index, changed: false, skipped: true, ms: performance.now() - t0 };
      runs.push(run);
      for (const ins of options.instruments ?? []) ins.afterPass?.(run, m, seen);
      return;
    }
    const counters = new Map<string, number>();
    const ctx: PassContext = {
      options: entryOptions(entry),
      registry,
      sentences: options.sentences?.get(entry),
      weights,
      stat(name, amount = 1) {
        if (!pass.statistics || !Object.hasOwn(pass.statistics, name)) {
          throw new PassFailure(undefined, `counted statistic '${name}' that it does not declare`);
        }
        counters.set(name, (counters.get(name) ?? 0) + amount);
      },
      analysis<T>(a: Analysis<T>): T {
        if (!cache.has(a.name)) cache.set(a.name, a.compute(m));
        return cache.get(a.name) as T;
      },
      log: (line) => (options.log ?? console.error)(`${pass.name}: ${line}`),
      error: (at, message) => new PassFailure(at && "result" in at ? at.loc : at as Loc | undefined, message),
    };
    const before = verifyEach ? print(m) : "";
    const weightsBefore = weights.version;
    let changed: boolean;
    try {
      changed = runPass(pass, m, ctx);
      if (!changed && weights.version !== weightsBefore) {
        throw new PassError(pass.name, m.loc, `returned "unchanged" but replaced weights`);
      }
      if (verifyEach) {
        if (!changed && print(m) !== before) {
          throw new PassError(pass.name, m.loc, `returned "unchanged" but changed the module`);
        }
        if (changed) verifyOrThrow(pass.name, "left IR that does not verify");
      }
    } catch (e) {
      for (const ins of options.instruments ?? []) ins.afterFailure?.(pass, index, m, seen);
      throw e;
    }
    const ms = performance.now() - t0;
    if (changed) {
      anyChange = true;
      for (const key of cache.keys()) if (!pass.preserves?.includes(key)) cache.delete(key);
    }
    for (const [name, value] of counters) {
      stats.push({ pass: pass.name, name, doc: pass.statistics![name], value });
    }
    const run = { pass, index, changed, skipped: false, ms };
    runs.push(run);
    for (const ins of options.instruments ?? []) ins.afterPass?.(run, m, seen);
  });
  // Without verify-each, the end result is still verified before anyone can write it.
  if (!verifyEach && anyChange) {
    verifyOrThrow(
      "(end of pipeline)",
      "left IR that does not verify (verify-each was off: rerun with it to find the pass)",
    );
  }
  return { module: m, weights, changedWeights: weights.changes, stats, runs };
}

/** Runs one pass, turning its failures and malformed results into PassErrors. */
function runPass(pass: AnyPass, m: Module, ctx: PassContext): boolean {
  let current: Func | undefined;
  const call = (run: () => unknown): boolean => {
    let r: unknown;
    try {
      r = run();
    } catch (e) {
      if (e instanceof PassFailure) {
        throw new PassError(pass.name, e.loc ?? current?.loc ?? m.loc, `failed: ${thrownMessage(e)}`);
      }
      throw new PassError(pass.name, current?.loc ?? m.loc, `threw: ${thrownMessage(e)}`);
    }
    if (r !== "changed" && r !== "unchanged") {
      const why = `returned ${describe(r)}; a pass returns "changed" or "unchanged"`;
      throw new PassError(pass.name, current?.loc ?? m.loc, why);
    }
    return r === "changed";
  };
  if (pass.runOnModule) return call(() => pass.runOnModule!(m, ctx));
  let changed = false;
  for (const f of m.funcs) {
    current = f;
    changed = call(() => pass.runOnFunction!(f, ctx)) || changed;
  }
  return changed;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  try {
    const json = JSON.stringify(v);
    if (json !== undefined) return json.length > 300 ? `${json.slice(0, 300)}...` : json;
  } catch { /* not JSON: said another way */ }
  return thrownMessage(v);
}
