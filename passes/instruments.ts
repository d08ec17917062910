/**
 * Debugging instruments for pipelines: IR printing before/after passes (as MLIR's
 * `--mlir-print-ir-*`), numbered dumps to a folder, and a timing table.
 */

import { basename, dirname, join, relative, resolve } from "node:path";
import { cloneModule } from "../ir/clone.ts";
import type { Module } from "../ir/module.ts";
import { print } from "../ir/printer.ts";
import { encodeSafetensors } from "../ir/safetensors.ts";
import { type WeightStore, weightTensors } from "../ir/weights.ts";
import type { Instrument, InstrumentWeights, PassRun } from "./manager.ts";
import type { AnyPass } from "./pass.ts";
import { type Pipeline, printPipeline } from "./pipeline.ts";

/** Which IR to print around passes. */
export interface PrintIrOptions {
  /** Pass names to print the IR before. */
  readonly before?: readonly string[];
  /** Pass names to print the IR after. */
  readonly after?: readonly string[];
  /** Print after every pass. */
  readonly afterAll?: boolean;
  /** Print after every pass that changed the module. */
  readonly afterChange?: boolean;
  /** Where the text goes. */
  readonly write: (text: string) => void;
}

const banner = (when: string, pass: AnyPass, index: number) =>
  `// -----// IR Dump ${when} ${pass.name} (${index}) //----- //`;

/** Prints the module around the chosen passes. */
export function printIrInstrument(o: PrintIrOptions): Instrument {
  return {
    beforePass(pass, index, m) {
      if (o.before?.includes(pass.name)) o.write(`${banner("Before", pass, index)}\n${print(m)}`);
    },
    afterPass(run, m) {
      const chosen = o.afterAll || o.after?.includes(run.pass.name) || (o.afterChange && run.changed);
      if (chosen) o.write(`${banner("After", run.pass, run.index)}\n${print(m)}`);
    },
    afterFailure(pass, index, m) {
      const chosen = o.afterAll || o.after?.includes(pass.name) || o.afterChange;
      if (chosen) o.write(`${banner("After Failure", pass, index)}\n${print(m)}`);
    },
  };
}

/** Op count of a module. */
export function opCount(m: Module): number {
  return m.funcs.reduce((n, f) => n + f.body.length, 0);
}

/** Writes `m`'s weights from `store` as a safetensors file at `path`, synchronously (instruments are). */
function writeWeightsSync(path: string, m: Module, store: WeightStore): void {
  Deno.writeFileSync(path, encodeSafetensors(weightTensors(m, store), undefined, path));
}

/**
 * Writes the input as `00-input.sir` and the module after each pass as `NN-<pass>.sir` into
 * `dir` (`NN-<pass>.failed.sir` after a failing pass), first removing the dumps of an earlier
 * run. Each dump loads and runs with the weights as they were at that point: a pass that
 * replaced weights gets `NN-<pass>.safetensors` (all the module's weights) beside its dump, which
 * the dumps after it name until another pass replaces weights; before any replacement the dumps
 * name `inputWeights` (the input's weights file, relative to `dir`). An input without a weights
 * file of its own (a checkpoint or ONNX model read in memory) gets `00-input.safetensors`.
 */
export function dumpDirInstrument(dir: string, inputWeights: string | undefined): Instrument {
  Deno.mkdirSync(dir, { recursive: true });
  for (const e of Deno.readDirSync(dir)) {
    if (e.isFile && /^\d\d-.*\.(sir|safetensors)$/.test(e.name)) Deno.removeSync(join(dir, e.name));
  }
  let weightsFile = inputWeights;
  let version = 0;
  const dump = (name: string, m: Module, weights: InstrumentWeights) => {
    const needsFile = weights.version !== version || (weightsFile === undefined && m.weights.size > 0);
    if (needsFile) {
      weightsFile = `${name}.safetensors`;
      writeWeightsSync(join(dir, weightsFile), m, weights);
      version = weights.version;
    }
    const own = m.weightsFile;
    m.weightsFile = weightsFile;
    try {
      Deno.writeTextFileSync(join(dir, `${name}.sir`), print(m));
    } finally {
      m.weightsFile = own;
    }
  };
  return {
    beforePass(_pass, index, m, weights) {
      if (index === 1) dump("00-input", m, weights);
    },
    afterPass(run, m, weights) {
      dump(`${String(run.index).padStart(2, "0")}-${run.pass.name}`, m, weights);
    },
    afterFailure(pass, index, m, weights) {
      dump(`${String(index).padStart(2, "0")}-${pass.name}.failed`, m, weights);
    },
  };
}

/** The header line of a crash reproducer that holds the pipeline to replay (the failing pass and the rest). */
export const REPRODUCER_PIPELINE = "// sparrow-reproducer pipeline: ";
/** The header line of a crash reproducer naming a plugin to load (JSON string of its absolute path). */
export const REPRODUCER_PLUGIN = "// sparrow-reproducer plugin: ";

/** What a crash reproducer needs besides the module: where its weights are and which plugins to load. */
export interface ReproducerOptions {
  /** The input's weights file (absolute), named by the reproducer while no pass has replaced weights. */
  readonly inputWeights?: string;
  /** Plugin modules (absolute paths) the pipeline's passes come from. */
  readonly plugins?: readonly string[];
}

/**
 * Writes a crash reproducer, as MLIR's `--mlir-pass-pipeline-crash-reproducer`: when a pass fails,
 * `path` gets the module as it was given to that pass, with a header naming the pipeline from the
 * failing pass on (and the plugins to load), so that `deno task compile --run-reproducer path`
 * replays it. Its weights are the input's file while no earlier pass replaced weights, and
 * otherwise `<path without .sir>.safetensors`, written beside it with the weights as they were.
 * Nothing is written while the passes succeed; `written` names the file after a failure, and
 * `problem` says why it could not be written.
 */
export class ReproducerInstrument implements Instrument {
  /** The reproducer's path, once written. */
  written?: string;
  /** Why the reproducer could not be written, if it could not. */
  problem?: string;
  #before?: { module: Module; weights: WeightStore; version: number };

  /** A reproducer at `path` for `pipeline`. */
  constructor(
    readonly path: string,
    readonly pipeline: Pipeline,
    readonly options: ReproducerOptions = {},
  ) {}

  /** Keeps the module and weights the pass is given. */
  beforePass(_pass: AnyPass, _index: number, m: Module, weights: InstrumentWeights): void {
    this.#before = { module: cloneModule(m), weights: weights.snapshot(), version: weights.version };
  }

  /** Writes the reproducer of the failing pass. */
  afterFailure(_pass: AnyPass, index: number, _m: Module, _weights: InstrumentWeights): void {
    const before = this.#before!;
    const dir = dirname(resolve(this.path));
    try {
      Deno.mkdirSync(dir, { recursive: true });
      const m = before.module;
      const own = before.version === 0 && this.options.inputWeights !== undefined;
      if (own) {
        m.weightsFile = relative(dir, this.options.inputWeights!).split("\\").join("/");
      } else if (m.weights.size > 0) {
        const weightsPath = this.path.replace(/\.sir$/, "") + ".safetensors";
        writeWeightsSync(weightsPath, m, before.weights);
        m.weightsFile = basename(weightsPath);
      } else m.weightsFile = undefined;
      const rest: Pipeline = { entries: this.pipeline.entries.slice(index - 1) };
      const header = [
        `// Crash reproducer: pass '${this.pipeline.entries[index - 1].pass.name}' (${index} of ` +
        `${this.pipeline.entries.length}) failed on this module. Replay: deno task compile --run-reproducer ${this.path}`,
        `${REPRODUCER_PIPELINE}${printPipeline(rest)}`,
        ...(this.options.plugins ?? []).map((p) => `${REPRODUCER_PLUGIN}${JSON.stringify(p)}`),
      ];
      Deno.writeTextFileSync(this.path, `${header.join("\n")}\n${print(m)}`);
      this.written = this.path;
    } catch (e) {
      this.problem = (e as Error).message;
    }
  }
}

/** One row of the timing table. */
export interface TimingRow {
  /** The pass run. */
  readonly run: PassRun;
  /** Ops in the module after the pass. */
  readonly ops: number;
}

/** Collects each pass's wall time and the op count after it. */
export class TimingInstrument implements Instrument {
  /** The rows so far, in pipeline order. */
  readonly rows: TimingRow[] = [];

  /** Records a finished pass. */
  afterPass(run: PassRun, m: Module): void {
    this.rows.push({ run, ops: opCount(m) });
  }

  /** The table as text. */
  table(): string {
    const lines = [["#", "pass", "ms", "ops after", "result"]];
    let total = 0;
    for (const { run, ops } of this.rows) {
      total += run.ms;
      const result = run.skipped ? "skipped (filter)" : run.changed ? "changed" : "unchanged";
      lines.push([String(run.index), run.pass.name, run.ms.toFixed(2), String(ops), result]);
    }
    lines.push(["", "total", total.toFixed(2), "", ""]);
    const widths = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
    return lines.map((l) =>
      l.map((cell, c) => c === 2 || c === 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])).join("  ")
        .trimEnd()
    ).join("\n");
  }
}
