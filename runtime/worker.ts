/**
 * A runtime worker thread: instantiates the kernels over the shared memory, then runs the
 * steps as its thread id each time the caller starts a run, until shut down.
 */

import { bindSteps, CONTROL, type KernelTable, runSteps } from "./executor.ts";
import type { PlanStep } from "./plan.ts";

/** What the caller sends to start a worker. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  steps: PlanStep[];
  variant: 0 | 1;
  tid: number;
  nt: number;
}

/** This worker's global scope, typed without a global lib directive (the module may be published). */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<WorkerInit>) => void;
  postMessage(message: unknown): void;
  close(): void;
};

scope.onmessage = async (e: MessageEvent<WorkerInit>) => {
  const { module, memory, steps, variant, tid, nt } = e.data;
  const instance = await WebAssembly.instantiate(module, { env: { memory } });
  const bound = bindSteps(steps, instance.exports as KernelTable, variant);
  const ctl = new Int32Array(memory.buffer, 0, 16);
  let seen = Atomics.load(ctl, CONTROL.start);
  scope.postMessage("ready");
  for (;;) {
    Atomics.wait(ctl, CONTROL.start, seen);
    if (Atomics.load(ctl, CONTROL.shutdown)) break;
    seen = Atomics.load(ctl, CONTROL.start);
    const failure = runSteps(bound, ctl, tid, nt);
    if (failure) console.error(`sparrow runtime: ${failure}`);
  }
  scope.close();
};
