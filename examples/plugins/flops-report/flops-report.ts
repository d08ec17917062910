/**
 * `flops-report`: an analysis pass. Prints, per encoder layer, the FLOPs and parameters of a
 * model, plus the embeddings, the head and totals, as a table on stderr. It changes nothing.
 *
 * ```sh
 * deno task compile models/bert-base.sir --plugin examples/plugins/flops-report/flops-report.ts \
 *   --passes 'flops-report{unit=gflop}' > /dev/null
 * ```
 *
 * Counting rules (per op, from the static types, for the batch the model is written for):
 * - `dense` and `batch_matmul`: 2·M·N·K, i.e. 2 × (elements of the result) × K, the
 *   contraction dim (after `transpose_a`); bias adds are not counted;
 * - `bsr_dense`: 2·M·(stored elements of the weight), i.e. only the stored blocks are multiplied;
 * - a fused activation (`dense {activation = gelu}`) adds one FLOP per result element, as the
 *   separate op did, so fusing an activation leaves the totals alone;
 * - every other op: one FLOP per element of its result (reshapes and transposes included).
 *
 * Parameters are the elements of the weights an op uses (stored elements for a BSR weight),
 * each weight counted once, in the first group that uses it.
 *
 * Grouping: an op belongs to `layer N` when it uses a weight named `...encoder.layer.N....`,
 * else when its result is named `lN.…` (the synthetic BERT's naming); to `embeddings` when it
 * uses an `embeddings.` weight or comes before the first layer op; to `head` when it uses a
 * `pooler.`/`classifier` weight or comes after the last layer op; ops between layers that
 * match neither rule go with the layer before them. A model without layers is one `model` group.
 */

import { type Analysis, definePass, type Module, numel, type Op, type TensorType } from "../../../mod.ts";

/** FLOPs and parameters of one group of ops. */
export interface FlopsRow {
  /** `embeddings`, `layer N`, `head` or `model`. */
  readonly group: string;
  /** Ops in the group. */
  ops: number;
  /** FLOPs, by the rules above. */
  flops: number;
  /** Parameters of the weights the group uses. */
  params: number;
}

const boolAttr = (op: Op, key: string) => op.attrs.get(key)?.value === true;

/** FLOPs of one op, by the rules in the module comment. */
export function opFlops(op: Op): number {
  const out = numel(op.result.type.shape);
  const [x, w] = op.operands.map((v) => v.type);
  // A fused activation (`dense {activation = gelu}`) costs what the separate op did.
  const activation = (op.attrs.get("activation")?.value ?? "none") !== "none" ? out : 0;
  if (op.name === "dense" || op.name === "batch_matmul") {
    const r = x.shape.length;
    const k = boolAttr(op, "transpose_a") && r >= 2 ? x.shape[r - 2] : x.shape[r - 1];
    return 2 * out * k + activation;
  }
  if (op.name === "bsr_dense") {
    const n = w.shape[0];
    return 2 * (out / n) * storedElements(w) + activation;
  }
  return out;
}

/** Elements a weight stores: all of them, or the stored blocks of a BSR weight. */
export function storedElements(t: TensorType): number {
  if (!t.sparse) return numel(t.shape);
  return t.sparse.nnzBlocks * t.sparse.block[0] * t.sparse.block[1];
}

const LAYER_WEIGHT = /(?:^|\.)encoder\.layer\.(\d+)\./;
const LAYER_RESULT = /^l(\d+)\./;

/** The group an op belongs to by what it uses or how it is named, if either tells. */
function ownGroup(op: Op): string | undefined {
  for (const v of op.operands) {
    if (v.kind !== "weight") continue;
    const layer = LAYER_WEIGHT.exec(v.name);
    if (layer) return `layer ${layer[1]}`;
    if (/(?:^|\.)embeddings\./.test(v.name)) return "embeddings";
    if (/(?:^|\.)pooler\.|^classifier\./.test(v.name)) return "head";
  }
  const named = LAYER_RESULT.exec(op.result.name);
  return named ? `layer ${named[1]}` : undefined;
}

/** Rows in order: embeddings, layers by number, head, model. */
function rank(group: string): number {
  if (group === "embeddings") return -1;
  if (group.startsWith("layer ")) return Number(group.slice(6));
  return group === "head" ? Number.MAX_SAFE_INTEGER - 1 : Number.MAX_SAFE_INTEGER;
}

/** The FLOPs analysis: one row per group, in order. Cached by the pass manager. */
export const flopsAnalysis: Analysis<FlopsRow[]> = {
  name: "flops",
  compute(m: Module): FlopsRow[] {
    const rows = new Map<string, FlopsRow>();
    const counted = new Set<string>();
    for (const f of m.funcs) {
      const own = f.body.map(ownGroup);
      const layerAt = own.map((g) => g?.startsWith("layer ") ?? false);
      const first = layerAt.indexOf(true), last = layerAt.lastIndexOf(true);
      let previous = "model";
      f.body.forEach((op, i) => {
        const group = own[i] ??
          (first < 0 ? "model" : i < first ? "embeddings" : i > last ? "head" : previous);
        if (group.startsWith("layer ")) previous = group;
        const row = rows.get(group) ?? { group, ops: 0, flops: 0, params: 0 };
        rows.set(group, row);
        row.ops++;
        row.flops += opFlops(op);
        for (const v of op.operands) {
          if (v.kind !== "weight" || counted.has(v.name)) continue;
          counted.add(v.name);
          row.params += storedElements(v.type);
        }
      });
    }
    return [...rows.values()].sort((a, b) => rank(a.group) - rank(b.group));
  },
};

const UNITS = { flop: 1, kflop: 1e3, mflop: 1e6, gflop: 1e9 } as const;

/** The pass: prints the analysis as a table and changes nothing. */
export default definePass({
  name: "flops-report",
  description: "Prints FLOPs and parameters per encoder layer (analysis only; changes nothing).",
  options: {
    unit: {
      type: "enum",
      values: ["flop", "kflop", "mflop", "gflop"],
      default: "mflop",
      doc: "unit of the FLOPs column",
    },
  },
  runOnModule(m, ctx) {
    const unit = ctx.options.unit as keyof typeof UNITS;
    const rows = ctx.analysis(flopsAnalysis);
    const total = rows.reduce((t, r) => ({
      group: "total",
      ops: t.ops + r.ops,
      flops: t.flops + r.flops,
      params: t.params + r.params,
    }), { group: "total", ops: 0, flops: 0, params: 0 });
    const fmt = (n: number) => unit === "flop" ? String(n) : (n / UNITS[unit]).toFixed(3);
    const share = (n: number) => `${total.flops === 0 ? "0.0" : (100 * n / total.flops).toFixed(1)}%`;
    const cells = (r: FlopsRow) => [r.group, String(r.ops), fmt(r.flops), share(r.flops), String(r.params)];
    const table = [["group", "ops", unit.toUpperCase(), "share", "params"], ...[...rows, total].map(cells)];
    const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
    ctx.log(`@${m.name}: FLOPs (2·M·N·K per matmul, 1 per result element otherwise) and parameters`);
    for (const row of table) {
      ctx.log(row.map((cell, c) => c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])).join("  "));
    }
    return "unchanged";
  },
});
