/**
 * The co-design view of `deno task bench table2`: accuracy against the latency of Sparrow's
 * compiled artifact of the same pruned model, for every block shape, sparsity and method, with the
 * Pareto front (no other configuration is both as fast and as accurate, one of them strictly).
 */

import { basename } from "node:path";
import { PALETTE } from "../../cli/plot.ts";
import { type LegendEntry, type Marker, paretoFront, scatterPlot, type ScatterPoint } from "../scatter.ts";
import type { Job, JobResult } from "./job.ts";

const MARKERS: Record<JobResult["method"], Marker> = {
  dense: "diamond",
  magnitude: "circle",
  reconstruct: "triangle",
};

/** A configuration's name in tables and on the plot, e.g. `reconstruct 1x32 80%`. */
export const label = (j: Job): string =>
  j.method === "dense" ? "dense" : `${j.method} ${j.block} ${j.sparsity! * 100}%`;

/** The plot, the front (indices into `results`) and a Markdown table, at `o.threads` threads. */
export function paretoView(
  results: readonly JobResult[],
  o: { threads: number; seq: number; model: string },
): { svg: string; front: number[]; markdown: string; frontTable: string } {
  const ms = (r: JobResult) => r.latency?.[o.threads]?.median ?? NaN;
  const blocks = [...new Set(results.filter((r) => r.block).map((r) => r.block!))];
  const color = (r: JobResult) => r.block ? PALETTE[blocks.indexOf(r.block) % PALETTE.length] : "#000000";
  const points: ScatterPoint[] = results.map((r) => ({
    x: ms(r),
    y: 100 * r.accuracy,
    color: color(r),
    marker: MARKERS[r.method],
    filled: r.method === "dense" || r.sparsity! >= 0.8,
    label: label(r),
  }));
  const front = paretoFront(points);
  const sparsities = [...new Set(results.filter((r) => r.sparsity).map((r) => r.sparsity!))].sort();
  const methods = [...new Set(results.map((r) => r.method))];
  const legend: LegendEntry[] = [
    ...blocks.map((b) => ({
      label: `block ${b}`,
      color: color(results.find((r) => r.block === b)!),
      marker: "square" as const,
      filled: true,
    })),
    ...methods.map((m) => ({ label: m, color: "#555555", marker: MARKERS[m], filled: true })),
    ...sparsities.map((sp) => ({
      label: `${sp * 100}% sparse (${sp >= 0.8 ? "filled" : "outline"})`,
      color: "#555555",
      marker: "circle" as const,
      filled: sp >= 0.8,
    })),
  ];
  const dense = results.find((r) => r.method === "dense");
  const rows = results[0]?.rows ?? 0;
  const threads = `${o.threads} thread${o.threads > 1 ? "s" : ""}`;
  const svg = scatterPlot({
    title: "Accuracy against latency: which block shape wins once both count",
    subtitle:
      `${
        basename(o.model)
      }, SST-2 dev (${rows} rows), compiled artifact of each pruned model, S=${o.seq}, batch 1, ` +
      `${threads}, median latency`,
    xLabel: `latency of the compiled model (ms, ${threads})`,
    yLabel: "SST-2 dev accuracy (%)",
    points,
    front,
    legend,
    guides: dense
      ? [
        { axis: "y", value: 100 * dense.accuracy, label: "dense accuracy", color: "#888888" },
        { axis: "x", value: ms(dense), label: "dense latency", color: "#888888" },
      ]
      : [],
  });
  const onFront = new Set(front);
  const order = results.map((_, i) => i).sort((a, b) => ms(results[a]) - ms(results[b]));
  const md = [
    `Accuracy beside latency: each configuration's compiled artifact (S=${o.seq}, batch 1, ${threads}, median ` +
    `of ${
      results[0]?.latency?.[o.threads]?.n ?? 0
    } interleaved runs), fastest first; ★ = on the Pareto front ` +
    `(no configuration is both at least as fast and at least as accurate, one strictly). Plot: table2.svg.`,
    "",
    "| configuration | latency ms | vs dense | accuracy % | Pareto |",
    "| --- | ---: | ---: | ---: | :---: |",
    ...order.map((i) => {
      const r = results[i];
      const vs = dense ? (ms(r) / ms(dense)).toFixed(2) : "-";
      return `| ${label(r)} | ${ms(r).toFixed(2)} | ${vs} | ${(100 * r.accuracy).toFixed(1)} | ${
        onFront.has(i) ? "★" : ""
      } |`;
    }),
  ].join("\n") + "\n";
  const frontTable = [
    `| configuration | latency (S=${o.seq}, ${threads}) | vs dense | accuracy |`,
    "| --- | ---: | ---: | ---: |",
    ...[...front, ...(dense && !onFront.has(results.indexOf(dense)) ? [results.indexOf(dense)] : [])].map(
      (i) => {
        const r = results[i];
        const name = onFront.has(i) ? label(r) : `${label(r)} (not on the front)`;
        const vs = dense ? (ms(r) / ms(dense)).toFixed(2) : "-";
        return `| ${name} | ${ms(r).toFixed(2)} ms | ${vs} | ${(100 * r.accuracy).toFixed(1)}% |`;
      },
    ),
  ].join("\n") + "\n";
  return { svg, front, markdown: md, frontTable };
}
