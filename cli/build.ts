/**
 * `deno task build [--out DIR]`: bundles the runtime for Node (20 and later) into one
 * self-contained ES module and its worker entry, with a package.json, so a Node service can
 * `import { loadCompiled } from "@sparrow/runtime"` (default DIR: `dist/node`). The runtime is the
 * only code an artifact needs; it is bundled with `deno bundle`.
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main, parseCli, UsageError } from "./common.ts";

const USAGE = "usage: deno task build [--out DIR]   (default dist/node)";

/** The runtime sources to bundle: the Node entry and its worker entry, and the files they become. */
const ENTRIES = [
  { source: "../runtime/node.ts", output: "sparrow-runtime.mjs" },
  { source: "../runtime/worker_node.ts", output: "worker.mjs" },
] as const;

/** The version of the bundled runtime's package: the repository's. */
async function version(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(fileURLToPath(new URL("../deno.json", import.meta.url))));
  return config.version;
}

/** Bundles the Node runtime into `out`. */
export async function buildNodeRuntime(out: string): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  for (const e of ENTRIES) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform=deno",
        fileURLToPath(new URL(e.source, import.meta.url)),
        "-o",
        join(out, e.output),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!r.success) {
      throw new UsageError(`deno bundle ${e.source}: ${new TextDecoder().decode(r.stderr).trim()}`);
    }
  }
  const pkg = {
    name: "@sparrow/runtime",
    version: await version(),
    description: "Runs Sparrow's compiled artifacts: wasm SIMD kernels on worker_threads.",
    license: "MIT",
    type: "module",
    engines: { node: ">=20" },
    exports: { ".": "./sparrow-runtime.mjs" },
  };
  await Deno.writeTextFile(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
}

if (import.meta.main) {
  main(async () => {
    const { values } = parseCli(Deno.args, {
      out: { type: "string", default: "dist/node" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) return void console.log(USAGE);
    await buildNodeRuntime(values.out);
    console.error(
      `wrote ${join(values.out, "sparrow-runtime.mjs")}, ${join(values.out, "worker.mjs")}, package.json`,
    );
  });
}
