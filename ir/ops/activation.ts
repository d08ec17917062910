/**
 * The `activation` attribute of the fused `dense` and `bsr_dense` ops, and its reference
 * semantics. A fused activation is defined as the unfused op that a fusion pass folds in:
 * `gelu` and `gelu_tanh` run the `gelu` op (erf and tanh approximation), `tanh` runs the `tanh`
 * op. The math lives in `gelu.ts` and `tanh.ts` only, so the fused and the unfused forms cannot
 * drift apart, and fusing is exact.
 */

import { type Attr, AttrReader, type AttrSpec } from "../attrs.ts";
import type { OpDef } from "../registry.ts";
import { roundToDType, type Tensor } from "../tensor.ts";
import { gelu } from "./gelu.ts";
import { tanh } from "./tanh.ts";

/** The values of the `activation` attribute. */
export const ACTIVATIONS = ["none", "gelu", "gelu_tanh", "tanh"] as const;

/** A value of the `activation` attribute. */
export type Activation = typeof ACTIVATIONS[number];

/** Schema of the `activation` attribute, shared by `dense` and `bsr_dense`. */
export const activationAttr: AttrSpec = {
  type: "enum",
  values: ACTIVATIONS,
  default: "none",
  doc: "Applied to the result after the bias: none, gelu (erf), gelu_tanh (tanh approximation) or tanh.",
};

/** The unfused op each activation stands for, with the attributes it runs with. */
const UNFUSED: Readonly<Record<Exclude<Activation, "none">, readonly [OpDef, string | undefined]>> = {
  gelu: [gelu, "erf"],
  gelu_tanh: [gelu, "tanh"],
  tanh: [tanh, undefined],
};

/**
 * Applies `activation` to `t`, exactly as the unfused chain would: `t` is first rounded in
 * place to its dtype, as the interpreter rounds every op's result (f16, bf16), then the
 * activation op runs. `none` returns `t` itself.
 */
export function applyActivation(t: Tensor, activation: string): Tensor {
  if (activation === "none") return t;
  if (!Object.hasOwn(UNFUSED, activation)) throw new Error(`unknown activation '${activation}'`);
  const [def, approximation] = UNFUSED[activation as Exclude<Activation, "none">];
  const written = new Map<string, Attr>();
  if (approximation !== undefined) written.set("approximation", { kind: "enum", value: approximation });
  roundToDType(t);
  return def.interpret([t], new AttrReader(def.attrs, written), t.type);
}
