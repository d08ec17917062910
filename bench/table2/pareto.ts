/**
 * The co-design view of `deno task bench table2`: accuracy against the latency of Sparrow's
 * compiled artifact of the same pruned model, for every block shape, sparsity and method, f32,
 * (with `--int8`) int8 and (with `--finetune`) fine-tuned, with the Pareto front over all of them
 * (no other point is both as fast and as accurate, one of them strictly).
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

/** The marker of int8 points, whatever their method. */
const INT8_MARKER: Marker = "square";

/**
 * The marker of fine-tuned points, whatever their method: the diamond, which otherwise marks only
 * the dense model (black, where the dense guides cross), as bench/scatter.ts has four shapes.
 */
const FINETUNED_MARKER: Marker = "diamond";

/** A configuration's name in tables and on the plot, e.g. `reconstruct 1x32 80%`. */
export const label = (j: Job): string =>
  j.method === "dense" ? "dense" : `${j.method} ${j.block} ${j.sparsity! * 100}%`;

/** The name of a configuration's int8 variant, e.g. `reconstruct 1x32 80% int8`. */
export const int8Label = (j: Job): string => `${label(j)} int8`;

/** The name of a configuration's fine-tuned variant, e.g. `reconstruct 1x32 80% fine-tuned`. */
export const finetunedLabel = (j: Job): string => `${label(j)} fine-tuned`;

/** One point of the view: a configuration's f32 artifact, or its int8 or fine-tuned variant's. */
export interface ViewPoint {
  readonly result: JobResult;
  readonly variant: "f32" | "int8" | "finetuned";
  readonly label: string;
  readonly accuracy: number;
  readonly latency?: JobResult["latency"];
}

/**
 * Every configuration's f32 point, then every int8 variant's, then every fine-tuned variant's
 * (results of runs without `--int8` or `--finetune` have none).
 */
export function viewPoints(results: readonly JobResult[]): ViewPoint[] {
  return [
    ...results.map((r) => ({
      result: r,
      variant: "f32" as const,
      label: label(r),
      accuracy: r.accuracy,
      latency: r.latency,
    })),
    ...results.filter((r) => r.int8).map((r) => ({
      result: r,
      variant: "int8" as const,
      label: int8Label(r),
      accuracy: r.int8!.accuracy,
      latency: r.int8!.latency,
    })),
    ...results.filter((r) => r.finetuned).map((r) => ({
      result: r,
      variant: "finetuned" as const,
      label: finetunedLabel(r),
      accuracy: r.finetuned!.accuracy,
      latency: r.finetuned!.latency,
    })),
  ];
}

/**
 * The plot, the front (indices into `points`, every f32, int8 and fine-tuned point of `results`)
 * and a Markdown table, at `o.threads` threads.
 */
export function paretoView(
  results: readonly JobResult[],
  o: { threads: number; seq: number; model: string },
): { svg: string; points: ViewPoint[]; front: number[]; markdown: string; frontTable: string } {
  const all = viewPoints(results);
  const ms = (p: ViewPoint) => p.latency?.[o.threads]?.median ?? NaN;
  const blocks = [...new Set(results.filter((r) => r.block).map((r) => r.block!))];
  const color = (r: JobResult) => r.block ? PALETTE[blocks.indexOf(r.block) % PALETTE.length] : "#000000";
  const points: ScatterPoint[] = all.map((p) => ({
    x: ms(p),
    y: 100 * p.accuracy,
    color: color(p.result),
    marker: p.variant === "int8"
      ? INT8_MARKER
      : p.variant === "finetuned"
      ? FINETUNED_MARKER
      : MARKERS[p.result.method],
    filled: p.result.method === "dense" || p.result.sparsity! >= 0.8,
    label: p.label,
  }));
  const front = paretoFront(points);
  const sparsities = [...new Set(results.filter((r) => r.sparsity).map((r) => r.sparsity!))].sort();
  const methods = [...new Set(results.map((r) => r.method))];
  const int8Methods = (["dense", "magnitude", "reconstruct"] as const).filter((m) =>
    results.some((r) => r.method === m && r.int8)
  );
  const ftMethods = (["magnitude", "reconstruct"] as const).filter((m) =>
    results.some((r) => r.method === m && r.finetuned)
  );
  const legend: LegendEntry[] = [
    ...blocks.map((b) => ({
      label: `block ${b}`,
      color: color(results.find((r) => r.block === b)!),
      marker: "circle" as const,
      filled: true,
    })),
    ...methods.map((m) =>
      // The dense model's diamond is black, unlike the fine-tuned points' (the same shape).
      m === "dense" && ftMethods.length
        ? { label: "dense, f32 (black)", color: "#000000", marker: MARKERS[m], filled: true }
        : { label: `${m}, f32`, color: "#555555", marker: MARKERS[m], filled: true }
    ),
    ...(int8Methods.length
      ? [{ label: `int8 (${int8Methods.join(", ")})`, color: "#555555", marker: INT8_MARKER, filled: true }]
      : []),
    ...(ftMethods.length
      ? [{
        label: `fine-tuned (${ftMethods.join(", ")})`,
        color: "#555555",
        marker: FINETUNED_MARKER,
        filled: true,
      }]
      : []),
    ...sparsities.map((sp) => ({
      label: `${sp * 100}% sparse (${sp >= 0.8 ? "filled" : "outline"})`,
      color: "#555555",
      marker: "circle" as const,
      filled: sp >= 0.8,
    })),
  ];
  const dense = all.find((p) => p.result.method === "dense" && p.variant === "f32");
  const rows = results[0]?.rows ?? 0;
  const threads = `${o.threads} thread${o.threads > 1 ? "s" : ""}`;
  // The kinds of point beside the one-shot f32 ones, e.g. "f32 and int8", "f32, int8 and fine-tuned".
  const kinds = ["f32", ...(int8Methods.length ? ["int8"] : []), ...(ftMethods.length ? ["fine-tuned"] : [])];
  const together = kinds.length > 1 ? `${kinds.slice(0, -1).join(", ")} and ${kinds.at(-1)}` : "";
  const svg = scatterPlot({
    title: together
      ? `Accuracy against latency, ${together}: which block shape wins once both count`
      : "Accuracy against latency: which block shape wins once both count",
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
  const order = all.map((_, i) => i).sort((a, b) => ms(all[a]) - ms(all[b]));
  const vs = (p: ViewPoint) => dense ? (ms(p) / ms(dense)).toFixed(2) : "-";
  const md = [
    `Accuracy beside latency: each configuration's compiled artifact (S=${o.seq}, batch 1, ${threads}, median ` +
    `of ${results[0]?.latency?.[o.threads]?.n ?? 0} interleaved runs${
      together ? `, ${together} in the same rounds` : ""
    }), fastest first; ` +
    `★ = on the Pareto front (no configuration is both at least as fast and at least as accurate, one strictly` +
    `${together ? `; ${together} together` : ""}). Plot: table2.svg.`,
    "",
    "| configuration | latency ms | vs dense | accuracy % | Pareto |",
    "| --- | ---: | ---: | ---: | :---: |",
    ...order.map((i) => {
      const p = all[i];
      return `| ${p.label} | ${ms(p).toFixed(2)} | ${vs(p)} | ${(100 * p.accuracy).toFixed(1)} | ${
        onFront.has(i) ? "★" : ""
      } |`;
    }),
  ].join("\n") + "\n";
  const denseIndex = dense ? all.indexOf(dense) : -1;
  const frontTable = [
    `| configuration | latency (S=${o.seq}, ${threads}) | vs dense | accuracy |`,
    "| --- | ---: | ---: | ---: |",
    ...[...front, ...(dense && !onFront.has(denseIndex) ? [denseIndex] : [])].map(
      (i) => {
        const p = all[i];
        const name = onFront.has(i) ? p.label : `${p.label} (not on the front)`;
        return `| ${name} | ${ms(p).toFixed(2)} ms | ${vs(p)} | ${(100 * p.accuracy).toFixed(1)}% |`;
      },
    ),
  ].join("\n") + "\n";
  return { svg, points: all, front, markdown: md, frontTable };
}
