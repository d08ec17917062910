/**
 * What the advisor (driver/advise.ts) measures: each prunable weight's sensitivity to every
 * candidate (block shape, sparsity, pattern groups), and each candidate's kernel latency at the
 * weight's shape. A candidate with pattern groups is reconstructed as `prune-reconstruct{patterns}`
 * does it (`reconstructWeight`'s `groups`, seeded with the calibration seed), and its mask's few
 * block-row patterns make the row-grouped kernel one of the schedules timed.
 *
 * **Sensitivity.** One calibration run of the unpruned model (the reference ops, over the
 * calibration sentences prune-reconstruct would draw with the same options: the same TSV, count,
 * seed and tokenizer, or `random` ids) gathers the input X of every target `dense`; H = XᵀX is
 * formed once per weight and, for each candidate, the weight is pruned and reconstructed by
 * prune-reconstruct's own per-weight routine (`reconstructWeight`, passes/reconstruct/obs.ts,
 * same `damp` and `window`), which reports the relative output error ‖X(W − Ŵ)ᵀ‖ / ‖XWᵀ‖. That
 * error is the candidate's sensitivity. It is measured on the unpruned model's inputs, each weight
 * on its own (no sequential pruning of earlier layers): a per-layer statistic, cheap enough for
 * every candidate.
 *
 * **Applying a plan.** prune-reconstruct takes one block shape and sparsity for all its targets
 * (it has no `rules` option), so a per-weight plan is applied by {@link applyPlanPass}: the same
 * sequential algorithm as `prune-reconstruct` with `correct=true` (its defaults), built from the
 * same parts (`Stepper`, `gatherInputs`, `accumulateGram`/`accumulateCross`, `reconstructWeight`),
 * with each weight's block and sparsity from the plan. Weights planned dense are left as they are.
 *
 * **Latency.** A candidate's latency is the median time of its sparse product on one thread at the
 * model's shape (M = tokens of the compiled length, N×K the weight), with a real pruned pattern
 * (the candidate's mask on the first weight of that shape): every schedule `bsrVariants` offers is
 * timed by `--tune`'s own `timeBsrVariants` (codegen/tune.ts), and the fastest is the latency. The
 * measurements are recorded in a tuning log (codegen/tuning_log.ts, the key `--tune` uses), so the
 * compile of the advised model runs the measured-fastest schedule and a rerun times nothing again.
 * The dense GEMM (the packed kernel `dense` lowers to) is timed the same way and logged under a key
 * of its own (`MxNxK dense ...`), which codegen never looks up.
 */

import { timeBsrVariants } from "../codegen/tune.ts";
import { cpuModel, type TuningEntry, tuningKey, type TuningLog } from "../codegen/tuning_log.ts";
import { packB, packedLength } from "../codegen/pack.ts";
import { assembleWat } from "../codegen/wasm/assemble.ts";
import { gemmKernel, type GemmSpec } from "../codegen/wasm/gemm.ts";
import { WASM_HELPERS } from "../codegen/wasm/math.ts";
import { kernelModuleWat } from "../codegen/wasm/module.ts";
import { AttrReader } from "../ir/attrs.ts";
import type { Func, Module, Op, Value, Weight } from "../ir/module.ts";
import { allocData, Tensor } from "../ir/tensor.ts";
import { isFloat } from "../ir/types.ts";
import { type AnyPass, definePass, nameRegex, type PassContext } from "../passes/pass.ts";
import { DEFAULT_PRUNE_TARGET } from "../passes/prune.ts";
import {
  fitSentences,
  gatherInputs,
  randomSamples,
  type Sample,
  sampleInputs,
} from "../passes/reconstruct/calibration.ts";
import { accumulateCross, accumulateGram } from "../passes/reconstruct/linalg.ts";
import { reconstructWeight } from "../passes/reconstruct/obs.ts";
import { Stepper } from "../passes/reconstruct/stepper.ts";

/**
 * One candidate of a weight: a block shape and a sparsity (0 is the dense weight), and optionally
 * pattern groups: at most `patterns` distinct block-column sets, as `prune-reconstruct{patterns}`
 * makes them, for the row-grouped kernels.
 */
export interface Candidate {
  /** Block shape [R, C] over W[out, in] (ignored when dense). */
  readonly block: readonly [number, number];
  /** Fraction of blocks zeroed, in [0, 1); 0 = dense. */
  readonly sparsity: number;
  /** At most this many block-row patterns (absent or 0: no grouping). */
  readonly patterns?: number;
}

/** A candidate's name: `dense`, or e.g. `4x4@0.8`, `1x1@0.8/p8` with 8 pattern groups. */
export const candidateName = (c: Candidate): string =>
  c.sparsity === 0
    ? "dense"
    : `${c.block[0]}x${c.block[1]}@${c.sparsity}${c.patterns ? `/p${c.patterns}` : ""}`;

/** reconstructWeight's grouping option for a candidate: prune-reconstruct{patterns}'s, seeded the same. */
const groupsOf = (c: Candidate, seed: number) => c.patterns ? { max: c.patterns, seed } : undefined;

/** Calibration options, as prune-reconstruct's of the same names. */
export interface CalibrationOptions {
  /** Calibration sentences (prune-reconstruct's default 256). */
  readonly calibration: number;
  /** Seed of their choice. */
  readonly seed: number;
  /** An SST-2 style TSV, or `random` for seeded random ids. */
  readonly calibrationData: string;
  /** The tokenizer folder ("" = the model's). */
  readonly tokenizer?: string;
  /** Diagonal damping of H (default 0.01). */
  readonly damp?: number;
  /** Mask-selection window (default 128). */
  readonly window?: number;
}

/** A prunable weight: its name and `[out, in]` shape. */
export interface TargetWeight {
  /** The weight's name. */
  readonly name: string;
  /** Output features. */
  readonly out: number;
  /** Input features. */
  readonly in: number;
}

/** The relative output error of every candidate of one weight, and the candidates' masks. */
export interface WeightSensitivity extends TargetWeight {
  /** Error per candidate, in the candidates' order (0 for dense). */
  readonly errors: number[];
  /** Pruned-block mask per candidate (undefined for dense), row-major over the block grid. */
  readonly masks: (Uint8Array | undefined)[];
  /** Calibration rows (tokens) H was formed from. */
  readonly rows: number;
}

/** A target dense op: its weight, layout and place in @main. */
interface Target {
  readonly weight: Weight;
  readonly op: Op;
  readonly index: number;
  readonly outIn: boolean;
  readonly out: number;
  readonly in: number;
}

/** The target dense ops of @main, as prune-reconstruct finds them (single-use 2-D float weights matching `target`). */
function findTargets(m: Module, f: Func, ctx: PassContext, target: string): Target[] {
  const re = nameRegex(target);
  const uses = new Map<Weight, { op: Op; index: number; slot: number }[]>();
  for (const g of m.funcs) {
    g.body.forEach((op, index) =>
      op.operands.forEach((v, slot) => {
        const w = v.kind === "weight" ? m.weights.get(v.name) : undefined;
        if (!w) return;
        if (!uses.has(w)) uses.set(w, []);
        uses.get(w)!.push({ op, index: g === f ? index : -1, slot });
      })
    );
  }
  const out: Target[] = [];
  for (const [weight, us] of uses) {
    const t = weight.type;
    if (!re.test(weight.name) || us.length !== 1 || us[0].index < 0) continue;
    const { op, index, slot } = us[0];
    if (op.name !== "dense" || slot !== 1 || t.sparse || t.shape.length !== 2 || !isFloat(t.dtype)) continue;
    const attrs = new AttrReader(ctx.registry.get("dense")!.attrs, op.attrs);
    if (attrs.bool("transpose_a")) continue;
    const outIn = attrs.bool("transpose_b");
    const [a, b] = t.shape;
    out.push({ weight, op, index, outIn, out: outIn ? a : b, in: outIn ? b : a });
  }
  return out.sort((x, y) => x.index - y.index);
}

/** The pass options shared by both calibration passes, their defaults set to `o`. */
function calibrationOptionSpecs(o: CalibrationOptions) {
  return {
    calibration: { type: "int", default: o.calibration, min: 1, doc: "number of calibration sentences" },
    seed: { type: "int", default: o.seed, min: 0, doc: "seed of the choice of calibration sentences" },
    "calibration-data": { type: "string", default: o.calibrationData, doc: "TSV of sentences, or 'random'" },
    tokenizer: { type: "string", default: o.tokenizer ?? "", doc: "folder with tokenizer.json" },
  } as const;
}

/** The calibration run's inputs, as prune-reconstruct makes them. */
function calibrationRun(m: Module, ctx: PassContext, o: CalibrationOptions) {
  const f = m.func("main");
  const ids = f?.params.find((p) => p.name === "input_ids");
  if (!f || !ids || ids.type.shape.length !== 2 || ids.type.shape[0] !== 1) {
    throw ctx.error(undefined, `@main must take input_ids of shape [1, S]`);
  }
  const seq = ids.type.shape[1];
  let samples: Sample[];
  if (o.calibrationData === "random") samples = randomSamples(f, o.calibration, o.seed, seq);
  else if (!ctx.sentences) throw ctx.error(undefined, `calibration sentences were not prepared`);
  else samples = fitSentences(ctx.sentences, seq);
  return { f, seq, samples, inputs: sampleInputs(f, samples) };
}

/** The Gram matrix XᵀX (k×k) of the rows of `x` (`[rows, k + 1]`, ones last), and the same with the ones column. */
function gram(x: Float64Array, rows: number, k: number): Float64Array {
  const ha = new Float64Array((k + 1) * (k + 1));
  accumulateGram(ha, x, rows, k + 1);
  return sub(ha, k);
}

/** The leading k×k block of a (k+1)×(k+1) matrix. */
function sub(a: Float64Array, k: number): Float64Array {
  const h = new Float64Array(k * k);
  for (let i = 0; i < k; i++) h.set(a.subarray(i * (k + 1), i * (k + 1) + k), i * k);
  return h;
}

/** W of a target as `[out, in]` row-major f64. */
function outInWeight(t: Target, src: ArrayLike<number>): Float64Array {
  const w = new Float64Array(t.out * t.in);
  for (let r = 0; r < t.out; r++) {
    for (let c = 0; c < t.in; c++) w[r * t.in + c] = src[t.outIn ? r * t.in + c : c * t.out + r];
  }
  return w;
}

/** The calibration sentences the driver prepares for an advisor pass (none for random ids). */
function calibrationInputs(
  opts: { "calibration-data": string; tokenizer: string; calibration: number; seed: number },
) {
  if (opts["calibration-data"] === "random") return {};
  return {
    sentences: {
      data: opts["calibration-data"],
      tokenizer: opts.tokenizer,
      count: opts.calibration,
      seed: opts.seed,
    },
  };
}

/**
 * A pass that measures, without changing the module, every target weight's relative output error
 * under each of `candidates` (see the file header), into `sink`; `target` as prune's.
 */
export function sensitivityPass(
  candidates: readonly Candidate[],
  o: CalibrationOptions,
  sink: WeightSensitivity[],
  target = DEFAULT_PRUNE_TARGET,
): AnyPass {
  return definePass({
    name: "advise-sensitivity",
    description: "Measures each weight's reconstruction error under each advisor candidate (no change).",
    options: calibrationOptionSpecs(o),
    inputs: calibrationInputs,
    runOnModule(m, ctx) {
      const c = ctx as unknown as PassContext;
      const ts = findTargets(m, m.func("main")!, c, target);
      const { f, seq, samples, inputs } = calibrationRun(m, c, o);
      const stepper = new Stepper(m, f, c, inputs);
      let last: { xv: Value; h: Float64Array; rows: number } | undefined;
      for (const t of ts) {
        const t0 = performance.now();
        stepper.runTo(t.index);
        const xv = t.op.operands[0];
        if (last?.xv !== xv) {
          const { x, rows, k } = gatherInputs(stepper.values(xv), samples, seq);
          last = { xv, h: gram(x, rows, k), rows };
        }
        const w = outInWeight(t, ctx.weights.get(t.weight).data);
        const errors: number[] = [], masks: (Uint8Array | undefined)[] = [];
        for (const cand of candidates) {
          if (cand.sparsity === 0) {
            errors.push(0);
            masks.push(undefined);
            continue;
          }
          const res = reconstructWeight(w, t.out, t.in, last.h, {
            sparsity: cand.sparsity,
            block: cand.block,
            damp: o.damp ?? 0.01,
            window: o.window ?? 128,
            groups: groupsOf(cand, o.seed),
          });
          errors.push(res.errorReconstructed);
          masks.push(res.mask);
        }
        sink.push({ name: t.weight.name, out: t.out, in: t.in, errors, masks, rows: last.rows });
        ctx.log(
          `@${t.weight.name} [${t.out}x${t.in}]: ${
            candidates.map((cand, i) => `${candidateName(cand)} ${errors[i].toFixed(4)}`).join(", ")
          } (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
        );
      }
      return "unchanged";
    },
  });
}

/** What {@link applyPlanPass} did to one weight. */
export interface AppliedWeight {
  /** The weight's name. */
  readonly name: string;
  /** Its block shape. */
  readonly block: readonly [number, number];
  /** Its sparsity. */
  readonly sparsity: number;
  /** Its pattern groups (0: none). */
  readonly patterns: number;
  /** Blocks pruned. */
  readonly pruned: number;
  /** Blocks in all. */
  readonly blocks: number;
  /** Relative output error against the unpruned model's outputs, sequentially (as prune-reconstruct logs it). */
  readonly error: number;
}

/**
 * A pass that prunes each weight of `plan` (weight name → candidate; dense ones untouched) with
 * prune-reconstruct's algorithm and defaults (`correct`, sequential; see the file header).
 */
export function applyPlanPass(
  plan: ReadonlyMap<string, Candidate>,
  o: CalibrationOptions,
  sink: AppliedWeight[] = [],
): AnyPass {
  return definePass({
    name: "advise-apply",
    description: "prune-reconstruct with a block shape and sparsity per weight (an advisor plan).",
    options: calibrationOptionSpecs(o),
    inputs: calibrationInputs,
    runOnModule(m, ctx) {
      const c = ctx as unknown as PassContext;
      const f0 = m.func("main")!;
      const ts = findTargets(m, f0, c, DEFAULT_PRUNE_TARGET).filter((t) =>
        (plan.get(t.weight.name)?.sparsity ?? 0) > 0
      );
      const missing = [...plan.entries()].filter(([n, cand]) =>
        cand.sparsity > 0 && !ts.some((t) => t.weight.name === n)
      );
      if (missing.length) {
        throw ctx.error(undefined, `the plan names weights that are not prune targets: ${missing[0][0]}`);
      }
      if (ts.length === 0) return "unchanged";
      const { f, seq, samples, inputs } = calibrationRun(m, c, o);
      const stepper = new Stepper(m, f, c, inputs);
      const original = new Map<Weight, Tensor>();
      for (const w of m.weights.values()) original.set(w, ctx.weights.get(w));
      const denseRun = new Stepper(m, f, c, inputs, (w) => original.get(w) ?? ctx.weights.get(w));
      let last: { xv: Value; h: Float64Array; cross: Float64Array; hDense: Float64Array } | undefined;
      let changed = false;
      for (const t of ts) {
        const cand = plan.get(t.weight.name)!;
        stepper.runTo(t.index);
        denseRun.runTo(t.index);
        const xv = t.op.operands[0];
        if (last?.xv !== xv) {
          const { x, rows, k } = gatherInputs(stepper.values(xv), samples, seq);
          const xd = gatherInputs(denseRun.values(xv), samples, seq).x;
          const hd = new Float64Array((k + 1) * (k + 1)), cross = new Float64Array((k + 1) * (k + 1));
          accumulateGram(hd, xd, rows, k + 1);
          accumulateCross(cross, x, xd, rows, k + 1);
          last = { xv, h: gram(x, rows, k), cross: sub(cross, k), hDense: sub(hd, k) };
        }
        const src = ctx.weights.get(t.weight).data;
        const res = reconstructWeight(outInWeight(t, src), t.out, t.in, last.h, {
          sparsity: cand.sparsity,
          block: cand.block,
          damp: o.damp ?? 0.01,
          window: o.window ?? 128,
          dense: { cross: last.cross, hDense: last.hDense },
          groups: groupsOf(cand, o.seed),
        });
        const data = allocData(t.weight.type.dtype, res.w.length);
        for (let r = 0; r < t.out; r++) {
          for (let col = 0; col < t.in; col++) {
            data[t.outIn ? r * t.in + col : col * t.out + r] = res.w[r * t.in + col];
          }
        }
        ctx.weights.set(t.weight.name, new Tensor(t.weight.type, data));
        changed = true;
        sink.push({
          name: t.weight.name,
          block: cand.block,
          sparsity: cand.sparsity,
          patterns: cand.patterns ?? 0,
          pruned: res.pruned,
          blocks: res.mask.length,
          error: res.errorReconstructed,
        });
        ctx.log(
          `@${t.weight.name} ${candidateName(cand)}: pruned ${res.pruned}/${res.mask.length} ` +
            `blocks; rel. error ${res.errorReconstructed.toFixed(4)}`,
        );
      }
      return changed ? "changed" : "unchanged";
    },
  });
}

/** SciPy BSR `indptr` and `indices` of the blocks a mask keeps (mask 1 = pruned), over a gr×gc grid. */
export function maskToBsr(
  mask: Uint8Array,
  gr: number,
  gc: number,
): { indptr: Int32Array; indices: Int32Array } {
  const indptr = new Int32Array(gr + 1), indices: number[] = [];
  for (let br = 0; br < gr; br++) {
    for (let bc = 0; bc < gc; bc++) if (!mask[br * gc + bc]) indices.push(bc);
    indptr[br + 1] = indices.length;
  }
  return { indptr, indices: Int32Array.from(indices) };
}

/** The tuning-log key of the dense GEMM of an M×K by K×N product (never a key codegen looks up). */
export const denseKey = (M: number, N: number, K: number, relaxedSimd: boolean, cpu = cpuModel()): string =>
  `${M}x${N}x${K} dense ${relaxedSimd ? "relaxed-simd" : "simd"} ${cpu}`;

/** Median of a non-empty list. */
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** Median ms of the packed dense GEMM with bias at M×K·K×N on one thread (`repeats` runs after a warm-up). */
export async function timeDense(M: number, N: number, K: number, relaxedSimd: boolean, repeats = 15) {
  const spec: GemmSpec = {
    batch: 1,
    M,
    N,
    K,
    lda: K,
    aBatchStride: 0,
    b: { layout: "packed" },
    ldc: N,
    cBatchStride: 0,
    bias: true,
    activation: "none",
  };
  const kernel = gemmKernel(spec, { relaxedSimd });
  const bytes = 4 * (M * K + packedLength(K, N) + N + M * N) + 4 * 256;
  const pages = Math.ceil(bytes / 65536) + 1;
  const wasm = await assembleWat("advise_gemm.wat", kernelModuleWat([kernel], WASM_HELPERS, pages));
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(wasm as BufferSource), {
    env: { memory },
  });
  const f = (instance.exports as Record<string, (...a: number[]) => void>)[kernel.name];
  let at = 64;
  const put = (data: Float32Array) => {
    const addr = at;
    new Float32Array(memory.buffer, addr, data.length).set(data);
    at = Math.ceil((addr + 4 * data.length) / 64) * 64 + 64;
    return addr;
  };
  const a = put(new Float32Array(M * K).map((_, i) => Math.sin(i) * 0.5));
  const b = put(packB(new Float32Array(K * N).map((_, i) => Math.cos(i) * 0.1), K, N, true));
  const bias = put(new Float32Array(N)), c = put(new Float32Array(M * N));
  const once = () => {
    const t = performance.now();
    f(a, b, bias, c, 0, 1);
    return performance.now() - t;
  };
  once();
  return median(Array.from({ length: repeats }, once));
}

/**
 * The latency (ms) of a candidate at M tokens for an N×K weight: the tuning log's measurement, or
 * (timed now and added to `log`) the fastest schedule of its sparse product with `mask`'s pattern,
 * or the dense GEMM for a dense candidate.
 */
export async function candidateLatency(
  log: TuningLog,
  M: number,
  w: TargetWeight,
  cand: Candidate,
  mask: Uint8Array | undefined,
  relaxedSimd = true,
): Promise<{ ms: number; timed: boolean }> {
  const { out: N, in: K } = w;
  const cpu = cpuModel();
  let key: string;
  let measure: () => Promise<Record<string, number>>;
  if (cand.sparsity === 0) {
    key = denseKey(M, N, K, relaxedSimd, cpu);
    measure = async () => ({ gemm: await timeDense(M, N, K, relaxedSimd) });
  } else {
    const [R, C] = cand.block;
    const gr = Math.ceil(N / R), gc = Math.ceil(K / C);
    if (!mask) throw new Error(`no mask for ${candidateName(cand)} of @${w.name}`);
    const { indptr, indices } = maskToBsr(mask, gr, gc);
    const density = (indices.length * R * C) / Math.max(1, N * K);
    key = tuningKey({ M, N, K, block: [R, C], density, indptr, indices }, relaxedSimd, cpu);
    const spec = {
      M,
      N,
      K,
      block: [R, C] as [number, number],
      indptr,
      indices,
      bias: true,
      activation: "none" as const,
    };
    const data = new Float32Array(indices.length * R * C).map((_, i) => Math.sin(i + 1) * 0.1);
    measure = () => timeBsrVariants(spec, data, { relaxedSimd }, 15);
  }
  const old = log.entries[key];
  if (old) return { ms: old.timings[old.best], timed: false };
  const timings = await measure();
  const best = Object.entries(timings).sort((x, y) => x[1] - y[1])[0][0];
  const entry: TuningEntry = { best, timings, date: new Date().toISOString() };
  log.entries[key] = entry;
  return { ms: timings[best], timed: true };
}
