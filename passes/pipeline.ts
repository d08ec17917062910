/**
 * Pipeline text: passes separated by commas, each with options in braces, separated by
 * spaces, as in MLIR: `prune{sparsity=0.8 block=1x32},bsr-lower,dedup-patterns`.
 * `printPipeline(parsePipeline(t))` gives `t` back for canonical text (options in the order
 * written, values in their canonical form).
 */

import { didYouMean } from "../ir/diagnostics.ts";
import type { AnyPass, PassOptionSpec } from "./pass.ts";
import type { PassRegistry } from "./registry.ts";

/** An option value as a pass sees it. */
export type OptionValue = number | boolean | string | readonly [number, number];

/** One pass of a pipeline with the options written for it. */
export interface PipelineEntry {
  /** The pass to run. */
  readonly pass: AnyPass;
  /** Options as written, in order, converted to their kinds. */
  readonly written: ReadonlyMap<string, OptionValue>;
}

/** A parsed pipeline. */
export interface Pipeline {
  /** The passes in order. */
  readonly entries: readonly PipelineEntry[];
}

/** A mistake in pipeline text, at a column (counting from 1). */
export class PipelineError extends Error {
  /** A mistake at `col` of the pipeline text. */
  constructor(readonly col: number, message: string) {
    super(message);
    this.name = "PipelineError";
  }
}

/** Formats an option value canonically. */
export function formatOptionValue(v: OptionValue): string {
  if (Array.isArray(v)) return `${v[0]}x${v[1]}`;
  if (typeof v === "string" && !/^[^\s{},="]+$/.test(v)) return JSON.stringify(v);
  return String(v);
}

/** Prints a pipeline as text. */
export function printPipeline(p: Pipeline): string {
  return p.entries.map((e) => {
    if (e.written.size === 0) return e.pass.name;
    return `${e.pass.name}{${[...e.written].map(([k, v]) => `${k}=${formatOptionValue(v)}`).join(" ")}}`;
  }).join(",");
}

/** The options of an entry with defaults filled in. */
export function entryOptions(e: PipelineEntry): Record<string, OptionValue> {
  const out: Record<string, OptionValue> = {};
  for (const [k, spec] of Object.entries(e.pass.options ?? {}) as [string, PassOptionSpec][]) {
    out[k] = e.written.get(k) ?? spec.default;
  }
  return out;
}

/** Converts written option text to the option's kind; throws a message when it does not fit. */
function convert(spec: PassOptionSpec, raw: string): OptionValue {
  switch (spec.type) {
    case "int":
      if (!/^-?\d+$/.test(raw)) throw new Error(`must be an integer, got '${raw}'`);
      return Number(raw);
    case "number":
      if (raw.trim() === "" || !Number.isFinite(Number(raw))) {
        throw new Error(`must be a number, got '${raw}'`);
      }
      return Number(raw);
    case "bool":
      if (raw !== "true" && raw !== "false") throw new Error(`must be true or false, got '${raw}'`);
      return raw === "true";
    case "block": {
      const m = /^(\d+)x(\d+)$/.exec(raw);
      if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
        throw new Error(`must be a block shape RxC such as 1x32, got '${raw}'`);
      }
      return [Number(m[1]), Number(m[2])];
    }
    case "enum":
      if (!spec.values?.includes(raw)) {
        throw new Error(`must be one of ${spec.values?.join(", ")}, got '${raw}'`);
      }
      return raw;
    case "string":
      return raw;
  }
}

/** Parses pipeline text against a pass registry. Throws PipelineError at the mistake. */
export function parsePipeline(text: string, registry: PassRegistry): Pipeline {
  const entries: PipelineEntry[] = [];
  const re = /\s*([^\s{},]+)\s*(?:\{([^}]*)\}?)?\s*(,|$)/y;
  let pos = 0;
  if (text.trim() === "") return { entries };
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) throw new PipelineError(pos + 1, `expected a pass name at '${text.slice(pos, pos + 10)}'`);
    const nameCol = m.index + m[0].indexOf(m[1]) + 1;
    const pass = registry.get(m[1]);
    if (!pass) {
      const hint = didYouMean(m[1], registry.names());
      throw new PipelineError(
        nameCol,
        `unknown pass '${m[1]}'${hint}; passes: ${registry.names().join(", ")}`,
      );
    }
    if (m[2] !== undefined && !m[0].includes("}")) {
      throw new PipelineError(text.length + 1, `missing '}' after the options of '${pass.name}'`);
    }
    const written = new Map<string, OptionValue>();
    const optsCol = m[2] === undefined ? 0 : m.index + m[0].indexOf("{") + 2;
    for (const om of (m[2] ?? "").matchAll(/([^\s=]+)(?:=("(?:[^"\\]|\\.)*"|\S*))?/g)) {
      const col = optsCol + om.index!;
      const [key, raw] = [om[1], om[2]];
      const specs = (pass.options ?? {}) as Record<string, PassOptionSpec>;
      const spec = Object.hasOwn(specs, key) ? specs[key] : undefined;
      if (!spec) {
        const known = Object.keys(specs);
        const list = known.length ? `; its options: ${known.join(", ")}` : "; it takes no options";
        throw new PipelineError(
          col,
          `unknown option '${key}' of pass '${pass.name}'${didYouMean(key, known)}${list}`,
        );
      }
      if (raw === undefined) {
        throw new PipelineError(col, `option '${key}' of '${pass.name}' needs a value: ${key}=...`);
      }
      if (written.has(key)) throw new PipelineError(col, `option '${key}' of '${pass.name}' is given twice`);
      try {
        written.set(key, convert(spec, raw.startsWith('"') ? JSON.parse(raw) : raw));
      } catch (why) {
        throw new PipelineError(col, `option '${key}' of '${pass.name}' ${(why as Error).message}`);
      }
    }
    entries.push({ pass, written });
    pos = re.lastIndex;
    if (m[3] === ",") {
      if (pos >= text.length || text.slice(pos).trim() === "") {
        throw new PipelineError(pos, "expected a pass after ','");
      }
    }
  }
  return { entries };
}
