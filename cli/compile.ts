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

import { basename, dirname, join, resolve } from "node:path";
import cliProgress from "cli-progress";
import process from "node:process";
import { inputFiles, tuningLogTemp } from "../mod.ts";
import { main, parseCli } from "./common.ts";
import {
  COMPILE_OPTIONS,
  compileWrites,
  type JobLimits,
  jobLimits,
  pluginsLabel,
  reproducerArgs,
  USAGE,
} from "./compile_job.ts";
import type { WorkerNews, WorkerReply, WorkerRequest } from "./compile_worker.ts";

/** How a worker ended: its reply, an uncaught failure, or the watchdog stopping it (why). */
type Outcome = WorkerReply | { failed: string } | { stopped: string };

/** How often the watchdog reads the process's resident memory, in milliseconds. */
const MEMORY_POLL_MS = 50;

/**
 * Starts the compile worker with these grants and sends it `request`; resolves with its final reply.
 * A watchdog terminates it, even in a synchronous loop, when what it runs (`watching` at first, then
 * as its `{ watch }` messages say: a pass, the loading of plugins) takes longer than `limits.seconds`,
 * when between passes it is silent that long (its heartbeat stops: code a pass left behind, such as
 * a spinning timer, blocks it), or when the process's resident memory passes `limits.mib`.
 */
function runWorker(
  request: WorkerRequest,
  grants: { read: string[]; write: string[] },
  limits: JobLimits,
  watching: string | undefined,
  onPhase?: (phase: string, done: number, total: number) => void,
): Promise<Outcome> {
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
  let timer: ReturnType<typeof setTimeout> | undefined;
  let poll: ReturnType<typeof setInterval> | undefined;
  return new Promise<Outcome>((done) => {
    let what = watching;
    let last: string | undefined;
    // When the worker was last heard from; undefined until its first heartbeat (it may still be loading).
    let heard: number | undefined;
    const arm = (label: string | undefined) => {
      clearTimeout(timer);
      what = label;
      last = label ?? last;
      if (label === undefined) return;
      timer = setTimeout(
        () => done({ stopped: `${label} did not finish within ${limits.seconds} s (--pass-timeout)` }),
        limits.seconds * 1000,
      );
    };
    poll = setInterval(() => {
      if (what === undefined && heard !== undefined && performance.now() - heard > limits.seconds * 1000) {
        const after = last === undefined ? "" : ` after ${last} ran`;
        done({
          stopped: `the compile job stopped responding for ${limits.seconds} s${after} (--pass-timeout)`,
        });
      }
      if (Deno.memoryUsage().rss <= limits.mib * 2 ** 20) return;
      const who = what ?? "the compile job";
      done({ stopped: `${who} used more than ${limits.mib} MiB of memory (--max-memory)` });
    }, MEMORY_POLL_MS);
    arm(watching);
    worker.postMessage(request);
    worker.onmessage = (e: MessageEvent<WorkerReply | WorkerNews>) => {
      heard = performance.now();
      if ("alive" in e.data) return;
      if ("watch" in e.data) return arm(e.data.watch ?? undefined);
      if ("phase" in e.data) return onPhase?.(e.data.phase, e.data.done, e.data.total);
      done(e.data);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      done({ failed: e.message });
    };
  }).finally(() => {
    worker.terminate();
    clearTimeout(timer);
    clearInterval(poll);
  });
}

/**
 * Removes what a stopped job may have left half-written: an artifact's staging folder, the tuning
 * log's temporary file, and the temporary files an IR output and its weights are written through.
 */
async function removeLeftovers(values: ReturnType<typeof parseCli<typeof COMPILE_OPTIONS>>["values"]) {
  const remove = (path: string) => Deno.remove(path, { recursive: true }).catch(() => {});
  const out = values.output && resolve(values.output.replace(/[\\/]+$/, ""));
  if (!out) return;
  if (!out.endsWith(".sir")) {
    await remove(join(dirname(out), `.${basename(out)}.partial-${Deno.pid}`));
    await remove(tuningLogTemp(resolve(values["tuning-log"])));
    return;
  }
  const prefixes = [basename(out), basename(out).replace(/\.sir$/, ".safetensors")].map((b) => `${b}.tmp-`);
  try {
    for await (const e of Deno.readDir(dirname(out))) {
      if (prefixes.some((p) => e.name.startsWith(p))) await remove(join(dirname(out), e.name));
    }
  } catch { /* no folder: nothing to remove */ }
}

main(async () => {
  // A replay (--run-reproducer F) is the compile F's header describes.
  const args = await reproducerArgs(Deno.args);
  const { values, positionals } = parseCli(args, COMPILE_OPTIONS);
  if (values.help) return void console.log(USAGE);
  const model = positionals[0];
  const limits = jobLimits(values);
  const input = model === undefined ? undefined : await inputFiles(model);
  // An IR file's weights line may not point the sandbox at any file (see inputFiles).
  if (input?.refused) throw new Deno.errors.PermissionDenied(input.refused);
  const plugins = values.plugin.map((p) => dirname(resolve(p)));
  const stopped = async (why: string) => {
    console.error(`error: ${why}`);
    console.error("nothing was written");
    await removeLeftovers(values);
    return 1;
  };
  // First: what the pipeline's passes declare they read (seeing which model folder has a tokenizer).
  const modelDirs = [...input?.modelDirs ?? []];
  const plan = await runWorker(
    { plan: args, modelDirs },
    {
      read: [...plugins, ...modelDirs.map((d) => join(d, "tokenizer.json"))],
      write: [],
    },
    limits,
    pluginsLabel(values.plugin),
  );
  if ("stopped" in plan) return await stopped(plan.stopped);
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
  const reply = await runWorker({ args }, { read, write }, limits, undefined, (phase, done, total) => {
    if (!bar) return;
    if (done === 0) bar.start(total, 0, { phase });
    else bar.update(done, { phase });
  });
  bar?.stop();
  if ("stopped" in reply) return await stopped(reply.stopped);
  if ("failed" in reply) return await stopped(`the compile job failed: ${reply.failed}`);
  return "code" in reply ? reply.code : 1;
});
