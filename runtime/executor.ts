/**
 * Executes a plan's steps on one thread. Every thread (the caller's and each worker) runs the
 * same steps with its own thread id; a barrier in the shared control block follows each step.
 */

import { ArtifactError, type PlanStep } from "./plan.ts";

/** Int32 slots of the control block at address 0 of the shared memory. */
export const CONTROL = {
  /** Bumped by the caller to start a run. */
  start: 0,
  /** Threads arrived at the current barrier. */
  count: 1,
  /** Bumped when all threads have arrived. */
  generation: 2,
  /** Set to 1 by a thread whose kernel threw. */
  failed: 3,
  /** Set to 1 to make the workers exit. */
  shutdown: 4,
  /** The index of the bucket the current run uses. */
  bucket: 5,
  /** Chunks of the current run finished so far, over all steps. */
  finished: 6,
  /** Workers that have left the current run. */
  exited: 7,
} as const;

/**
 * Chunks of each step per thread. A step runs as `CHUNKS · nt` calls of its kernel, chunk c as
 * "thread c of CHUNKS · nt" (every kernel takes its share of the work from its tid and nt alone),
 * and thread t's own chunks are t · CHUNKS ... (t + 1) · CHUNKS − 1: together exactly the share the
 * kernel gives thread t of nt, so the data a thread writes in one step is what it reads in the next.
 */
export const CHUNKS = 4;

/**
 * How long a thread spins for the other threads before it sleeps, in ms. While every thread has a
 * core of its own, a spin is cheaper than a sleep and a wake (tens of microseconds on a virtual
 * machine), and it has to outlast the threads' imbalance on the long steps, hundreds of
 * microseconds. A budget counted in spins (2^14, tens of microseconds here) ran out on a third of
 * BERT-base int8 80% 4x4's barriers, and 2 threads ran it only 1.1-1.6x faster than one; with a
 * 1 ms limit almost none do, 1.6-1.7x (AMD EPYC Zen 5; 1 and 2 threads interleaved in one
 * process). But after an idle spell the scheduler often leaves two threads on one core; there the
 * thread spun for cannot run until the spinner is preempted, so a spin only delays it. So: a spin
 * that runs out, or that ends only after the limit (the spinner was preempted meanwhile), halves
 * this thread's limit (down to MIN_SPIN_MS); one that ends in time restores MAX_SPIN_MS. Every
 * probe-th wait spins up to MAX_SPIN_MS, so a thread that has its own core again finds out; each
 * probe that fails doubles the interval (up to MAX_PROBE), so that on a shared core the probes cost
 * little.
 */
const MIN_SPIN_MS = 0.002, MAX_SPIN_MS = 1, MIN_PROBE = 16, MAX_PROBE = 1024;
/** Spins between two readings of the clock. */
const SPINS_PER_CHECK = 256;
let limit = MAX_SPIN_MS, waits = 0, probe = MIN_PROBE;

/** Waits until slot `at` of `ctl` reaches `target` (its writers notify when they make it so). */
export function awaitCount(ctl: Int32Array, at: number, target: number): void {
  if (Atomics.load(ctl, at) >= target) return;
  const probing = ++waits % probe === 0;
  const budget = probing ? MAX_SPIN_MS : limit;
  const t0 = performance.now();
  let passed = false, elapsed = 0;
  while (elapsed < budget) {
    for (let i = 0; i < SPINS_PER_CHECK && !passed; i++) passed = Atomics.load(ctl, at) >= target;
    elapsed = performance.now() - t0;
    if (passed) break;
  }
  if (passed && elapsed < budget) {
    limit = MAX_SPIN_MS;
    probe = MIN_PROBE;
    return;
  }
  limit = Math.max(MIN_SPIN_MS, limit / 2);
  if (probing) probe = Math.min(MAX_PROBE, probe * 2);
  for (let v; (v = Atomics.load(ctl, at)) < target;) Atomics.wait(ctl, at, v);
}

/** A kernel bound to its step's arguments. */
export type BoundStep = (tid: number, nt: number) => void;

/** Kernel functions by export name. */
export type KernelTable = Record<string, (...args: number[]) => void>;

/**
 * Binds each step to its wasm kernel export; `variant` 0 is relaxed SIMD, 1 plain SIMD. `where`
 * names the step list in errors (`buckets[0].steps`).
 */
export function bindSteps(
  steps: readonly PlanStep[],
  wasm: KernelTable,
  variant: 0 | 1,
  where = "steps",
): BoundStep[] {
  return steps.map((s, i) => {
    const name = s.kernel[variant];
    const f = Object.hasOwn(wasm, name) ? wasm[name] : undefined;
    if (typeof f !== "function") {
      throw new ArtifactError(
        "plan.json",
        `${where}[${i}] (${s.value}): no wasm kernel '${name}' in the artifact`,
      );
    }
    const args = s.args;
    return (tid, nt) => f(...args, tid, nt);
  });
}

/**
 * Runs every step as thread `tid` of `nt`. With more than one thread a step runs in chunks
 * ({@link CHUNKS}): the thread takes its own chunks first, then whatever chunks the others have
 * not taken yet, then waits until every chunk of the step is done. So a thread that runs slower
 * (a virtual CPU the host slows down, two threads the scheduler left on one core) holds the others
 * up by at most one chunk. In `deno task bench table1 --int8 --blocks 4x4 --threads 2` (AMD EPYC
 * Zen 5, a 20 ms pause before each round), fixed shares and a barrier ran BERT-base f32 dense in
 * 238-382 ms (median 277, 8 rounds) and int8 80% 4x4 in 31.6-47.8 (34.2); with the chunks, 225-262
 * (235) and 30.6-61.2 (32.1) over 12 rounds, and 228-391 (243) and 31.4-55.3 (32.4) in a full run.
 * Taking only the chunks of threads that had not begun a step did not help (337 and 47.1). `claims` holds one counter per step and thread (zeroed before the run, like
 * `CONTROL.finished`). A kernel that throws marks the run failed; the thread still counts its
 * chunks, so no thread waits forever. `times`, when given, receives each step's wall time in ms
 * (the wait included). Returns this thread's first failure, if any.
 */
export function runSteps(
  steps: readonly BoundStep[],
  ctl: Int32Array,
  claims: Int32Array,
  tid: number,
  nt: number,
  times?: Float64Array,
): string | undefined {
  let failed: string | undefined;
  const perStep = CHUNKS * nt;
  const run = (i: number, chunk: number, of: number) => {
    if (failed) return;
    try {
      steps[i](chunk, of);
    } catch (e) {
      failed = `step ${i} failed on thread ${tid}: ${(e as Error).message}`;
      Atomics.store(ctl, CONTROL.failed, 1);
    }
  };
  for (let i = 0; i < steps.length; i++) {
    const t0 = times ? performance.now() : 0;
    if (nt === 1) run(i, 0, 1);
    else {
      const target = (i + 1) * perStep;
      for (let k = 0; k < nt; k++) {
        const owner = (tid + k) % nt, slot = i * nt + owner;
        for (let c; (c = Atomics.add(claims, slot, 1)) < CHUNKS;) {
          run(i, owner * CHUNKS + c, perStep);
          if (Atomics.add(ctl, CONTROL.finished, 1) === target - 1) Atomics.notify(ctl, CONTROL.finished);
        }
      }
      awaitCount(ctl, CONTROL.finished, target);
    }
    if (times) times[i] += performance.now() - t0;
  }
  return failed;
}
