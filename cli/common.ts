/** What the command-line tools share: argument parsing, error reporting, atomic writes. */

import { parseArgs, type ParseArgsConfig, styleText } from "node:util";
import { dirname } from "node:path";
import { type Diagnostic, formatDiagnostics } from "../mod.ts";

/** A failure the user caused; printed as one line, without a stack trace. */
export class UsageError extends Error {}

/** Parses argv with node:util parseArgs, turning its errors into UsageErrors. */
export function parseCli<T extends ParseArgsConfig["options"]>(
  args: string[],
  options: T,
  usage: string,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${usage}`);
  }
}

/** Prints diagnostics to stderr, with colour on a terminal. */
export function reportDiagnostics(ds: readonly Diagnostic[], source: string): void {
  const text = formatDiagnostics(ds, source).replace(/: error: /g, `: ${styleText("red", "error")}: `);
  console.error(text);
  console.error(`${ds.length} error${ds.length === 1 ? "" : "s"}`);
}

/** Writes a text file atomically: a temp file in the same folder, then a rename. */
export async function writeTextAtomic(path: string, text: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Runs a CLI entry point: user errors print as `error: message` and exit 2, diagnostics
 * exit 1; anything else is a bug and keeps its stack.
 */
export async function main(run: () => Promise<number | void>): Promise<void> {
  try {
    Deno.exit((await run()) ?? 0);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`${styleText("red", "error")}: ${e.message}`);
    Deno.exit(2);
  }
}
