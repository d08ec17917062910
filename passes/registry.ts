/**
 * The pass registry: built-in passes and the passes plugins register, checked for a
 * well-formed shape when they are added so that a broken plugin fails early and clearly.
 */

import type { AnyPass, PassOptionSpec } from "./pass.ts";

const OPTION_TYPES = ["int", "number", "bool", "string", "enum", "block"];

/** Describes what is wrong with a pass object, or undefined when it is well formed. */
export function passProblem(p: unknown): string | undefined {
  if (typeof p !== "object" || p === null) return `a pass must be an object, got ${typeof p}`;
  const pass = p as Partial<AnyPass>;
  if (typeof pass.name !== "string" || !/^[a-z][a-z0-9-]*$/.test(pass.name)) {
    return `a pass needs a kebab-case 'name', got ${JSON.stringify(pass.name)}`;
  }
  if (typeof pass.description !== "string" || pass.description === "") {
    return `pass '${pass.name}' needs a one-line 'description'`;
  }
  const hasModule = typeof pass.runOnModule === "function";
  const hasFunc = typeof pass.runOnFunction === "function";
  if (hasModule === hasFunc) return `pass '${pass.name}' needs exactly one of runOnModule and runOnFunction`;
  for (const [key, spec] of Object.entries((pass.options ?? {}) as Record<string, PassOptionSpec>)) {
    if (!/^[a-z][a-z0-9_-]*$/i.test(key)) return `pass '${pass.name}': bad option name '${key}'`;
    if (!OPTION_TYPES.includes(spec?.type)) {
      return `pass '${pass.name}': option '${key}' needs a type (${OPTION_TYPES.join(", ")})`;
    }
    if (spec.default === undefined) return `pass '${pass.name}': option '${key}' needs a default`;
    if (typeof spec.doc !== "string") return `pass '${pass.name}': option '${key}' needs a 'doc' line`;
    if (spec.type === "enum" && !spec.values?.includes(spec.default as string)) {
      return `pass '${pass.name}': option '${key}' default is not one of its values`;
    }
  }
  return undefined;
}

/** Passes by name. */
export class PassRegistry {
  private readonly passes = new Map<string, AnyPass>();

  /** A registry holding `passes`. */
  constructor(passes: Iterable<AnyPass> = []) {
    for (const p of passes) this.register(p);
  }

  /** Adds a pass; a malformed pass or a taken name is an error. */
  register(pass: AnyPass): void {
    const problem = passProblem(pass);
    if (problem) throw new Error(problem);
    if (this.passes.has(pass.name)) throw new Error(`a pass named '${pass.name}' is already registered`);
    this.passes.set(pass.name, pass);
  }

  /** The pass with this name, if any. */
  get(name: string): AnyPass | undefined {
    return this.passes.get(name);
  }

  /** All pass names, sorted. */
  names(): string[] {
    return [...this.passes.keys()].sort();
  }

  /** A copy that plugins can extend without touching this one. */
  clone(): PassRegistry {
    return new PassRegistry(this.passes.values());
  }
}
