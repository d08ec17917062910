/** The scatter plot and the Pareto front of the accuracy-against-latency view (bench/scatter.ts). */

import assert from "node:assert/strict";
import { paretoFront, scatterPlot } from "../bench/scatter.ts";

Deno.test("paretoFront keeps the points nothing beats on both axes, by increasing x", () => {
  const pts = [
    { x: 8, y: 80 }, // dense: the most accurate
    { x: 3, y: 78 }, // fast and accurate
    { x: 3.5, y: 60 }, // slower and worse than the previous: dominated
    { x: 2.8, y: 70 }, // the fastest
    { x: 5, y: 78 }, // as accurate as (3, 78) but slower: dominated
    { x: NaN, y: 99 }, // not measured: never on the front
  ];
  assert.deepEqual(paretoFront(pts), [3, 1, 0]);
});

Deno.test("paretoFront keeps equal points together", () => {
  assert.deepEqual(paretoFront([{ x: 1, y: 1 }, { x: 1, y: 1 }, { x: 2, y: 0 }]), [0, 1]);
  assert.deepEqual(paretoFront([]), []);
});

Deno.test("scatterPlot draws every point with its tooltip, labels the front, and escapes text", () => {
  const svg = scatterPlot({
    title: "a < b",
    xLabel: "ms",
    yLabel: "%",
    points: [
      { x: 2, y: 70, color: "#111111", marker: "circle", filled: true, label: "p&1" },
      { x: 4, y: 80, color: "#222222", marker: "triangle", filled: false, label: "p2" },
      { x: 5, y: 60, color: "#333333", marker: "square", filled: true, label: "p3" },
    ],
    front: [0, 1],
    legend: [{ label: "block 1x32", color: "#111111", marker: "diamond", filled: true }],
    guides: [{ axis: "y", value: 80, label: "dense accuracy", color: "#888888" }],
  });
  assert.match(svg, /^<svg [^>]*viewBox="0 0 900 560"/);
  assert.match(svg, /a &lt; b/);
  assert.match(svg, /<title>p&amp;1: 2, 70<\/title>/);
  assert.match(svg, /<title>p3: 5, 60<\/title>/);
  // Front points are listed in the legend by name; p3, off the front, only has a tooltip.
  assert.match(svg, />p&amp;1<\/text>/);
  assert.match(svg, />p2<\/text>/);
  assert.doesNotMatch(svg, />p3<\/text>/);
  assert.match(svg, /fill="white" stroke="#222222"/, "an outline marker");
  assert.match(svg, /stroke-dasharray="6 4"><title>dense accuracy: 80<\/title>/);
  assert.match(svg, /Pareto front/);
});
