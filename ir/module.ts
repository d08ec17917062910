/**
 * The in-memory IR: a module holds weight declarations and functions; a function holds a list
 * of ops in SSA form. Every value and op keeps the source location it was parsed from, and the
 * comments written before it (and at the end of its line), so printing keeps them.
 */

import type { Attr } from "./attrs.ts";
import type { TensorType } from "./types.ts";

/** A place in a source file; line and column count from 1. */
export interface Loc {
  /** File name as given to the parser. */
  readonly file: string;
  /** Line number, from 1. */
  readonly line: number;
  /** Column number, from 1. */
  readonly col: number;
}

/** Comments attached to an item: whole lines before it, and one at the end of its line. */
export interface Comments {
  /** Comment lines written before the item, each with its `//`. */
  leading: string[];
  /** A comment on the item's own line, after it. */
  trailing?: string;
  /** A blank line separates the item (with its comments) from what comes before. */
  blankLine?: boolean;
}

/** Makes an empty comment record. */
export function noComments(): Comments {
  return { leading: [] };
}

/** Where a value comes from. */
export type ValueKind = "arg" | "result" | "weight";

/** An SSA value (`%name`) or a weight (`@name`). Each is defined once. */
export class Value {
  /** The op that defines it, for results. */
  definingOp?: Op;

  /** Creates a value; `kind` says whether it is an argument, an op result or a weight. */
  constructor(
    /** Name without its sigil. */
    public name: string,
    public type: TensorType,
    public readonly kind: ValueKind,
    public loc?: Loc,
  ) {}

  /** The value as written in the IR: `%name` or `@name`. */
  get ref(): string {
    return (this.kind === "weight" ? "@" : "%") + quoteName(this.name);
  }
}

/** A weight declared in the module's weights block, backed by an entry of the weights file. */
export class Weight extends Value {
  /** Comments written before the declaration and on its line. */
  comments: Comments = noComments();

  /** Declares a weight; its kind is `weight`. */
  constructor(name: string, type: TensorType, loc?: Loc) {
    super(name, type, "weight", loc);
  }
}

/** One operation: `%r = name %a, @w {attr = 1} : tensor<...>`. */
export class Op {
  /** Comments written before the op and on its line. */
  comments: Comments = noComments();

  /** Creates an op and makes it the defining op of `result`. */
  constructor(
    /** The op's registered name, e.g. `dense`. */
    public name: string,
    public operands: Value[],
    public attrs: Map<string, Attr>,
    public result: Value,
    public loc?: Loc,
  ) {
    result.definingOp = this;
  }
}

/** A function: parameters, a body of ops and the values it returns. */
export class Func {
  /** Comments written before the function and on its header line. */
  comments: Comments = noComments();
  /** Comments after the last op and before `return`. */
  returnComments: Comments = noComments();
  /** Comments after `return`, before the closing brace. */
  endComments: string[] = [];
  /** Location of the `return`. */
  returnLoc?: Loc;

  /** Creates a function from its parts. */
  constructor(
    public name: string,
    public params: Value[],
    public resultTypes: TensorType[],
    public body: Op[],
    public returns: Value[],
    public loc?: Loc,
  ) {}
}

/** A module: a name, attributes, a weights file with its declarations, and functions. */
export class Module {
  /** Comments before `module`. */
  comments: Comments = noComments();
  /** Comments before the weights block. */
  weightsComments: Comments = noComments();
  /** Comments after the last weight declaration, inside the weights block. */
  weightsEndComments: string[] = [];
  /** Comments after the last function, before the module's closing brace. */
  endComments: string[] = [];
  /** Comments after the module's closing brace. */
  fileEndComments: string[] = [];

  /** Creates a module; everything but the name starts empty by default. */
  constructor(
    public name: string,
    public attrs: Map<string, Attr> = new Map(),
    /** Path of the safetensors file, relative to the IR file. */
    public weightsFile: string | undefined = undefined,
    public weights: Map<string, Weight> = new Map(),
    public funcs: Func[] = [],
    public loc?: Loc,
  ) {}

  /** The function with this name, if any. */
  func(name: string): Func | undefined {
    return this.funcs.find((f) => f.name === name);
  }
}

const PLAIN_NAME = /^[A-Za-z0-9_.$-]+$/;

/** Writes a value, weight or function name, quoting it when it has other characters. */
export function quoteName(name: string): string {
  return PLAIN_NAME.test(name) ? name : JSON.stringify(name);
}
