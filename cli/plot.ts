/**
 * A small line plot as hand-written SVG text (no dependency), for the benchmark figures:
 * categories along x (block shapes, sparsities), time along y from 0, one polyline per series
 * with optional error bars, and horizontal reference lines for the peers.
 */

/** One series: a value (or null where there is none) per category. */
export interface Series {
  name: string;
  color: string;
  /** SVG stroke-dasharray, e.g. "6 3"; solid when absent. */
  dash?: string;
  /** Opacity of the line and markers, 1 by default. */
  opacity?: number;
  values: readonly (number | null)[];
  /** Error bar half-heights (e.g. standard deviations), per category. */
  errors?: readonly (number | null)[];
}

/** A horizontal reference line across the whole plot. */
export interface HLine {
  name: string;
  color: string;
  dash?: string;
  value: number;
}

/** What to draw. */
export interface PlotSpec {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  categories: readonly string[];
  series: readonly Series[];
  hlines?: readonly HLine[];
  width?: number;
  height?: number;
}

/** A color per index, distinguishable and printable. */
export const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#8c564b",
  "#e377c2",
  "#17becf",
];

/** Colors of thread-count series: none of the peers' colors (PEER_COLORS). */
export const THREAD_COLORS = ["#1f77b4", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/** Colors of the peers' reference lines. */
export const PEER_COLORS = { sparrowDense: "#333333", ortNode: "#2ca02c", ortWeb: "#ff7f0e" } as const;

/** Dash patterns of reference lines, one per thread count. */
export const THREAD_DASHES = ["9 4", "2 3", "12 3 2 3", "5 5"];

/** Escapes text for SVG. */
export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A "nice" tick step for a range [0, max] with about `n` ticks. */
export function niceStep(max: number, n = 6): number {
  if (!(max > 0)) return 1;
  const raw = max / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

/** Formats a tick value without float noise. */
export function tick(v: number): string {
  return Number(v.toPrecision(6)).toString();
}

/** Where a figure's plot area is, and what it says around it. */
export interface Frame {
  W: number;
  H: number;
  left: number;
  top: number;
  /** Plot area width and height. */
  pw: number;
  ph: number;
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
}

/** The start of a figure: the SVG element, a white background, the title and subtitle. */
export function figureHead(f: Frame): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.W}" height="${f.H}" viewBox="0 0 ${f.W} ${f.H}" ` +
    `font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${f.W}" height="${f.H}" fill="white"/>`,
    `<text x="${f.left + f.pw / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">${
      esc(f.title)
    }</text>`,
  ];
  if (f.subtitle) {
    out.push(
      `<text x="${f.left + f.pw / 2}" y="40" text-anchor="middle" fill="#555">${esc(f.subtitle)}</text>`,
    );
  }
  return out;
}

/** A horizontal grid line at `yy` with its tick label on the y axis. */
export function yGridLine(f: Frame, yy: string, label: string, color = "#e5e5e5"): string[] {
  return [
    `<line x1="${f.left}" y1="${yy}" x2="${f.left + f.pw}" y2="${yy}" stroke="${color}"/>`,
    `<text x="${f.left - 6}" y="${yy}" text-anchor="end" dominant-baseline="middle">${label}</text>`,
  ];
}

/** The two axis lines and the axis labels (drawn after the grid, so they stay on top). */
export function figureAxes(f: Frame): string[] {
  const { left, top, pw, ph } = f;
  return [
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}" stroke="black"/>`,
    `<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="black"/>`,
    `<text transform="translate(18 ${top + ph / 2}) rotate(-90)" text-anchor="middle">${
      esc(f.yLabel)
    }</text>`,
    `<text x="${left + pw / 2}" y="${f.H - 16}" text-anchor="middle">${esc(f.xLabel)}</text>`,
  ];
}

/** Renders `spec` as a standalone SVG document. */
export function linePlot(spec: PlotSpec): string {
  const W = spec.width ?? 900, H = spec.height ?? 520;
  const hlines = spec.hlines ?? [];
  const legendRows = spec.series.length + hlines.length;
  const names = [...spec.series.map((s) => s.name), ...hlines.map((h) => h.name)];
  const left = 70,
    right = Math.max(120, 56 + 7 * Math.max(0, ...names.map((n) => n.length))),
    top = spec.subtitle ? 62 : 46,
    bottom = 70;
  const pw = W - left - right, ph = H - top - bottom;
  const all = [
    ...spec.series.flatMap((s) => s.values.map((v, i) => (v ?? 0) + (s.errors?.[i] ?? 0))),
    ...hlines.map((h) => h.value),
  ].filter(Number.isFinite);
  const step = niceStep(Math.max(1e-9, ...all) * 1.05);
  const yMax = Math.max(step, Math.ceil((Math.max(0, ...all) * 1.05) / step) * step);
  const n = spec.categories.length;
  const x = (i: number) => left + (n <= 1 ? pw / 2 : (i + 0.5) * (pw / n));
  const y = (v: number) => top + ph - (v / yMax) * ph;
  const frame: Frame = { W, H, left, top, pw, ph, ...spec };
  const out = figureHead(frame);
  // Grid and y axis.
  for (let v = 0; v <= yMax + step / 2; v += step) out.push(...yGridLine(frame, y(v).toFixed(1), tick(v)));
  out.push(...figureAxes(frame));
  spec.categories.forEach((c, i) => {
    const xx = x(i).toFixed(1);
    out.push(
      `<line x1="${xx}" y1="${top + ph}" x2="${xx}" y2="${top + ph + 5}" stroke="black"/>`,
      `<text x="${xx}" y="${top + ph + 18}" text-anchor="middle">${esc(c)}</text>`,
    );
  });
  const dash = (d?: string) => (d ? ` stroke-dasharray="${d}"` : "");
  // Reference lines.
  for (const h of hlines) {
    const yy = y(h.value).toFixed(1);
    out.push(
      `<line x1="${left}" y1="${yy}" x2="${left + pw}" y2="${yy}" stroke="${h.color}" stroke-width="1.5"${
        dash(h.dash)
      }>` +
        `<title>${esc(`${h.name}: ${tick(h.value)}`)}</title></line>`,
    );
  }
  // Series: polylines broken at missing values, markers, error bars.
  for (const s of spec.series) {
    out.push(`<g opacity="${s.opacity ?? 1}">`);
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) {
        out.push(
          `<polyline points="${run.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"${
            dash(s.dash)
          }/>`,
        );
      }
      run = [];
    };
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return flush();
      run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    });
    flush();
    s.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) return;
      const e = s.errors?.[i];
      const xx = x(i).toFixed(1);
      if (e) {
        out.push(
          `<line x1="${xx}" y1="${y(Math.max(0, v - e)).toFixed(1)}" x2="${xx}" y2="${
            y(v + e).toFixed(1)
          }" stroke="${s.color}"/>`,
        );
      }
      out.push(
        `<circle cx="${xx}" cy="${y(v).toFixed(1)}" r="3.5" fill="${s.color}">` +
          `<title>${
            esc(`${s.name}, ${spec.categories[i]}: ${tick(v)}${e ? ` ± ${tick(e)}` : ""}`)
          }</title></circle>`,
      );
    });
    out.push(`</g>`);
  }
  // Legend.
  const lx = left + pw + 16;
  let ly = top + 6;
  const legend = (name: string, color: string, d: string | undefined, marker: boolean, opacity = 1) => {
    out.push(
      `<g opacity="${opacity}"><line x1="${lx}" y1="${ly}" x2="${
        lx + 28
      }" y2="${ly}" stroke="${color}" stroke-width="2"${dash(d)}/>`,
    );
    if (marker) out.push(`<circle cx="${lx + 14}" cy="${ly}" r="3.5" fill="${color}"/>`);
    out.push(`</g><text x="${lx + 36}" y="${ly}" dominant-baseline="middle">${esc(name)}</text>`);
    ly += Math.min(20, (ph - 6) / Math.max(1, legendRows));
  };
  for (const s of spec.series) legend(s.name, s.color, s.dash, true, s.opacity);
  for (const h of hlines) legend(h.name, h.color, h.dash, false);
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}
