/**
 * `deno task import`: writes a model as Sparrow IR plus its safetensors weights.
 *
 * ```sh
 * deno task import synthetic:bert-base -o models/bert-base.sir [--layers N] [--seq N] [--no-head] ...
 * deno task import ../shared/models/sst2-bert-mini -o models/mini.sir [--seq N]
 * ```
 *
 * A folder is a Hugging Face BERT checkpoint (`frontend/hf.ts`); a `.onnx` file is imported with
 * `frontend/onnx/import.ts` and then the `recognize` pass turns decomposed LayerNorm and GELU
 * back into IR ops (unless `--no-recognize`).
 * Usage mistakes, invalid configs and checkpoints that cannot be imported exit with code 2,
 * read and write failures with 1, each with a one-line `error: ...` on stderr (a written IR that
 * does not verify, which would be a bug, prints its diagnostics).
 */

import { extname } from "node:path";
import {
  BERT_PRESET_NAMES,
  BERT_PRESETS,
  type BertConfig,
  bertModelName,
  checkBertConfig,
  createPassRegistry,
  HF_ARCHITECTURES,
  HfImportError,
  importHfBert,
  importOnnx,
  memoryStore,
  OnnxImportError,
  type OnnxImportOptions,
  parsePipeline,
  parseSyntheticSpec,
  PassError,
  print,
  runPipeline,
  SYNTHETIC_PREFIX,
  writeSyntheticBert,
} from "../mod.ts";
import { parseCli, UsageError, writeTextAtomic } from "./common.ts";

const USAGE = `usage: deno task import <model> -o <file.sir> [options]

Writes the model as Sparrow IR to <file.sir> and its weights beside it, as <file>.safetensors
(except a checkpoint's single f32 model.safetensors, which the IR names by a relative path).

ONNX models (BERT-family exports of torch.onnx and optimum, opsets 11-17):
  <file.onnx>           options: -o, --seq N and --batch N (default 1) for symbolic dims named like
                        them, --dim NAME=N for any other (repeatable), --no-recognize to keep decomposed
                        LayerNorm/GELU as they are

Hugging Face checkpoints:
  <folder>              config.json + model.safetensors (or shards + model.safetensors.index.json)
                        of a ${HF_ARCHITECTURES.join(", ")};
                        options: -o, --seq (default 128)

synthetic models (BERTs with seeded random weights, Hugging Face BertForSequenceClassification layout):
${
  BERT_PRESET_NAMES.map((n) => {
    const p = BERT_PRESETS[n];
    const dims = `${p.layers} layers, hidden ${p.hidden}, ${p.heads} heads, intermediate ${p.intermediate}`;
    return `  ${(SYNTHETIC_PREFIX + n).padEnd(22)}${dims}`;
  }).join("\n")
}

options (all for synthetic models; -o and --seq also for checkpoints):
  -o, --output FILE     the IR file to write (required)
  --layers N            encoder layers
  --hidden N            hidden size (a multiple of --heads)
  --heads N             attention heads
  --intermediate N      feed-forward size
  --seq N               static sequence length (default 128, at most the position table, 512)
  --seed N              seed of the random weights (default 0)
  --vocab N             vocabulary size (default 30522)
  --labels N            classifier outputs (default 2)
  --no-head             BertModel: no pooler and classifier; returns the last hidden state
  --act erf|tanh        GELU form (default erf)
  -h, --help            show this help`;

/** Where the command writes; the console by default, replaceable in tests. */
export interface ImportIO {
  out(line: string): void;
  err(line: string): void;
}

const consoleIO: ImportIO = { out: (s) => console.log(s), err: (s) => console.error(s) };

const INT_OPTIONS = ["layers", "hidden", "heads", "intermediate", "seq", "seed", "vocab", "labels"] as const;

const OPTIONS = {
  output: { type: "string", short: "o" },
  layers: { type: "string" },
  hidden: { type: "string" },
  heads: { type: "string" },
  intermediate: { type: "string" },
  seq: { type: "string" },
  seed: { type: "string" },
  vocab: { type: "string" },
  labels: { type: "string" },
  "no-head": { type: "boolean" },
  act: { type: "string" },
  batch: { type: "string" },
  dim: { type: "string", multiple: true },
  "no-recognize": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

function intOption(flag: string, text: string, min: number): number {
  const v = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(v) || v < min) {
    const what = min === 0 ? "a non-negative integer" : "a positive integer";
    throw new UsageError(`--${flag} must be ${what}, got '${text}'`);
  }
  return v;
}

type Values = ReturnType<typeof parseCli<typeof OPTIONS>>["values"];

/** The options that only a synthetic model takes (a checkpoint's config.json fixes them). */
const SYNTHETIC_ONLY = [
  "layers",
  "hidden",
  "heads",
  "intermediate",
  "seed",
  "vocab",
  "labels",
  "no-head",
  "act",
] as const;

/** What to import: a synthetic model's config, or a Hugging Face checkpoint folder. */
type Source =
  | { readonly kind: "synthetic"; readonly config: BertConfig }
  | { readonly kind: "hf"; readonly dir: string; readonly seq?: number }
  | {
    readonly kind: "onnx";
    readonly path: string;
    readonly options: OnnxImportOptions;
    readonly recognize: boolean;
  };

/** A failure to look at the model argument (other than its absence); exit code 1. */
class ReadError extends Error {}

/** What the arguments ask to import. */
async function sourceFrom(spec: string, values: Values): Promise<Source> {
  if (spec.startsWith(SYNTHETIC_PREFIX)) return { kind: "synthetic", config: configFrom(spec, values) };
  const onnxOnly = (["batch", "dim", "no-recognize"] as const).find((k) => values[k] !== undefined);
  if (extname(spec).toLowerCase() === ".onnx") return onnxSource(spec, values);
  if (onnxOnly !== undefined) throw new UsageError(`--${onnxOnly} is for ONNX models`);
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(spec);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      throw new ReadError(`cannot read ${spec}: ${(e as Error).message}`);
    }
  }
  const available = BERT_PRESET_NAMES.map((n) => SYNTHETIC_PREFIX + n).join(", ");
  if (!info?.isDirectory) {
    const what = info ? "a file" : "no such folder";
    throw new UsageError(
      `cannot import '${spec}': ${what} (other sources are not supported yet); ` +
        `expected a Hugging Face checkpoint folder or one of ${available}`,
    );
  }
  const synthetic = SYNTHETIC_ONLY.find((k) => values[k] !== undefined);
  if (synthetic !== undefined) {
    throw new UsageError(`--${synthetic} is for synthetic models; a checkpoint's config.json fixes it`);
  }
  return {
    kind: "hf",
    dir: spec,
    seq: values.seq === undefined ? undefined : intOption("seq", values.seq, 1),
  };
}

/** An ONNX import the arguments ask for. */
function onnxSource(path: string, values: Values): Source {
  const synthetic = SYNTHETIC_ONLY.find((k) => values[k] !== undefined);
  if (synthetic !== undefined) throw new UsageError(`--${synthetic} is for synthetic models`);
  const dims: Record<string, number> = {};
  for (const d of values.dim ?? []) {
    const m = /^([^=]+)=(.*)$/.exec(d);
    if (!m) throw new UsageError(`--dim takes NAME=N, got '${d}'`);
    dims[m[1]] = intOption(`dim ${m[1]}`, m[2], 1);
  }
  const options: OnnxImportOptions = {
    seq: values.seq === undefined ? undefined : intOption("seq", values.seq, 1),
    batch: values.batch === undefined ? undefined : intOption("batch", values.batch, 1),
    dims,
  };
  return { kind: "onnx", path, options, recognize: !values["no-recognize"] };
}

/** The config of a synthetic model the arguments ask for. */
function configFrom(spec: string, values: Values): BertConfig {
  let config: BertConfig;
  try {
    config = parseSyntheticSpec(spec);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const overrides: Record<string, unknown> = {};
  for (const key of INT_OPTIONS) {
    const text = values[key];
    if (text !== undefined) overrides[key] = intOption(key, text, key === "seed" ? 0 : 1);
  }
  if (values["no-head"]) overrides.head = false;
  if (values.act !== undefined) {
    if (values.act !== "erf" && values.act !== "tanh") {
      throw new UsageError(`--act must be erf or tanh, got '${values.act}'`);
    }
    overrides.act = values.act;
  }
  config = { ...config, ...overrides };
  const problems = checkBertConfig(config);
  if (problems.length > 0) throw new UsageError(problems.join("; "));
  return config;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function formatCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n);
}

/** Runs the command; returns the exit code. */
export async function importMain(args: string[], io: ImportIO = consoleIO): Promise<number> {
  let source: Source, output: string;
  try {
    const { values, positionals } = parseCli(args, OPTIONS);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length === 0) {
      throw new UsageError("missing the model to import, e.g. synthetic:bert-base or a Hugging Face folder");
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    source = await sourceFrom(positionals[0], values);
    if (values.output === undefined || values.output === "") {
      throw new UsageError("missing -o/--output FILE, the IR file to write");
    }
    output = values.output;
    if (output.endsWith(".safetensors")) {
      throw new UsageError(`the output ${output} must be the IR file (e.g. .sir); the weights go beside it`);
    }
  } catch (e) {
    if (e instanceof ReadError) {
      io.err(`error: ${e.message}`);
      return 1;
    }
    if (!(e instanceof UsageError)) throw e;
    io.err(`error: ${e.message}`);
    return 2;
  }
  if (source.kind === "onnx") {
    return await importOnnxFile(source.path, output, source.options, source.recognize, io);
  }
  return source.kind === "hf"
    ? await importHf(source.dir, output, source.seq, io)
    : await importSynthetic(source.config, output, io);
}

/** Imports an ONNX file, then runs `recognize` over it: exit 2 for what cannot be imported, 1 for I/O. */
async function importOnnxFile(
  path: string,
  output: string,
  options: OnnxImportOptions,
  recognize: boolean,
  io: ImportIO,
): Promise<number> {
  const start = performance.now();
  try {
    const r = await importOnnx(path, output, options);
    let note = "";
    if (recognize) {
      const pipeline = parsePipeline("recognize", createPassRegistry());
      const result = runPipeline(r.module, pipeline, { weights: memoryStore(r.weights) });
      const counts = result.stats.map((s) => `${s.doc}: ${s.value}`).join(", ");
      if (result.runs.some((run) => run.changed)) await writeTextAtomic(r.irPath, print(result.module));
      note = `; recognize: ${counts || "nothing to rewrite"}`;
    }
    const seconds = ((performance.now() - start) / 1000).toFixed(1);
    io.out(
      `wrote ${r.module.name} (opset ${r.opset}, ${r.nodes} nodes, ${r.folded} folded, ${
        formatCount(r.params)
      } ` +
        `params): ${r.irPath} + ${r.weightsPath} in ${seconds} s${note}`,
    );
    return 0;
  } catch (e) {
    if (e instanceof OnnxImportError || e instanceof PassError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    io.err(`error: cannot import ${path}: ${(e as Error).message}`);
    return 1;
  }
}

async function importSynthetic(config: BertConfig, output: string, io: ImportIO): Promise<number> {
  const start = performance.now();
  try {
    const w = await writeSyntheticBert(config, output);
    const seconds = ((performance.now() - start) / 1000).toFixed(1);
    io.out(
      `wrote ${bertModelName(config)} (${
        formatCount(w.params)
      } params, seq ${config.seq}, seed ${config.seed}): ` +
        `${w.irPath} (${formatBytes(w.irBytes)}) + ${w.weightsPath} (${formatBytes(w.weightsBytes)}) ` +
        `in ${seconds} s`,
    );
    return 0;
  } catch (e) {
    io.err(`error: cannot write ${output}: ${(e as Error).message}`);
    return 1;
  }
}

/** Imports a Hugging Face checkpoint: exit 2 for what cannot be imported, 1 for read and write failures. */
async function importHf(dir: string, output: string, seq: number | undefined, io: ImportIO): Promise<number> {
  const start = performance.now();
  try {
    const r = await importHfBert(dir, output, { seq });
    const seconds = ((performance.now() - start) / 1000).toFixed(1);
    const weights = r.wroteWeights
      ? `${r.weightsPath} (${formatBytes((await Deno.stat(r.weightsPath)).size)}, ` +
        `from ${r.shards} file${r.shards === 1 ? "" : "s"}, f32)`
      : `${r.weightsFile} (the checkpoint's, referenced)`;
    io.out(
      `wrote ${r.module.name} (${r.architecture}, ${formatCount(r.params)} params, seq ${r.config.seq}): ` +
        `${r.irPath} (${formatBytes(r.irBytes)}) + ${weights} in ${seconds} s`,
    );
    if (r.unused.length > 0) {
      const shown = r.unused.slice(0, 3).join(", ") + (r.unused.length > 3 ? ", ..." : "");
      io.out(
        `${r.unused.length} checkpoint tensor${r.unused.length === 1 ? " is" : "s are"} not used: ${shown}`,
      );
    }
    return 0;
  } catch (e) {
    if (e instanceof HfImportError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    const message = (e as Error).message;
    io.err(message.includes("\n") ? `error: ${message}` : `error: cannot import ${dir}: ${message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await importMain(Deno.args));
