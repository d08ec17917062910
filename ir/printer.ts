/**
 * `print`: a Module to its canonical text. Output is deterministic, and for canonical text
 * `print(parse(t)) === t` byte for byte. Comments and single blank lines between items are
 * kept; attributes print in the order they were written (the builder writes schema order).
 */

import { type Attr, formatAttr } from "./attrs.ts";
import { type Comments, type Func, type Module, type Op, quoteName, type Value } from "./module.ts";
import { formatType } from "./types.ts";

const INDENT = "  ";

/** Prints a module as canonical IR text, ending with a newline. */
export function print(m: Module): string {
  const out: string[] = [];
  const emit = (depth: number, text: string, c?: Comments, first = false) => {
    if (c?.blankLine && !first) out.push("");
    for (const line of c?.leading ?? []) out.push(INDENT.repeat(depth) + line);
    out.push(INDENT.repeat(depth) + text + (c?.trailing ? `  ${c.trailing}` : ""));
  };
  const lines = (depth: number, comments: readonly string[]) => {
    for (const line of comments) out.push(INDENT.repeat(depth) + line);
  };

  const attrs = m.attrs.size > 0 ? ` attributes ${formatAttrDict(m.attrs)}` : "";
  emit(0, `module @${quoteName(m.name)}${attrs} {`, m.comments, true);
  // An empty weights block without a file is left out, unless that would lose its comments.
  const wc = m.weightsComments;
  const hasWeights = m.weightsFile !== undefined || m.weights.size > 0 || wc.leading.length > 0 ||
    wc.trailing !== undefined || m.weightsEndComments.length > 0;
  if (hasWeights) {
    const file = m.weightsFile !== undefined ? ` ${JSON.stringify(m.weightsFile)}` : "";
    emit(1, `weights${file} {`, m.weightsComments, true);
    let first = true;
    for (const w of m.weights.values()) {
      emit(2, `${w.ref} : ${formatType(w.type)}`, w.comments, first);
      first = false;
    }
    lines(2, m.weightsEndComments);
    out.push(INDENT + "}");
  }
  m.funcs.forEach((f, i) => {
    if (i > 0 || hasWeights) out.push("");
    printFunc(f, emit, lines);
  });
  lines(1, m.endComments);
  out.push("}");
  lines(0, m.fileEndComments);
  return out.join("\n") + "\n";
}

type Emit = (depth: number, text: string, c?: Comments, first?: boolean) => void;

function printFunc(f: Func, emit: Emit, lines: (depth: number, c: readonly string[]) => void): void {
  const params = f.params.map((p) => `${p.ref}: ${formatType(p.type)}`).join(", ");
  const results = f.resultTypes.map(formatType).join(", ");
  emit(1, `func @${quoteName(f.name)}(${params}) -> (${results}) {`, f.comments, true);
  f.body.forEach((op, i) => emit(2, formatOp(op), op.comments, i === 0));
  const ret = f.returns.length > 0 ? `return ${formatOperands(f.returns)}` : "return";
  emit(2, ret, f.returnComments, f.body.length === 0);
  lines(2, f.endComments);
  emit(1, "}");
}

function formatOperands(vs: readonly Value[]): string {
  return vs.map((v) => v.ref).join(", ");
}

function formatAttrDict(attrs: ReadonlyMap<string, Attr>): string {
  return `{${[...attrs].map(([k, v]) => `${k} = ${formatAttr(v)}`).join(", ")}}`;
}

/** Formats one op as a line of IR, without indentation or comments. */
export function formatOp(op: Op): string {
  const operands = op.operands.length > 0 ? ` ${formatOperands(op.operands)}` : "";
  const attrs = op.attrs.size > 0 ? ` ${formatAttrDict(op.attrs)}` : "";
  return `${op.result.ref} = ${op.name}${operands}${attrs} : ${formatType(op.result.type)}`;
}
