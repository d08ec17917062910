/**
 * `dce`: dead-code elimination. Walks each function backwards and erases ops whose result
 * nothing uses (every op is free of side effects), then drops weight declarations no
 * function uses.
 */

import type { Value } from "../ir/module.ts";
import { definePass } from "./pass.ts";

/** The dead-code elimination pass. */
export const dce = definePass({
  name: "dce",
  description: "Erases ops whose results are unused, and unused weight declarations.",
  statistics: { ops: "ops erased", weights: "weight declarations dropped" },
  runOnModule(m, ctx) {
    let changed = false;
    const usedWeights = new Set<string>();
    for (const f of m.funcs) {
      const live = new Set<Value>(f.returns);
      const kept = [];
      for (let i = f.body.length - 1; i >= 0; i--) {
        const op = f.body[i];
        if (!live.has(op.result)) {
          ctx.stat("ops");
          const next = kept.at(-1)?.comments ?? f.returnComments;
          next.leading.unshift(...op.comments.leading);
          next.blankLine ||= op.comments.blankLine;
          continue;
        }
        for (const v of op.operands) live.add(v);
        kept.push(op);
      }
      if (kept.length !== f.body.length) {
        f.body = kept.reverse();
        changed = true;
      }
      for (const v of [...f.returns, ...f.body.flatMap((op) => op.operands)]) {
        if (v.kind === "weight") usedWeights.add(v.name);
      }
    }
    for (const name of [...m.weights.keys()]) {
      if (usedWeights.has(name)) continue;
      m.weights.delete(name);
      ctx.stat("weights");
      changed = true;
    }
    return changed ? "changed" : "unchanged";
  },
});
