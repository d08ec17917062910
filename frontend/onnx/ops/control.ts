/**
 * Handlers of control flow: `If` on a condition known at import time. Exporters emit one for
 * checks on a dim that is dynamic in the model, e.g. torch's `squeeze(1)` under `dynamic_axes`
 * becomes `If(Shape(x)[1] == 1, Squeeze, Identity)`; once the import fixes the dims, the
 * condition is a constant and the chosen branch is imported in place of the node.
 */

import type { Handler } from "../node.ts";

/** Handlers of the control-flow ops, by ONNX op type. */
export const CONTROL_HANDLERS: Readonly<Record<string, Handler>> = {
  If(n) {
    const cond = n.constInput(0, "condition").tensor;
    if (cond.data.length !== 1) throw n.fail(`the condition has ${cond.data.length} elements, not one`);
    const branch = cond.data[0] ? "then_branch" : "else_branch";
    const g = n.attrs.get(branch)?.g;
    if (!g) throw n.fail(`attribute '${branch}' is missing`);
    const outs = n.imp.inline(n, g);
    const want = (n.node.output ?? []).length;
    if (outs.length !== want) {
      throw n.fail(`its ${branch} has ${outs.length} outputs; the node has ${want}`);
    }
    return outs;
  },
};
