/**
 * `cse`: common-subexpression elimination. Every op is pure, so two ops compute the same
 * value when they have the same name, the same operand values, equal attributes and the same
 * result type; the later one is replaced by the earlier.
 *
 * Algorithm: one walk over each function in order (value numbering, as MLIR's CSE without
 * regions). Each op gets a key string: its name, the numbers of its operand values (by
 * identity, after earlier replacements), its attributes sorted by name in text form, and its
 * result type. A table maps keys to the first op's result; an op whose key is already there
 * is dropped and its result mapped to the earlier one, so the ops after it (and the return)
 * use that instead. Linear in the size of the function: no pairwise comparisons, and the
 * uses are rewritten in the same walk rather than by a scan per duplicate.
 *
 * Attributes compare by value: defaults from the op's schema count as written, an int
 * written for a float attribute equals that float, and tensor literals compare by their
 * elements (a splat `dense<1.0>` equals a literal of ones of the same type). So constants
 * with equal literals and types merge too. The dropped op's comments move to the next line.
 */

import { type Attr, attrFromJs, type AttrSpec, formatAttr, formatFloat } from "../ir/attrs.ts";
import type { Comments, Op, Value } from "../ir/module.ts";
import type { OpRegistry } from "../ir/registry.ts";
import { formatType } from "../ir/types.ts";
import { definePass } from "./pass.ts";

/** The common-subexpression elimination pass. */
export const cse = definePass({
  name: "cse",
  description: "Replaces ops equal to an earlier op (same op, operands, attributes and type), constants too.",
  statistics: { eliminated: "ops replaced by an earlier equal op" },
  runOnFunction(f, ctx) {
    const numbers = new Map<Value, number>();
    const number = (v: Value): number => {
      let n = numbers.get(v);
      if (n === undefined) numbers.set(v, n = numbers.size);
      return n;
    };
    const first = new Map<string, Value>();
    const replaced = new Map<Value, Value>();
    const kept: Op[] = [];
    let pending: Comments | undefined; // comments of dropped ops, for the next kept line
    for (const op of f.body) {
      if (replaced.size > 0 && op.operands.some((v) => replaced.has(v))) {
        op.operands = op.operands.map((v) => replaced.get(v) ?? v);
      }
      const key = `${op.name}(${op.operands.map(number).join(",")})${attrKey(ctx.registry, op)}:${
        formatType(op.result.type)
      }`;
      const earlier = first.get(key);
      if (earlier) {
        replaced.set(op.result, earlier);
        pending = joinComments(pending, op.comments);
        ctx.stat("eliminated");
        continue;
      }
      first.set(key, op.result);
      if (pending) op.comments = prependComments(pending, op.comments);
      pending = undefined;
      kept.push(op);
    }
    if (replaced.size === 0) return "unchanged";
    f.body = kept;
    f.returns = f.returns.map((v) => replaced.get(v) ?? v);
    if (pending) f.returnComments = prependComments(pending, f.returnComments);
    return "changed";
  },
});

/** The attributes of an op as text, sorted by name, with schema defaults filled in. */
function attrKey(registry: OpRegistry, op: Op): string {
  const specs: Readonly<Record<string, AttrSpec>> = registry.get(op.name)?.attrs ?? {};
  const all = new Map<string, Attr>(op.attrs);
  for (const [name, spec] of Object.entries(specs)) {
    if (!all.has(name) && spec.default !== undefined) all.set(name, attrFromJs(spec, spec.default));
  }
  if (all.size === 0) return "";
  const parts = [...all.keys()].sort().map((name) => `${name}=${attrText(all.get(name)!, specs[name])}`);
  return `{${parts.join(",")}}`;
}

/** An attribute's text, the same for equal values written differently. */
function attrText(a: Attr, spec: AttrSpec | undefined): string {
  if (a.kind === "int" && spec?.type === "float") return formatFloat(a.value);
  if (a.kind !== "dense") return formatAttr(a);
  // The result type is part of the key, so the elements alone tell literals apart.
  const values = a.value.values;
  const splat = values.length > 0 && values.every((x) => Object.is(x, values[0]));
  return splat ? `splat<${formatFloat(values[0])}>` : `[${values.map(formatFloat).join(",")}]`;
}

/** The comments of two dropped ops in a row, in order. */
function joinComments(a: Comments | undefined, b: Comments): Comments {
  const lines = b.trailing !== undefined ? [...b.leading, b.trailing] : b.leading;
  return { leading: [...(a?.leading ?? []), ...lines], blankLine: a?.blankLine || b.blankLine };
}

/** Comments of dropped ops put before an item's own. */
function prependComments(dropped: Comments, c: Comments): Comments {
  if (dropped.leading.length === 0 && !dropped.blankLine) return c;
  return { ...c, leading: [...dropped.leading, ...c.leading], blankLine: dropped.blankLine || c.blankLine };
}
