/**
 * `gelu-tanh`: switches every exact (erf) `gelu` to the tanh approximation, as Hugging Face's
 * `gelu_new`. Cheaper on targets without a fast erf; the two forms differ by at most 4.7e-4.
 *
 * ```sh
 * deno task compile model.sir --plugin examples/plugins/gelu-tanh/gelu-tanh.ts --passes gelu-tanh --stats
 * ```
 */

import { definePass, rewrite } from "../../../mod.ts";

export default definePass({
  name: "gelu-tanh",
  description: "Switches erf GELUs to the tanh approximation (approximation = tanh).",
  statistics: { rewritten: "gelus rewritten" },
  filter: { ops: ["gelu"] },
  runOnFunction: (f, ctx) =>
    rewrite(f, ctx, [{
      match: "gelu",
      where: (op) => op.attrs.get("approximation")?.value !== "tanh",
      rewrite(op, rw) {
        rw.setAttr(op, "approximation", "tanh");
        ctx.stat("rewritten");
      },
    }]),
});
