/**
 * A scatter plot as hand-written SVG text, for trade-offs such as accuracy against latency:
 * points with a color, a marker shape and a fill, a staircase through the Pareto front, and
 * dashed guide lines. {@link paretoFront} finds the front.
 */

import { esc, figureAxes, figureHead, type Frame, niceStep, tick, yGridLine } from "../cli/plot.ts";

/** A marker shape. */
export type Marker = "circle" | "square" | "triangle" | "diamond";

/** One point. */
export interface ScatterPoint {
  x: number;
  y: number;
  color: string;
  marker: Marker;
  /** Filled, or drawn as an outline. */
  filled: boolean;
  /** Its tooltip, and its legend entry when it is on the front. */
  label: string;
}

/** A legend entry. */
export interface LegendEntry {
  label: string;
  color: string;
  marker: Marker;
  filled: boolean;
}

/** A dashed line across the plot at `value` on the x or y axis. */
export interface Guide {
  axis: "x" | "y";
  value: number;
  label: string;
  color: string;
}

/** What to draw. */
export interface ScatterSpec {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  points: readonly ScatterPoint[];
  /** Indices into `points` of the Pareto front, drawn as a staircase, numbered and listed in the legend. */
  front?: readonly number[];
  legend: readonly LegendEntry[];
  guides?: readonly Guide[];
  width?: number;
  height?: number;
}

/**
 * The Pareto front of points where smaller x and larger y are better: the indices of the points
 * no other point dominates (as small an x and as large a y, one of them strictly), by
 * increasing x. Equal points are all on the front or all off it.
 */
export function paretoFront(points: readonly { x: number; y: number }[]): number[] {
  const dominated = (p: { x: number; y: number }) =>
    points.some((q) => q.x <= p.x && q.y >= p.y && (q.x < p.x || q.y > p.y));
  return points.map((p, i) => ({ p, i }))
    .filter(({ p }) => Number.isFinite(p.x) && Number.isFinite(p.y) && !dominated(p))
    .sort((a, b) => a.p.x - b.p.x || b.p.y - a.p.y)
    .map(({ i }) => i);
}

/** An axis over [min, max] with "nice" ticks; from 0 when `fromZero`. */
function axis(values: readonly number[], fromZero: boolean): { lo: number; hi: number; step: number } {
  const min = Math.min(...values), max = Math.max(...values);
  const lo0 = fromZero ? 0 : min - 0.05 * Math.max(max - min, 1e-9);
  const step = niceStep(Math.max(1e-9, max + 0.05 * Math.max(max - lo0, 1e-9) - lo0), 6);
  const lo = Math.floor(lo0 / step) * step;
  const hi = Math.ceil((max + 0.05 * (max - lo)) / step) * step;
  return { lo, hi: Math.max(hi, lo + step), step };
}

/** The SVG of a marker at (x, y). */
function markerSvg(m: Marker, x: number, y: number, color: string, filled: boolean, title?: string): string {
  const r = 5;
  const paint = filled
    ? `fill="${color}" stroke="${color}"`
    : `fill="white" stroke="${color}" stroke-width="1.8"`;
  const t = title ? `<title>${esc(title)}</title>` : "";
  const pts = (xs: [number, number][]) =>
    xs.map(([a, b]) => `${(x + a).toFixed(1)},${(y + b).toFixed(1)}`).join(" ");
  switch (m) {
    case "circle":
      return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}" ${paint}>${t}</circle>`;
    case "square":
      return `<rect x="${(x - r).toFixed(1)}" y="${(y - r).toFixed(1)}" width="${2 * r}" height="${
        2 * r
      }" ${paint}>${t}</rect>`;
    case "triangle":
      return `<polygon points="${pts([[0, -r - 1], [r + 1, r], [-r - 1, r]])}" ${paint}>${t}</polygon>`;
    case "diamond":
      return `<polygon points="${
        pts([[0, -r - 2], [r + 2, 0], [0, r + 2], [-r - 2, 0]])
      }" ${paint}>${t}</polygon>`;
  }
}

/** Renders `spec` as a standalone SVG document. */
export function scatterPlot(spec: ScatterSpec): string {
  const W = spec.width ?? 900, H = spec.height ?? 560;
  const guides = spec.guides ?? [];
  const names = [
    ...spec.legend.map((l) => l.label),
    ...guides.map((g) => g.label),
    ...(spec.front ?? []).map((i) => spec.points[i].label),
  ];
  const left = 70, right = Math.max(140, 56 + 7 * Math.max(0, ...names.map((n) => n.length)));
  const top = spec.subtitle ? 62 : 46, bottom = 60;
  const pw = W - left - right, ph = H - top - bottom;
  const xs = [...spec.points.map((p) => p.x), ...guides.filter((g) => g.axis === "x").map((g) => g.value)];
  const ys = [...spec.points.map((p) => p.y), ...guides.filter((g) => g.axis === "y").map((g) => g.value)];
  const ax = axis(xs.length ? xs : [0, 1], true), ay = axis(ys.length ? ys : [0, 1], false);
  const x = (v: number) => left + ((v - ax.lo) / (ax.hi - ax.lo)) * pw;
  const y = (v: number) => top + ph - ((v - ay.lo) / (ay.hi - ay.lo)) * ph;
  const frame: Frame = { W, H, left, top, pw, ph, ...spec };
  const out = figureHead(frame);
  for (let v = ax.lo; v <= ax.hi + ax.step / 2; v += ax.step) {
    const xx = x(v).toFixed(1);
    out.push(
      `<line x1="${xx}" y1="${top}" x2="${xx}" y2="${top + ph}" stroke="#eeeeee"/>`,
      `<text x="${xx}" y="${top + ph + 18}" text-anchor="middle">${tick(v)}</text>`,
    );
  }
  for (let v = ay.lo; v <= ay.hi + ay.step / 2; v += ay.step) {
    out.push(...yGridLine(frame, y(v).toFixed(1), tick(v), "#eeeeee"));
  }
  out.push(...figureAxes(frame));
  for (const g of guides) {
    const line = g.axis === "x"
      ? `x1="${x(g.value).toFixed(1)}" y1="${top}" x2="${x(g.value).toFixed(1)}" y2="${top + ph}"`
      : `x1="${left}" y1="${y(g.value).toFixed(1)}" x2="${left + pw}" y2="${y(g.value).toFixed(1)}"`;
    out.push(
      `<line ${line} stroke="${g.color}" stroke-dasharray="6 4"><title>${
        esc(`${g.label}: ${tick(g.value)}`)
      }</title></line>`,
    );
  }
  // The front as a staircase: from each front point right to the next one's x, then down to it.
  const front = (spec.front ?? []).map((i) => spec.points[i]);
  if (front.length > 0) {
    const steps: string[] = [];
    front.forEach((p, k) => {
      if (k > 0) steps.push(`${x(p.x).toFixed(1)},${y(front[k - 1].y).toFixed(1)}`);
      steps.push(`${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`);
    });
    steps.push(`${(left + pw).toFixed(1)},${y(front[front.length - 1].y).toFixed(1)}`);
    out.push(
      `<polyline points="${steps.join(" ")}" fill="none" stroke="#444" stroke-width="1.5" opacity="0.7"/>`,
    );
  }
  spec.points.forEach((p) => {
    out.push(
      markerSvg(p.marker, x(p.x), y(p.y), p.color, p.filled, `${p.label}: ${tick(p.x)}, ${tick(p.y)}`),
    );
  });
  // Front points are numbered (the legend names them): short marks do not hide their neighbours.
  front.forEach((p, k) => {
    out.push(
      `<text x="${(x(p.x) - 7).toFixed(1)}" y="${
        (y(p.y) - 7).toFixed(1)
      }" text-anchor="end" font-size="11" ` +
        `font-weight="bold" fill="#222" stroke="white" stroke-width="3" paint-order="stroke">${k + 1}</text>`,
    );
  });
  // Legend.
  const lx = left + pw + 16;
  let ly = top + 6;
  const rows = spec.legend.length + guides.length + (front.length ? 1 + front.length : 0);
  const dy = Math.min(20, (ph - 6) / Math.max(1, rows));
  for (const l of spec.legend) {
    out.push(
      markerSvg(l.marker, lx + 14, ly, l.color, l.filled),
      `<text x="${lx + 36}" y="${ly}" dominant-baseline="middle">${esc(l.label)}</text>`,
    );
    ly += dy;
  }
  if (front.length) {
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 28}" y2="${ly}" stroke="#444" stroke-width="1.5"/>`,
      `<text x="${lx + 36}" y="${ly}" dominant-baseline="middle">Pareto front:</text>`,
    );
    ly += dy;
    front.forEach((p, k) => {
      out.push(
        `<text x="${lx + 22}" y="${ly}" text-anchor="end" font-weight="bold" dominant-baseline="middle">${
          k + 1
        }</text>`,
        `<text x="${lx + 36}" y="${ly}" dominant-baseline="middle">${esc(p.label)}</text>`,
      );
      ly += dy;
    });
  }
  for (const g of guides) {
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 28}" y2="${ly}" stroke="${g.color}" stroke-dasharray="6 4"/>`,
      `<text x="${lx + 36}" y="${ly}" dominant-baseline="middle">${esc(g.label)}</text>`,
    );
    ly += dy;
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
