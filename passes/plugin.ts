/**
 * Loading plugins: a TS or JS module whose default export is a pass, an array of passes, or
 * a function returning either; a Promise of any of these (an async factory, say) is awaited.
 * Every pass is checked before any is registered, so a plugin that fails leaves the registry
 * as it was; its passes are then registered the same way built-in passes are. Every failure
 * names the plugin file.
 */

import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { type AnyPass, thrownMessage } from "./pass.ts";
import { passProblem, type PassRegistry } from "./registry.ts";

/** A plugin that could not be loaded. */
export class PluginError extends Error {
  /** A failure of the plugin at `path`. */
  constructor(readonly path: string, message: string) {
    super(`plugin ${path}: ${message}`);
    this.name = "PluginError";
  }
}

/** Terminal colour codes, which Deno puts in some import errors. */
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/**
 * Why the import of the plugin at `url` (given as `path`) failed, on one line: the message's
 * first line and the place it names, `(at file:L:C)`. A syntax error or a missing import names
 * its place in the message (an `at file:///...:L:C` line); for a throw while the plugin ran,
 * it is the first stack frame in the plugin. The file is `path` when it is the plugin itself.
 * Never a stack.
 */
function importFailure(e: unknown, url: string, path: string): string {
  if (!(e instanceof Error)) return thrownMessage(e);
  const message = e.message.replace(ANSI, "");
  const at = /^\s+at (file:\/\/\S+):(\d+):(\d+)$/m.exec(message) ??
    new RegExp(`^\\s+at (?:.*\\()?(${RegExp.escape(url)}):(\\d+):(\\d+)\\)?$`, "m")
      .exec((e.stack ?? "").replace(ANSI, ""));
  const first = message.split("\n")[0];
  if (!at) return first;
  return `${first} (at ${at[1] === url ? path : fileURLToPath(at[1])}:${at[2]}:${at[3]})`;
}

/** Imports a plugin and registers its passes; returns their names. */
export async function loadPlugin(path: string, registry: PassRegistry): Promise<string[]> {
  const url = pathToFileURL(resolve(path)).href;
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (e) {
    throw new PluginError(path, `cannot be loaded: ${importFailure(e, url, path)}`);
  }
  if (!("default" in mod)) {
    throw new PluginError(path, "has no default export; export default a pass (see definePass)");
  }
  let exported: unknown;
  try {
    exported = await (typeof mod.default === "function" ? mod.default() : mod.default);
  } catch (e) {
    throw new PluginError(path, `its default export threw: ${thrownMessage(e)}`);
  }
  const passes = (Array.isArray(exported) ? exported : [exported]) as AnyPass[];
  if (passes.length === 0) throw new PluginError(path, "exports no passes");
  const names: string[] = [];
  for (const p of passes) {
    const problem = passProblem(p) ??
      (registry.get(p.name) ? `a pass named '${p.name}' is already registered` : undefined) ??
      (names.includes(p.name) ? `exports two passes named '${p.name}'` : undefined);
    if (problem) throw new PluginError(path, problem);
    names.push(p.name);
  }
  for (const p of passes) registry.register(p);
  return names;
}
