/** The runtime worker's entry for Node's worker_threads: see worker.ts. */

import { parentPort } from "node:worker_threads";
import { type WorkerInit, workerLoop } from "./worker.ts";

parentPort!.once("message", async (init: WorkerInit) => {
  await workerLoop(init, () => parentPort!.postMessage("ready"));
  parentPort!.close();
});
