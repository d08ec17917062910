/** The report of Table 1: its JSON, its Markdown tables and its plot (the paper's Figure 2). */

import { join } from "node:path";
import {
  type HLine,
  linePlot,
  PEER_COLORS,
  type Series,
  THREAD_COLORS,
  THREAD_DASHES,
} from "../../cli/plot.ts";
import type { Summary } from "../stats.ts";
import type { Table1Options, Table1Row } from "./run.ts";
import { TOLERANCE } from "./timing.ts";

/** Mean (std) in ms. */
export function fmtMs(s: { mean: number; std: number } | undefined, digits = 1): string {
  return s ? `${s.mean.toFixed(digits)} (${s.std.toFixed(digits)})` : "";
}

/** What `runTable1` measured, as written to `table1.json` (the fields the report reads). */
export interface Table1Result {
  setting: { model: string; seq: number; sparsity: number; seed: number; repeat: number };
  machine: Record<string, unknown>;
  notes: string[];
  peers: Record<string, Record<string, Summary>>;
  rows: Table1Row[];
  /** With `--int8`: GEMM rates, weight bytes and the int8 checks (run.ts `int8Summary`). */
  int8?: {
    gemmGflopsPerCore: number;
    qgemmGopsPerCore: number;
    weightBytes: Record<string, number>;
    checks: Record<
      string,
      { spread: number; tolerance: number; maxAbs: number[]; ortInt8?: { againstF32: number[] } }
    >;
  };
  wallSeconds: number;
}

/** Writes `--out/table1.{json,md,svg}` and prints the Markdown. */
export async function writeTable1Report(result: Table1Result, o: Table1Options): Promise<void> {
  await Deno.mkdir(o.out, { recursive: true });
  const base = join(o.out, "table1");
  await Deno.writeTextFile(`${base}.json`, JSON.stringify(result, null, 2) + "\n");
  const md = table1Markdown(result.setting, result.machine, result.peers, result.rows, result.notes, o) +
    (result.int8 ? int8Markdown(result.peers, result.rows, result.int8, o) : "");
  await Deno.writeTextFile(`${base}.md`, md);
  await Deno.writeTextFile(`${base}.svg`, table1Svg(result.setting.model, o, result.peers, result.rows));
  console.log(md);
  console.error(`wrote ${base}.json, ${base}.md, ${base}.svg (${result.wallSeconds} s)`);
}

/** The Markdown report: one table per thread count, laid out like the paper's Table 1. */
function table1Markdown(
  setting: { model: string; seq: number; sparsity: number; seed: number; repeat: number },
  machine: Record<string, unknown>,
  peers: Record<string, Record<string, Summary>>,
  rows: Table1Row[],
  notes: string[],
  o: Table1Options,
): string {
  const lines = [
    `# Table 1: inference time of ${setting.model} (synthetic), S=${setting.seq}, batch 1, ` +
    `${Math.round(setting.sparsity * 100)}% block sparsity`,
    "",
    `Mean (std) in ms over ${setting.repeat} interleaved rounds. Machine: ${machine.cpu}, ${machine.cores} cores, ` +
    `Deno ${machine.deno}, V8 ${machine.v8}; ${machine.date}.`,
    "",
    "Columns: onnxruntime-node and -web run the dense model; *Sparrow dense kernels* is Sparrow without " +
    "bsr-lower (the dense model in the Dense row; the pruned weights elsewhere: the negative control); " +
    "*Sparrow BSR* adds bsr-lower (block-sparse kernels); the ratio is Sparrow BSR / Sparrow dense (mean, std).",
    "",
  ];
  for (const t of o.threads) {
    const p = peers[t];
    const d = p["sparrow-dense"];
    const head = [
      "",
      "ℓ1 block size",
      "onnxruntime-node ms",
      ...(o.web ? ["onnxruntime-web ms"] : []),
      "Sparrow dense kernels ms mean (std)",
      "Sparrow BSR ms mean (std)",
      "BSR / Dense mean (std)",
    ];
    lines.push(
      `## ${t} thread${t > 1 ? "s" : ""}`,
      "",
      `| ${head.join(" | ")} |`,
      `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
    );
    lines.push(
      `| ${
        [
          "Dense",
          "",
          fmtMs(p["onnxruntime-node"]),
          ...(o.web ? [fmtMs(p["onnxruntime-web"])] : []),
          fmtMs(d),
          fmtMs(d),
          `1.000 (${(d.std / d.mean).toFixed(3)})`,
        ].join(" | ")
      } |`,
    );
    let structured = false;
    for (const r of rows.filter((r) => r.threads === t)) {
      const label = r.block === "1x1" ? "Irregular sparsity" : structured ? "" : "Structured sparsity";
      if (r.block !== "1x1") structured = true;
      lines.push(
        `| ${
          [
            label,
            r.block.replace("x", "×"),
            "",
            ...(o.web ? [""] : []),
            fmtMs(r.negativeControl),
            fmtMs(r.bsr),
            `${r.ratio.mean.toFixed(3)} (${r.ratio.std.toFixed(3)})`,
          ].join(" | ")
        } |`,
      );
    }
    lines.push("");
  }
  const checks = rows.map((r) =>
    Math.max(r.check.bsr, r.check.negativeControl, r.check.bsrVsNegativeControl)
  );
  lines.push(
    `Every output was checked before timing (max abs ≤ ${TOLERANCE}; worst pruned-model difference ` +
      `${Math.max(0, ...checks).toExponential(1)}).`,
    "",
    ...notes.map((n) => `- ${n}`),
    "",
  );
  return lines.join("\n");
}

/** `--int8`: int8 against f32 and the peers per thread count, the GEMM rates, the weights, the checks. */
function int8Markdown(
  peers: Record<string, Record<string, Summary>>,
  rows: Table1Row[],
  int8: NonNullable<Table1Result["int8"]>,
  o: Table1Options,
): string {
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const lines = [
    "",
    "## INT8",
    "",
    "Mean (std) in ms, from the same interleaved rounds. int8 = `quantize` (per-channel int8 weights, 7-bit " +
    "dynamic per-row activations); onnxruntime-node int8 runs the same int8 weights exported by Sparrow " +
    "in onnxruntime's own int8 form (DynamicQuantizeLinear, MatMulInteger: uint8 activations per tensor). Ratios over Sparrow f32 dense and onnxruntime-node f32 / int8.",
    "",
  ];
  for (const t of o.threads) {
    const p = peers[t];
    const f32 = p["sparrow-dense"].mean,
      ortF = p["onnxruntime-node"].mean,
      ortI = p["onnxruntime-node-int8"].mean;
    const head = ["model", "ms", "/ Sparrow f32 dense", "/ ORT-node f32", "/ ORT-node int8"];
    lines.push(
      `### ${t} thread${t > 1 ? "s" : ""}`,
      "",
      `| ${head.join(" | ")} |`,
      `|---|${head.slice(1).map(() => "---:").join("|")}|`,
    );
    const row = (name: string, s: Summary) =>
      `| ${name} | ${fmtMs(s)} | ${(s.mean / f32).toFixed(3)} | ${(s.mean / ortF).toFixed(3)} | ${
        (s.mean / ortI).toFixed(3)
      } |`;
    lines.push(row("onnxruntime-node f32 dense", p["onnxruntime-node"]));
    lines.push(row("onnxruntime-node int8 dense", p["onnxruntime-node-int8"]));
    lines.push(row("Sparrow f32 dense", p["sparrow-dense"]));
    lines.push(row("Sparrow int8 dense", p["sparrow-int8-dense"]));
    for (const r of rows.filter((r) => r.threads === t && r.int8)) {
      lines.push(row(`Sparrow f32 BSR ${r.block}`, r.bsr));
      lines.push(row(`Sparrow int8 BSR ${r.block}`, r.int8!.time));
    }
    lines.push("");
  }
  lines.push(
    `One thread, profiled: the int8 GEMM (qdense) runs at ${int8.qgemmGopsPerCore.toFixed(1)} GOP/s, ` +
      `the f32 GEMM (dense) at ${int8.gemmGflopsPerCore.toFixed(1)} GFLOP/s.`,
    "",
    "Weights held by each artifact (packed, with BSR indices and scales): " +
      Object.entries(int8.weightBytes).map(([k, b]) => `${k} ${mib(b)} MiB`).join(", ") +
      `; int8 dense / f32 dense = ${
        (int8.weightBytes["int8 dense"] / int8.weightBytes["f32 dense"]).toFixed(3)
      }.`,
    "",
    "Checks: each int8 output against the reference interpreter on its module, within twice the largest " +
      "difference four runs of the interpreter with ±2-ulp noise in every f32 op give (bench/ulp_noise.ts): " +
      Object.entries(int8.checks).map(([id, c]) =>
        `${id}: ${Math.max(...c.maxAbs).toExponential(1)} ≤ ${c.tolerance.toExponential(1)}` +
        (c.ortInt8
          ? ` (onnxruntime-node int8, against the f32 model: ${
            Math.max(...c.ortInt8.againstF32).toExponential(1)
          })`
          : "")
      ).join("; ") + ".",
    "",
  );
  return lines.join("\n");
}

/** Figure 2: time against block shape, BSR (and the negative control) per thread count, peers as lines. */
function table1Svg(
  model: string,
  o: Table1Options,
  peers: Record<string, Record<string, Summary>>,
  rows: Table1Row[],
): string {
  const series: Series[] = [];
  const hlines: HLine[] = [];
  o.threads.forEach((t, i) => {
    const rs = o.blocks.map((b) => rows.find((r) => r.block === b && r.threads === t)!);
    const th = `${t} thread${t > 1 ? "s" : ""}`;
    const color = THREAD_COLORS[i % THREAD_COLORS.length];
    series.push({
      name: `Sparrow BSR, ${th}`,
      color,
      values: rs.map((r) => r.bsr.mean),
      errors: rs.map((r) => r.bsr.std),
    });
    series.push({
      name: `no bsr-lower (control), ${th}`,
      color,
      dash: "5 3",
      opacity: 0.55,
      values: rs.map((r) => r.negativeControl.mean),
      errors: rs.map((r) => r.negativeControl.std),
    });
    const dash = THREAD_DASHES[i % THREAD_DASHES.length];
    const p = peers[t];
    hlines.push({
      name: `Sparrow dense, ${th}`,
      color: PEER_COLORS.sparrowDense,
      dash,
      value: p["sparrow-dense"].mean,
    });
    hlines.push({
      name: `ORT-node, ${th}`,
      color: PEER_COLORS.ortNode,
      dash,
      value: p["onnxruntime-node"].mean,
    });
    if (p["onnxruntime-web"]) {
      hlines.push({
        name: `ORT-web, ${th}`,
        color: PEER_COLORS.ortWeb,
        dash,
        value: p["onnxruntime-web"].mean,
      });
    }
  });
  return linePlot({
    title: `Inference time vs block shape: ${model}, S=${o.seq}, ${Math.round(o.sparsity * 100)}% sparsity`,
    subtitle: `mean ± std over ${o.repeat} interleaved rounds; horizontal lines: dense peers`,
    xLabel: "ℓ1 block size (R×C over W[out, in])",
    yLabel: "inference time, ms",
    categories: o.blocks.map((b) => b.replace("x", "×")),
    series,
    hlines,
    width: 1000,
  });
}
