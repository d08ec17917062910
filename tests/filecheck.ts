/**
 * Helpers of the golden and fuzz tests: the directives of the golden IR files, and a
 * structural view of a module for comparing modules.
 *
 * Directives of the golden IR files (`tests/ir/*.sir`), in the spirit of LLVM FileCheck and
 * MLIR's `expected-error`. A directive is a `//` comment whose text starts with its keyword:
 *
 * ```
 * // CHECK: text        a later line of the printed module contains `text`
 * // CHECK-NEXT: text   the line right after the previous match contains `text`
 * // CHECK-NOT: text    no line between the previous match and the next one (or the end) contains it
 * // CHECK-EMPTY:       the line right after the previous match is empty
 * // ERROR: message     a diagnostic on this line (for a comment at the end of a line)
 * // ERROR@+N: message  ... N lines below; `@-N` above; `@L` on line L
 * // ERROR@+N:C: msg    ... and at column C (the column may follow any of the line forms)
 * // RUN: pipeline      run these passes (pipeline text) before the CHECK lines are matched
 * ```
 *
 * A file with RUN is also an equivalence check: the reference interpreter must give the same
 * outputs for the module before and after the pipeline, on seeded inputs and weights.
 *
 * Matching of CHECK lines is by substring, line by line, in order. ERROR messages match
 * exactly. Directive comments are removed from the printed text before CHECK lines are matched,
 * since the printer keeps comments and every CHECK would otherwise match itself.
 */

import type { Attr } from "../ir/attrs.ts";
import type { Comments, Module, Value } from "../ir/module.ts";
import type { TensorType } from "../ir/types.ts";

/** A CHECK, CHECK-NEXT or CHECK-NOT line. */
export interface Check {
  readonly kind: "CHECK" | "CHECK-NEXT" | "CHECK-NOT" | "CHECK-EMPTY";
  readonly pattern: string;
  /** Line of the directive, for messages. */
  readonly line: number;
}

/** An expected diagnostic. */
export interface ExpectedError {
  readonly line: number;
  readonly col?: number;
  readonly message: string;
  /** Line of the directive, for messages. */
  readonly directiveLine: number;
}

/** The directives of a file, and any malformed ones. */
export interface Directives {
  /** The pipeline of a RUN line, if any. */
  readonly run?: string;
  readonly checks: Check[];
  readonly errors: ExpectedError[];
  readonly problems: string[];
}

/** One well-formed directive comment: keyword, optional `@line`, optional `:col`, text. */
const DIRECTIVE =
  /\/\/ ?(CHECK-NEXT|CHECK-NOT|CHECK-EMPTY|CHECK|ERROR|RUN)(?:@([+-]?\d+))?(?::(\d+))?: ?(.*)$/;
/** Anything that looks like it means to be a directive. */
const LOOKS_LIKE = /\/\/ ?(?:CHECK|ERROR|RUN)[-@:]/;

/** Reads the directives of a golden file. */
export function parseDirectives(text: string): Directives {
  const checks: Check[] = [];
  const errors: ExpectedError[] = [];
  const problems: string[] = [];
  let run: string | undefined;
  text.split(/\r?\n/).forEach((source, i) => {
    const line = i + 1;
    const m = DIRECTIVE.exec(source);
    if (!m) {
      if (LOOKS_LIKE.test(source)) problems.push(`line ${line}: malformed directive: ${source.trim()}`);
      return;
    }
    const [, kind, at, col, rest] = m;
    const body = rest.trimEnd();
    if (kind === "RUN") {
      if (run !== undefined || at !== undefined || col !== undefined) {
        problems.push(`line ${line}: one RUN line, without @ or :`);
      }
      run = body;
      return;
    }
    if (kind !== "ERROR") {
      if (at !== undefined || col !== undefined || (body === "") !== (kind === "CHECK-EMPTY")) {
        problems.push(`line ${line}: ${kind} takes no @line or :col, and text unless it is CHECK-EMPTY`);
      } else checks.push({ kind: kind as Check["kind"], pattern: body, line });
      return;
    }
    const target = at === undefined ? line : /^[+-]/.test(at) ? line + Number(at) : Number(at);
    if (target < 1) problems.push(`line ${line}: ERROR@${at} points before the file`);
    errors.push({
      line: target,
      col: col === undefined ? undefined : Number(col),
      message: body,
      directiveLine: line,
    });
  });
  return { run, checks, errors, problems };
}

/** Removes directive comments from printed text: whole lines, or the end of a line. */
export function stripDirectives(printed: string): string[] {
  const out: string[] = [];
  for (const line of printed.split("\n")) {
    const m = DIRECTIVE.exec(line);
    if (!m) out.push(line);
    else if (line.slice(0, m.index).trim() !== "") out.push(line.slice(0, m.index).trimEnd());
  }
  return out;
}

/** Matches CHECK lines against output lines; returns the failures (none when all hold). */
export function runChecks(lines: readonly string[], checks: readonly Check[]): string[] {
  const failures: string[] = [];
  let last = -1; // index of the previous matched line
  let nots: Check[] = [];
  const checkNots = (from: number, to: number) => {
    for (const n of nots) {
      for (let i = from; i < to; i++) {
        if (lines[i].includes(n.pattern)) {
          failures.push(
            `CHECK-NOT at line ${n.line}: found '${n.pattern}' in output line ${i + 1}: ${lines[i]}`,
          );
        }
      }
    }
    nots = [];
  };
  for (const c of checks) {
    if (c.kind === "CHECK-NOT") {
      nots.push(c);
      continue;
    }
    let at = -1;
    if (c.kind === "CHECK-NEXT" || c.kind === "CHECK-EMPTY") {
      const next = last >= 0 && last + 1 < lines.length ? lines[last + 1] : undefined;
      const ok = c.kind === "CHECK-NEXT" ? next?.includes(c.pattern) : next === "";
      if (ok) at = last + 1;
    } else {
      at = lines.findIndex((l, i) => i > last && l.includes(c.pattern));
    }
    if (at < 0) {
      const where = last < 0 ? "from the start" : `after output line ${last + 1}`;
      failures.push(`${c.kind} at line ${c.line}: '${c.pattern}' not found ${where}`);
      return failures; // later checks would fail for this one's sake
    }
    checkNots(last + 1, at);
    last = at;
  }
  checkNots(last + 1, lines.length);
  return failures;
}

/** A diagnostic reduced to what directives talk about. */
export interface Reported {
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** Compares reported diagnostics with expected ones as sets; returns the differences. */
export function matchErrors(reported: readonly Reported[], expected: readonly ExpectedError[]): string[] {
  const left = [...reported];
  const failures: string[] = [];
  for (const e of expected) {
    const i = left.findIndex((r) =>
      r.line === e.line && r.message === e.message && (e.col === undefined || r.col === e.col)
    );
    if (i >= 0) left.splice(i, 1);
    else {
      const col = e.col === undefined ? "" : `:${e.col}`;
      failures.push(`missing (directive at line ${e.directiveLine}): ${e.line}${col}: ${e.message}`);
    }
  }
  for (const r of left) failures.push(`unexpected: ${r.line}:${r.col}: ${r.message}`);
  return failures;
}

/** A type as plain data (no `sparse: undefined` against a missing key). */
function typeData(t: TensorType) {
  const s = t.sparse;
  return { shape: [...t.shape], dtype: t.dtype, sparse: s ? [s.kind, ...s.block, s.nnzBlocks] : null };
}

function commentData(c: Comments) {
  return { leading: [...c.leading], trailing: c.trailing ?? null, blankLine: c.blankLine ?? false };
}

function attrData(attrs: ReadonlyMap<string, Attr>) {
  return [...attrs].map(([k, a]) => [k, a.kind, a.value]);
}

/** An operand by name and type, and whether it is a weight. */
function refData(v: Value) {
  return [v.ref, v.kind === "weight", typeData(v.type)];
}

/** Everything of a module but source locations, as plain data for deep comparison. */
export function moduleData(m: Module) {
  return {
    name: m.name,
    attrs: attrData(m.attrs),
    comments: commentData(m.comments),
    weightsFile: m.weightsFile ?? null,
    weightsComments: commentData(m.weightsComments),
    weights: [...m.weights].map(([k, w]) => [k, w.name, typeData(w.type), commentData(w.comments)]),
    weightsEndComments: m.weightsEndComments,
    funcs: m.funcs.map((f) => ({
      name: f.name,
      comments: commentData(f.comments),
      params: f.params.map((p) => [p.name, p.kind, typeData(p.type)]),
      resultTypes: f.resultTypes.map(typeData),
      body: f.body.map((op) => ({
        name: op.name,
        operands: op.operands.map(refData),
        attrs: attrData(op.attrs),
        result: [op.result.name, op.result.kind, typeData(op.result.type), op.result.definingOp === op],
        comments: commentData(op.comments),
      })),
      returns: f.returns.map(refData),
      returnComments: commentData(f.returnComments),
      endComments: f.endComments,
    })),
    endComments: m.endComments,
    fileEndComments: m.fileEndComments,
  };
}
