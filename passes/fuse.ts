/**
 * `fuse`: fuses element-wise chains that codegen runs better as one kernel.
 *
 * - `dense`/`bsr_dense` followed by `gelu` or `tanh` becomes one op with
 *   `activation = gelu | gelu_tanh | tanh`: the activation runs in the matmul's epilogue
 *   instead of a second pass over the output.
 * - A residual `add` followed by `layer_norm` becomes `add_layer_norm`: the sum is
 *   normalized while it is still in registers.
 *
 * Only ops whose intermediate result has no other use are fused, and the add only when both
 * its operands already have the result's type (no broadcasting). The fused op keeps the name
 * of the op it replaces, so dumps stay easy to compare.
 */

import { AttrReader } from "../ir/attrs.ts";
import type { Func, Op } from "../ir/module.ts";
import { formatType } from "../ir/types.ts";
import { definePass } from "./pass.ts";
import { type Pattern, rewrite, type Rewriter } from "./rewrite.ts";

/** Whether `op`'s result is used exactly once, by an op, in `f`. */
function singleUse(f: Func, op: Op): boolean {
  return !f.returns.includes(op.result) && f.body.filter((o) => o.operands.includes(op.result)).length === 1;
}

/** Replaces `op` by `value` and gives `value` the replaced result's name. */
function replaceKeepingName(rw: Rewriter, op: Op, value: Op["result"]): void {
  const name = op.result.name;
  rw.replace(op, value);
  value.name = name;
}

/** The fusion pass. */
export const fuse = definePass({
  name: "fuse",
  description:
    "Fuses dense + gelu/tanh into dense {activation} and residual add + layer_norm into add_layer_norm.",
  options: {
    "dense-activation": { type: "bool", default: true, doc: "fuse gelu and tanh into the dense before them" },
    "add-layer-norm": {
      type: "bool",
      default: true,
      doc: "fuse a residual add into the layer_norm after it",
    },
  },
  statistics: { activations: "activations fused into dense ops", layerNorms: "adds fused into layer_norm" },
  filter: { ops: ["gelu", "tanh", "layer_norm"] },
  runOnFunction(f, ctx) {
    const attrsOf = (op: Op) => new AttrReader(ctx.registry.get(op.name)!.attrs, op.attrs);
    const patterns: Pattern[] = [];
    if (ctx.options["dense-activation"]) {
      patterns.push({
        match: ["gelu", "tanh"],
        where: (op) => {
          const producer = op.operands[0].definingOp;
          return producer !== undefined && ["dense", "bsr_dense"].includes(producer.name) &&
            attrsOf(producer).string("activation") === "none" && singleUse(f, producer);
        },
        rewrite(op, rw) {
          const producer = op.operands[0].definingOp!;
          const activation = op.name === "tanh"
            ? "tanh"
            : attrsOf(op).string("approximation") === "tanh"
            ? "gelu_tanh"
            : "gelu";
          rw.setAttr(producer, "activation", activation);
          replaceKeepingName(rw, op, producer.result);
          ctx.stat("activations");
        },
      });
    }
    if (ctx.options["add-layer-norm"]) {
      patterns.push({
        match: "layer_norm",
        where: (op) => {
          const sum = op.operands[0].definingOp;
          const type = formatType(op.operands[0].type);
          return sum?.name === "add" && singleUse(f, sum) &&
            sum.operands.every((v) => formatType(v.type) === type);
        },
        rewrite(op, rw) {
          const sum = op.operands[0].definingOp!;
          const a = attrsOf(op);
          const fused = rw.create("add_layer_norm", [...sum.operands, ...op.operands.slice(1)], {
            axis: a.int("axis"),
            epsilon: a.float("epsilon"),
          });
          rw.replace(op, fused);
          rw.erase(sum);
          ctx.stat("layerNorms");
        },
      });
    }
    return rewrite(f, ctx, patterns);
  },
});
