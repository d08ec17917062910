/**
 * Loading plugins: a TS or JS module whose default export is a pass, an array of passes, or
 * a function returning either. Its passes are registered in the given registry, the same
 * way built-in passes are. Every failure names the plugin file.
 */

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { AnyPass } from "./pass.ts";
import type { PassRegistry } from "./registry.ts";

/** A plugin that could not be loaded. */
export class PluginError extends Error {
  /** A failure of the plugin at `path`. */
  constructor(readonly path: string, message: string) {
    super(`plugin ${path}: ${message}`);
    this.name = "PluginError";
  }
}

/** Imports a plugin and registers its passes; returns their names. */
export async function loadPlugin(path: string, registry: PassRegistry): Promise<string[]> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(pathToFileURL(resolve(path)).href);
  } catch (e) {
    const message = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new PluginError(path, `cannot be loaded: ${message}`);
  }
  if (!("default" in mod)) {
    throw new PluginError(path, "has no default export; export default a pass (see definePass)");
  }
  let exported = mod.default;
  if (typeof exported === "function") {
    try {
      exported = exported();
    } catch (e) {
      throw new PluginError(path, `its default export threw: ${e instanceof Error ? e.message : e}`);
    }
  }
  const passes = (Array.isArray(exported) ? exported : [exported]) as AnyPass[];
  const names: string[] = [];
  for (const p of passes) {
    try {
      registry.register(p);
    } catch (e) {
      throw new PluginError(path, (e as Error).message);
    }
    names.push(p.name);
  }
  return names;
}
