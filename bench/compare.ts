/**
 * `deno task bench compare DIR... [--threads N] [--repeat N] [--warmup N] [--pause MS]`: times compiled artifacts
 * side by side (each loaded once, then one run of each per round, rounds interleaved so drift
 * hits all alike, with a `--pause` (default 20 ms) before each run so the last model's spinning
 * worker threads have gone to sleep; 0 runs back to back) and prints the median, min and max per artifact and its ratio to the first.
 * Inputs are token id 1 everywhere (no kernel's time depends on the values). For A/B tests of
 * a compiler change: compile the same model before and after, then compare the two folders.
 */

import { parseArgs } from "node:util";
import { loadCompiled } from "../mod.ts";
import { summarize } from "./stats.ts";
import { positiveInt } from "./table1/args.ts";

/** Runs the comparison with command-line `args`. */
export async function compareBench(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      threads: { type: "string", default: "1" },
      repeat: { type: "string", default: "50" },
      warmup: { type: "string", default: "3" },
      pause: { type: "string", default: "20" },
    },
  });

  const threads = positiveInt("threads", values.threads);
  const repeat = positiveInt("repeat", values.repeat);
  const warmup = positiveInt("warmup", values.warmup, 0);
  const pause = positiveInt("pause", values.pause, 0);
  const settle = () => pause > 0 ? new Promise((ok) => setTimeout(ok, pause)) : Promise.resolve();
  if (positionals.length === 0) {
    throw new Error("usage: deno task bench compare DIR... [--threads N] [--repeat N]");
  }
  const models = [];
  try {
    for (const dir of positionals) models.push(await loadCompiled(dir, { threads }));
    const feeds = models.map((m) =>
      Object.fromEntries(
        m.plan.buckets[0].inputs.map((t) => [
          t.name,
          new BigInt64Array(t.shape.reduce((a, b) => a * b, 1)).fill(1n),
        ]),
      )
    );
    for (let i = 0; i < warmup; i++) models.forEach((m, k) => m.run(feeds[k]));
    const times: number[][] = models.map(() => []);
    for (let r = 0; r < repeat; r++) {
      for (let k = 0; k < models.length; k++) {
        await settle();
        const t = performance.now();
        models[k].run(feeds[k]);
        times[k].push(performance.now() - t);
      }
    }
    const stats = times.map(summarize);
    const width = Math.max(...positionals.map((d) => d.length));
    console.log(
      `${threads} thread${
        threads > 1 ? "s" : ""
      }, ${repeat} interleaved rounds, ${pause} ms pause before each run (ms)`,
    );
    positionals.forEach((d, k) => {
      const s = stats[k];
      console.log(
        `${d.padEnd(width)}  median ${s.median.toFixed(3)}  min ${s.min.toFixed(3)}  max ${
          s.max.toFixed(3)
        }  ` +
          `x${(s.median / stats[0].median).toFixed(3)}`,
      );
    });
  } finally {
    for (const m of models) m.close();
  }
}
