/**
 * Checked, interleaved timing: contenders as slots (Sparrow artifacts, the dense peers), each
 * checked against its reference output before it is timed, then timed in interleaved rounds
 * (so drift hits all alike), with a progress bar.
 */

import process from "node:process";
import cliProgress from "cli-progress";
import { type Contender, type Feeds, ortNode, ortWeb, sparrow } from "../peers.ts";
import { maxAbsDiff } from "../stats.ts";
import { BenchError } from "./args.ts";
import type { Artifact, Workload } from "./build.ts";
import { releaseMemory } from "./machine.ts";

/** The tolerance of every output check (max abs difference). */
export const TOLERANCE = 1e-3;

/** One contender to time, not yet loaded. */
export interface Slot {
  /** Unique id, e.g. `bsr 1x32 @2`. */
  id: string;
  threads: number;
  open(): Promise<Contender>;
  /** The output it must reproduce, and what that is. */
  reference: Float32Array;
  referenceName: string;
  /** The check's tolerance (max abs difference); TOLERANCE by default. */
  tolerance?: number;
  /** Another slot (by id, timed earlier in the list) whose output it must also reproduce. */
  alsoMatches?: string;
  /** Estimated memory while loaded, in bytes. */
  bytes: number;
  /** Kept loaded across rounds when memory allows; else loaded in each round. */
  reloadable: boolean;
  /** Where it comes from, for errors (e.g. the artifact folder). */
  source?: string;
}

/** A Sparrow artifact as a slot. */
export function sparrowSlot(
  id: string,
  a: Artifact,
  threads: number,
  feeds: Feeds,
  reference: Float32Array,
  referenceName: string,
  alsoMatches?: string,
): Slot {
  return {
    id,
    threads,
    open: () => sparrow(id, a.dir, threads, feeds),
    reference,
    referenceName,
    alsoMatches,
    bytes: a.memoryBytes,
    reloadable: true,
    source: `${a.cached ? "cached " : ""}artifact ${a.dir}${a.cached ? "; --fresh recompiles" : ""}`,
  };
}

/** A progress bar with ETA on a terminal; silent otherwise. */
export interface Progress {
  start(total: number, stage: string): void;
  tick(detail: string): void;
  stop(): void;
}

/**
 * A cli-progress bar with ETA on stderr when it is a terminal; otherwise (CI logs) a line with
 * the count, elapsed time and ETA at most every 20 s.
 */
export function progressBar(): Progress {
  const tty = Deno.stderr.isTerminal();
  const bar = tty
    ? new cliProgress.SingleBar({
      format:
        "{stage} [{bar}] {value}/{total} | {duration_formatted} elapsed, ETA {eta_formatted} | {detail}",
      stream: process.stderr,
      etaBuffer: 20,
      hideCursor: true,
    })
    : undefined;
  let active = false;
  let stage = "", total = 0, done = 0, t0 = 0, last = 0;
  const secs = (ms: number) => `${Math.round(ms / 1000)} s`;
  return {
    start(n, name) {
      if (active) bar?.stop();
      stage = name, total = n, done = 0, t0 = last = performance.now();
      if (!bar) console.error(`${stage}: ${total} steps`);
      bar?.start(total, 0, { stage, detail: "" });
      active = true;
    },
    tick(detail) {
      done++;
      if (bar) return void bar.increment(1, { detail });
      const now = performance.now();
      if (now - last >= 20_000 && done < total) {
        last = now;
        const eta = ((now - t0) / done) * (total - done);
        console.error(`${stage}: ${done}/${total}, ${secs(now - t0)} elapsed, ETA ${secs(eta)} (${detail})`);
      }
    },
    stop() {
      if (active) bar?.stop();
      if (active && !bar) console.error(`${stage}: done in ${secs(performance.now() - t0)}`);
      active = false;
    },
  };
}

/** The outcome of checking a slot. */
export interface Check {
  id: string;
  reference: string;
  maxAbs: number;
  /** The tolerance it was checked with. */
  tolerance: number;
  /** Max abs difference against `alsoMatches`, when there is one. */
  pairMaxAbs?: number;
}

const settle = () => new Promise((ok) => setTimeout(ok, 20)); // let other runtimes' spinning threads settle

/**
 * Checks then times `slots` (all at one thread count, say): loads each, checks its output
 * (aborting with a BenchError on a mismatch), warms it up, then runs `repeat` interleaved
 * rounds. Returns per-slot times in ms, and the checks.
 */
export async function timeSlots(
  slots: Slot[],
  o: { repeat: number; warmup: number; progress: Progress; budgetBytes: number; reload?: boolean },
): Promise<{ times: Map<string, number[]>; checks: Check[]; resident: boolean }> {
  const total = slots.reduce((n, s) => n + s.bytes, 0);
  const resident = !o.reload && total <= o.budgetBytes;
  const loaded = new Map<string, Contender>();
  const outputs = new Map<string, Float32Array>();
  const checks: Check[] = [];
  const times = new Map(slots.map((s) => [s.id, [] as number[]]));
  try {
    for (const s of slots) {
      const k = await s.open();
      loaded.set(s.id, k);
      const y = await k.run();
      const d = maxAbsDiff(y, s.reference);
      const from = s.source ? ` [${s.source}]` : "";
      const tolerance = s.tolerance ?? TOLERANCE;
      const check: Check = { id: s.id, reference: s.referenceName, maxAbs: d, tolerance };
      if (!(d <= tolerance)) {
        throw new BenchError(
          `${s.id}: output differs from ${s.referenceName} by ${d} (max abs; tolerance ${tolerance}); ` +
            `not timing a wrong kernel${from}`,
        );
      }
      if (s.alsoMatches) {
        const other = outputs.get(s.alsoMatches);
        if (!other) throw new Error(`internal: ${s.id} checks against ${s.alsoMatches}, which has not run`);
        const e = maxAbsDiff(y, other);
        check.pairMaxAbs = e;
        if (!(e <= TOLERANCE)) {
          throw new BenchError(
            `${s.id}: output differs from ${s.alsoMatches} (same pruned weights) by ${e} (max abs; ` +
              `tolerance ${TOLERANCE})${from}`,
          );
        }
      }
      outputs.set(s.id, y);
      checks.push(check);
      for (let i = 0; i < o.warmup; i++) await k.run();
      if (!resident && s.reloadable) {
        await k.close();
        loaded.delete(s.id);
      }
      o.progress.tick(`checked ${s.id} (${d.toExponential(1)})`);
    }
    for (let r = 0; r < o.repeat; r++) {
      for (const s of slots) {
        let k = loaded.get(s.id);
        const reload = !k;
        if (!k) {
          k = await s.open();
          for (let i = 0; i < Math.max(1, o.warmup); i++) await k.run();
        }
        await settle();
        const t = performance.now();
        await k.run();
        times.get(s.id)!.push(performance.now() - t);
        if (reload) await k.close();
        o.progress.tick(`round ${r + 1}/${o.repeat}: ${s.id}`);
      }
      if (!resident) await releaseMemory();
    }
  } finally {
    for (const k of loaded.values()) await k.close();
    await releaseMemory();
  }
  return { times, checks, resident };
}

/** The peers on the dense model at `threads` threads, as slots. */
export function peerSlots(
  w: Workload,
  dense: Artifact,
  reference: Float32Array,
  threads: number,
  web: boolean,
): Slot[] {
  const onnxBytes = w.onnx.byteLength;
  const ref = "onnxruntime-node (dense, 1 thread)";
  const slots: Slot[] = [
    {
      id: `onnxruntime-node @${threads}`,
      threads,
      open: () => ortNode(w.onnx, threads, w.feeds),
      reference,
      referenceName: ref,
      bytes: 2 * onnxBytes,
      reloadable: false,
    },
  ];
  if (web) {
    slots.push({
      id: `onnxruntime-web @${threads}`,
      threads,
      open: () => ortWeb(w.onnxPath, threads, w.feeds),
      reference,
      referenceName: ref,
      bytes: 2 * onnxBytes,
      reloadable: false,
    });
  }
  slots.push(sparrowSlot(`sparrow dense @${threads}`, dense, threads, w.feeds, reference, ref));
  return slots;
}
