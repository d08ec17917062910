/**
 * The Chromium host of `deno task bench buckets`, in its own process (playwright-core reads /proc,
 * which Deno grants only with --allow-all): `browser.ts CONFIG.json`. Serves the bench page
 * (bench/buckets/web/) and the folders the config maps (the browser runtime, the artifacts,
 * onnxruntime-web, the ONNX models, the data) on localhost, cross-origin isolated; opens the page
 * in headless Chromium once per thread count and prints every result as one JSON line.
 */

import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** What the orchestrator (bench/buckets.ts) passes. */
export interface BrowserConfig {
  /** URL prefix (e.g. `/runtime/`) to folder. */
  folders: Record<string, string>;
  /** The artifact names under /artifacts/. */
  artifacts: string[];
  threads: number[];
  batches: number[];
  repeat: number;
  /** Time onnxruntime-web too (ONNX models at /onnx/b<batch>.onnx of length `seq`). */
  ort: boolean;
  seq: number;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
};

/** Answers GET of a regular file inside one of the mapped folders, with the isolation headers. */
async function serveFile(folders: Record<string, string>, request: Request): Promise<Response> {
  const headers = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cache-Control": "no-store",
  };
  const path = decodeURIComponent(new URL(request.url).pathname);
  const prefix = Object.keys(folders).find((p) => path.startsWith(p));
  if (prefix && !path.split("/").includes("..")) {
    const root = resolve(folders[prefix]);
    const file = resolve(join(root, path.slice(prefix.length) || "index.html"));
    if (file.startsWith(root + sep)) {
      try {
        const body = await Deno.readFile(file);
        return new Response(body, {
          headers: { ...headers, "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" },
        });
      } catch {
        // Not found: below.
      }
    }
  }
  return new Response("not found\n", { status: 404, headers });
}

if (import.meta.main) {
  const config: BrowserConfig = JSON.parse(await Deno.readTextFile(Deno.args[0]));
  const folders = { ...config.folders, "/bench/": fileURLToPath(new URL("./web/", import.meta.url)) };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => serveFile(folders, request),
  );
  const { chromium } = await import("npm:playwright-core@1.65.2");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
    ],
  });
  try {
    const results = [];
    for (const threads of config.threads) {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e: Error) => errors.push(e.message));
      await page.goto(`http://127.0.0.1:${server.addr.port}/bench/index.html`);
      await page.waitForSelector("#status[data-ready]");
      if ((await page.getAttribute("#status", "data-ready")) !== "true") {
        throw new Error("the bench page is not cross-origin isolated");
      }
      const ran = await page.evaluate(
        // deno-lint-ignore no-explicit-any
        (c: unknown) => (globalThis as any).bench(c),
        { ...config, threads },
      ) as Record<string, unknown>[];
      if (errors.length > 0) throw new Error(errors.join("; "));
      results.push(...ran.map((r) => ({ host: "chromium", threads, ...r })));
      await page.close();
    }
    console.log(JSON.stringify(results));
  } finally {
    await browser.close();
    await server.shutdown();
  }
}
