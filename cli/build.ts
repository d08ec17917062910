/**
 * `deno task build [--target node|browser] [--out DIR]`: bundles the runtime, the only code an
 * artifact needs, with `deno bundle` into one self-contained ES module and its worker entry.
 * For Node (20 and later; the default), with a package.json, so a Node service can
 * `import { loadCompiled } from "@sparrow/runtime"` (default DIR: `dist/node`); for browsers,
 * `sparrow-runtime.js` and `worker.js`, which `deno task serve` serves (default DIR: `dist/web`).
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { main, parseCli, UsageError } from "./common.ts";

const USAGE = "usage: deno task build [--target node|browser] [--out DIR]   (default dist/node, dist/web)";

/** Per target: the runtime sources to bundle (the entry and its worker entry), the files they become, the default folder. */
const TARGETS = {
  node: {
    platform: "deno",
    out: "dist/node",
    entries: [
      { source: "../runtime/node.ts", output: "sparrow-runtime.mjs" },
      { source: "../runtime/worker_node.ts", output: "worker.mjs" },
    ],
  },
  browser: {
    platform: "browser",
    out: "dist/web",
    entries: [
      { source: "../runtime/browser.ts", output: "sparrow-runtime.js" },
      { source: "../runtime/worker_web.ts", output: "worker.js" },
    ],
  },
} as const;

/** What `deno task build` can bundle for. */
export type BuildTarget = keyof typeof TARGETS;

/** The version of the bundled runtime's package: the repository's. */
async function version(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(fileURLToPath(new URL("../deno.json", import.meta.url))));
  return config.version;
}

/** Bundles the runtime's entry and worker entry for `target` into `out`. */
async function bundle(target: BuildTarget, out: string): Promise<void> {
  await Deno.mkdir(out, { recursive: true });
  for (const e of TARGETS[target].entries) {
    const r = await new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        `--platform=${TARGETS[target].platform}`,
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
}

/** Bundles the Node runtime into `out`, with its package.json. */
export async function buildNodeRuntime(out: string): Promise<void> {
  await bundle("node", out);
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
      target: { type: "string", default: "node" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) return void console.log(USAGE);
    const target = values.target;
    if (target !== "node" && target !== "browser") {
      throw new UsageError(`--target must be node or browser, got '${target}'`);
    }
    const out = values.out ?? TARGETS[target].out;
    if (target === "node") await buildNodeRuntime(out);
    else await bundle("browser", out);
    const files = TARGETS[target].entries.map((e) => join(out, e.output));
    console.error(`wrote ${files.join(", ")}${target === "node" ? ", package.json" : ""}`);
  });
}
