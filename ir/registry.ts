/**
 * The op registry. Each op is defined in one place (a file in `ir/ops/`), as an `OpDef`:
 * its operand and attribute schema, its type inference (which is also where its verifier
 * rules live) and its reference semantics.
 */

import type { AttrJs, AttrReader, AttrSpec } from "./attrs.ts";
import type { Value } from "./module.ts";
import type { Tensor } from "./tensor.ts";
import type { DType, TensorType } from "./types.ts";

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
  /**
   * The op's reverse-mode (vector-Jacobian) rule, used by `grad` (ir/autodiff.ts); absent when
   * the op cannot be differentiated. See {@link GradRule}.
   */
  readonly grad?: GradRule;
}

/**
 * What a gradient rule appends ops with: the op being differentiated, seen from the backward
 * function (its operands and result are values of the backward function, where the forward ops
 * are recomputed), and ways to append ops after the ops already emitted.
 */
export interface GradEmitter {
  /** The op's operands, in order, as values of the backward function. */
  readonly operands: readonly Value[];
  /** The op's result, as a value of the backward function. */
  readonly result: Value;
  /** The op's attributes, defaults filled in. */
  readonly attrs: AttrReader;
  /** The attributes written on the op, as JS values (to re-emit the op with some changed). */
  readonly written: Readonly<Record<string, AttrJs>>;
  /**
   * Whether the cotangent of operand `i` is wanted: the operand depends on a value being
   * differentiated. A rule may return undefined for the others, and should, to skip their work.
   */
  needs(i: number): boolean;
  /**
   * Appends an op and returns its result. The result type is inferred; ops that cannot infer
   * it (reshape, cast, constant, scatter_add, slice_grad) take `type`. Throws when a rule is broken.
   */
  op(
    name: string,
    operands: readonly Value[],
    attrs?: Readonly<Record<string, AttrJs>>,
    type?: TensorType,
  ): Value;
  /** Appends a `constant` of `dtype` and `shape` (a scalar by default), every element `value`. */
  constant(value: number, dtype: DType, shape?: readonly number[]): Value;
}

/**
 * A reverse-mode rule: given the emitter and `dy`, the cotangent of the op's result (same type
 * as the result), appends ops computing the cotangent of each operand and returns them, one
 * entry per operand (same type as the operand; for a BSR operand, the dense `[nnz, R, C]`
 * cotangent of its stored blocks). An entry is undefined for an operand that is not
 * differentiable (integer indices, labels) or not wanted (`needs(i)` is false). A case the rule
 * does not handle throws an `OpError` saying why; `grad` reports it at the op.
 */
export type GradRule = (e: GradEmitter, dy: Value) => readonly (Value | undefined)[];

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
