/**
 * `deno task compile <model.sir> [--passes PIPELINE] [--plugin FILE]... [-o out.sir]`.
 *
 * Passes and plugins run in a worker with the narrowest permissions that work: it may read
 * the model, its weights file, the plugins' folders and the output and dump folders, and
 * write only the output and dump folders; no network, environment, subprocesses or FFI. This launcher works out those paths
 * from the arguments (reading only the model's header line for its weights file) and starts
 * the job (`cli/compile_job.ts`) in that worker.
 */

import { basename, dirname, join, resolve } from "node:path";
import cliProgress from "cli-progress";
import process from "node:process";
import { parse, weightsPath } from "../mod.ts";
import { main, parseCli } from "./common.ts";
import { COMPILE_OPTIONS, USAGE } from "./compile_job.ts";

/** The weights file a model names, if it can be read and parsed. */
async function modelWeights(model: string): Promise<string[]> {
  const text = await Deno.readTextFile(model).catch(() => undefined);
  const m = text === undefined ? undefined : parse(text, { file: model }).module;
  const w = m && weightsPath(m, model);
  return w ? [w] : [];
}

/** What the job may read and write, from its arguments. */
async function grants(args: string[]): Promise<{ read: string[]; write: string[] }> {
  const { values, positionals } = parseCli(args, COMPILE_OPTIONS);
  const model = positionals[0];
  const out = values.output;
  const artifact = out !== undefined && !out.endsWith(".sir");
  const write = [
    ...(out && !artifact ? [dirname(resolve(out))] : []),
    // An artifact is written to a staging folder beside it, then renamed into place.
    ...(out && artifact
      ? [resolve(out), join(dirname(resolve(out)), `.${basename(resolve(out))}.partial-${Deno.pid}`)]
      : []),
    ...(values["dump-dir"] ? [resolve(values["dump-dir"])] : []),
    ...(values["emit-kernels"] ? [resolve(values["emit-kernels"])] : []),
    ...(values.report ? [dirname(resolve(values.report))] : []),
    ...(artifact ? [resolve(values["tuning-log"])] : []),
  ];
  const read = [
    ...(model ? [resolve(model), ...(await modelWeights(model))] : []),
    ...values.plugin.map((p) => dirname(resolve(p))),
    ...write,
  ];
  // prune-reconstruct reads calibration sentences (unless `random`) and a tokenizer folder.
  if (/\bprune-reconstruct\b/.test(values.passes)) {
    const option = (name: string) => {
      const m = new RegExp(`\\b${name}=("(?:[^"\\\\]|\\\\.)*"|[^\\s,}]+)`).exec(values.passes)?.[1];
      return m?.startsWith('"') ? JSON.parse(m) as string : m;
    };
    const data = option("calibration-data") ?? "../shared/data/sst2/train.tsv"; // the pass's default
    const given = option("tokenizer");
    const dirs = given
      ? [resolve(given)]
      : model
      ? [model, ...(await modelWeights(model))].map((f) => dirname(resolve(f)))
      : [];
    if (data !== "random") {
      read.push(
        resolve(data),
        ...dirs.flatMap((d) => [join(d, "tokenizer.json"), join(d, "tokenizer_config.json")]),
      );
    }
  }
  return { read, write };
}

main(async () => {
  const args = Deno.args;
  const { values } = parseCli(args, COMPILE_OPTIONS);
  if (values.help) return void console.log(USAGE);
  const { read, write } = await grants(args);
  const worker = new Worker(new URL("./compile_worker.ts", import.meta.url), {
    type: "module",
    deno: {
      permissions: {
        read,
        write,
        net: false,
        env: false,
        run: false,
        ffi: false,
        sys: ["cpus"],
        import: false,
      },
    },
  } as WorkerOptions);
  const bar = Deno.stderr.isTerminal()
    ? new cliProgress.SingleBar({
      format: "compiling [{bar}] {phase}",
      stream: process.stderr,
      clearOnComplete: true,
    })
    : undefined;
  const code = await new Promise<number>((done) => {
    worker.postMessage({ args });
    worker.onmessage = (
      e: MessageEvent<{ code: number } | { phase: string; done: number; total: number }>,
    ) => {
      if ("phase" in e.data) {
        if (!bar) return;
        if (e.data.done === 0) bar.start(e.data.total, 0, { phase: e.data.phase });
        else bar.update(e.data.done, { phase: e.data.phase });
        return;
      }
      bar?.stop();
      done(e.data.code);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      console.error(`error: the compile job failed: ${e.message}`);
      done(1);
    };
  });
  worker.terminate();
  return code;
});
