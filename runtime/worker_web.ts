/** The runtime worker's entry for hosts with web workers (Deno, browsers): see worker.ts. */

import { type WorkerInit, workerLoop } from "./worker.ts";

/** This worker's global scope, typed without a global lib directive (the module may be published). */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<WorkerInit>) => void;
  postMessage(message: unknown): void;
  close(): void;
};

scope.onmessage = async (e: MessageEvent<WorkerInit>) => {
  await workerLoop(e.data, () => scope.postMessage("ready"));
  scope.close();
};
