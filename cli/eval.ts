/**
 * `deno task eval <model> --task sst2 --data <tsv> [--limit N] [--seq N] [--tokenizer DIR] [--json FILE]`:
 * runs a BERT sequence classifier (a Hugging Face checkpoint folder or an IR file with its weights, on
 * the reference interpreter; or a compiled artifact folder, on the runtime) over an SST-2 TSV file,
 * row by row, and prints the accuracy, the confusion matrix (rows = label, columns = prediction)
 * and the throughput.
 */

import { join } from "node:path";
import {
  ArtifactError,
  type BertTokenizer,
  EvalError,
  type EvalModel,
  type EvalRunner,
  evaluateSst2,
  HfImportError,
  loadCompiled,
  loadEvalModel,
  loadTokenizer,
  readSst2Tsv,
  TokenizerError,
} from "../mod.ts";
import { main, parseCli, threadsFlag, UsageError, writeTextAtomic } from "./common.ts";

const USAGE = `usage: deno task eval <model> --task sst2 --data DEV.tsv [options]

  <model>            a Hugging Face checkpoint folder, an IR file (.sir), or a compiled artifact folder
                     (deno task compile ... -o DIR), with the tokenizer it carries

  --task sst2        the task (only sst2)
  --data FILE        the SST-2 TSV file (a sentence and a label column)
  --limit N          evaluate only the first N rows
  --seq N            the static sequence length (default: the model's; an artifact's must match)
  --tokenizer DIR    a folder with tokenizer.json (default: the model's folder, or the artifact's own)
  --threads N        threads of a compiled artifact (default: the number of cores)
  --json FILE        also write the results as JSON
  -h, --help         print this help`;

/** A compiled artifact as an eval runner. */
async function compiledRunner(
  dir: string,
  threads: number | undefined,
): Promise<EvalRunner & { close(): void; tokenizer?: BertTokenizer }> {
  let model;
  try {
    model = await loadCompiled(dir, { threads });
  } catch (e) {
    if (e instanceof ArtifactError) throw new UsageError(e.message);
    throw e;
  }
  // Row by row: the batch-1 bucket of the longest length.
  const shapes = model.buckets;
  const shape = shapes.filter((b) => b.batch === 1).sort((a, b) => a.seq - b.seq).at(-1);
  const bucket = shape && model.plan.buckets[shapes.indexOf(shape)];
  const ids = bucket?.inputs.find((t) => t.name === "input_ids");
  const out = bucket?.outputs[0];
  if (!shape || !ids || !out || ids.shape.length !== 2 || out.shape.length !== 2) {
    model.close();
    throw new UsageError(
      `${dir}: not a sequence classifier (inputs [1, S] with input_ids, logits [1, labels])`,
    );
  }
  return {
    seq: ids.shape[1],
    labels: out.shape[1],
    run: (values) => model.run(values, { bucket: shape })[out.name],
    close: () => model.close(),
    tokenizer: model.tokenizer,
  };
}

function positiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(`--${name} must be a positive integer, got '${text}'`);
  }
  return n;
}

main(async () => {
  const { values, positionals } = parseCli(Deno.args, {
    task: { type: "string" },
    data: { type: "string" },
    limit: { type: "string" },
    seq: { type: "string" },
    tokenizer: { type: "string" },
    threads: { type: "string" },
    json: { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) return void console.log(USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one model (folder or .sir file)\n${USAGE}`);
  if (values.task === undefined) throw new UsageError(`--task is required (sst2)`);
  if (values.task !== "sst2") throw new UsageError(`--task '${values.task}' is not supported (sst2)`);
  if (values.data === undefined) throw new UsageError(`--data is required (the SST-2 TSV file)`);
  const limit = positiveInt("limit", values.limit);
  const seq = positiveInt("seq", values.seq);
  const threads = threadsFlag(values.threads);
  const path = positionals[0];
  const compiled = (await Deno.stat(join(path, "plan.json")).catch(() => undefined))?.isFile;

  let closeModel = () => {};
  try {
    const t0 = performance.now();
    let model: EvalModel | EvalRunner;
    let carried: BertTokenizer | undefined;
    if (compiled) {
      const runner = await compiledRunner(path, threads);
      closeModel = runner.close;
      if (seq !== undefined && seq !== runner.seq) {
        throw new UsageError(
          `--seq ${seq} differs from the sequence length ${runner.seq} ${path} was compiled for`,
        );
      }
      model = runner;
      carried = runner.tokenizer;
      if (!carried && values.tokenizer === undefined) {
        throw new UsageError(
          `${path} carries no tokenizer (compiled from a model without one): give --tokenizer DIR (a folder with tokenizer.json)`,
        );
      }
    } else {
      model = await loadEvalModel(path, { seq });
    }
    const tokenizer = values.tokenizer !== undefined || !carried
      ? await loadTokenizer(values.tokenizer ?? (model as EvalModel).tokenizerDir)
      : carried;
    const all = await readSst2Tsv(values.data);
    const rows = limit === undefined ? all : all.slice(0, limit);
    const loadSeconds = (performance.now() - t0) / 1000;
    const tty = Deno.stderr.isTerminal();
    const r = evaluateSst2(model, tokenizer, rows, (done) => {
      if (tty && (done % 10 === 0 || done === rows.length)) {
        Deno.stderr.writeSync(new TextEncoder().encode(`\r${done}/${rows.length}`));
      }
    });
    if (tty) Deno.stderr.writeSync(new TextEncoder().encode("\r\x1b[K"));

    const labels = r.confusion.length;
    const pct = (x: number) => (100 * x).toFixed(2);
    console.log(`${path} on ${values.data}: ${r.rows} of ${all.length} rows, seq ${r.seq}`);
    console.log(`  tokenizer ${tokenizer.source}`);
    console.log(`  accuracy ${pct(r.accuracy)}% (${r.correct} of ${r.rows})`);
    console.log(`  confusion (rows = label, columns = prediction):`);
    const width = Math.max(5, ...r.confusion.flat().map((n) => String(n).length));
    const cell = (s: string | number) => String(s).padStart(width);
    console.log(`    ${cell("")} ${Array.from({ length: labels }, (_, k) => cell(`p${k}`)).join(" ")}`);
    r.confusion.forEach((line, k) => console.log(`    ${cell(`l${k}`)} ${line.map(cell).join(" ")}`));
    console.log(
      `  truncated ${r.truncated} row${r.truncated === 1 ? "" : "s"} longer than ${r.seq} tokens`,
    );
    console.log(
      `  ${r.rowsPerSecond.toFixed(2)} rows/s (${r.seconds.toFixed(2)} s; loading ${
        loadSeconds.toFixed(2)
      } s)`,
    );
    if (values.json) {
      const report = {
        model: path,
        task: "sst2",
        data: values.data,
        tokenizer: tokenizer.source,
        seq: r.seq,
        rows: r.rows,
        totalRows: all.length,
        correct: r.correct,
        accuracy: r.accuracy,
        confusion: r.confusion,
        truncated: r.truncated,
        seconds: r.seconds,
        rowsPerSecond: r.rowsPerSecond,
        preds: r.preds,
        logits: r.logits,
      };
      await writeTextAtomic(values.json, JSON.stringify(report) + "\n");
    }
  } catch (e) {
    if (e instanceof EvalError || e instanceof TokenizerError || e instanceof HfImportError) {
      throw new UsageError(e.message);
    }
    throw e;
  } finally {
    closeModel();
  }
});
