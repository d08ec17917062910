/**
 * `deno task advise MODEL --data DEV.tsv --budget POINTS [options]`: the pruning advisor. Searches a
 * block shape and sparsity for every encoder weight of MODEL (a Hugging Face classifier folder or
 * an IR classifier) for the fastest model whose accuracy on DEV.tsv is at most POINTS below the
 * dense model's, from each weight's measured sensitivity (prune-reconstruct's reconstruction error
 * on calibration sentences) and each candidate's measured kernel latency (kept in a tuning log);
 * see driver/advise.ts and docs/advise.md. Writes to `--out` (default out/advise): `rules.json`
 * (the plan, a `rules` file for `prune`), `artifact/` (the advised model compiled), `advise.json`
 * (every measurement) and `advise.svg` (accuracy against latency: the advised model beside uniform
 * block shapes, with their Pareto front), and prints whether the advised model lies beyond it.
 */

import { join } from "node:path";
import {
  advise,
  type AdviseResult,
  beyondFront,
  type Candidate,
  CompileError,
  EvalError,
  type MeasuredPoint,
  paretoIndices,
  readEvalRows,
  TokenizerError,
  uniformDir,
} from "../mod.ts";
import { main, parseCli, requireInput, UsageError, writeTextAtomic } from "./common.ts";
import { esc, figureAxes, figureHead, type Frame, niceStep, PALETTE, tick, yGridLine } from "./plot.ts";

const USAGE = `usage: deno task advise MODEL --data DEV.tsv --budget POINTS [options]
  MODEL                a Hugging Face classifier folder or an IR classifier (.sir with its weights)
  --data FILE          SST-2 style dev TSV (sentence, label) the accuracy is measured on
  --budget POINTS      accuracy points the advised model may lose against dense (e.g. 1.0)
  --train FILE         calibration sentences (TSV), or 'random' (default ../shared/data/sst2/train.tsv)
  --calibration N      calibration sentences (default 256, as prune-reconstruct)
  --tokenizer DIR      the tokenizer folder (default: the model's folder)
  --blocks LIST        candidate block shapes (default 4x4,1x32)
  --sparsities LIST    candidate sparsities (default 0.5,0.7,0.8,0.9); every weight may also stay dense
  --patterns LIST      pattern-group counts, e.g. 8: every block shape and sparsity is also a
                       candidate with at most K block-row patterns (row-grouped kernels; default none)
  --seq N              compiled length (default 64; an IR model keeps its own)
  --cal-seq N          calibration length (default 48; an IR model keeps its own)
  --seed N             seed of the calibration draw (default 0)
  --max-evals N        plans compiled and evaluated in the search (default 5)
  --uniform LIST       uniform configurations to measure beside, e.g. 4x4@0.8,1x32@0.8,1x1@0.8/p8
                       (default 4x4@0.8 unless --table2 is given)
  --table2 FILE        a 'deno task bench table2' JSON: its configurations join the plot (their
                       artifacts, when present, are timed in the same rounds as the advised model)
  --limit N            only the first N dev rows
  --repeat N           timing rounds (default 50)
  --threads N          threads when timing (default 1)
  --tuning-log FILE    measured kernel latencies (default out/advise/tuning-log.json)
  --out DIR            output folder (default out/advise)
  -h, --help           print this help`;

/** A positive integer flag. */
function int(name: string, text: string | undefined, fallback: number, min = 1): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got '${text}'`);
  }
  return Number(text);
}

/** `RxC` block shapes. */
function blocksFlag(text: string): [number, number][] {
  return text.split(",").map((b) => {
    const m = /^(\d+)x(\d+)$/.exec(b.trim());
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
      throw new UsageError(`--blocks: '${b}' is not a block shape RxC such as 4x4`);
    }
    return [Number(m[1]), Number(m[2])];
  });
}

/** Sparsities in (0, 1). */
function sparsitiesFlag(text: string): number[] {
  return text.split(",").map((s) => {
    const v = Number(s);
    if (s.trim() === "" || !(v > 0 && v < 1)) throw new UsageError(`--sparsities: '${s}' is not in (0, 1)`);
    return v;
  });
}

/** Pattern-group counts (integers >= 1). */
function patternsFlag(text: string): number[] {
  return text.split(",").map((p) => {
    if (!/^\d+$/.test(p.trim()) || Number(p) < 1) {
      throw new UsageError(`--patterns: '${p}' is not a pattern count (an integer >= 1)`);
    }
    return Number(p);
  });
}

/** `RxC@S` configurations, `/pK` for K pattern groups. */
function uniformFlag(text: string): Candidate[] {
  return text.split(",").filter((x) => x !== "").map((u) => {
    const m = /^(\d+)x(\d+)@([\d.]+)(?:\/p(\d+))?$/.exec(u.trim());
    const s = Number(m?.[3]), k = m?.[4] === undefined ? 0 : Number(m[4]);
    if (!m || !(s > 0 && s < 1) || Number(m[1]) < 1 || Number(m[2]) < 1 || (m[4] !== undefined && k < 1)) {
      throw new UsageError(`--uniform: '${u}' is not RxC@S such as 4x4@0.8, or RxC@S/pK such as 1x1@0.8/p8`);
    }
    return { block: [Number(m[1]), Number(m[2])], sparsity: s, ...(k ? { patterns: k } : {}) };
  });
}

/** A table2 JSON's configurations: label, accuracy, rows, latency at 1 thread and artifact folder. */
interface Table2Point {
  readonly label: string;
  readonly accuracy: number;
  readonly rows: number;
  readonly latencyMs?: number;
  readonly artifact?: string;
}

async function readTable2(path: string): Promise<Table2Point[]> {
  await requireInput(path, "a table2 JSON");
  let json: { results?: unknown };
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new UsageError(`--table2 ${path}: not JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(json.results)) throw new UsageError(`--table2 ${path}: no 'results' array`);
  return json.results.map((r: Record<string, unknown>) => {
    const method = r.method as string;
    const label = method === "dense"
      ? "table2 dense"
      : `table2 ${method} ${r.block} ${(r.sparsity as number) * 100}%`;
    const latency = r.latency as Record<string, { median: number }> | undefined;
    return {
      label,
      accuracy: r.accuracy as number,
      rows: r.rows as number,
      latencyMs: latency?.["1"]?.median,
      artifact: typeof r.artifact === "string" ? r.artifact : undefined,
    };
  });
}

/** A folder that holds an artifact (its plan.json). */
async function isArtifact(dir: string): Promise<boolean> {
  try {
    return (await Deno.stat(join(dir, "plan.json"))).isFile;
  } catch {
    return false;
  }
}

/** A point of the plot. */
interface PlotPoint {
  readonly label: string;
  readonly ms: number;
  readonly accuracy: number;
  readonly kind: "uniform" | "dense" | "advised";
}

/** Accuracy (%) against latency (ms): the points, the uniform front as a step line, the advised point highlighted. */
function scatterSvg(points: readonly PlotPoint[], front: readonly number[], subtitle: string): string {
  const W = 900, H = 560, left = 70, right = 230, top = 62, bottom = 70;
  const pw = W - left - right, ph = H - top - bottom;
  const xs = points.map((p) => p.ms), ys = points.map((p) => p.accuracy);
  const xStep = niceStep(Math.max(...xs) * 1.1);
  const xMax = Math.ceil((Math.max(...xs) * 1.1) / xStep) * xStep;
  const yLo0 = Math.min(...ys), yHi0 = Math.max(...ys);
  const yStep = niceStep(Math.max(1, yHi0 - yLo0) * 1.2, 6);
  const yMin = Math.floor((yLo0 - yStep / 2) / yStep) * yStep,
    yMax = Math.ceil((yHi0 + yStep / 2) / yStep) * yStep;
  const x = (v: number) => left + (v / xMax) * pw;
  const y = (v: number) => top + ph - ((v - yMin) / (yMax - yMin)) * ph;
  const f: Frame = {
    W,
    H,
    left,
    top,
    pw,
    ph,
    title: "Accuracy against latency: the advised per-weight plan beside uniform block shapes",
    subtitle,
    xLabel: "latency of the compiled model (ms, median of interleaved runs)",
    yLabel: "dev accuracy (%)",
  };
  const out = figureHead(f);
  for (let v = yMin; v <= yMax + yStep / 2; v += yStep) out.push(...yGridLine(f, y(v).toFixed(1), tick(v)));
  for (let v = 0; v <= xMax + xStep / 2; v += xStep) {
    out.push(
      `<line x1="${x(v).toFixed(1)}" y1="${top}" x2="${x(v).toFixed(1)}" y2="${top + ph}" stroke="#f0f0f0"/>`,
      `<text x="${x(v).toFixed(1)}" y="${top + ph + 16}" text-anchor="middle">${tick(v)}</text>`,
    );
  }
  out.push(...figureAxes(f));
  if (front.length) {
    // The front as a staircase: from each front point right to the next one's latency.
    const pts = front.map((i) => points[i]);
    let d = `M${x(pts[0].ms).toFixed(1)},${y(pts[0].accuracy).toFixed(1)}`;
    for (let k = 1; k < pts.length; k++) {
      d += ` H${x(pts[k].ms).toFixed(1)} V${y(pts[k].accuracy).toFixed(1)}`;
    }
    out.push(`<path d="${d}" fill="none" stroke="#999" stroke-dasharray="5 4"/>`);
  }
  points.forEach((p, i) => {
    const cx = x(p.ms).toFixed(1), cy = y(p.accuracy).toFixed(1);
    const color = p.kind === "advised"
      ? "#d62728"
      : p.kind === "dense"
      ? "#000000"
      : PALETTE[i % PALETTE.length];
    const r = p.kind === "advised" ? 8 : 5;
    out.push(
      p.kind === "dense"
        ? `<rect x="${Number(cx) - 5}" y="${Number(cy) - 5}" width="10" height="10" fill="${color}"/>`
        : `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${color}" stroke="black" stroke-width="${
          p.kind === "advised" ? 1.5 : 0.5
        }"/>`,
      `<text x="${left + pw + 14}" y="${top + 14 + 18 * i}" fill="${color}">${
        esc(`● ${p.label}: ${p.ms.toFixed(2)} ms, ${p.accuracy.toFixed(1)}%`)
      }</text>`,
    );
  });
  out.push(
    `<text x="${left + pw + 14}" y="${top + 14 + 18 * points.length + 8}" fill="#777">` +
      `dashed: Pareto front of the others</text>`,
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** How many weights took each candidate. */
function planSummary(r: AdviseResult): string {
  const counts = new Map<string, number>();
  for (const rule of r.rules) {
    const name = rule.sparsity === 0
      ? "dense"
      : `${rule.block}@${rule.sparsity}${rule.patterns ? `/p${rule.patterns}` : ""}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${c}x ${n}`).join(", ");
}

const pct = (p: MeasuredPoint) => `${(100 * p.accuracy!).toFixed(2)}% (${p.correct}/${p.rows})`;

main(async () => {
  const { values, positionals } = parseCli(Deno.args, {
    data: { type: "string" },
    budget: { type: "string" },
    train: { type: "string", default: "../shared/data/sst2/train.tsv" },
    calibration: { type: "string" },
    tokenizer: { type: "string" },
    blocks: { type: "string", default: "4x4,1x32" },
    sparsities: { type: "string", default: "0.5,0.7,0.8,0.9" },
    patterns: { type: "string" },
    seq: { type: "string" },
    "cal-seq": { type: "string" },
    seed: { type: "string" },
    "max-evals": { type: "string" },
    uniform: { type: "string" },
    table2: { type: "string" },
    limit: { type: "string" },
    repeat: { type: "string" },
    threads: { type: "string" },
    "tuning-log": { type: "string", default: "out/advise/tuning-log.json" },
    out: { type: "string", default: "out/advise" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return void console.log(USAGE);
  if (positionals.length !== 1) {
    throw new UsageError(`expected one model (a Hugging Face folder or a .sir file); see --help`);
  }
  const model = positionals[0];
  if (values.data === undefined) throw new UsageError(`--data is required (the dev TSV)`);
  if (values.budget === undefined) throw new UsageError(`--budget is required (accuracy points, e.g. 1.0)`);
  const budget = Number(values.budget);
  if (values.budget.trim() === "" || !(budget >= 0 && budget <= 100)) {
    throw new UsageError(`--budget must be a number of accuracy points in [0, 100], got '${values.budget}'`);
  }
  const blocks = blocksFlag(values.blocks);
  const sparsities = sparsitiesFlag(values.sparsities);
  const patterns = values.patterns === undefined ? [] : patternsFlag(values.patterns);
  const seq = int("seq", values.seq, 64, 2), calSeq = int("cal-seq", values["cal-seq"], 48, 2);
  const calibration = int("calibration", values.calibration, 256);
  const seed = int("seed", values.seed, 0, 0), maxEvals = int("max-evals", values["max-evals"], 5);
  const repeat = int("repeat", values.repeat, 50), threads = int("threads", values.threads, 1);
  const limit = values.limit === undefined ? undefined : int("limit", values.limit, 1);
  await requireInput(model, "a Hugging Face folder or an IR classifier");
  await requireInput(values.data, "the dev TSV");
  if (values.train !== "random") await requireInput(values.train, "the calibration TSV, or 'random'");
  const table2 = values.table2 ? await readTable2(values.table2) : [];
  const uniform = uniformFlag(values.uniform ?? (values.table2 ? "" : "4x4@0.8"));

  const isDir = (await Deno.stat(model)).isDirectory;
  const tokenizerDir = values.tokenizer ?? (isDir ? model : join(model, ".."));
  let dev;
  try {
    dev = await readEvalRows(values.data, tokenizerDir);
  } catch (e) {
    if (e instanceof EvalError || e instanceof TokenizerError) throw new UsageError(e.message);
    throw e;
  }
  if (limit !== undefined) dev.rows = dev.rows.slice(0, limit);
  if (dev.rows.length === 0) throw new UsageError(`${values.data}: no dev rows`);
  const references = [];
  for (const t of table2) if (t.artifact && await isArtifact(t.artifact)) references.push(t);

  const t0 = performance.now();
  let r: AdviseResult;
  try {
    r = await advise({
      model,
      dev,
      budget,
      blocks,
      sparsities,
      patterns,
      seq,
      calSeq,
      calibration,
      seed,
      calibrationData: values.train,
      tokenizer: values.tokenizer ?? "",
      tuningLog: values["tuning-log"],
      maxEvals,
      uniform,
      references: references.map((t) => ({ label: t.label, artifact: t.artifact! })),
      repeat,
      threads,
      out: values.out,
      log: (line) => console.error(line),
    });
  } catch (e) {
    if (e instanceof EvalError || e instanceof CompileError) throw new UsageError(e.message);
    throw e;
  }
  const seconds = (performance.now() - t0) / 1000;

  // The comparison: uniform points (measured here, and table2's), dense, and the advised model.
  const others: PlotPoint[] = [
    { label: "dense", ms: r.dense.latencyMs!, accuracy: 100 * r.dense.accuracy!, kind: "dense" },
    ...r.uniform.map((u) => ({
      label: u.label,
      ms: u.latencyMs!,
      accuracy: 100 * u.accuracy!,
      kind: "uniform" as const,
    })),
    ...table2.filter((t) => t.label !== "table2 dense").flatMap((t) => {
      const ms = r.references.find((x) => x.label === t.label)?.latencyMs ?? t.latencyMs;
      return ms === undefined ? [] : [{
        label: `${t.label} (${t.rows} rows)`,
        ms,
        accuracy: 100 * t.accuracy,
        kind: "uniform" as const,
      }];
    }),
  ];
  const front = paretoIndices(others);
  const adv: PlotPoint = {
    label: "advised",
    ms: r.advised.latencyMs!,
    accuracy: 100 * r.advised.accuracy!,
    kind: "advised",
  };
  const beyond = beyondFront(adv, front.map((i) => others[i]));
  const all = [...others, adv];
  const svg = scatterSvg(
    all,
    front,
    `${
      model.split("/").filter((x) => x).pop()
    }, ${dev.rows.length} dev rows, budget ${budget} points, S=${r.seq}, ${threads} thread${
      threads > 1 ? "s" : ""
    }`,
  );
  await writeTextAtomic(join(values.out, "advise.svg"), svg);
  const report = {
    model,
    data: values.data,
    rowsEvaluated: dev.rows.length,
    budget,
    setting: {
      blocks: values.blocks,
      sparsities,
      patterns,
      seq: r.seq,
      calSeq,
      calibration,
      seed,
      maxEvals,
      repeat,
      threads,
    },
    machine: { deno: Deno.version.deno, date: new Date().toISOString() },
    seconds,
    plan: planSummary(r),
    dense: r.dense,
    advised: r.advised,
    uniform: r.uniform,
    table2: table2.map((t) => ({
      ...t,
      latencyMsNow: r.references.find((x) => x.label === t.label)?.latencyMs,
    })),
    beyondFront: beyond,
    front: front.map((i) => others[i].label),
    probes: r.probes.map((p) => ({
      ...p,
      predictedMs: r.path[p.index].latency,
      damage: r.path[p.index].damage,
    })),
    pathLength: r.path.length,
    rules: r.rules,
    lowered: r.lowered,
    applied: r.applied,
    table: r.table,
    stageSeconds: r.seconds,
    kernelsTimed: r.timed,
  };
  await writeTextAtomic(join(values.out, "advise.json"), JSON.stringify(report, null, 1) + "\n");

  const vs = (p: MeasuredPoint) => (p.latencyMs! / r.dense.latencyMs!).toFixed(2);
  console.log(`plan: ${planSummary(r)}`);
  console.log(`dense:   ${pct(r.dense)}, ${r.dense.latencyMs!.toFixed(2)} ms`);
  console.log(
    `advised: ${pct(r.advised)}, ${r.advised.latencyMs!.toFixed(2)} ms (${vs(r.advised)}x dense; predicted ${
      r.advised.predictedMs!.toFixed(2)
    } ms of linear-layer kernels), loss ${
      (100 * (r.dense.accuracy! - r.advised.accuracy!)).toFixed(2)
    } points`,
  );
  for (const u of r.uniform) {
    console.log(`${u.label}: ${pct(u)}, ${u.latencyMs!.toFixed(2)} ms (${vs(u)}x dense)`);
  }
  for (const t of table2) {
    const now = r.references.find((x) => x.label === t.label)?.latencyMs;
    console.log(
      `${t.label}: ${(100 * t.accuracy).toFixed(2)}% (${t.rows} rows, from ${values.table2}), ${
        now !== undefined ? `${now.toFixed(2)} ms now` : `${t.latencyMs?.toFixed(2) ?? "?"} ms in its run`
      }`,
    );
  }
  console.log(
    `the advised model ${beyond ? "lies beyond" : "does not lie beyond"} the Pareto front of the others (${
      front.map((i) => others[i].label).join(", ")
    })`,
  );
  console.log(
    `(${seconds.toFixed(0)} s; wrote ${
      join(values.out, "{rules.json,advise.json,advise.svg}")
    } and the artifacts artifact/ (advised), dense/${uniform.map((c) => `, ${uniformDir(c)}/`).join("")})`,
  );
  console.log(
    `time them again with: deno task bench compare ${
      ["artifact", "dense", ...uniform.map(uniformDir)].map((d) => join(values.out, d)).join(" ")
    } --repeat 200`,
  );
});
