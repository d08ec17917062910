/**
 * The pass registry: built-in passes and the passes plugins register, checked for a
 * well-formed shape when they are added so that a broken plugin fails early and clearly.
 */

import type { AnyPass, PassOptionSpec } from "./pass.ts";

const OPTION_TYPES = ["int", "number", "bool", "string", "enum", "block"];

/** Per option type (enums aside): whether a default fits it, and what fits, for messages. */
const DEFAULT_CHECKS: Record<string, [(v: unknown) => boolean, string]> = {
  int: [Number.isSafeInteger, "a safe integer"],
  number: [(v) => typeof v === "number" && Number.isFinite(v), "a finite number"],
  bool: [(v) => typeof v === "boolean", "true or false"],
  string: [(v) => typeof v === "string", "a string"],
  block: [
    (v) => Array.isArray(v) && v.length === 2 && v.every((n) => Number.isSafeInteger(n) && n >= 1),
    "a block shape [rows, cols] of positive integers",
  ],
};

/** Whether `v` is an array of strings. */
const isStrings = (v: unknown): v is readonly string[] =>
  Array.isArray(v) && v.every((s) => typeof s === "string");

/** A value for a message. */
const show = (v: unknown): string => typeof v === "number" ? String(v) : JSON.stringify(v) ?? typeof v;

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
    const option = `pass '${pass.name}': option '${key}'`;
    if (!/^[a-z][a-z0-9_-]*$/i.test(key)) return `pass '${pass.name}': bad option name '${key}'`;
    if (!OPTION_TYPES.includes(spec?.type)) return `${option} needs a type (${OPTION_TYPES.join(", ")})`;
    if (spec.default === undefined) return `${option} needs a default`;
    if (typeof spec.doc !== "string") return `${option} needs a 'doc' line`;
    if (spec.type === "enum") {
      if (!isStrings(spec.values) || spec.values.length === 0) {
        return `${option} needs 'values', a list of strings`;
      }
      if (!spec.values.includes(spec.default as string)) return `${option} default is not one of its values`;
    } else if (!DEFAULT_CHECKS[spec.type][0](spec.default)) {
      return `${option} default must be ${DEFAULT_CHECKS[spec.type][1]}, got ${show(spec.default)}`;
    }
  }
  const stats: unknown = pass.statistics;
  if (
    stats !== undefined &&
    (typeof stats !== "object" || stats === null || Array.isArray(stats) ||
      !Object.values(stats).every((d) => typeof d === "string"))
  ) {
    return `pass '${pass.name}': 'statistics' must be an object of statistic names to descriptions (strings)`;
  }
  if (pass.filter !== undefined && (typeof pass.filter !== "object" || pass.filter === null)) {
    return `pass '${pass.name}': 'filter' must be an object`;
  }
  if (pass.filter?.ops !== undefined && !isStrings(pass.filter.ops)) {
    return `pass '${pass.name}': 'filter.ops' must be an array of op names (strings)`;
  }
  if (pass.preserves !== undefined && !isStrings(pass.preserves)) {
    return `pass '${pass.name}': 'preserves' must be an array of analysis names (strings)`;
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
