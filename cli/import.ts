/**
 * `deno task import`: writes a model as Sparrow IR plus its safetensors weights.
 *
 * ```sh
 * deno task import synthetic:bert-base -o models/bert-base.sir [--layers N] [--seq N] [--no-head] ...
 * ```
 *
 * Only the synthetic BERTs exist so far; Hugging Face folders and ONNX files come later.
 * Usage mistakes and invalid configs exit with code 2, write failures with 1, each with a
 * one-line `error: ...` on stderr.
 */

import {
  BERT_PRESET_NAMES,
  BERT_PRESETS,
  type BertConfig,
  bertModelName,
  checkBertConfig,
  parseSyntheticSpec,
  SYNTHETIC_PREFIX,
  writeSyntheticBert,
} from "../frontend/synthetic_bert.ts";
import { parseCli, UsageError } from "./common.ts";

const USAGE = `usage: deno task import <model> -o <file.sir> [options]

Writes the model as Sparrow IR to <file.sir> and its weights beside it, as <file>.safetensors.

models (BERTs with seeded random weights, Hugging Face BertForSequenceClassification layout):
${
  BERT_PRESET_NAMES.map((n) => {
    const p = BERT_PRESETS[n];
    const dims = `${p.layers} layers, hidden ${p.hidden}, ${p.heads} heads, intermediate ${p.intermediate}`;
    return `  ${(SYNTHETIC_PREFIX + n).padEnd(22)}${dims}`;
  }).join("\n")
}

options:
  -o, --output FILE     the IR file to write (required)
  --layers N            encoder layers
  --hidden N            hidden size (a multiple of --heads)
  --heads N             attention heads
  --intermediate N      feed-forward size
  --seq N               static sequence length (default 128, at most 512)
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

/** The config the arguments ask for. */
function configFrom(spec: string, values: ReturnType<typeof parseCli<typeof OPTIONS>>["values"]): BertConfig {
  if (!spec.startsWith(SYNTHETIC_PREFIX)) {
    const available = BERT_PRESET_NAMES.map((n) => SYNTHETIC_PREFIX + n).join(", ");
    throw new UsageError(
      `importing '${spec}' is not supported yet (Hugging Face folders and ONNX come later); ` +
        `available: ${available}`,
    );
  }
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
  let config: BertConfig, output: string;
  try {
    const { values, positionals } = parseCli(args, OPTIONS);
    if (values.help) {
      io.out(USAGE);
      return 0;
    }
    if (positionals.length === 0) {
      throw new UsageError("missing the model to import, e.g. synthetic:bert-base");
    }
    if (positionals.length > 1) throw new UsageError(`unexpected argument '${positionals[1]}'`);
    config = configFrom(positionals[0], values);
    if (values.output === undefined || values.output === "") {
      throw new UsageError("missing -o/--output FILE, the IR file to write");
    }
    output = values.output;
    if (output.endsWith(".safetensors")) {
      throw new UsageError(`the output ${output} must be the IR file (e.g. .sir); the weights go beside it`);
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`error: ${e.message}`);
    return 2;
  }
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

if (import.meta.main) Deno.exit(await importMain(Deno.args));
