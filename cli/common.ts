/** What the command-line tools share: argument parsing, error reporting, atomic writes. */

import { parseArgs, type ParseArgsConfig, styleText } from "node:util";
import { type Diagnostic, didYouMean, formatDiagnostics, writeFileAtomic } from "../mod.ts";

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
 * 2; file-system failures (a missing, taken or forbidden path) give 1, as do diagnostics;
 * anything else is a bug and keeps its stack.
 */
export async function runCli(run: () => Promise<number | void>): Promise<number> {
  try {
    return (await run()) ?? 0;
  } catch (e) {
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
