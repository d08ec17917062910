/**
 * Compiles a verified module's function into an executable artifact in memory: kernel calls
 * with fixed addresses, a static memory plan, the weights region's bytes, two wasm modules
 * (with and without relaxed SIMD), and a report.
 */

import type { Func, Module, Op, Value } from "../ir/module.ts";
import type { BsrTensor } from "../ir/tensor.ts";
import type { WeightStore } from "../ir/weights.ts";
import { bucketOf, type ShapeBucket, SpecializeError, specializeShapes } from "../ir/specialize.ts";
import type { Plan, PlanBucket, PlanDType, PlanStep, PlanTensor } from "../runtime/plan.ts";
import { createHash } from "node:crypto";
import {
  CodegenError,
  type LowerContext,
  type LoweredStep,
  type RuntimeBuffer,
  type SparseSchedule,
  valueBytes,
} from "./lower/context.ts";
import { lowerFunction } from "./lower/lower.ts";
import { bsrSpecOf } from "./lower/bsr.ts";
import { timeBsrVariants } from "./tune.ts";
import { cpuModel, tuningKey, type TuningLog } from "./tuning_log.ts";
import { type BsrSpec, variantKey } from "./wasm/bsr.ts";
import { bsrVariants, defaultBsrVariant } from "./wasm/bsr_cost.ts";
import { alignUp, planArena } from "./memory_plan.ts";
import { assembleWat } from "./wasm/assemble.ts";
import type { KernelTarget, WasmKernel } from "./wasm/kernel.ts";
import { WASM_HELPERS } from "./wasm/math.ts";
import { kernelModuleWat } from "./wasm/module.ts";

/** Bytes at address 0 reserved for the runtime's thread synchronization. */
export const CONTROL_BYTES = 4096;

/** The two wasm targets: relaxed SIMD (FMA) first, then plain SIMD. */
const TARGETS: readonly KernelTarget[] = [{ relaxedSimd: true }, { relaxedSimd: false }];

/** One kernel of the artifact, for the report and `--emit-kernels`. */
export interface KernelInfo {
  /** The kernel's export name. */
  name: string;
  /** Its WAT text (the relaxed-SIMD variant). */
  text: string;
  /** The IR values it computes, e.g. `%l0.q`. */
  values: string[];
  /** The IR ops it covers. */
  ops: string[];
  /** FLOPs of all its calls per run. */
  flops: number;
}

/** The compile report. */
export interface CompileReport {
  /** The module's name. */
  model: string;
  /** The compiled function. */
  func: string;
  /** IR ops by name. */
  irOps: Record<string, number>;
  /** Ops computed at compile time (weights, constants and what only depends on them). */
  folded: number;
  /** Kernel calls per run (of the first bucket). */
  steps: number;
  /** Each distinct kernel: calls per run, the ops it covers, its text size and FLOPs per run. */
  kernels: { name: string; calls: number; ops: string; textBytes: number; flops: number }[];
  /** The schedule of each sparse product, why it was chosen, and its register reuse. */
  schedules: SparseSchedule[];
  /** Sparse products timed by `tune` during this compile. */
  tuned: number;
  /** Bytes of the activation arena. */
  arenaBytes: number;
  /** Bytes of the weights region. */
  weightsBytes: number;
  /** Bytes of the whole shared memory. */
  memoryBytes: number;
  /** Sizes of the two kernel modules. */
  wasmBytes: { relaxed: number; simd: number };
  /** FLOPs per run (of the first bucket). */
  flops: number;
  /** Per bucket: its shape (when compiled for buckets), kernel calls, FLOPs and arena bytes per run. */
  buckets: { batch?: number; seq?: number; steps: number; flops: number; arenaBytes: number }[];
  /**
   * The dense products a pipeline's `bsr-lower` left dense, and why (the compile session sets it
   * from `bsrLowerSkips` in passes/bsr_lower.ts; absent when no `bsr-lower` ran).
   */
  bsrSkips?: { weight: string; reason: string; detail: string }[];
  /** Wall time of each phase, in ms. */
  phases: Record<string, number>;
}

/** A compiled model, in memory. */
export interface Compiled {
  /** The plan (plan.json). */
  plan: Plan;
  /** The kernel modules, with and without relaxed SIMD. */
  wasm: { relaxed: Uint8Array; simd: Uint8Array };
  /** The weights region, byte for byte. */
  weights: Uint8Array;
  /** Every distinct kernel, for the report and --emit-kernels. */
  kernels: KernelInfo[];
  /** The compile report. */
  report: CompileReport;
}

/** Options of `compileModule`. */
export interface CompileOptions {
  /** The function to compile; `main` by default. */
  func?: string;
  /** Schedules measured earlier; with `tune`, new measurements are added to it. */
  tuningLog?: TuningLog;
  /** Time every candidate schedule of each sparse product not in the tuning log. */
  tune?: boolean;
  /** The SIMD target tuning measures and the tuning log is keyed on: relaxed SIMD (default) or plain. */
  relaxedSimd?: boolean;
  /**
   * The shapes to compile (batch size and sequence length), sharing one weights region and one
   * arena; by default the function's own shape only. The function's inputs must be `[batch, seq]`.
   */
  buckets?: readonly ShapeBucket[];
  /** Called as each phase starts, for a progress display. */
  onPhase?: (phase: string, done: number, total: number) => void;
}

const PHASES = ["tune", "lower", "memory plan", "weights layout", "kernels", "assemble"];

/** The sparse products of `f` whose weight is a BSR weight, with their weight data. */
function sparseProducts(m: Module, f: Func, weights: WeightStore): { op: Op; spec: BsrSpec; w: BsrTensor }[] {
  return f.body.flatMap((op) => {
    const v = op.operands[1];
    if (op.name !== "bsr_dense" || v?.kind !== "weight") return [];
    const w = weights.get(m.weights.get(v.name)!) as BsrTensor;
    return "indptr" in w ? [{ op, spec: bsrSpecOf(op, w), w }] : [];
  });
}

/** The tuning-log key of a sparse product. */
function keyOf(spec: BsrSpec, relaxed: boolean): string {
  const [R, C] = spec.block;
  const density = (spec.indices.length * R * C) / Math.max(1, spec.N * spec.K);
  return tuningKey({ ...spec, density }, relaxed, cpuModel());
}

/**
 * Makes the schedule chooser: the tuning log's choice where it has one (after timing the
 * missing ones when `tune` is on), else the cost model's default.
 */
async function bsrChooser(
  products: { spec: BsrSpec; w: BsrTensor }[],
  options: CompileOptions,
): Promise<{ choose: LowerContext["chooseBsr"]; tuned: number }> {
  const log = options.tuningLog;
  const relaxedSimd = options.relaxedSimd ?? true;
  let tuned = 0;
  if (log && options.tune) {
    for (const { spec, w } of products) {
      const key = keyOf(spec, relaxedSimd);
      if (log.entries[key]) continue;
      const timings = await timeBsrVariants(spec, w.data as Float32Array, { relaxedSimd });
      const best = Object.entries(timings).sort((a, b) => a[1] - b[1])[0][0];
      log.entries[key] = { best, timings, date: new Date().toISOString() };
      tuned++;
    }
  }
  const choose: LowerContext["chooseBsr"] = (spec) => {
    const entry = log?.entries[keyOf(spec, relaxedSimd)];
    const logged = entry && bsrVariants(spec).find((v) => variantKey(v) === entry.best);
    if (!logged) return defaultBsrVariant(spec);
    const fallback = defaultBsrVariant(spec);
    const ms = (k: string) => entry.timings[k]?.toFixed(3) ?? "?";
    return {
      variant: logged,
      why: `tuning log: fastest of ${Object.keys(entry.timings).length} measured (${ms(entry.best)} ms; ` +
        `the cost model's ${variantKey(fallback.variant)}: ${ms(variantKey(fallback.variant))} ms)`,
    };
  };
  return { choose, tuned };
}

/** The plan dtype of a runtime value. */
function planDType(v: Value): PlanDType {
  const d = v.type.dtype;
  if (d === "f32" || d === "i32" || d === "i64") return d;
  throw new CodegenError(v.loc, `${v.ref} has dtype ${d}; compiled inputs and outputs are f32, i32 or i64`);
}

/** Assigns every runtime buffer an arena offset; returns a resolver from buffer to address. */
function planMemory(ctx: LowerContext, f: Func): { size: number; address: (b: RuntimeBuffer) => number } {
  const rootOf = (b: RuntimeBuffer): { root: RuntimeBuffer; offset: number } => {
    const a = "temp" in b ? undefined : ctx.aliases.get(b);
    return a ? { root: a.of, offset: a.byteOffset } : { root: b, offset: 0 };
  };
  const life = new Map<RuntimeBuffer, { first: number; last: number }>();
  const touch = (b: RuntimeBuffer, at: number) => {
    const { root } = rootOf(b);
    const l = life.get(root);
    if (l) l.last = Math.max(l.last, at);
    else life.set(root, { first: at, last: at });
  };
  for (const p of f.params) touch(p, 0);
  ctx.steps.forEach((s, i) => {
    for (const a of s.args) if ("buffer" in a) touch(a.buffer, i);
  });
  for (const r of f.returns) touch(r, ctx.steps.length);
  for (const p of f.params) life.get(rootOf(p).root)!.first = 0;
  const roots = [...life.keys()];
  const { offsets, size } = planArena(
    roots.map((b) => ({ size: "temp" in b ? b.bytes : valueBytes(b), ...life.get(b)! })),
  );
  const at = new Map(roots.map((b, i) => [b, CONTROL_BYTES + offsets[i]]));
  return {
    size,
    address: (b) => {
      const { root, offset } = rootOf(b);
      return at.get(root)! + offset;
    },
  };
}

/**
 * Lays out the constants of every bucket's lowering once each: blocks with the same bytes (a
 * weight, its packed layout) are stored once and shared; the rest (e.g. the position rows of one
 * sequence length) get their own place. Returns the bytes and, per context, each constant's offset.
 */
function layoutWeights(contexts: readonly LowerContext[]): { bytes: Uint8Array; offsets: number[][] } {
  const placed = new Map<string, number>();
  const keys = new Map<Float32Array | Int32Array, string>();
  const blocks: { data: Float32Array | Int32Array; offset: number }[] = [];
  let size = 0;
  const offsets = contexts.map((ctx) =>
    ctx.constants.map((c) => {
      const bytes = new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength);
      // The same array (a weight as stored) is hashed once.
      const key = keys.get(c.data) ??
        `${c.data.constructor.name}:${bytes.length}:${createHash("sha256").update(bytes).digest("hex")}`;
      keys.set(c.data, key);
      let offset = placed.get(key);
      if (offset === undefined) {
        offset = size;
        placed.set(key, offset);
        blocks.push({ data: c.data, offset });
        size = alignUp(size + bytes.length);
      }
      return offset;
    })
  );
  const bytes = new Uint8Array(size);
  for (const b of blocks) {
    bytes.set(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength), b.offset);
  }
  return { bytes, offsets };
}

/** One shape the artifact is compiled for: its module (specialized when not the input's shape). */
interface BucketJob {
  readonly bucket?: ShapeBucket;
  readonly module: Module;
  readonly f: Func;
}

/** The modules to lower: `m` itself, or one per bucket, specialized where the shape differs. */
function bucketJobs(m: Module, name: string, buckets: readonly ShapeBucket[] | undefined): BucketJob[] {
  const f = m.func(name);
  if (!f) throw new CodegenError(m.loc, `the module has no function '@${name}'`);
  if (!buckets) return [{ module: m, f }];
  if (buckets.length === 0) throw new CodegenError(m.loc, "no buckets to compile");
  try {
    const own = bucketOf(m, name);
    return buckets.map((bucket) => {
      const module = bucket.batch === own.batch && bucket.seq === own.seq
        ? m
        : specializeShapes(m, bucket, { func: name });
      return { bucket, module, f: module.func(name)! };
    });
  } catch (e) {
    if (e instanceof SpecializeError) throw new CodegenError(f.loc, e.message);
    throw e;
  }
}

/**
 * Compiles function `func` (default `main`) of a verified module, once per bucket when
 * `options.buckets` lists several shapes (all sharing one weights region and one arena).
 * Throws CodegenError naming an op it cannot compile.
 */
export async function compileModule(
  m: Module,
  weights: WeightStore,
  options: CompileOptions = {},
): Promise<Compiled> {
  const name = options.func ?? "main";
  const phases: Record<string, number> = {};
  let current = "tune";
  let t = performance.now();
  options.onPhase?.(current, 0, PHASES.length);
  /** Ends the current phase; starts `next`, if given. */
  const phase = (next?: string) => {
    const now = performance.now();
    phases[current] = now - t;
    t = now;
    if (next) options.onPhase?.(current = next, PHASES.indexOf(next), PHASES.length);
  };

  const jobs = bucketJobs(m, name, options.buckets);
  const products = jobs.flatMap((j) => sparseProducts(j.module, j.f, weights));
  const { choose, tuned } = await bsrChooser(products, options);
  phase("lower");
  const contexts = jobs.map((j) => lowerFunction(j.module, j.f, weights, choose));
  phase("memory plan");
  const arenas = jobs.map((j, i) => planMemory(contexts[i], j.f));
  const arenaSize = Math.max(...arenas.map((a) => a.size));
  phase("weights layout");
  const layout = layoutWeights(contexts);
  const weightsOffset = alignUp(CONTROL_BYTES + arenaSize);
  const memoryBytes = weightsOffset + layout.bytes.length;
  const pages = Math.max(1, Math.ceil(memoryBytes / 65536));
  if (pages > 65536) {
    throw new CodegenError(
      m.loc,
      `the model needs ${(memoryBytes / 2 ** 30).toFixed(2)} GiB; wasm32 memory holds 4 GiB`,
    );
  }
  phase("kernels");
  const wasmByTarget = TARGETS.map(() => new Map<string, WasmKernel>());
  const infos = new Map<string, KernelInfo>();
  const planBuckets: PlanBucket[] = jobs.map((job, b) => {
    const ctx = contexts[b], arena = arenas[b];
    const resolve = (s: LoweredStep) =>
      s.args.map((a) =>
        "buffer" in a
          ? arena.address(a.buffer) + (a.byteOffset ?? 0)
          : "constant" in a
          ? weightsOffset + layout.offsets[b][a.constant]
          : a.int
      );
    const steps: PlanStep[] = ctx.steps.map((s) => {
      const ks = TARGETS.map((target, i) => {
        const k = s.wasm(target);
        const same = wasmByTarget[i].get(k.name);
        if (same && same.wat !== k.wat) {
          throw new CodegenError(s.op.loc, `internal error: two different kernels are named ${k.name}`);
        }
        wasmByTarget[i].set(k.name, k);
        return k;
      });
      const names: [string, string] = [ks[0].name, ks[1].name];
      const info = infos.get(names[0]) ??
        { name: names[0], text: ks[0].wat, values: [], ops: s.ops, flops: 0 };
      info.values.push(s.op.result.ref);
      info.flops += s.flops;
      infos.set(names[0], info);
      const loc = s.op.loc ? `${s.op.loc.file}:${s.op.loc.line}:${s.op.loc.col}` : "";
      return {
        value: s.op.result.ref,
        op: s.ops.join("+"),
        loc,
        kernel: names,
        args: resolve(s),
        flops: s.flops,
      };
    });
    const f = job.f;
    const tensor = (v: Value, limit?: number): PlanTensor => ({
      name: v.name,
      dtype: planDType(v),
      shape: [...v.type.shape],
      offset: arena.address(v),
      ...(limit !== undefined ? { limit } : {}),
    });
    for (const r of f.returns) {
      if (ctx.known.has(r)) {
        throw new CodegenError(
          f.returnLoc,
          `output ${r.ref} is a compile-time constant; nothing computes it at run time`,
        );
      }
    }
    return {
      ...(job.bucket ?? {}),
      arenaBytes: arena.size,
      inputs: f.params.map((p) => tensor(p, ctx.limits.get(p))),
      outputs: f.returns.map((r) => {
        if (r.type.dtype !== "f32") {
          throw new CodegenError(f.returnLoc, `output ${r.ref} must be f32 to compile`);
        }
        return tensor(r);
      }),
      steps,
    };
  });
  phase("assemble");
  const [relaxed, simd] = await Promise.all(
    wasmByTarget.map((ks, i) =>
      assembleWat(
        `${m.name}.${i === 0 ? "relaxed" : "simd"}.wat`,
        kernelModuleWat([...ks.values()], WASM_HELPERS, pages),
      )
    ),
  );
  phase(undefined);

  const plan: Plan = {
    format: "sparrow-plan",
    version: 3,
    model: m.name,
    memory: {
      pages,
      control: CONTROL_BYTES,
      arena: { offset: CONTROL_BYTES, size: arenaSize },
      weights: { offset: weightsOffset, size: layout.bytes.length, file: "weights.bin" },
    },
    wasm: { relaxed: "kernels.relaxed.wasm", simd: "kernels.simd.wasm" },
    buckets: planBuckets,
  };
  const [first] = planBuckets;
  const f = jobs[0].f;
  const irOps: Record<string, number> = {};
  for (const op of f.body) irOps[op.name] = (irOps[op.name] ?? 0) + 1;
  const kernels = [...infos.values()];
  const report: CompileReport = {
    model: m.name,
    func: name,
    irOps,
    folded: f.body.filter((op) => contexts[0].known.has(op.result)).length,
    steps: first.steps.length,
    kernels: kernels.map((k) => ({
      name: k.name,
      calls: k.values.length,
      ops: k.ops.join("+"),
      textBytes: k.text.length,
      flops: k.flops,
    })),
    schedules: contexts.flatMap((c) => c.schedules),
    tuned,
    arenaBytes: arenaSize,
    weightsBytes: layout.bytes.length,
    memoryBytes: pages * 65536,
    wasmBytes: { relaxed: relaxed.length, simd: simd.length },
    flops: first.steps.reduce((a, s) => a + s.flops, 0),
    buckets: planBuckets.map((b) => ({
      batch: b.batch,
      seq: b.seq,
      steps: b.steps.length,
      flops: b.steps.reduce((a, s) => a + s.flops, 0),
      arenaBytes: b.arenaBytes,
    })),
    phases,
  };
  return {
    plan,
    wasm: { relaxed, simd },
    weights: layout.bytes,
    kernels,
    report,
  };
}
