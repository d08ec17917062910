/**
 * The op registry. Each op is defined in one place (a file in `ir/ops/`), as an `OpDef`:
 * its operand and attribute schema, its type inference (which is also where its verifier
 * rules live) and its reference semantics.
 */

import type { AttrReader, AttrSpec } from "./attrs.ts";
import type { Tensor } from "./tensor.ts";
import type { TensorType } from "./types.ts";

/** One operand slot of an op. Optional slots come last. */
export interface OperandSpec {
  /** Name of the slot, used in error messages. */
  readonly name: string;
  /** The slot may be left out (only trailing slots). */
  readonly optional?: boolean;
  /** The slot takes one or more values (only the last slot). */
  readonly variadic?: boolean;
  /** The slot accepts a BSR-encoded tensor. Other slots take dense tensors only. */
  readonly sparse?: boolean;
}

/** The definition of an op. */
export interface OpDef {
  /** Name as written in the IR, e.g. `layer_norm`. */
  readonly name: string;
  /** One line for the op reference. */
  readonly summary: string;
  /** Operand slots, in order. */
  readonly operands: readonly OperandSpec[];
  /** Attribute schema, keyed by attribute name. */
  readonly attrs: Readonly<Record<string, AttrSpec>>;
  /**
   * Infers the result type from the operand types and attributes, checking the op's rules.
   * `declared` is the result type written in the IR or given to the builder; ops whose result
   * cannot be inferred (reshape, cast, constant) read it. Throws `OpError` on a broken rule.
   */
  infer(operands: readonly TensorType[], attrs: AttrReader, declared: TensorType | undefined): TensorType;
  /** Reference semantics: computes the result from verified inputs. Clarity over speed. */
  interpret(inputs: readonly Tensor[], attrs: AttrReader, result: TensorType): Tensor;
}

/** A rule of an op is broken; the verifier reports the message at the op. */
export class OpError extends Error {
  /** Creates the error with the message to report. */
  constructor(message: string) {
    super(message);
    this.name = "OpError";
  }
}

/** A set of op definitions keyed by name. */
export class OpRegistry {
  private readonly defs = new Map<string, OpDef>();

  /** Creates a registry holding `defs`; duplicate names are an error. */
  constructor(defs: Iterable<OpDef> = []) {
    for (const d of defs) this.register(d);
  }

  /** Adds an op; a second op with the same name is an error. */
  register(def: OpDef): void {
    if (this.defs.has(def.name)) throw new Error(`op '${def.name}' is already registered`);
    this.defs.set(def.name, def);
  }

  /** The op with this name, if any. */
  get(name: string): OpDef | undefined {
    return this.defs.get(name);
  }

  /** All op names, sorted. */
  names(): string[] {
    return [...this.defs.keys()].sort();
  }

  /** A copy that can be extended without touching this one. */
  clone(): OpRegistry {
    return new OpRegistry(this.defs.values());
  }
}
