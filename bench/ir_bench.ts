/**
 * Parse, verify and print speed of the textual IR on a 24-layer BERT-large.
 * Run: `deno task bench` (or `deno bench --allow-read bench/ir_bench.ts`).
 * Verification includes the weight-declaration check against a weights header.
 */

import { bertConfig, buildBertModule } from "../frontend/synthetic_bert.ts";
import { parse, print, verify, type WeightEntry } from "../mod.ts";

const large = buildBertModule(bertConfig("bert-large"), "bert-large.safetensors");
const text = print(large);
const header = new Map<string, WeightEntry>(
  [...large.weights.values()].map((
    w,
  ) => [w.name, { dtype: w.type.dtype.toUpperCase(), shape: w.type.shape }]),
);
const lines = text.split("\n").length;
const ops = large.funcs[0].body.length;

Deno.bench(
  `parse + verify BERT-large (${lines} lines, ${ops} ops, ${text.length} bytes)`,
  { group: "ir" },
  () => {
    const { module, diagnostics } = parse(text, { file: "bert-large.sir" });
    if (!module || diagnostics.length > 0) throw new Error("BERT-large did not parse");
    if (verify(module, { weights: header }).length > 0) throw new Error("BERT-large did not verify");
  },
);

Deno.bench("parse BERT-large", { group: "ir" }, () => {
  parse(text, { file: "bert-large.sir" });
});

Deno.bench("print BERT-large", { group: "ir" }, () => {
  print(large);
});
