/**
 * Table 1 and Figure 2 of the paper: builds the dense model and, per block shape, the pruned
 * model with and without bsr-lower; checks and times them against the dense peers; writes the
 * JSON, Markdown and SVG.
 */

import type { TuningLog } from "../../codegen/tuning_log.ts";
import { summarize, type Summary } from "../stats.ts";
import { ortNode } from "../peers.ts";
import { buildFamily, type Built, denseReference, type Family, pipelineText, workload } from "./build.ts";
import { machineInfo, memoryBudget, torchAvailable } from "./machine.ts";
import {
  int8Block,
  int8Onnx,
  type Int8Reference,
  int8Reference,
  int8Tail,
  opRate,
  ORT_INT8_TOLERANCE,
} from "./int8.ts";
import { writeTable1Report } from "./report.ts";
import {
  type Check,
  peerSlots,
  progressBar,
  type Slot,
  sparrowSlot,
  timeSlots,
  TOLERANCE,
} from "./timing.ts";

/** Options of `runTable1`. */
export interface Table1Options {
  model: string;
  seq: number;
  repeat: number;
  warmup: number;
  threads: number[];
  blocks: string[];
  sparsity: number;
  web: boolean;
  quick: boolean;
  out: string;
  fresh: boolean;
  /** Tune the sparse schedules with this tuning log (`--tune`). */
  tune?: { log: TuningLog; path: string };
  /** Load the pruned artifacts in every round instead of keeping them loaded (`--reload`). */
  reload?: boolean;
  /** Only build the cache (`--build-only`): compile and compute the references, time nothing. */
  buildOnly?: boolean;
  /** Also int8: the quantized dense model, int8 BSR per block shape of 4x4 blocks, onnxruntime-node int8 (`--int8`). */
  int8?: boolean;
}

/** One row of Table 1: a block shape at a thread count. */
export interface Table1Row {
  block: string;
  threads: number;
  /** Pruned weights compiled without bsr-lower (dense kernels). */
  negativeControl: Summary;
  /** Pruned weights compiled with bsr-lower. */
  bsr: Summary;
  /** BSR / Sparrow dense: mean and std of BSR over the dense mean (as the paper's TVM⁺/Dense). */
  ratio: { mean: number; std: number };
  /** Negative control / Sparrow dense, likewise. */
  negativeControlRatio: { mean: number; std: number };
  check: { negativeControl: number; bsr: number; bsrVsNegativeControl: number };
  /** Blocks and elements bsr-lower stored, and the stored fraction of the weights' elements. */
  bsrStored: { blocks: number; elements: number };
  compileMs: { negativeControl: number; bsr: number };
  cached: { negativeControl: boolean; bsr: boolean };
  /** With `--int8`, for block shapes of 4x4 blocks: the pruned model quantized (int8 BSR kernels). */
  int8?: { time: Summary; ratio: { mean: number; std: number }; check: number; tolerance: number };
}

/** Runs Table 1 and writes the JSON, Markdown and SVG; returns the JSON object. */
export async function runTable1(o: Table1Options): Promise<Record<string, unknown>> {
  const progress = progressBar();
  const notes: string[] = [];
  try {
    const tStart = performance.now();
    const w = await workload(o.model, o.seq, o.out);
    const hasTorch = await torchAvailable();
    notes.push(
      hasTorch
        ? "PyTorch eager: torch is importable by /usr/bin/python3, but the PyTorch contender is not implemented; column omitted."
        : "PyTorch eager: /usr/bin/python3 cannot import torch; column omitted.",
    );
    notes.push("TensorFlow column of the paper: not reproduced.");
    if (!o.web) notes.push(`onnxruntime-web: not run (${o.quick ? "--quick" : "--no-web"}).`);
    else {
      notes.push(
        "onnxruntime-web runs in a subprocess; its times include sending the output back as JSON " +
          `(${w.config.seq * w.config.hidden} floats, about 10-15 ms).`,
      );
    }
    notes.push(
      "The model is BertModel (no pooler/classifier): the checked output is the whole last hidden state.",
    );

    // Build: the dense model, then per block shape the pruned model with and without bsr-lower.
    const sp = `sparsity=${o.sparsity}`;
    const families: { block: string; family: Family }[] = o.blocks.map((block) => ({
      block,
      family: {
        prune: `prune{${sp} block=${block}}`,
        tails: {
          nc: "fuse,dce",
          bsr: `fuse,bsr-lower{block=${block}},dce`,
          ...(o.int8 && int8Block(block) ? { q8: int8Tail(block) } : {}),
        },
      },
    }));
    const int8Blocks = o.int8 ? o.blocks.filter(int8Block) : [];
    if (o.int8 && int8Blocks.length < o.blocks.length) {
      notes.push(
        `int8: no int8 block-sparse kernel for ${
          o.blocks.filter((b) => !int8Block(b)).join(", ")
        } (blocks must be made of 4x4 ones); not quantized.`,
      );
    }
    progress.start(
      (o.int8 ? 2 : 1) + 3 * families.length + int8Blocks.length,
      "compile",
    );
    const denseFamily = await buildFamily(w, {
      tails: { dense: "fuse,dce", ...(o.int8 ? { q8: int8Tail() } : {}) },
    }, {
      fresh: o.fresh,
      onStep: (d) => progress.tick(d),
    });
    const dense = denseFamily.artifacts.dense;
    const built = new Map<string, Built>();
    for (const { block, family } of families) {
      built.set(
        block,
        await buildFamily(w, family, {
          fresh: o.fresh,
          tune: o.tune,
          onStep: (d) => progress.tick(`${block} ${d}`),
        }),
      );
    }
    progress.stop();
    if (o.buildOnly) {
      console.error(
        `built ${1 + 2 * families.length} artifacts under ${w.cacheRoot} (--build-only: nothing timed)`,
      );
      return {};
    }
    const reference = await denseReference(w);
    // int8: the interpreter's references (and bounds) and onnxruntime-node's int8 model.
    const q8 = new Map<string, Int8Reference>();
    let ortInt8: Uint8Array | undefined;
    if (o.int8) {
      progress.start(1 + int8Blocks.length, "int8 references");
      q8.set("dense", await int8Reference(w, denseFamily.artifacts.q8, o.fresh));
      progress.tick("dense");
      for (const block of int8Blocks) {
        q8.set(block, await int8Reference(w, built.get(block)!.artifacts.q8, o.fresh));
        progress.tick(block);
      }
      progress.stop();
      ortInt8 = await int8Onnx(w, denseFamily.artifacts.q8);
    }
    const int8Ref = "the interpreter on the int8 module (tolerance: twice its ±2-ulp noise spread)";
    const int8Slots = (t: number): Slot[] => {
      if (!o.int8) return [];
      const d = q8.get("dense")!;
      return [
        {
          id: `onnxruntime-node int8 @${t}`,
          threads: t,
          open: () => ortNode(ortInt8!, t, w.feeds),
          reference,
          referenceName: `onnxruntime-node f32 (int8 quantizes activations its own way; tolerance ${
            ORT_INT8_TOLERANCE * 100
          }% of the largest |output|)`,
          tolerance: ORT_INT8_TOLERANCE * Math.max(...Array.from(reference, Math.abs)),
          bytes: 2 * ortInt8!.byteLength,
          reloadable: false,
        },
        {
          ...sparrowSlot(`sparrow int8 dense @${t}`, denseFamily.artifacts.q8, t, w.feeds, d.output, int8Ref),
          tolerance: d.tolerance,
        },
      ];
    };

    // Time, one thread count at a time.
    const perThread = new Map<number, { times: Map<string, number[]>; checks: Check[]; resident: boolean }>();
    const slotsOf = (t: number): Slot[] => [
      ...peerSlots(w, dense, reference, t, o.web),
      ...int8Slots(t),
      ...o.blocks.flatMap((block) => {
        const b = built.get(block)!;
        const ref = `onnxruntime-node on the ${block}-pruned weights`;
        const q = q8.get(block);
        const int8 = q
          ? [{
            ...sparrowSlot(`int8 bsr ${block} @${t}`, b.artifacts.q8, t, w.feeds, q.output, int8Ref),
            tolerance: q.tolerance,
          }]
          : [];
        return [
          ...int8,
          sparrowSlot(`pruned ${block} (no bsr-lower) @${t}`, b.artifacts.nc, t, w.feeds, b.reference!, ref),
          sparrowSlot(
            `bsr ${block} @${t}`,
            b.artifacts.bsr,
            t,
            w.feeds,
            b.reference!,
            ref,
            `pruned ${block} (no bsr-lower) @${t}`,
          ),
        ];
      }),
    ];
    const steps = o.threads.reduce((n, t) => n + slotsOf(t).length * (1 + o.repeat), 0);
    progress.start(steps, "check+time");
    for (const t of o.threads) {
      perThread.set(
        t,
        await timeSlots(slotsOf(t), {
          repeat: o.repeat,
          warmup: o.warmup,
          progress,
          budgetBytes: await memoryBudget(),
          reload: o.reload,
        }),
      );
    }
    progress.stop();

    // Summaries.
    const sum = (t: number, id: string) => summarize(perThread.get(t)!.times.get(`${id} @${t}`)!);
    const checkOf = (t: number, id: string) => perThread.get(t)!.checks.find((c) => c.id === `${id} @${t}`)!;
    const peers: Record<string, Record<string, Summary>> = {};
    const rows: Table1Row[] = [];
    for (const t of o.threads) {
      const p: Record<string, Summary> = {
        "onnxruntime-node": sum(t, "onnxruntime-node"),
        "sparrow-dense": sum(t, "sparrow dense"),
      };
      if (o.web) p["onnxruntime-web"] = sum(t, "onnxruntime-web");
      if (o.int8) {
        p["onnxruntime-node-int8"] = sum(t, "onnxruntime-node int8");
        p["sparrow-int8-dense"] = sum(t, "sparrow int8 dense");
      }
      peers[t] = p;
      const d = p["sparrow-dense"].mean;
      for (const block of o.blocks) {
        const b = built.get(block)!;
        const nc = sum(t, `pruned ${block} (no bsr-lower)`), bsr = sum(t, `bsr ${block}`);
        const bc = checkOf(t, `bsr ${block}`);
        const q = q8.get(block);
        const int8 = q && summarize(perThread.get(t)!.times.get(`int8 bsr ${block} @${t}`)!);
        rows.push({
          ...(int8 && q
            ? {
              int8: {
                time: int8,
                ratio: { mean: int8.mean / d, std: int8.std / d },
                check: checkOf(t, `int8 bsr ${block}`).maxAbs,
                tolerance: q.tolerance,
              },
            }
            : {}),
          block,
          threads: t,
          negativeControl: nc,
          bsr,
          ratio: { mean: bsr.mean / d, std: bsr.std / d },
          negativeControlRatio: { mean: nc.mean / d, std: nc.std / d },
          check: {
            negativeControl: checkOf(t, `pruned ${block} (no bsr-lower)`).maxAbs,
            bsr: bc.maxAbs,
            bsrVsNegativeControl: bc.pairMaxAbs!,
          },
          bsrStored: {
            blocks: b.artifacts.bsr.stats["bsr-lower.blocks"] ?? 0,
            elements: b.artifacts.bsr.stats["bsr-lower.elements"] ?? 0,
          },
          compileMs: { negativeControl: b.artifacts.nc.compileMs, bsr: b.artifacts.bsr.compileMs },
          cached: { negativeControl: b.artifacts.nc.cached, bsr: b.artifacts.bsr.cached },
        });
      }
    }
    if (o.tune) notes.push(`Sparse schedules tuned (--tune), tuning log ${o.tune.path}.`);
    for (const t of o.threads) {
      if (!perThread.get(t)!.resident) {
        notes.push(
          `${t} thread(s): pruned artifacts were loaded (and warmed up) in each round` +
            (o.reload ? " (--reload)." : ", as they did not all fit in memory at once."),
        );
      }
    }
    const int8 = o.int8
      ? await int8Summary(w, denseFamily.artifacts, built, q8, perThread, checkOf)
      : undefined;
    const result = {
      benchmark: "table1",
      setting: {
        model: w.name,
        config: w.config,
        batch: 1,
        seq: o.seq,
        sparsity: o.sparsity,
        seed: w.config.seed,
        pruning: `prune{${sp} block=RxC} (score l2, per matrix, every encoder dense weight)`,
        pipelines: {
          dense: dense.pipeline,
          negativeControl: pipelineText(`prune{${sp} block=RxC}`, "fuse,dce"),
          bsr: pipelineText(`prune{${sp} block=RxC}`, "fuse,bsr-lower{block=RxC},dce"),
        },
        repeat: o.repeat,
        warmup: o.warmup,
        threads: o.threads,
        blocks: o.blocks,
        quick: o.quick,
        tolerance: TOLERANCE,
        tuned: !!o.tune,
        statistic: "mean and sample standard deviation over interleaved rounds, in ms",
      },
      machine: await machineInfo(),
      notes,
      peers,
      dense: {
        compileMs: dense.compileMs,
        cached: dense.cached,
        check: o.threads.map((t) => checkOf(t, "sparrow dense").maxAbs),
      },
      rows,
      ...(int8 ? { int8 } : {}),
      wallSeconds: 0,
    };
    result.wallSeconds = Math.round((performance.now() - tStart) / 100) / 10;
    await writeTable1Report(result, o);
    return result;
  } finally {
    progress.stop();
  }
}

/** What `--int8` adds beside the table: GEMM rates per core, weight bytes, the checks' bounds. */
async function int8Summary(
  w: Awaited<ReturnType<typeof workload>>,
  dense: Record<string, Built["artifacts"][string]>,
  built: Map<string, Built>,
  q8: Map<string, Int8Reference>,
  perThread: Map<number, { checks: Check[] }>,
  checkOf: (t: number, id: string) => Check,
) {
  const weights: Record<string, number> = {
    "f32 dense": dense.dense.weightBytes,
    "int8 dense": dense.q8.weightBytes,
  };
  for (const [block, b] of built) {
    weights[`f32 bsr ${block}`] = b.artifacts.bsr.weightBytes;
    if (b.artifacts.q8) weights[`int8 bsr ${block}`] = b.artifacts.q8.weightBytes;
  }
  const threads = [...perThread.keys()];
  return {
    /** One thread, profiled: the f32 GEMM's GFLOP/s and the int8 GEMM's GOP/s. */
    gemmGflopsPerCore: await opRate(dense.dense, w.feeds, /^dense/),
    qgemmGopsPerCore: await opRate(dense.q8, w.feeds, /^qdense$/),
    weightBytes: weights,
    checks: Object.fromEntries(
      [...q8].map(([id, r]) => [id, {
        spread: r.spread,
        tolerance: r.tolerance,
        maxAbs: threads.map((t) =>
          checkOf(t, id === "dense" ? "sparrow int8 dense" : `int8 bsr ${id}`).maxAbs
        ),
        ortInt8: id === "dense"
          ? { againstF32: threads.map((t) => checkOf(t, "onnxruntime-node int8").maxAbs) }
          : undefined,
      }]),
    ),
  };
}
