/**
 * A fingerprint of the compiler's sources, for benchmark caches: a cached artifact is reused only
 * when the code that would build it again is the same, so a compiler change can never leave an
 * old artifact's figures in a new table.
 */

import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The folders whose code decides what an artifact holds (the runtime is not among them). */
export const COMPILER_DIRS = ["ir", "frontend", "passes", "codegen"] as const;

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...await tsFiles(path));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out;
}

/** A short hex SHA-256 over the path and text of every .ts file under `dirs` of `root`. */
export async function sourceFingerprint(root: string, dirs: readonly string[]): Promise<string> {
  const files = (await Promise.all(dirs.map((d) => tsFiles(join(root, d))))).flat()
    .map((f) => relative(root, f)).sort();
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  for (const f of files) {
    parts.push(enc.encode(`${f}\0`), await Deno.readFile(join(root, f)), enc.encode("\0"));
  }
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.length), 0);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

let compiler: Promise<string> | undefined;

/** The fingerprint of this checkout's compiler (COMPILER_DIRS), computed once per process. */
export function compilerFingerprint(): Promise<string> {
  compiler ??= sourceFingerprint(fileURLToPath(new URL("../", import.meta.url)), COMPILER_DIRS);
  return compiler;
}
