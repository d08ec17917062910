/**
 * Diagnostics: errors that name a place in a file, printed as
 * `file:line:col: error: message`, then the source line and a caret under the column.
 */

import { closest, distance } from "npm:fastest-levenshtein@1.0.16";
import type { Loc } from "./module.ts";

/** One problem found in an input, at a place. */
export interface Diagnostic {
  /** Where the problem is. */
  readonly loc: Loc;
  /** What is wrong, without the location prefix. */
  readonly message: string;
}

/** Formats one diagnostic; with the source text, adds the offending line and a caret. */
export function formatDiagnostic(d: Diagnostic, source?: string): string {
  return formatAt(d, source?.split("\n"));
}

function formatAt(d: Diagnostic, lines: readonly string[] | undefined): string {
  const head = `${d.loc.file}:${d.loc.line}:${d.loc.col}: error: ${d.message}`;
  const line = lines?.[d.loc.line - 1];
  if (line === undefined) return head;
  const pad = line.slice(0, d.loc.col - 1).replace(/[^\t]/g, " ");
  return `${head}\n${line}\n${pad}^`;
}

/** How many diagnostics {@link formatDiagnostics} shows by default; a line counts the rest. */
export const DIAGNOSTICS_SHOWN = 20;

/**
 * Formats diagnostics in order of their place in the file: the first `limit` (20 by default),
 * then `and N more errors` for the rest, so a file with thousands of mistakes prints a screenful.
 */
export function formatDiagnostics(
  ds: readonly Diagnostic[],
  source?: string,
  limit: number = DIAGNOSTICS_SHOWN,
): string {
  const lines = source?.split("\n");
  const sorted = sortDiagnostics(ds);
  const shown = sorted.slice(0, limit).map((d) => formatAt(d, lines));
  const rest = sorted.length - shown.length;
  if (rest > 0) shown.push(`and ${rest} more error${rest === 1 ? "" : "s"}`);
  return shown.join("\n");
}

/** Sorts diagnostics by line, then column. */
export function sortDiagnostics(ds: readonly Diagnostic[]): Diagnostic[] {
  return [...ds].sort((a, b) => a.loc.line - b.loc.line || a.loc.col - b.loc.col);
}

/** An error that carries diagnostics, thrown by the API functions that cannot return them. */
export class DiagnosticError extends Error {
  /** Formats `diagnostics` as the message, with source lines when `source` is given. */
  constructor(readonly diagnostics: readonly Diagnostic[], source?: string) {
    super(formatDiagnostics(diagnostics, source));
    this.name = "DiagnosticError";
  }
}

/**
 * Suggests the candidate closest to a misspelt name, as ` (did you mean 'x'?)`, or "" when
 * none is close enough.
 */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const list = [...candidates];
  if (list.length === 0) return "";
  const best = closest(name, list);
  const limit = Math.max(2, Math.floor(name.length / 3));
  return distance(name, best) <= limit ? ` (did you mean '${best}'?)` : "";
}
