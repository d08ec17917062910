/**
 * Pipeline text: passes separated by commas, each with options in braces, separated by
 * spaces, as in MLIR: `prune{sparsity=0.8 block=1x32},bsr-lower,dedup-patterns`. An option
 * value is a bare word (no spaces, `{`, `}`, `,`, `=` or `"`) or a double-quoted string with
 * JSON escapes: `tag{label="a}b, \"c\""}`. The text is read left to right by a small scanner,
 * and every mistake is reported at the column (from 1) of the character that is wrong.
 *
 * `printPipeline(parsePipeline(t))` gives `t` back for canonical text: options in the order
 * written, values in their canonical form (quoted only when they must be), and no empty
 * braces (`dce{}` is accepted and prints as `dce`).
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

/**
 * Formats an option value canonically: a block as `RxC`, a string as a bare word when it is
 * one and as a JSON string otherwise.
 */
export function formatOptionValue(v: OptionValue): string {
  if (Array.isArray(v)) return `${v[0]}x${v[1]}`;
  if (typeof v === "string" && !/^[^\s{},="]+$/.test(v)) return JSON.stringify(v);
  return String(v);
}

/** Prints a pipeline as canonical text (a pass without written options has no braces). */
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
      if (!Number.isSafeInteger(Number(raw))) throw new Error(`is out of range, got '${raw}'`);
      return Number(raw);
    case "number":
      if (!/^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) {
        throw new Error(`must be a number, got '${raw}'`);
      }
      if (!Number.isFinite(Number(raw))) throw new Error(`is out of range, got '${raw}'`);
      return Number(raw);
    case "bool":
      if (raw !== "true" && raw !== "false") throw new Error(`must be true or false, got '${raw}'`);
      return raw === "true";
    case "block": {
      const m = /^(\d+)x(\d+)$/.exec(raw);
      const shape = [Number(m?.[1]), Number(m?.[2])] as const;
      if (!shape.every((n) => Number.isSafeInteger(n) && n >= 1)) {
        throw new Error(`must be a block shape RxC such as 1x32, got '${raw}'`);
      }
      return shape;
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

/**
 * The range a numeric option's spec allows, in words (`in [0, 1)`, `at least 1`, `greater than 0`,
 * `at most 8`), or undefined when it sets none.
 */
export function formatOptionRange(spec: PassOptionSpec): string | undefined {
  const { min, max } = spec;
  if (min !== undefined && max !== undefined) {
    return `in ${spec.minExclusive ? "(" : "["}${min}, ${max}${spec.maxExclusive ? ")" : "]"}`;
  }
  if (min !== undefined) return `${spec.minExclusive ? "greater than" : "at least"} ${min}`;
  if (max !== undefined) return `${spec.maxExclusive ? "less than" : "at most"} ${max}`;
  return undefined;
}

/** Whether `n` lies in the range `spec` allows. */
function inRange(spec: PassOptionSpec, n: number): boolean {
  const { min, max } = spec;
  if (min !== undefined && (spec.minExclusive ? n <= min : n < min)) return false;
  if (max !== undefined && (spec.maxExclusive ? n >= max : n > max)) return false;
  return true;
}

/** Checks a converted value against its spec's range; throws a message when it is outside. */
function checkRange(spec: PassOptionSpec, v: OptionValue, raw: string): void {
  const range = formatOptionRange(spec);
  if (range === undefined) return;
  if (typeof v === "number" && !inRange(spec, v)) throw new Error(`must be ${range}, got '${raw}'`);
  if (Array.isArray(v) && !v.every((side) => inRange(spec, side))) {
    throw new Error(`must have each side ${range}, got '${raw}'`);
  }
}

/** A pass name, an option key or an unquoted value: what `formatOptionValue` leaves bare. */
const WORD = /[^\s{},="]+/y;

/** What a backslash escape in a quoted value stands for, as in JSON (`\uXXXX` aside). */
const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** Parses pipeline text against a pass registry, left to right. Throws PipelineError at the mistake. */
export function parsePipeline(text: string, registry: PassRegistry): Pipeline {
  let pos = 0; // index of the next character; its column is pos + 1
  const fail = (col: number, message: string): never => {
    throw new PipelineError(col, message);
  };
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos])) pos++;
  };
  /** The word at pos, consumed ("" when there is none). */
  const word = (): string => {
    WORD.lastIndex = pos;
    const w = WORD.exec(text)?.[0] ?? "";
    pos += w.length;
    return w;
  };
  /** What is at pos, quoted, for "expected ..., found ..." messages. */
  const found = (): string => {
    WORD.lastIndex = pos;
    return `'${WORD.exec(text)?.[0] ?? text[pos]}'`;
  };

  /** The quoted value at pos (a '"'), consumed and unescaped. */
  const quoted = (what: string): string => {
    const col = pos + 1;
    let out = "";
    for (pos++; pos < text.length; pos++) {
      const c = text[pos];
      if (c === '"') {
        pos++;
        return out;
      }
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[++pos] ?? "";
      const hex = text.slice(pos + 1, pos + 5);
      if (e === "u" && /^[0-9a-fA-F]{4}$/.test(hex)) {
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 4;
      } else if (Object.hasOwn(ESCAPES, e)) out += ESCAPES[e];
      else if (e !== "") fail(pos, `unknown escape '\\${e}' in ${what}`);
    }
    return fail(col, `unterminated string in ${what}`);
  };

  /** One pass with its options, at pos. */
  const entry = (): PipelineEntry => {
    const nameCol = pos + 1;
    const name = word();
    if (!name) fail(nameCol, `expected a pass name at '${text.slice(pos, pos + 10)}'`);
    const pass = registry.get(name) ??
      fail(
        nameCol,
        `unknown pass '${name}'${didYouMean(name, registry.names())}; passes: ${registry.names().join(", ")}`,
      );
    const written = new Map<string, OptionValue>();
    skipSpace();
    if (text[pos] !== "{") return { pass, written };
    pos++;
    const specs = (pass.options ?? {}) as Record<string, PassOptionSpec>;
    for (;;) {
      skipSpace();
      if (pos === text.length) fail(pos + 1, `missing '}' after the options of '${pass.name}'`);
      if (text[pos] === "}") {
        pos++;
        return { pass, written };
      }
      const col = pos + 1;
      const key = word();
      if (!key) fail(col, `expected an option of '${pass.name}' or '}', found ${found()}`);
      if (!Object.hasOwn(specs, key)) {
        const known = Object.keys(specs);
        const list = known.length ? `; its options: ${known.join(", ")}` : "; it takes no options";
        fail(col, `unknown option '${key}' of pass '${pass.name}'${didYouMean(key, known)}${list}`);
      }
      const what = `option '${key}' of '${pass.name}'`;
      if (text[pos] !== "=") fail(col, `${what} needs a value: ${key}=...`);
      pos++;
      const raw = text[pos] === '"' ? quoted(what) : word();
      if (written.has(key)) fail(col, `${what} is given twice`);
      try {
        const value = convert(specs[key], raw);
        checkRange(specs[key], value, raw);
        written.set(key, value);
      } catch (why) {
        fail(col, `${what} ${(why as Error).message}`);
      }
      if (pos < text.length && !/[\s}]/.test(text[pos])) {
        fail(pos + 1, `expected a space or '}' after ${what}, found ${found()}`);
      }
    }
  };

  const entries: PipelineEntry[] = [];
  skipSpace();
  if (pos === text.length) return { entries };
  for (;;) {
    entries.push(entry());
    skipSpace();
    if (pos === text.length) return { entries };
    if (text[pos] !== ",") fail(pos + 1, `expected ',' between passes, found ${found()}`);
    const commaCol = ++pos;
    skipSpace();
    if (pos === text.length) fail(commaCol, "expected a pass after ','");
  }
}
