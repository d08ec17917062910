/**
 * The worker `cli/compile.ts` starts: it runs the compile job (passes and plugins included)
 * with the narrowed permissions it was given, and answers with the exit code.
 */

/// <reference lib="deno.worker" />

import { runCli } from "./common.ts";
import { compileJob } from "./compile_job.ts";

self.onmessage = async (e: MessageEvent<{ args: string[] }>) => {
  const onPhase = (phase: string, done: number, total: number) => self.postMessage({ phase, done, total });
  const code = await runCli(() => compileJob(e.data.args, onPhase));
  self.postMessage({ code });
};
