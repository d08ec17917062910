/**
 * The worker `cli/compile.ts` starts, twice: first to learn which files the pipeline's passes
 * declare they read (plugins loaded, pipeline parsed, nothing else read), then to run the compile
 * job (passes and plugins included) with the permissions that answer narrowed it to.
 */

import process from "node:process";
import { declaredReads, DEFAULT_PIPELINE, passRegistry, pipelineOf } from "../mod.ts";
import { parseCli, runCli } from "./common.ts";
import { COMPILE_OPTIONS, compileJob } from "./compile_job.ts";

/** What the launcher asks: the files a compile's passes read, or the compile itself. */
export type WorkerRequest = { plan: string[]; modelDirs: string[] } | { args: string[] };

/** The worker's final answer: the files passes read, or the compile's exit code. */
export type WorkerReply = { reads: string[] } | { code: number };

/** What the worker says while it works: codegen's progress, or what the time limit now applies to. */
export type WorkerNews =
  | { phase: string; done: number; total: number }
  | { watch: string | null }
  | { alive: true };

/** How often the worker says it is alive, in milliseconds: a silent worker is blocked (see the launcher). */
const HEARTBEAT_MS = 250;

/** This worker's global scope. */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<WorkerRequest>) => void;
  postMessage(message: unknown): void;
  close(): void;
};

/**
 * Code loaded into this worker (plugins) cannot end the compile job: `Deno.exit` would end the whole
 * process with the plugin's exit code (a failed compile as exit 0) and `close` would leave the
 * launcher waiting. Each throws instead, failing the pass that called it.
 */
function refuse(what: string): (code?: number) => never {
  return (code) => {
    throw new Error(`${what}(${code ?? ""}) is not allowed in a pass: the compile job decides how it ends`);
  };
}
Object.defineProperty(Deno, "exit", { value: refuse("Deno.exit") });
process.exit = refuse("process.exit");
scope.close = refuse("close");

/** The files the passes of the compile `args` describe declare they read; none when it does not parse (the job reports why). */
async function planReads(args: string[], modelDirs: string[]): Promise<string[]> {
  try {
    const { values } = parseCli(args, COMPILE_OPTIONS);
    const artifact = values.output !== undefined && !values.output.endsWith(".sir");
    const registry = await passRegistry(values.plugin);
    const pipeline = pipelineOf(values.passes || (artifact ? DEFAULT_PIPELINE : ""), registry);
    return declaredReads(pipeline, modelDirs);
  } catch {
    return [];
  }
}

scope.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const request = e.data;
  // While the event loop turns, the launcher hears this; code that blocks it (a timer a plugin left
  // spinning) goes silent, and the launcher stops the job.
  setInterval(() => scope.postMessage({ alive: true }), HEARTBEAT_MS);
  if ("plan" in request) {
    return scope.postMessage({ reads: await planReads(request.plan, request.modelDirs) });
  }
  const onPhase = (phase: string, done: number, total: number) => scope.postMessage({ phase, done, total });
  // The launcher's watchdog times what runs now: a pass, or the loading of plugins.
  const onWatch = (what: string | undefined) => scope.postMessage({ watch: what ?? null });
  const code = await runCli(() => compileJob(request.args, onPhase, onWatch));
  scope.postMessage({ code });
};
