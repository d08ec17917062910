/**
 * `grad`: adds the reverse-mode backward function of a forward function to the module
 * (ir/autodiff.ts; docs/autodiff.md). The forward function's first result is the loss when it is
 * a float scalar; when it is logits `[B, C]` (a classifier such as an imported BERT), a copy with
 * a cross-entropy loss and a `%labels` argument is added first (`withCrossEntropyLoss`, ir/loss.ts)
 * and differentiated. The module keeps its functions; `@main` still comes first.
 *
 * `deno task compile model.sir --passes 'grad{fn=main}' --print-ir-after grad` prints the backward
 * function, `@main_loss_grad` for a classifier.
 */

import { grad, GradError } from "../ir/autodiff.ts";
import { withCrossEntropyLoss } from "../ir/loss.ts";
import type { Value } from "../ir/module.ts";
import { isFloat } from "../ir/types.ts";
import { type AnyPass, definePass, type NameRegex, nameRegex } from "./pass.ts";

/** The autodiff pass. */
export const gradPass: AnyPass = definePass({
  name: "grad",
  description: "Adds the reverse-mode backward function of a forward function (loss and weight gradients).",
  options: {
    fn: { type: "string", default: "main", doc: "the forward function" },
    loss: {
      type: "enum",
      values: ["auto", "output", "cross-entropy"],
      default: "auto",
      doc: "output: result 0 is the loss; cross-entropy: add one over result 0's logits; auto: by its shape",
    },
    wrt: {
      type: "string",
      default: "",
      doc: "regex over the names of the weights to differentiate (default: every float weight the loss uses)",
    },
    name: { type: "string", default: "", doc: "name of the backward function (default: <fn>_grad)" },
  },
  statistics: { gradients: "gradients returned", ops: "ops in the backward function" },
  runOnModule(m, ctx) {
    const o = ctx.options;
    const f = m.func(o.fn);
    if (!f) throw ctx.error(undefined, `the module has no function '@${o.fn}' (option 'fn')`);
    let target: NameRegex | undefined;
    if (o.wrt !== "") {
      try {
        target = nameRegex(o.wrt);
      } catch (e) {
        throw ctx.error(
          undefined,
          `option 'wrt' is not a valid regex: ${e instanceof Error ? e.message : e}`,
        );
      }
    }
    const first = f.returns[0];
    const logits = first !== undefined && first.type.shape.length === 2;
    const useLoss = o.loss === "cross-entropy" || (o.loss === "auto" && logits);
    let fn = o.fn;
    try {
      if (useLoss) fn = withCrossEntropyLoss(m, o.fn, { registry: ctx.registry });
      let wrt: string[] | undefined;
      if (target) {
        // The float weights the loss function uses, filtered by the regex.
        const lossFn = m.func(fn)!;
        const used = new Set<Value>(lossFn.body.flatMap((op) => op.operands));
        wrt = [...m.weights.values()]
          .filter((w) => used.has(w) && isFloat(w.type.dtype) && target!.test(w.name))
          .map((w) => w.name);
        if (wrt.length === 0) {
          throw ctx.error(undefined, `option 'wrt' (/${o.wrt}/) matches no weight the loss uses`);
        }
      }
      const info = grad(m, fn, { wrt, name: o.name === "" ? undefined : o.name, registry: ctx.registry });
      ctx.stat("gradients", info.grads.length);
      ctx.stat("ops", m.func(info.func)!.body.length);
      ctx.log(`@${info.func}: the loss of @${fn} and ${info.grads.length} gradients`);
    } catch (e) {
      if (e instanceof GradError || (e instanceof Error && e.message.startsWith("withCrossEntropyLoss"))) {
        throw ctx.error(undefined, e.message.replace(/^(grad|withCrossEntropyLoss): /, ""));
      }
      throw e;
    }
    return "changed";
  },
});

/** The pass as a default export, so that `loadPlugin` can register it into a registry. */
export default gradPass;
