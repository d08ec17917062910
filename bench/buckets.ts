/**
 * `deno task bench buckets`: text classification throughput of sst2-bert-mini on the SST-2 dev
 * rows, in rows per second: one artifact with sequence-length buckets (every 8 tokens to 64, and 128) against
 * one of fixed length 64, each at batch 1 and batch 8, in Deno, in Node and in headless Chromium,
 * beside onnxruntime-web in the same page on the same model exported to ONNX by Sparrow (length
 * 64, batch 1 and 8), all in one run. Every configuration's predictions are checked against the
 * checkpoint's golden predictions first-hand (the count that agrees is in the table).
 *
 * Sparrow's times cover `classify` (tokenizing included); onnxruntime-web's cover its runs only
 * (its inputs are tokenized and built before the clock starts).
 */

import { parseArgs } from "node:util";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  compile,
  type CompileResult,
  exportOnnx,
  loadCompiled,
  readSst2Tsv,
  specializeShapes,
  writeArtifact,
} from "../mod.ts";
import { machineInfo } from "./table1/machine.ts";
import type { BrowserConfig } from "./buckets/browser.ts";
import { median, timeSparrow } from "./buckets/web/timing.js";

const SHARED = fileURLToPath(new URL("../../shared/", import.meta.url));
const MINI = join(SHARED, "models/sst2-bert-mini");
const DEV = join(SHARED, "data/sst2/dev.tsv");
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const HERE = fileURLToPath(new URL("./buckets/", import.meta.url));

/** The shapes compiled: the fixed artifact's length, the buckets' lengths, the batch sizes. */
const FIXED_SEQ = 64;
const BUCKET_SEQS = [8, 16, 24, 32, 40, 48, 56, 64, 128];
const BATCHES = [1, 8];

/** One timed configuration. */
interface Result {
  host: string;
  threads: number;
  name: string;
  batch: number;
  ms: number[];
  predictions: number[];
}

/** Runs deno with `args` from the repository root; throws with its stderr when it fails. */
async function deno(args: string[]): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
  })
    .output();
  if (!r.success) throw new Error(`deno ${args.join(" ")} failed:\n${new TextDecoder().decode(r.stderr)}`);
  return new TextDecoder().decode(r.stdout);
}

/** Where Deno's npm cache holds a package. */
async function npmPackageDir(spec: string): Promise<string> {
  const info = JSON.parse(await deno(["info", "--json", `npm:${spec}`]));
  const dir = info.npmPackages?.[spec]?.localPath;
  if (typeof dir !== "string") throw new Error(`npm:${spec} is not in Deno's cache`);
  return dir;
}

/** Compiles sst2-bert-mini at `seq` and the batch sizes, written to `dir`. */
async function artifact(seq: number | number[], dir: string): Promise<CompileResult> {
  const result = await compile(MINI, { seq, batch: BATCHES, log: () => {} });
  await writeArtifact(result, dir);
  return result;
}

/** The model of `fixed` (length 64) exported to ONNX at each batch size, into `dir`. */
async function exportModels(fixed: CompileResult, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const batch of BATCHES) {
    const module = batch === 1 ? fixed.module : specializeShapes(fixed.module, { batch, seq: FIXED_SEQ });
    await Deno.writeFile(join(dir, `b${batch}.onnx`), exportOnnx(module, fixed.weights).bytes);
  }
}

/** Token ids and masks of every sentence at length 64, for onnxruntime-web. */
async function feeds(fixedDir: string, sentences: string[]): Promise<{ ids: number[]; mask: number[] }> {
  const model = await loadCompiled(fixedDir, { threads: 1 });
  try {
    const ids: number[] = [], mask: number[] = [];
    for (const s of sentences) {
      const t = model.tokenizer!.encode(s);
      if (t.length > FIXED_SEQ) throw new Error(`a dev sentence has ${t.length} tokens, over ${FIXED_SEQ}`);
      for (let i = 0; i < FIXED_SEQ; i++) {
        ids.push(i < t.length ? t[i] : model.tokenizer!.padId);
        mask.push(i < t.length ? 1 : 0);
      }
    }
    return { ids, mask };
  } finally {
    model.close();
  }
}

/** Times the artifacts in this Deno process. */
async function denoHost(
  dirs: Record<string, string>,
  sentences: string[],
  threads: number[],
  repeat: number,
) {
  const results: Result[] = [];
  for (const t of threads) {
    const models = [];
    for (const [name, dir] of Object.entries(dirs)) {
      models.push({ name, model: await loadCompiled(dir, { threads: t }) });
    }
    results.push(
      ...timeSparrow(models, sentences, BATCHES, repeat).map((r: Omit<Result, "host" | "threads">) => ({
        host: "deno",
        threads: t,
        ...r,
      })),
    );
    for (const { model } of models) model.close();
  }
  return results;
}

/** Times the artifacts in a real `node` process, with the runtime package `deno task build` makes. */
async function nodeHost(
  work: string,
  dirs: Record<string, string>,
  sentencesFile: string,
  threads: number[],
  repeat: number,
) {
  const pkg = join(work, "node_modules", "@sparrow", "runtime");
  await deno(["task", "build", "--out", pkg]);
  await copyFile(join(HERE, "node_bench.mjs"), join(work, "node_bench.mjs"));
  await copyFile(join(HERE, "web", "timing.js"), join(work, "timing.mjs"));
  const results: Result[] = [];
  for (const t of threads) {
    const config = join(work, `node-${t}.json`);
    const artifacts = Object.entries(dirs).map(([name, dir]) => ({ name, dir }));
    await Deno.writeTextFile(
      config,
      JSON.stringify({ artifacts, sentences: sentencesFile, threads: t, batches: BATCHES, repeat }),
    );
    const r = await new Deno.Command("node", { args: ["node_bench.mjs", config], cwd: work, stdin: "null" })
      .output();
    if (!r.success) throw new Error(`node failed:\n${new TextDecoder().decode(r.stderr)}`);
    const ran = JSON.parse(new TextDecoder().decode(r.stdout)) as Omit<Result, "host" | "threads">[];
    results.push(...ran.map((x) => ({ host: "node", threads: t, ...x })));
  }
  return results;
}

/** Times the artifacts and onnxruntime-web in headless Chromium (bench/buckets/browser.ts). */
async function chromiumHost(
  work: string,
  folders: Record<string, string>,
  threads: number[],
  repeat: number,
  ort: boolean,
) {
  const bundle = join(work, "web-runtime");
  await deno(["task", "build", "--target", "browser", "--out", bundle]);
  const config: BrowserConfig = {
    folders: { ...folders, "/runtime/": bundle },
    artifacts: ["fixed", "buckets"],
    threads,
    batches: BATCHES,
    repeat,
    ort,
    seq: FIXED_SEQ,
  };
  const file = join(work, "browser.json");
  await Deno.writeTextFile(file, JSON.stringify(config));
  return JSON.parse(await deno(["run", "--allow-all", join(HERE, "browser.ts"), file])) as Result[];
}

/** `deno task bench buckets [--threads 1,2] [--repeat N] [--limit N] [--no-node] [--no-browser] [--no-web] [--out DIR]`. */
export async function bucketsBench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      threads: { type: "string", default: "1,2" },
      repeat: { type: "string", default: "3" },
      limit: { type: "string" },
      out: { type: "string", default: "out/bench/buckets" },
      "no-node": { type: "boolean" },
      "no-browser": { type: "boolean" },
      "no-web": { type: "boolean" },
    },
  });
  const threads = values.threads.split(",").map(Number);
  const repeat = Number(values.repeat);
  if (
    threads.some((t) => !Number.isInteger(t) || t < 1 || t > 16) || !(Number.isInteger(repeat) && repeat >= 1)
  ) {
    throw new Error("--threads must list integers from 1 to 16 and --repeat be a positive integer");
  }
  const out = resolve(values.out);
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const rows = (await readSst2Tsv(DEV)).slice(0, values.limit ? Number(values.limit) : undefined);
  const sentences = rows.map((r) => r.sentence);
  const golden = (await Deno.readTextFile(join(MINI, "golden_dev.jsonl"))).trim().split("\n")
    .map((l) => JSON.parse(l).pred as number);

  console.error(
    `compiling sst2-bert-mini: fixed length ${FIXED_SEQ} and buckets ${BUCKET_SEQS}, batch ${BATCHES}`,
  );
  const dirs = { fixed: join(out, "fixed"), buckets: join(out, "buckets") };
  const fixed = await artifact(FIXED_SEQ, dirs.fixed);
  await artifact(BUCKET_SEQS, dirs.buckets);
  const data = join(out, "data");
  await mkdir(data, { recursive: true });
  const sentencesFile = join(data, "sentences.json");
  await Deno.writeTextFile(sentencesFile, JSON.stringify(sentences));
  const ort = !values["no-web"] && !values["no-browser"];
  if (ort) {
    await exportModels(fixed, join(out, "onnx"));
    await Deno.writeTextFile(join(data, "feeds.json"), JSON.stringify(await feeds(dirs.fixed, sentences)));
  }

  const results: Result[] = [];
  console.error(`timing in Deno (threads ${threads}, ${repeat} passes over ${sentences.length} rows)`);
  results.push(...await denoHost(dirs, sentences, threads, repeat));
  if (!values["no-node"]) {
    console.error("timing in Node");
    results.push(...await nodeHost(join(out, "node"), dirs, sentencesFile, threads, repeat));
  }
  if (!values["no-browser"]) {
    console.error("timing in Chromium");
    const folders: Record<string, string> = { "/artifacts/": out, "/data/": data };
    if (ort) {
      folders["/onnx/"] = join(out, "onnx");
      folders["/ort/"] = join(await npmPackageDir("onnxruntime-web@1.30.0"), "dist");
    }
    results.push(...await chromiumHost(out, folders, threads, repeat, ort));
  }

  const rate = (r: Result | undefined) => r && sentences.length / (median(r.ms) / 1000);
  const agree = (r: Result) => r.predictions.filter((p, i) => p === golden[i]).length;
  const find = (host: string, t: number, name: string, batch: number) =>
    results.find((r) => r.host === host && r.threads === t && r.name === name && r.batch === batch);
  const f = (v: number | undefined, digits = 0) => v === undefined ? "-" : v.toFixed(digits);
  const machine = await machineInfo();
  const lines = [
    `sst2-bert-mini, ${sentences.length} SST-2 dev rows, rows/s (median of ${repeat} passes); ${
      machine.cpu ?? ""
    }`,
    "",
    "| host | threads | batch | fixed S=64 | buckets | buckets / fixed | onnxruntime-web S=64 | buckets / ort-web | agree with goldens (fixed, buckets, ort-web) |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const host of ["deno", "node", "chromium"]) {
    for (const t of threads) {
      for (const batch of BATCHES) {
        const [a, b, w] = [
          find(host, t, "fixed", batch),
          find(host, t, "buckets", batch),
          find(host, t, "onnxruntime-web", batch),
        ];
        if (!a || !b) continue;
        lines.push(
          `| ${host} | ${t} | ${batch} | ${f(rate(a))} | ${f(rate(b))} | ${f(rate(b)! / rate(a)!, 2)} | ${
            f(rate(w))
          } | ${w ? f(rate(b)! / rate(w)!, 2) : "-"} | ${
            [a, b, w].map((r) => r ? agree(r) : "-").join(", ")
          } / ${sentences.length} |`,
        );
      }
    }
  }
  console.log(lines.join("\n"));
  await Deno.writeTextFile(
    join(out, "results.json"),
    JSON.stringify(
      {
        machine,
        rows: sentences.length,
        repeat,
        results: results.map(({ predictions: _, ...r }) => r),
      },
      null,
      1,
    ) + "\n",
  );
  console.error(`wrote ${join(out, "results.json")}`);
}
