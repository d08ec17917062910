/**
 * `deno task compile <model.sir> [-o out.sir]`: parses and verifies a model and prints its
 * canonical IR, or writes it. The written IR refers to the same weights file.
 */

import { basename, dirname, join, relative, resolve } from "node:path";
import { loadModule, print, weightsPath } from "../mod.ts";
import { main, parseCli, reportDiagnostics, UsageError, writeTextAtomic } from "./common.ts";

const USAGE = "usage: deno task compile <model.sir> [-o OUT.sir | -o DIR/]";

/** Where `-o` writes: a `.sir` path as is, anything else as a folder. */
async function outputPath(out: string, input: string): Promise<string> {
  const isDir = out.endsWith("/") || (await Deno.stat(out).catch(() => undefined))?.isDirectory;
  return isDir || !out.endsWith(".sir") ? join(out, basename(input)) : out;
}

main(async () => {
  const { values, positionals } = parseCli(Deno.args, {
    output: { type: "string", short: "o" },
    help: { type: "boolean", short: "h" },
  }, USAGE);
  if (values.help) return void console.log(USAGE);
  if (positionals.length !== 1) throw new UsageError(`expected one model file\n${USAGE}`);
  const input = positionals[0];
  const loaded = await loadModule(input);
  if (!loaded.module) {
    reportDiagnostics(loaded.diagnostics, loaded.text);
    return 1;
  }
  const m = loaded.module;
  if (!values.output) return void Deno.stdout.writeSync(new TextEncoder().encode(print(m)));
  const out = await outputPath(values.output, input);
  const weights = weightsPath(m, input);
  if (weights !== undefined) m.weightsFile = relative(dirname(resolve(out)), weights);
  await writeTextAtomic(out, print(m));
  console.error(`wrote ${out}`);
});
