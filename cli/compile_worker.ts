/**
 * The worker `cli/compile.ts` starts, twice: first to learn which files the pipeline's passes
 * declare they read (plugins loaded, pipeline parsed, nothing else read), then to run the compile
 * job (passes and plugins included) with the permissions that answer narrowed it to.
 */

import { declaredReads, DEFAULT_PIPELINE, passRegistry, pipelineOf } from "../mod.ts";
import { parseCli, runCli } from "./common.ts";
import { COMPILE_OPTIONS, compileJob } from "./compile_job.ts";

/** What the launcher asks: the files a compile's passes read, or the compile itself. */
export type WorkerRequest = { plan: string[]; modelDirs: string[] } | { args: string[] };

/** The worker's final answer: the files passes read, or the compile's exit code. */
export type WorkerReply = { reads: string[] } | { code: number };

/** This worker's global scope. */
const scope = self as unknown as {
  onmessage: (e: MessageEvent<WorkerRequest>) => void;
  postMessage(message: unknown): void;
};

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
  if ("plan" in request) {
    return scope.postMessage({ reads: await planReads(request.plan, request.modelDirs) });
  }
  const onPhase = (phase: string, done: number, total: number) => scope.postMessage({ phase, done, total });
  const code = await runCli(() => compileJob(request.args, onPhase));
  scope.postMessage({ code });
};
