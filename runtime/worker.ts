/**
 * A runtime worker thread's work, the same in every host: instantiates the kernels over the
 * shared memory, says it is ready, then runs the steps of the bucket the caller chose, as its
 * thread id, each time the caller starts a run, until shut down. The host's worker entry (worker_web.ts, worker_node.ts) receives
 * the `WorkerInit` message and calls `workerLoop`.
 */

import { bindSteps, CONTROL, type KernelTable, runSteps } from "./executor.ts";
import type { PlanStep } from "./plan.ts";

/** What the caller sends to start a worker. */
export interface WorkerInit {
  /** The compiled kernel module. */
  module: WebAssembly.Module;
  /** The shared memory holding weights, arena and the control block. */
  memory: WebAssembly.Memory;
  /** The steps of each of the plan's buckets. */
  buckets: PlanStep[][];
  /** Which kernel names the steps use: 0 relaxed SIMD, 1 plain SIMD. */
  variant: 0 | 1;
  /** This worker's thread id (1 and up; the caller is 0). */
  tid: number;
  /** The thread count. */
  nt: number;
  /** The steps' chunk counters (executor.ts `runSteps`), on shared memory. */
  claims: Int32Array;
}

/** Runs worker `init.tid` until shutdown; `ready` is called once the kernels are bound. */
export async function workerLoop(init: WorkerInit, ready: () => void): Promise<void> {
  const { module, memory, buckets, variant, tid, nt, claims } = init;
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const bound = buckets.map((steps) => bindSteps(steps, instance.exports as KernelTable, variant));
  const ctl = new Int32Array(memory.buffer, 0, 16);
  let seen = Atomics.load(ctl, CONTROL.start);
  ready();
  for (;;) {
    Atomics.wait(ctl, CONTROL.start, seen);
    if (Atomics.load(ctl, CONTROL.shutdown)) break;
    seen = Atomics.load(ctl, CONTROL.start);
    const failure = runSteps(bound[Atomics.load(ctl, CONTROL.bucket)], ctl, claims, tid, nt);
    if (failure) console.error(`sparrow runtime: ${failure}`);
    if (Atomics.add(ctl, CONTROL.exited, 1) === nt - 2) Atomics.notify(ctl, CONTROL.exited);
  }
}
