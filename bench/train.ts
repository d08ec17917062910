/**
 * `deno task bench train`: training speed, samples/s, of sst2-bert-mini at batch 32 and S=64:
 * Sparrow's trainer (gradients from the IR's autodiff, compiled to wasm kernels by
 * `compiledBertLossAndGrads` at each thread count of `--threads`, and with `--interpreter` also on the
 * reference interpreter; AdamW) beside PyTorch on CPU (Debian's python3-torch;
 * `bench/train_torch.py`) training the same model on the same batches with the same optimizer, in
 * the same run.
 *
 * Both run every batch at the full length S (no length buckets), so they do the same work; the
 * rows are a seeded sample of the training TSV, tokenized once here and handed to the torch script
 * as ids and masks. The first `--warmup` steps of each are not timed (Sparrow builds and compiles
 * its backward function then). Sparrow compiled and PyTorch run once per thread count of
 * `--threads`; the interpreter uses one thread. The losses of the first steps are printed side by side: the two run the same model
 * on the same batches, so they agree.
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  AdamW,
  bertLossAndGrads,
  compiledBertLossAndGrads,
  encodeRows,
  loadBert,
  type LossAndGrads,
  makeBatch,
  readSst2Tsv,
  shuffled,
  writeFileAtomic,
} from "../mod.ts";
import { machineInfo } from "./table1/machine.ts";

const USAGE = `usage: deno task bench train [options]

  --model DIR        the checkpoint (default ../shared/models/sst2-bert-mini)
  --data FILE        training TSV (default ../shared/data/sst2/train.tsv)
  --batch N          rows per batch (default 32)
  --seq N            sequence length (default 64)
  --steps N          Sparrow's timed steps (default 3)
  --torch-steps N    PyTorch's timed steps (default 10)
  --warmup N         untimed steps first, each engine (default 1)
  --threads LIST     PyTorch thread counts (default 1,2)
  --python PATH      the Python with torch (default /usr/bin/python3)
  --no-torch         Sparrow only
  --interpreter      also time Sparrow's steps on the reference interpreter (about 30-140 s a step)
  --out DIR          where the batches and results go (default out/bench/train)`;

/** Runs the benchmark with command-line `args`. */
export async function trainBench(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      model: { type: "string", default: "../shared/models/sst2-bert-mini" },
      data: { type: "string", default: "../shared/data/sst2/train.tsv" },
      batch: { type: "string", default: "32" },
      seq: { type: "string", default: "64" },
      steps: { type: "string", default: "3" },
      "torch-steps": { type: "string", default: "10" },
      warmup: { type: "string", default: "1" },
      threads: { type: "string", default: "1,2" },
      python: { type: "string", default: "/usr/bin/python3" },
      "no-torch": { type: "boolean" },
      interpreter: { type: "boolean" },
      out: { type: "string", default: "out/bench/train" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return void console.log(USAGE); // (bench/cli.ts prints its own help first)
  const int = (name: string, text: string, min: number) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min) {
      throw new Error(`--${name} must be an integer >= ${min}, got '${text}'`);
    }
    return n;
  };
  const B = int("batch", values.batch, 1), S = int("seq", values.seq, 3);
  const steps = int("steps", values.steps, 1), torchSteps = int("torch-steps", values["torch-steps"], 1);
  const warmup = int("warmup", values.warmup, 0);
  const threads = values.threads.split(",").map((t) => int("threads", t, 1));

  const model = await loadBert(values.model, { seq: S });
  const rows = await readSst2Tsv(values.data);
  const n = (warmup + Math.max(steps, torchSteps)) * B;
  const picked = shuffled(rows.length, 1).slice(0, n).map((i) => rows[i % rows.length]);
  const examples = encodeRows(picked, model.tokenizer, S);
  const batches = Array.from({ length: n / B }, (_, k) => makeBatch(examples.slice(k * B, (k + 1) * B)));
  await Deno.mkdir(values.out, { recursive: true });
  const batchFile = join(values.out, `batches-${B}x${S}.json`);
  await writeFileAtomic(
    batchFile,
    JSON.stringify({
      batch: B,
      seq: S,
      batches: batches.map((b) => ({ ids: [...b.ids], mask: [...b.mask], labels: [...b.labels] })),
    }),
  );

  // Sparrow: the loss and gradients at the full length S, then AdamW, as train() steps, each
  // engine from the same starting weights.
  const initial = new Map([...model.weights].map(([k, v]) => [k, v.slice()]));
  const runSparrow = async (
    engine: string,
    lossAndGrads: LossAndGrads,
  ) => {
    for (const [k, v] of initial) model.weights.get(k)!.set(v);
    const opt = new AdamW(model.weights, { weightDecay: 0.01 });
    const losses: number[] = [], times: number[] = [];
    for (let t = 0; t < warmup + steps; t++) {
      const t0 = performance.now();
      const { loss, grads } = await lossAndGrads(model.weights, batches[t]);
      opt.step(grads, 5e-5);
      const dt = (performance.now() - t0) / 1000;
      losses.push(loss);
      if (t >= warmup) times.push(dt);
      console.error(`${engine} step ${t + 1}/${warmup + steps}: ${dt.toFixed(2)} s, loss ${loss.toFixed(4)}`);
    }
    const seconds = times.reduce((a, b) => a + b, 0);
    return {
      engine,
      batch: B,
      seq: S,
      steps,
      warmup,
      seconds,
      seconds_per_step: seconds / steps,
      samples_per_s: B * steps / seconds,
      losses,
    };
  };
  const sparrows = [];
  for (const th of threads) {
    const compiled = compiledBertLossAndGrads(model, { buckets: false, threads: th });
    try {
      sparrows.push(await runSparrow(`sparrow compiled, ${th} thread${th > 1 ? "s" : ""}`, compiled));
    } finally {
      compiled.close();
    }
  }
  if (values.interpreter) {
    sparrows.push(
      await runSparrow("sparrow interpreter, 1 thread", bertLossAndGrads(model, { buckets: false })),
    );
  }
  const sparrow = sparrows[0];

  const torch: Record<string, unknown>[] = [];
  if (!values["no-torch"]) {
    for (const th of threads) {
      const r = await new Deno.Command(values.python, {
        args: [
          new URL("./train_torch.py", import.meta.url).pathname,
          "--model",
          values.model,
          "--batches",
          batchFile,
          "--steps",
          String(torchSteps),
          "--warmup",
          String(warmup),
          "--threads",
          String(th),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(r.stdout).trim();
      if (!r.success) {
        throw new Error(
          `train_torch.py failed: ${new TextDecoder().decode(r.stderr).trim().split("\n").at(-1)}`,
        );
      }
      torch.push(JSON.parse(text.split("\n").at(-1)!));
    }
  }

  console.log(
    `training samples/s, ${model.dir}, batch ${B}, S=${S} (the same batches; full length, no buckets)`,
  );
  for (const sp of sparrows) {
    console.log(
      `  ${sp.engine}: ${sp.samples_per_s.toFixed(2)} samples/s (${sp.seconds_per_step.toFixed(3)} s/step, ` +
        `${steps} timed steps)`,
    );
  }
  for (const t of torch) {
    const same = sparrows.find((sp) => sp.engine.startsWith(`sparrow compiled, ${t.threads} thread`));
    console.log(
      `  pytorch, ${t.threads} thread(s): ${(t.samples_per_s as number).toFixed(2)} samples/s (${
        (t.seconds_per_step as number).toFixed(3)
      } s/step, torch ${t.torch})` +
        (same
          ? `: Sparrow compiled at ${t.threads} thread(s) is ${
            (same.samples_per_s / (t.samples_per_s as number)).toFixed(2)
          }x PyTorch`
          : ""),
    );
  }
  const sparrowLosses = sparrow.losses;
  const common = Math.min(sparrowLosses.length, ...torch.map((t) => (t.losses as number[]).length));
  if (torch.length > 0) {
    const worst = Math.max(
      ...Array.from(
        { length: common },
        (_, i) => Math.abs(sparrowLosses[i] - (torch[0].losses as number[])[i]),
      ),
    );
    console.log(`  losses of the first ${common} steps: max |sparrow - pytorch| ${worst.toExponential(2)}`);
  }
  const result = { machine: await machineInfo(), sparrow: sparrows, pytorch: torch };
  const out = join(values.out, "train.json");
  await writeFileAtomic(out, JSON.stringify(result, null, 2) + "\n");
  console.log(`  wrote ${out}`);
}
