/** What the command-line tools share: argument parsing, error reporting, atomic writes. */

import { parseArgs, type ParseArgsConfig, styleText } from "node:util";
import {
  type Diagnostic,
  didYouMean,
  formatDiagnostics,
  InterpretError,
  SafetensorsError,
  writeFileAtomic,
} from "../mod.ts";

/** A failure the user caused; printed as one line, without a stack trace. */
export class UsageError extends Error {}

/**
 * Parses argv with node:util parseArgs, turning its errors into one-line UsageErrors; an
 * unknown option gets the closest known one as a suggestion.
 */
export function parseCli<T extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const message = (e as Error).message;
    const unknown = /^Unknown option '([^']+)'/.exec(message);
    if (unknown) {
      const known = Object.keys(options).map((k) => `--${k}`);
      throw new UsageError(`unknown option '${unknown[1]}'${didYouMean(unknown[1], known)}; see --help`);
    }
    const line = message.replace(/\s*\n\s*/g, " ");
    throw new UsageError(line.charAt(0).toLowerCase() + line.slice(1));
  }
}

/** Prints diagnostics to stderr, with colour on a terminal. */
export function reportDiagnostics(ds: readonly Diagnostic[], source: string): void {
  const text = formatDiagnostics(ds, source).replace(/: error: /g, `: ${styleText("red", "error")}: `);
  console.error(text);
  console.error(`${ds.length} error${ds.length === 1 ? "" : "s"}`);
}

/**
 * Throws a one-line `NotFound` (exit 1) when `path` does not exist: `nope.sir: no such file or
 * folder (expected <what>)`, said in words rather than as a diagnostic at an empty line.
 */
export async function requireInput(path: string, what: string): Promise<void> {
  try {
    await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`${path}: no such file or folder (expected ${what})`);
    }
    throw e;
  }
}

/** Writes a text file atomically (see `writeFileAtomic`). */
export const writeTextAtomic: (path: string, text: string) => Promise<void> = writeFileAtomic;

/** File-system failures the user can fix (a path that is missing, taken or not allowed). */
const FS_ERRORS = [
  Deno.errors.NotFound,
  Deno.errors.AlreadyExists,
  Deno.errors.NotADirectory,
  Deno.errors.IsADirectory,
  Deno.errors.PermissionDenied,
  Deno.errors.NotCapable,
];

/**
 * Runs a CLI job and returns its exit code: usage errors print as `error: message` and give
 * 2; file-system failures (a missing, taken or forbidden path) give 1, as do diagnostics, a
 * failing op of the interpreter and a bad weights file (one line each);
 * anything else is a bug and keeps its stack.
 */
export async function runCli(run: () => Promise<number | void>): Promise<number> {
  try {
    return (await run()) ?? 0;
  } catch (e) {
    if (e instanceof InterpretError || e instanceof SafetensorsError) {
      // A model that cannot run (a failing op, a bad weights file): one line naming the place.
      const message = (e as Error).message;
      console.error(
        /^\S*error: |: error: /.test(message) ? message : `${styleText("red", "error")}: ${message}`,
      );
      return 1;
    }
    const fs = FS_ERRORS.some((cls) => e instanceof cls);
    if (!(e instanceof UsageError) && !fs) throw e;
    console.error(`${styleText("red", "error")}: ${(e as Error).message}`);
    return fs ? 1 : 2;
  }
}

/** Runs a CLI entry point and exits with its code. */
export async function main(run: () => Promise<number | void>): Promise<void> {
  Deno.exit(await runCli(run));
}

/** The most threads `--threads` may ask for: 4 per core, and never more than 256. */
export function maxThreads(): number {
  return Math.min(256, 4 * Math.max(1, navigator.hardwareConcurrency || 1));
}

/** `--threads N`: an integer from 1 to {@link maxThreads}; undefined when not given. UsageError otherwise. */
export function threadsFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  const most = maxThreads();
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < 1 || n > most) {
    throw new UsageError(
      `--threads must be an integer from 1 to ${most} (4 per core, at most 256), got '${text}'`,
    );
  }
  return n;
}

/** An input a model takes, as `--inputs` checks it. */
export interface InputSpec {
  /** Its name. */
  readonly name: string;
  /** Its static shape. */
  readonly shape: readonly number[];
  /** `f32`, or an integer type (`i32`, `i64`). */
  readonly dtype: string;
  /** For indices: the valid range `[0, limit)`. */
  readonly limit?: number;
}

/** Bytes of JSON per value `--inputs` accepts beyond a first MiB (digits, separators, spaces). */
const INPUT_JSON_BYTES_PER_VALUE = 64;

/**
 * Reads `--inputs FILE`: a JSON object with every input of `specs` by name, each a list of numbers
 * (flat, or nested no deeper than its shape) with as many values as its shape holds: integers in
 * `[0, limit)` for index inputs and integers for other integer inputs, finite numbers for `f32`.
 * Anything else (too large a file, deep nesting, strings, nulls, objects, floats for ids, a wrong
 * length, unknown or missing names) is a one-line UsageError naming the file and the input.
 */
export async function readInputsJson(
  file: string,
  specs: readonly InputSpec[],
): Promise<Record<string, number[]>> {
  const bad = (why: string) => new UsageError(`--inputs ${file}: ${why}`);
  const names = specs.map((s) => s.name).join(", ");
  const count = (s: InputSpec) => s.shape.reduce((a, b) => a * b, 1);
  const most = 2 ** 20 + INPUT_JSON_BYTES_PER_VALUE * specs.reduce((n, s) => n + count(s), 0);
  const info = await Deno.stat(file).catch((e) => {
    throw e instanceof Deno.errors.NotFound ? new Deno.errors.NotFound(`--inputs ${file}: no such file`) : e;
  });
  if (!info.isFile) throw bad("not a regular file");
  if (info.size > most) {
    throw bad(`${info.size} bytes is more than inputs of this model take (at most ${most})`);
  }
  let given: unknown;
  try {
    given = JSON.parse(await Deno.readTextFile(file));
  } catch (e) {
    throw bad(`not JSON: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`);
  }
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    throw bad(`must be a JSON object of inputs by name (${names})`);
  }
  const record = given as Record<string, unknown>;
  for (const k of Object.keys(record)) {
    if (!specs.some((s) => s.name === k)) throw bad(`the model has no input '${k}' (it has ${names})`);
  }
  const out: Record<string, number[]> = {};
  for (const spec of specs) {
    if (!Object.hasOwn(record, spec.name)) throw bad(`no input '${spec.name}' (the model takes ${names})`);
    out[spec.name] = inputValues(spec, record[spec.name], bad);
  }
  return out;
}

/** The values of one input, flattened without recursion, each checked against `spec`. */
function inputValues(spec: InputSpec, value: unknown, bad: (why: string) => UsageError): number[] {
  const want = spec.shape.reduce((a, b) => a * b, 1);
  const shape = spec.shape.join("x") || "scalar";
  const show = (v: unknown) =>
    v === null
      ? "null"
      : Array.isArray(v)
      ? "a list"
      : typeof v === "object"
      ? "an object"
      : typeof v === "string"
      ? JSON.stringify(v.length > 20 ? v.slice(0, 20) + "..." : v)
      : String(v);
  if (!Array.isArray(value)) {
    throw bad(`'${spec.name}' must be a list of numbers (shape ${shape}), got ${show(value)}`);
  }
  const values: number[] = [];
  // Depth-first over nested lists: a stack of [list, next index], at most the shape's rank deep.
  const stack: [unknown[], number][] = [[value, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top[1] >= top[0].length) {
      stack.pop();
      continue;
    }
    const v = top[0][top[1]++];
    if (Array.isArray(v)) {
      if (stack.length >= Math.max(1, spec.shape.length)) {
        throw bad(`'${spec.name}' is nested deeper than its shape ${shape} (${spec.shape.length} levels)`);
      }
      stack.push([v, 0]);
      continue;
    }
    const at = `'${spec.name}' value ${values.length}`;
    if (typeof v !== "number" || !Number.isFinite(v)) throw bad(`${at} is ${show(v)}, not a finite number`);
    if (spec.dtype !== "f32") {
      if (!Number.isSafeInteger(v)) throw bad(`${at} is ${v}; ${spec.dtype} takes integers`);
      if (spec.limit !== undefined && (v < 0 || v >= spec.limit)) {
        throw bad(`${at} is ${v}, outside [0, ${spec.limit})`);
      }
    }
    if (values.length === want) throw bad(`'${spec.name}' has more than ${want} values (shape ${shape})`);
    values.push(v);
  }
  if (values.length !== want) {
    throw bad(`'${spec.name}' has ${values.length} values; shape ${shape} takes ${want}`);
  }
  return values;
}
