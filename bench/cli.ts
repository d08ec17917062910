/**
 * `deno task bench <name> [options]`: runs one benchmark.
 *
 *   dense    BERT-base: Sparrow's dense artifact against onnxruntime-node and -web, 1 and 2 threads
 *   ir       parse, verify and print speed of the IR (deno bench)
 */

import { denseBench } from "./dense.ts";

const BENCHES: Record<string, (args: string[]) => Promise<void>> = { dense: denseBench };

const [name, ...rest] = Deno.args;
if (name === "ir") {
  const file = new URL("./ir_bench.ts", import.meta.url).pathname;
  const { code } = await new Deno.Command(Deno.execPath(), { args: ["bench", "--allow-read", file, ...rest] }).spawn().status;
  Deno.exit(code);
}
if (!name || !Object.hasOwn(BENCHES, name)) {
  console.error(`usage: deno task bench <${[...Object.keys(BENCHES), "ir"].join("|")}> [options]`);
  Deno.exit(2);
}
await BENCHES[name](rest);
