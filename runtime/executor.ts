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
} as const;

/**
 * How long a thread spins at a barrier before it sleeps, in ms. While every thread has a core of
 * its own, a spin is cheaper than a sleep and a wake (tens of microseconds on a virtual machine),
 * and it has to outlast the threads' imbalance on the long steps, hundreds of microseconds. But
 * after an idle spell the scheduler often leaves two threads on one core; there the thread spun
 * for cannot run until the spinner is preempted, so a spin only delays it (sst2-bert-mini at 2
 * threads: 10 ms instead of 2). A budget counted in spins (2^14, tens of microseconds here) ran out
 * on a third of BERT-base int8 80% 4x4's barriers, and 2 threads ran it only 1.1-1.6x faster than
 * one; with a 1 ms limit almost none do, 1.6-1.7x (AMD EPYC Zen 5; scratch runs, 1 and 2 threads
 * interleaved in one process). So: a spin that runs out, or that ends only after the limit
 * (the spinner was preempted meanwhile), halves this thread's limit (down to MIN_SPIN_MS); one
 * that ends in time restores MAX_SPIN_MS. Every probe-th barrier spins up to MAX_SPIN_MS, so a
 * thread that has its own core again finds out; each probe that fails doubles the interval (up
 * to MAX_PROBE), so that on a shared core the probes cost little.
 */
const MIN_SPIN_MS = 0.002, MAX_SPIN_MS = 1, MIN_PROBE = 16, MAX_PROBE = 1024;
/** Spins between two readings of the clock. */
const SPINS_PER_CHECK = 256;
let limit = MAX_SPIN_MS, barriers = 0, probe = MIN_PROBE;

/** Waits until all `nt` threads have called it. */
export function barrier(ctl: Int32Array, nt: number): void {
  const gen = Atomics.load(ctl, CONTROL.generation);
  if (Atomics.add(ctl, CONTROL.count, 1) === nt - 1) {
    Atomics.store(ctl, CONTROL.count, 0);
    Atomics.add(ctl, CONTROL.generation, 1);
    Atomics.notify(ctl, CONTROL.generation);
    return;
  }
  const probing = ++barriers % probe === 0;
  const budget = probing ? MAX_SPIN_MS : limit;
  const t0 = performance.now();
  let passed = false, elapsed = 0;
  while (elapsed < budget) {
    for (let i = 0; i < SPINS_PER_CHECK && !passed; i++) {
      passed = Atomics.load(ctl, CONTROL.generation) !== gen;
    }
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
  while (Atomics.load(ctl, CONTROL.generation) === gen) Atomics.wait(ctl, CONTROL.generation, gen);
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
 * Runs every step as thread `tid` of `nt`. A kernel that throws marks the run failed; the thread
 * still meets every barrier, so no thread waits forever. `times`, when given, receives each
 * step's wall time in ms (barrier included). Returns this thread's first failure, if any.
 */
export function runSteps(
  steps: readonly BoundStep[],
  ctl: Int32Array,
  tid: number,
  nt: number,
  times?: Float64Array,
): string | undefined {
  let failed: string | undefined;
  for (let i = 0; i < steps.length; i++) {
    const t0 = times ? performance.now() : 0;
    if (!failed) {
      try {
        steps[i](tid, nt);
      } catch (e) {
        failed = `step ${i} failed on thread ${tid}: ${(e as Error).message}`;
        Atomics.store(ctl, CONTROL.failed, 1);
      }
    }
    if (nt > 1) barrier(ctl, nt);
    if (times) times[i] += performance.now() - t0;
  }
  return failed;
}
