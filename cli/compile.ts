/**
 * `deno task compile <model> [--passes PIPELINE] [--plugin FILE]... [-o out.sir|DIR]`.
 *
 * Passes and plugins run in a worker with the narrowest permissions that work: it may read the
 * model (an IR file and its weights file, a checkpoint folder, an ONNX file's folder), the
 * plugins' folders, the files the pipeline's passes declare they read (`PassDef.inputs`, such
 * as prune-reconstruct's calibration sentences and tokenizer) and the output and dump folders,
 * and write only the output and dump folders; no network, environment, subprocesses or FFI.
 *
 * What the passes read depends on the pipeline, and plugin passes are known only once their
 * modules are loaded, so a first worker that may read only the plugins' folders loads them,
 * parses the pipeline and reports the files it declares; the job (`cli/compile_job.ts`) then runs
 * in a second worker granted exactly those.
 */

import { dirname, join, resolve } from "node:path";
import cliProgress from "cli-progress";
import process from "node:process";
import { inputFiles } from "../mod.ts";
import { main, parseCli } from "./common.ts";
import { COMPILE_OPTIONS, compileWrites, reproducerArgs, USAGE } from "./compile_job.ts";
import type { WorkerReply, WorkerRequest } from "./compile_worker.ts";

/** Starts the compile worker with these grants and sends it `request`; resolves with its final reply. */
function runWorker(
  request: WorkerRequest,
  grants: { read: string[]; write: string[] },
  onPhase?: (phase: string, done: number, total: number) => void,
): Promise<WorkerReply | { failed: string }> {
  const worker = new Worker(new URL("./compile_worker.ts", import.meta.url), {
    type: "module",
    deno: {
      permissions: {
        read: grants.read,
        write: grants.write,
        net: false,
        env: false,
        run: false,
        ffi: false,
        sys: ["cpus"],
        import: false,
      },
    },
  } as WorkerOptions);
  return new Promise<WorkerReply | { failed: string }>((done) => {
    worker.postMessage(request);
    worker.onmessage = (e: MessageEvent<WorkerReply | { phase: string; done: number; total: number }>) => {
      if ("phase" in e.data) return onPhase?.(e.data.phase, e.data.done, e.data.total);
      done(e.data);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      done({ failed: e.message });
    };
  }).finally(() => worker.terminate());
}

main(async () => {
  // A replay (--run-reproducer F) is the compile F's header describes.
  const args = await reproducerArgs(Deno.args);
  const { values, positionals } = parseCli(args, COMPILE_OPTIONS);
  if (values.help) return void console.log(USAGE);
  const model = positionals[0];
  const input = model === undefined ? undefined : await inputFiles(model);
  const plugins = values.plugin.map((p) => dirname(resolve(p)));
  // First: what the pipeline's passes declare they read (seeing which model folder has a tokenizer).
  const modelDirs = [...input?.modelDirs ?? []];
  const plan = await runWorker({ plan: args, modelDirs }, {
    read: [...plugins, ...modelDirs.map((d) => join(d, "tokenizer.json"))],
    write: [],
  });
  const declared = "reads" in plan ? plan.reads : [];
  const write = compileWrites(values);
  const read = [...input?.reads ?? [], ...plugins, ...declared, ...write];

  const bar = Deno.stderr.isTerminal() && !values.quiet
    ? new cliProgress.SingleBar({
      format: "compiling [{bar}] {phase}",
      stream: process.stderr,
      clearOnComplete: true,
    })
    : undefined;
  const reply = await runWorker({ args }, { read, write }, (phase, done, total) => {
    if (!bar) return;
    if (done === 0) bar.start(total, 0, { phase });
    else bar.update(done, { phase });
  });
  bar?.stop();
  if ("failed" in reply) {
    console.error(`error: the compile job failed: ${reply.failed}`);
    return 1;
  }
  return "code" in reply ? reply.code : 1;
});
