/**
 * The advisor (`deno task advise`): a per-weight pruning plan, a block shape and sparsity for every
 * prunable weight, searched for the fastest model whose dev accuracy is within a budget of the
 * dense model's.
 *
 * 1. **Candidates.** Every target weight (prune's default: the encoder's dense weights) may stay
 *    dense or take any of `blocks` × `sparsities`.
 * 2. **Sensitivity** of each weight to each candidate: the relative output error prune-reconstruct's
 *    per-weight reconstruction leaves on calibration data (driver/advise_measure.ts).
 * 3. **Latency** of each candidate at the weight's shape: its kernel timed on this machine (fastest
 *    schedule, one thread), kept in a tuning log so reruns time nothing again.
 * 4. **Search** (driver/advise_search.ts). The model's latency is predicted as the sum over
 *    weights, its damage as the sum of squared errors E. For a weight λ, each weight takes argmin latency + λ·error²; sweeping λ over
 *    every point where some weight's choice changes gives the plans of the lower convex hull of
 *    (latency, E), each the fastest plan for its own E ({@link lagrangianPath}). Along that path,
 *    fastest first, plans are applied (prune-reconstruct per weight), compiled and evaluated on the
 *    dev data; the accuracy loss is predicted from E with a scale fitted to the plans evaluated so
 *    far (loss ≈ s·E), the next plan probed is the fastest predicted within budget inside the
 *    interval not yet ruled out, and the interval shrinks as in bisection (loss assumed to grow
 *    with E) ({@link searchPath}). The result is the fastest evaluated plan whose measured loss is
 *    within the budget (the dense model when none is).
 * 5. **Output.** The plan as a `rules` file (prune's format, exact weight names), the compiled
 *    artifact, its accuracy on every dev row and its latency (median of interleaved runs beside the
 *    dense model and any reference artifacts).
 *
 * Deterministic for a seed, apart from the timings.
 */

import { join } from "node:path";
import { readTuningLog, type TuningLog } from "../codegen/tuning_log.ts";
import { loadEvalModel } from "../frontend/sst2.ts";
import { readSst2Tsv } from "../frontend/sst2.ts";
import { loadTokenizer } from "../frontend/tokenizer.ts";
import { writeFileAtomic } from "../ir/atomic_write.ts";
import type { WeightStore } from "../ir/weights.ts";
import type { ArtifactData } from "../runtime/compiled.ts";
import { loadCompiled } from "../runtime/compiled.ts";
import { fitToLength } from "../runtime/tokenizer.ts";
import {
  type AppliedWeight,
  applyPlanPass,
  type CalibrationOptions,
  type Candidate,
  candidateLatency,
  candidateName,
  sensitivityPass,
  type WeightSensitivity,
} from "./advise_measure.ts";
import { compile, type CompileResult } from "./compile.ts";
import { writeArtifact } from "./output.ts";

export {
  type AppliedWeight,
  applyPlanPass,
  type CalibrationOptions,
  type Candidate,
  candidateName,
  sensitivityPass,
  type TargetWeight,
  type WeightSensitivity,
} from "./advise_measure.ts";

export {
  type AdvisePlan,
  lagrangianPath,
  planFor,
  type Probe,
  searchPath,
  type WeightOptions,
} from "./advise_search.ts";
import {
  type AdvisePlan,
  lagrangianPath,
  planOf,
  type Probe,
  searchPath,
  type WeightOptions,
} from "./advise_search.ts";

/** One entry of a prune rules file. */
export interface RuleEntry {
  /** An anchored regex of the weight's exact name. */
  readonly match: string;
  /** Its sparsity (0: dense). */
  readonly sparsity: number;
  /** Its block shape, `RxC`. */
  readonly block: string;
  /** Its pattern groups, when it has them. */
  readonly patterns?: number;
}

/** Escapes a weight name for an exact-match regex. */
const exact = (name: string) => `^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`;

/**
 * The plan as a `rules` file for prune: one exact-name entry per weight, in the table's order; a
 * weight planned dense gets sparsity 0 (block 1x1), which prunes nothing.
 */
export function planRules(table: readonly WeightOptions[], plan: AdvisePlan): RuleEntry[] {
  return table.map((w, i) => {
    const c = w.options[plan.choice[i]].candidate;
    return {
      match: exact(w.name),
      sparsity: c.sparsity,
      block: c.sparsity === 0 ? "1x1" : `${c.block[0]}x${c.block[1]}`,
      ...(c.sparsity > 0 && c.patterns ? { patterns: c.patterns } : {}),
    };
  });
}

/** The plan as weight name → candidate. */
export function planMap(table: readonly WeightOptions[], plan: AdvisePlan): Map<string, Candidate> {
  return new Map(table.map((w, i) => [w.name, w.options[plan.choice[i]].candidate]));
}

/** A dev row, tokenized: ids `[CLS] … [SEP]` and the label. */
export interface EvalRow {
  /** Token ids, `[CLS] … [SEP]`. */
  readonly ids: readonly number[];
  /** The label. */
  readonly label: number;
}

/** The dev rows of an SST-2 TSV tokenized with the tokenizer in `tokenizerDir`. */
export async function readEvalRows(
  tsv: string,
  tokenizerDir: string,
): Promise<{ rows: EvalRow[]; sepId: number; padId: number }> {
  const tok = await loadTokenizer(tokenizerDir);
  const rows = (await readSst2Tsv(tsv)).map((r) => ({ ids: tok.encode(r.sentence), label: r.label }));
  return { rows, sepId: tok.sepId, padId: tok.padId };
}

/** The model inputs of one row fitted to `seq`. */
function rowValues(ids: readonly number[], seq: number, sepId: number, padId: number) {
  const fit = fitToLength(ids, seq, sepId, padId);
  return { input_ids: fit.ids, token_type_ids: fit.ids.map(() => 0), attention_mask: fit.mask };
}

/** The accuracy of an artifact on `rows` (padded and masked to `seq`), one thread. */
export async function artifactAccuracy(
  artifact: string | ArtifactData,
  rows: readonly EvalRow[],
  seq: number,
  sepId: number,
  padId: number,
): Promise<{ accuracy: number; correct: number; rows: number }> {
  const model = await loadCompiled(artifact, { threads: 1 });
  try {
    const out = model.plan.buckets[0].outputs[0].name;
    let correct = 0;
    for (const row of rows) {
      const logits = model.run(rowValues(row.ids, seq, sepId, padId))[out] as ArrayLike<number>;
      let pred = 0;
      for (let k = 1; k < logits.length; k++) if (logits[k] > logits[pred]) pred = k;
      if (pred === row.label) correct++;
    }
    return { accuracy: rows.length ? correct / rows.length : 0, correct, rows: rows.length };
  } finally {
    model.close();
  }
}

/** Median ms of each artifact over `repeat` interleaved rounds (after 3 warm-up rounds), at `threads`. */
export async function timeInterleaved(
  artifacts: readonly { readonly label: string; readonly artifact: string | ArtifactData }[],
  values: Record<string, number[]>,
  repeat: number,
  threads: number,
): Promise<Map<string, number>> {
  const models = [];
  try {
    for (const a of artifacts) models.push(await loadCompiled(a.artifact, { threads }));
    const times = artifacts.map(() => [] as number[]);
    for (let round = 0; round < repeat + 3; round++) {
      models.forEach((m, i) => {
        const t = performance.now();
        m.run(values);
        if (round >= 3) times[i].push(performance.now() - t);
      });
    }
    return new Map(
      artifacts.map((a, i) => [a.label, [...times[i]].sort((x, y) => x - y)[times[i].length >> 1]]),
    );
  } finally {
    for (const m of models) m.close();
  }
}

/** Options of {@link advise}. */
export interface AdviseOptions extends CalibrationOptions {
  /** A Hugging Face folder or an IR classifier (`@main(input_ids, …) -> logits`). */
  readonly model: string;
  /** Tokenized dev rows with the tokenizer's `[SEP]` and `[PAD]` ids. */
  readonly dev: { readonly rows: readonly EvalRow[]; readonly sepId: number; readonly padId: number };
  /** Accuracy points the user accepts to lose against the dense model. */
  readonly budget: number;
  /** Candidate block shapes and sparsities (each weight may also stay dense). */
  readonly blocks: readonly (readonly [number, number])[];
  /** Candidate sparsities, in (0, 1). */
  readonly sparsities: readonly number[];
  /** Pattern-group counts: each block shape and sparsity is also a candidate with at most K block-row patterns (row-grouped kernels). */
  readonly patterns?: readonly number[];
  /** Length the artifacts are compiled at (a checkpoint; an IR file keeps its own). */
  readonly seq?: number;
  /** Length of the calibration run (a checkpoint; default 48, as table2's; an IR file keeps its own). */
  readonly calSeq?: number;
  /** Tuning log path (read, added to, rewritten). */
  readonly tuningLog: string;
  /** At most this many plans compiled and evaluated in the search (default 5). */
  readonly maxEvals?: number;
  /** Uniform plans (every weight the same candidate) to measure beside, e.g. 4x4 at 0.8. */
  readonly uniform?: readonly Candidate[];
  /** More artifacts to time in the same rounds (e.g. a table2 run's), with their accuracy. */
  readonly references?: readonly { readonly label: string; readonly artifact: string }[];
  /** Timing rounds (default 50) and threads (default 1). */
  readonly repeat?: number;
  /** Threads when timing (default 1). */
  readonly threads?: number;
  /** Where to write `rules.json`, `artifact/` (and `dense/`, `uniform-RxC-S/`). */
  readonly out: string;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** One measured model: a plan of the search, a uniform plan, the dense model or a reference. */
export interface MeasuredPoint {
  /** The model's name on the plot. */
  readonly label: string;
  /** Dev accuracy (0-1), when measured here. */
  readonly accuracy?: number;
  /** Rows right. */
  readonly correct?: number;
  /** Rows evaluated. */
  readonly rows?: number;
  /** Predicted (Σ kernel ms) and measured (median, ms) latency. */
  readonly predictedMs?: number;
  /** Measured latency: median ms of the interleaved runs. */
  latencyMs?: number;
  /** The plan's damage (Σ error²). */
  readonly damage?: number;
}

/** What {@link advise} found. */
export interface AdviseResult {
  /** The candidate table. */
  readonly table: WeightOptions[];
  /** The Lagrangian path, fastest first. */
  readonly path: AdvisePlan[];
  /** The plans evaluated, in order. */
  readonly probes: Probe[];
  /** The chosen plan (undefined: nothing within budget but dense). */
  readonly plan?: AdvisePlan;
  /** The rules file written (the plan; all dense when no plan). */
  readonly rules: RuleEntry[];
  /** What applying the chosen plan did, weight by weight. */
  readonly applied: AppliedWeight[];
  /** The dense model. */
  readonly dense: MeasuredPoint;
  /** The advised model. */
  readonly advised: MeasuredPoint;
  /** The uniform configurations measured. */
  readonly uniform: MeasuredPoint[];
  /** The reference artifacts timed. */
  readonly references: MeasuredPoint[];
  /** Block shape bsr-lower stored each weight in, from the compile log. */
  readonly lowered: Record<string, string>;
  /** The length the models were compiled and evaluated at. */
  readonly seq: number;
  /** Seconds spent in each stage. */
  readonly seconds: Record<string, number>;
  /** Kernel timings done now (the rest came from the tuning log). */
  readonly timed: number;
}

/** Runs the advisor (see the module header). */
export async function advise(o: AdviseOptions): Promise<AdviseResult> {
  const log = o.log ?? ((line: string) => console.error(line));
  const sec: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    sec[name] = (sec[name] ?? 0) + (now - t) / 1000;
    t = now;
  };
  const isDir = (await Deno.stat(o.model)).isDirectory;
  const cal = await loadEvalModel(o.model, isDir ? { seq: o.calSeq ?? 48 } : {});
  const compiled = await loadEvalModel(o.model, isDir ? { seq: o.seq ?? 64 } : {});
  const seq = compiled.seq;
  // The calibration options, the tokenizer defaulting to the model's (a checkpoint folder's own).
  const co: CalibrationOptions = { ...o, tokenizer: o.tokenizer || cal.tokenizerDir };
  const candidates: Candidate[] = [
    { block: [1, 1], sparsity: 0 },
    ...o.blocks.flatMap((block) =>
      o.sparsities.flatMap((sparsity) => [
        { block, sparsity },
        ...(o.patterns ?? []).map((patterns) => ({ block, sparsity, patterns })),
      ])
    ),
  ];

  // 1-2. Sensitivity.
  log(`sensitivity: ${candidates.length - 1} candidates per weight, ${o.calibration} calibration sentences`);
  const sens: WeightSensitivity[] = [];
  await compile({ module: cal.module, weights: cal.weights, path: o.model }, {
    pipeline: [sensitivityPass(candidates, co, sens)],
    codegen: false,
    log: (line) => log(`  ${line}`),
  });
  if (sens.length === 0) throw new Error(`${o.model}: no prunable weights (encoder dense weights) found`);
  lap("sensitivity");

  // 3. Latency.
  const tuning: TuningLog = await readTuningLog(o.tuningLog);
  let timed = 0;
  const masks = new Map<string, Uint8Array | undefined>();
  const table: WeightOptions[] = [];
  for (const w of sens) {
    const options = [];
    for (let k = 0; k < candidates.length; k++) {
      const shapeKey = `${w.out}x${w.in} ${candidateName(candidates[k])}`;
      if (!masks.has(shapeKey)) masks.set(shapeKey, w.masks[k]);
      const r = await candidateLatency(tuning, seq, w, candidates[k], masks.get(shapeKey));
      if (r.timed) timed++;
      options.push({ candidate: candidates[k], error: w.errors[k], ms: r.ms });
    }
    table.push({ name: w.name, out: w.out, in: w.in, options });
  }
  await writeFileAtomic(o.tuningLog, JSON.stringify(tuning, null, 1) + "\n");
  log(`latency: ${timed} kernels timed, ${table.length * candidates.length - timed} from ${o.tuningLog}`);
  lap("latency");

  // Building and evaluating a plan.
  const build = async (plan: ReadonlyMap<string, Candidate>) => {
    const applied: AppliedWeight[] = [];
    let weights: WeightStore = cal.weights;
    if ([...plan.values()].some((c) => c.sparsity > 0)) {
      const r = await compile({ module: cal.module, weights: cal.weights, path: o.model }, {
        pipeline: [applyPlanPass(plan, co, applied)],
        codegen: false,
        log: () => {},
      });
      weights = r.weights;
    }
    lap("prune");
    const lines: string[] = [];
    const r = await compile({ module: compiled.module, weights }, {
      pipeline: "canonicalize,cse,fuse,bsr-lower{sparsity-threshold=0.3},dce",
      tuning: { log: tuning, tune: true },
      log: (line) => lines.push(line),
    });
    const lowered = r.stats.filter((x) => x.pass === "bsr-lower" && x.name === "weights")
      .reduce((n, x) => n + x.value, 0);
    if (lowered !== applied.length) {
      throw new Error(`bsr-lower lowered ${lowered} of the ${applied.length} pruned weights`);
    }
    const acc = await artifactAccuracy(r.artifact!, o.dev.rows, seq, o.dev.sepId, o.dev.padId);
    lap("compile+eval");
    return { r, acc, applied, lines };
  };

  const denseBuilt = await build(new Map());
  const dense: MeasuredPoint = {
    label: "dense",
    ...denseBuilt.acc,
    predictedMs: table.reduce((s, w) => s + w.options[0].ms, 0),
    damage: 0,
  };
  log(`dense: ${(100 * dense.accuracy!).toFixed(2)}% (${dense.correct}/${dense.rows})`);

  // 4. Search.
  const path = lagrangianPath(table);
  log(
    `search: ${path.length} plans on the Lagrangian path, predicted ${path[0].latency.toFixed(2)}-${
      path[path.length - 1].latency.toFixed(2)
    } ms; budget ${o.budget} points`,
  );
  const built = new Map<number, Awaited<ReturnType<typeof build>>>();
  const { best, probes } = await searchPath(
    path,
    async (plan, index) => {
      const b = await build(planMap(table, plan));
      built.set(index, b);
      const loss = 100 * (dense.accuracy! - b.acc.accuracy);
      log(
        `  plan ${index + 1}/${path.length}: predicted ${plan.latency.toFixed(2)} ms, damage ${
          plan.damage.toFixed(3)
        }: ${(100 * b.acc.accuracy).toFixed(2)}% (loss ${loss.toFixed(2)} points)`,
      );
      return loss;
    },
    o.budget,
    o.maxEvals ?? 5,
  );
  const plan = best >= 0 ? path[best] : undefined;
  const chosen = plan ? built.get(best)! : denseBuilt;
  const advised: MeasuredPoint = {
    label: "advised",
    ...chosen.acc,
    predictedMs: plan?.latency ?? dense.predictedMs,
    damage: plan?.damage ?? 0,
  };
  const rules = planRules(table, plan ?? planOf(table, table.map(() => 0)));
  const lowered: Record<string, string> = {};
  for (const line of chosen.lines) {
    const m = /^bsr-lower: @(\S+): zeros align to (\d+x\d+) blocks/.exec(line);
    if (m) lowered[m[1]] = m[2];
  }

  // Uniform plans beside it.
  const uniform: MeasuredPoint[] = [];
  const uniformArtifacts: ArtifactData[] = [];
  const uniformBuilt: CompileResult[] = [];
  for (const c of o.uniform ?? []) {
    const b = await build(new Map(table.map((w) => [w.name, c])));
    uniformArtifacts.push(b.r.artifact!);
    uniformBuilt.push(b.r);
    const k = table[0].options.findIndex((x) => candidateName(x.candidate) === candidateName(c));
    uniform.push({
      label: `uniform ${candidateName(c)}`,
      ...b.acc,
      predictedMs: k >= 0 ? table.reduce((s, w) => s + w.options[k].ms, 0) : undefined,
    });
    log(`uniform ${candidateName(c)}: ${(100 * b.acc.accuracy).toFixed(2)}%`);
  }

  // 5. Output and timing.
  await Deno.mkdir(o.out, { recursive: true });
  await writeFileAtomic(join(o.out, "rules.json"), JSON.stringify(rules, null, 2) + "\n");
  await writeArtifact(chosen.r as CompileResult, join(o.out, "artifact"));
  // The others too, so that they can be timed again (e.g. `deno task bench compare`).
  await writeArtifact(denseBuilt.r, join(o.out, "dense"));
  for (const [i, c] of (o.uniform ?? []).entries()) {
    await writeArtifact(uniformBuilt[i], join(o.out, uniformDir(c)));
  }
  await writeFileAtomic(o.tuningLog, JSON.stringify(tuning, null, 1) + "\n");
  const first = o.dev.rows[0];
  const values = rowValues(first.ids, seq, o.dev.sepId, o.dev.padId);
  const references: MeasuredPoint[] = (o.references ?? []).map((r) => ({ label: r.label }));
  log(`timing: ${repeatOf(o)} interleaved rounds at ${o.threads ?? 1} thread(s)`);
  const times = await timeInterleaved(
    [
      { label: "dense", artifact: denseBuilt.r.artifact! },
      { label: "advised", artifact: chosen.r.artifact! },
      ...uniform.map((u, i) => ({ label: u.label, artifact: uniformArtifacts[i] })),
      ...(o.references ?? []),
    ],
    values,
    repeatOf(o),
    o.threads ?? 1,
  );
  for (const p of [dense, advised, ...uniform, ...references]) p.latencyMs = times.get(p.label);
  lap("timing");
  return {
    table,
    path,
    probes,
    plan,
    rules,
    applied: chosen.applied,
    dense,
    advised,
    uniform,
    references,
    lowered,
    seq,
    seconds: sec,
    timed,
  };
}

const repeatOf = (o: AdviseOptions) => o.repeat ?? 50;

/** The folder a uniform configuration's artifact is written to under `out`, e.g. `uniform-4x4-80`. */
export const uniformDir = (c: Candidate): string =>
  `uniform-${c.block[0]}x${c.block[1]}-${Math.round(c.sparsity * 100)}${c.patterns ? `-p${c.patterns}` : ""}`;

/**
 * The points no other is both at least as fast as and at least as accurate as, one strictly
 * (indices into `points`, fastest first).
 */
export function paretoIndices(
  points: readonly { readonly ms: number; readonly accuracy: number }[],
): number[] {
  return points.map((_, i) => i).filter((i) =>
    !points.some((q, j) =>
      j !== i && q.ms <= points[i].ms && q.accuracy >= points[i].accuracy &&
      (q.ms < points[i].ms || q.accuracy > points[i].accuracy)
    )
  ).sort((a, b) => points[a].ms - points[b].ms);
}

/**
 * Whether `p` lies beyond the Pareto front of `front`: no point of it is at least as fast and at
 * least as accurate (so `p` is faster at equal accuracy or more accurate at equal latency than
 * what the front offers).
 */
export function beyondFront(
  p: { readonly ms: number; readonly accuracy: number },
  front: readonly { readonly ms: number; readonly accuracy: number }[],
): boolean {
  return !front.some((q) => q.ms <= p.ms && q.accuracy >= p.accuracy);
}
