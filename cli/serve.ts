/**
 * `deno task serve DIR [--port N] [--bundle BDIR] [--no-isolation]`: serves the browser demo (web/)
 * at `/`, the bundled browser runtime (BDIR, default `dist/web`, from `deno task build --target
 * browser`) at `/runtime/` and the compiled artifact DIR at `/artifact/`, on localhost. Pages are
 * cross-origin isolated (`Cross-Origin-Opener-Policy: same-origin`,
 * `Cross-Origin-Embedder-Policy: require-corp`), so the runtime may share memory with workers;
 * `--no-isolation` leaves the headers out, and the page runs on one thread. Only regular files
 * inside the three folders are served.
 */

import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { main, parseCli, requireInput, UsageError } from "./common.ts";

const USAGE =
  "usage: deno task serve DIR [--port N] [--bundle BDIR] [--no-isolation]   (DIR: a compiled artifact)";

/** Content types by file extension; anything else is served as bytes. */
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".txt": "text/plain; charset=utf-8",
  ".sir": "text/plain; charset=utf-8",
};

/** The headers that make a page cross-origin isolated. */
const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

/** What `serve` serves: URL prefixes and the folders they map to. */
export interface ServeOptions {
  /** The compiled artifact's folder, at `/artifact/`. */
  artifact: string;
  /** The bundled browser runtime's folder, at `/runtime/`. */
  bundle: string;
  /** Whether to send the cross-origin isolation headers. */
  isolation: boolean;
}

/** The real path and size of `path` if it is a regular file inside folder `root` (links resolved), else undefined. */
async function fileInside(root: string, path: string): Promise<{ real: string; size: number } | undefined> {
  try {
    const [realRoot, real] = await Promise.all([Deno.realPath(root), Deno.realPath(path)]);
    if (!real.startsWith(realRoot + sep)) return undefined;
    const info = await Deno.stat(real);
    return info.isFile ? { real, size: info.size } : undefined;
  } catch {
    return undefined;
  }
}

/** Answers one request: GET or HEAD of a file under one of the served folders. */
export async function handle(request: Request, options: ServeOptions): Promise<Response> {
  const headers: Record<string, string> = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...(options.isolation ? ISOLATION : {}),
  };
  const answer = (status: number, text: string) =>
    new Response(text + "\n", {
      status,
      headers: { ...headers, "Content-Type": "text/plain; charset=utf-8" },
    });
  if (request.method !== "GET" && request.method !== "HEAD") return answer(405, "method not allowed");
  let segments: string[];
  try {
    segments = new URL(request.url).pathname.split("/").slice(1).map(decodeURIComponent);
  } catch {
    return answer(400, "bad path");
  }
  const web = fileURLToPath(new URL("../web/", import.meta.url));
  const [root, rest] = segments[0] === "artifact"
    ? [options.artifact, segments.slice(1)]
    : segments[0] === "runtime"
    ? [options.bundle, segments.slice(1)]
    : [web, segments.length === 1 && segments[0] === "" ? ["index.html"] : segments];
  if (rest.some((s) => s === "" || s === "." || s === ".." || /[\\/\0]/.test(s))) {
    return answer(404, "not found");
  }
  const file = await fileInside(root, join(root, ...rest));
  if (!file) return answer(404, "not found");
  const type = TYPES[extname(file.real)] ?? "application/octet-stream";
  const body = request.method === "HEAD" ? null : await Deno.readFile(file.real);
  return new Response(body, {
    headers: { ...headers, "Content-Type": type, "Content-Length": String(file.size) },
  });
}

if (import.meta.main) {
  main(async () => {
    const { values, positionals } = parseCli(Deno.args, {
      port: { type: "string", default: "8000" },
      bundle: { type: "string", default: "dist/web" },
      "no-isolation": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) return void console.log(USAGE);
    if (positionals.length !== 1) throw new UsageError(USAGE);
    const port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new UsageError(`--port must be an integer from 0 to 65535, got '${values.port}'`);
    }
    const artifact = resolve(positionals[0]);
    await requireInput(join(artifact, "manifest.json"), "a compiled artifact folder");
    const bundle = resolve(values.bundle);
    await requireInput(
      join(bundle, "sparrow-runtime.js"),
      "the browser runtime: run deno task build --target browser",
    );
    const options = { artifact, bundle, isolation: !values["no-isolation"] };
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: ({ port }) =>
        console.log(
          `serving ${positionals[0]} on http://127.0.0.1:${port}/ (${
            options.isolation ? "cross-origin isolated" : "not isolated: one thread"
          })`,
        ),
    }, (request) => handle(request, options));
    await server.finished;
  });
}
