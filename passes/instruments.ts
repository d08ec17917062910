/**
 * Debugging instruments for pipelines: IR printing before/after passes (as MLIR's
 * `--mlir-print-ir-*`), numbered dumps to a folder, and a timing table.
 */

import { join } from "node:path";
import type { Module } from "../ir/module.ts";
import { print } from "../ir/printer.ts";
import { encodeSafetensors } from "../ir/safetensors.ts";
import { type WeightStore, weightTensors } from "../ir/weights.ts";
import type { Instrument, InstrumentWeights, PassRun } from "./manager.ts";
import type { AnyPass } from "./pass.ts";

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
