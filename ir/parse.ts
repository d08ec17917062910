/**
 * `parse`: IR text to a Module, with diagnostics for every lexical, syntax and naming
 * mistake found. Syntax errors are recovered from, so one parse reports several.
 */

import type { IToken } from "npm:chevrotain@13.2.0";
import type { Diagnostic } from "./diagnostics.ts";
import type { Module } from "./module.ts";
import { buildModule } from "./syntax/build.ts";
import { irParser } from "./syntax/parser.ts";
import { Comma, Equals, irLexer, LBracket, LocalName, NumberLit, RBracket } from "./syntax/tokens.ts";
import { MAX_OPS } from "./verifier.ts";

/** How deep `[` lists may nest; deeper input is rejected before the (recursive) parser runs. */
const MAX_LIST_DEPTH = 64;

/** What `parse` returns: a module when there were no diagnostics. */
export interface ParseResult {
  /** The parsed module; absent when there are diagnostics. */
  readonly module?: Module;
  /** Problems found; empty on success. */
  readonly diagnostics: readonly Diagnostic[];
}

/** Options of `parse`. */
export interface ParseOptions {
  /** File name used in locations and diagnostics. */
  readonly file?: string;
}

/**
 * Parses IR text. Returns the module, or the diagnostics that stopped it: lexical and
 * syntax errors first; when there are none, naming errors (unknown or redefined values,
 * bad literals). Op rules and types are checked by `verify`.
 */
export function parse(text: string, options: ParseOptions = {}): ParseResult {
  const file = options.file ?? "<input>";
  try {
    return parseUnchecked(text, file);
  } catch (e) {
    const why = e instanceof RangeError ? "the input nests too deeply" : `internal error: ${e}`;
    return { diagnostics: [{ loc: { file, line: 1, col: 1 }, message: why }] };
  }
}

function parseUnchecked(text: string, file: string): ParseResult {
  const lexed = irLexer.tokenize(text);
  const diagnostics: Diagnostic[] = lexed.errors.map((e) => ({
    loc: { file, line: e.line ?? 1, col: e.column ?? 1 },
    message: `unexpected character ${JSON.stringify(String.fromCodePoint(text.codePointAt(e.offset)!))}`,
  }));
  const deep = tooDeep(lexed.tokens);
  if (deep) {
    const message = `lists nest too deeply (more than ${MAX_LIST_DEPTH} levels)`;
    diagnostics.push({ loc: { file, line: deep.startLine!, col: deep.startColumn! }, message });
    return { diagnostics };
  }
  const extra = opBeyondLimit(lexed.tokens);
  if (extra) {
    const message = `the module has more than ${MAX_OPS} ops (the limit); op ${MAX_OPS + 1} is here`;
    diagnostics.push({ loc: { file, line: extra.startLine!, col: extra.startColumn! }, message });
    return { diagnostics };
  }
  irParser.input = lexed.tokens;
  const cst = irParser.module();
  const end = endLoc(text, file);
  for (const e of irParser.errors) {
    const t: IToken = e.token;
    const loc = (t.startLine ?? -1) > 0 ? { file, line: t.startLine!, col: t.startColumn! } : end;
    diagnostics.push({ loc, message: e.message });
  }
  if (diagnostics.length > 0) return { diagnostics };
  const built = buildModule(cst, file, lexed.groups.comments ?? []);
  return built.diagnostics.length > 0
    ? { diagnostics: built.diagnostics }
    : { module: built.module, diagnostics: [] };
}

function endLoc(text: string, file: string) {
  const lines = text.split("\n");
  return { file, line: lines.length, col: lines[lines.length - 1].length + 1 };
}

/**
 * The first `[` that opens a list nested deeper than MAX_LIST_DEPTH, if any. Lists hold only
 * numbers, commas and lists, so any other token ends the run being counted.
 */
function tooDeep(tokens: readonly IToken[]): IToken | undefined {
  let depth = 0;
  for (const t of tokens) {
    if (t.tokenType === LBracket) {
      if (++depth > MAX_LIST_DEPTH) return t;
    } else if (t.tokenType === RBracket) depth = Math.max(0, depth - 1);
    else if (t.tokenType !== NumberLit && t.tokenType !== Comma) depth = 0;
  }
  return undefined;
}

/** The `%name` defining op MAX_OPS + 1 (`%name =`), if the module has more ops than that. */
function opBeyondLimit(tokens: readonly IToken[]): IToken | undefined {
  let ops = 0;
  for (let i = 1; i < tokens.length; i++) {
    if (tokens[i].tokenType === Equals && tokens[i - 1].tokenType === LocalName && ++ops > MAX_OPS) {
      return tokens[i - 1];
    }
  }
  return undefined;
}
