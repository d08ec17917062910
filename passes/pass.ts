/**
 * What a pass is. Built-in passes and plugins are written against exactly this API:
 *
 * ```ts
 * export default definePass({
 *   name: "drop-tanh",
 *   description: "Replaces tanh(x) by x (a toy).",
 *   options: { keep: { type: "int", default: 0, doc: "how many to keep" } },
 *   filter: { ops: ["tanh"] },
 *   runOnFunction(f, ctx) {
 *     return rewrite(f, ctx, [{ match: "tanh", rewrite: (op, rw) => rw.replace(op, op.operands[0]) }]);
 *   },
 * });
 * ```
 *
 * A pass returns `"changed"` or `"unchanged"`. "unchanged" is cheap: the manager then skips
 * verification and `--print-ir-after-change`, and keeps cached analyses. (With verify-each
 * on, the manager also compares the printed module before and after, to catch a pass that
 * says "unchanged" but changed it.) Weight data is replaced only through `ctx.weights.set`;
 * the arrays `ctx.weights.get` returns must not be written.
 */

import type { Func, Loc, Module, Op, Weight } from "../ir/module.ts";
import type { OpRegistry } from "../ir/registry.ts";
import type { Tensor } from "../ir/tensor.ts";

/** What a pass reports: whether it changed the module. */
export type PassResult = "changed" | "unchanged";

/** The kinds of pass options, as written in pipeline text. */
export type PassOptionType = "int" | "number" | "bool" | "string" | "enum" | "block";

/** One option of a pass: its kind, default and one-line description. */
export interface PassOptionSpec {
  /** The option's kind. */
  readonly type: PassOptionType;
  /** The value when the pipeline does not set it. */
  readonly default: number | boolean | string | readonly [number, number];
  /** One line for `--list-passes`. */
  readonly doc: string;
  /** Allowed values of an enum option. */
  readonly values?: readonly string[];
  /**
   * The smallest value of an `int` or `number` option (of each side, for a `block`), checked when
   * the pipeline is parsed; see {@link PassOptionSpec.minExclusive}.
   */
  readonly min?: number;
  /** The value must be greater than `min`, not equal to it. */
  readonly minExclusive?: boolean;
  /** The largest value of an `int` or `number` option (of each side, for a `block`); see `maxExclusive`. */
  readonly max?: number;
  /** The value must be less than `max`, not equal to it. */
  readonly maxExclusive?: boolean;
}

/** The JS type of values of an option kind. */
export type OptionTypeValue<T extends PassOptionType> = T extends "int" | "number" ? number
  : T extends "bool" ? boolean
  : T extends "block" ? readonly [number, number]
  : string;

/** The JS type of an option's value. */
export type PassOptionValue<S extends PassOptionSpec> = OptionTypeValue<S["type"]>;

/** Option values of a pass, typed from its option specs. */
export type PassOptions<O extends Record<string, PassOptionSpec>> = {
  readonly [K in keyof O]: PassOptionValue<O[K]>;
};

/** A cached analysis: computed on demand, kept until a pass changes the module. */
export interface Analysis<T> {
  /** The cache key; passes name it in `preserves`. */
  readonly name: string;
  /** Computes the analysis of a module. */
  compute(m: Module): T;
}

/** Weight data as passes see it: the original weights, with the changes passes made. */
export interface PassWeights {
  /** The current data of a declared weight. */
  get(w: Weight): Tensor;
  /** Replaces the data of weight `name` (declare its type in the module to match). */
  set(name: string, data: Tensor): void;
}

/**
 * Sentences a pass wants for calibration, declared from its options: the driver reads them with
 * the same TSV reader and tokenizer as evaluation, draws `count` of them with a seeded choice,
 * and hands them over as `PassContext.sentences`.
 */
export interface SentenceRequest {
  /** A TSV file whose header names a `sentence` (or `text`) column. */
  readonly data: string;
  /** The folder holding `tokenizer.json`; "" means the model's own folder. */
  readonly tokenizer: string;
  /** How many sentences to draw. */
  readonly count: number;
  /** The seed of the draw. */
  readonly seed: number;
}

/** What a pass reads besides the module and its weights, declared from its options. */
export interface PassInputs {
  /** Files the pass reads itself, as its options name them. */
  readonly files?: readonly string[];
  /** Calibration sentences for the driver to prepare. */
  readonly sentences?: SentenceRequest;
}

/** Calibration sentences, drawn and tokenized by the driver (see `SentenceRequest`). */
export interface Sentences {
  /** The TSV they came from, for messages. */
  readonly source: string;
  /** Rows the TSV had to draw from. */
  readonly available: number;
  /** Each drawn sentence's token ids, `[CLS] ... [SEP]`, not yet fitted to a length. */
  readonly ids: readonly (readonly number[])[];
  /** The tokenizer's `[SEP]` id (kept last when a sentence is cut to length). */
  readonly sepId: number;
  /** The tokenizer's `[PAD]` id. */
  readonly padId: number;
}

/** What a running pass can use besides the module. */
export interface PassContext<O extends Record<string, PassOptionSpec> = Record<string, PassOptionSpec>> {
  /** The option values, defaults filled in. */
  readonly options: PassOptions<O>;
  /** The ops the module may use. */
  readonly registry: OpRegistry;
  /** Weight data, readable and replaceable. */
  readonly weights: PassWeights;
  /** The calibration sentences the driver prepared from `PassDef.inputs`, if it asked for any. */
  readonly sentences?: Sentences;
  /** Adds to a declared statistic, printed with `--stats`. */
  stat(name: string, amount?: number): void;
  /** The result of an analysis, cached until the module changes. */
  analysis<T>(a: Analysis<T>): T;
  /** Prints a line for the user (on stderr), prefixed with the pass name. */
  log(line: string): void;
  /** An error at an op (or another place), to throw: the manager reports it with the pass name. */
  error(at: Op | Loc | undefined, message: string): PassFailure;
}

/** A pass's own failure at a place; thrown by passes via `ctx.error`. */
export class PassFailure extends Error {
  /** A failure at `loc` (unknown when undefined). */
  constructor(readonly loc: Loc | undefined, message: string) {
    super(message);
    this.name = "PassFailure";
  }
}

/** Which modules a pass applies to, declaratively (as esbuild's filters): it is skipped otherwise. */
export interface PassFilter {
  /** Run only when the module contains at least one op of these names. */
  readonly ops?: readonly string[];
}

/** A pass: a name, a description, typed options and a `run` over the module or each function. */
export interface PassDef<O extends Record<string, PassOptionSpec> = Record<string, PassOptionSpec>> {
  /** Name in pipelines, kebab-case: `bsr-lower`. Required. */
  readonly name: string;
  /** One line. */
  readonly description: string;
  /** Typed options, each with a default and a doc line. */
  readonly options?: O;
  /** Statistic names and what they count, e.g. `{ pruned: "weights pruned" }`. */
  readonly statistics?: Readonly<Record<string, string>>;
  /** When to skip the pass without running it. */
  readonly filter?: PassFilter;
  /** Analyses (by name) that stay valid when this pass changes the module. */
  readonly preserves?: readonly string[];
  /**
   * What the pass reads besides the module, from its options: a driver grants exactly these
   * files and prepares the sentences before the pipeline runs.
   */
  inputs?(options: PassOptions<O>): PassInputs;
  /** Runs over the whole module. */
  runOnModule?(m: Module, ctx: PassContext<O>): PassResult;
  /** Runs over each function in turn; the module changed if any function did. */
  runOnFunction?(f: Func, ctx: PassContext<O>): PassResult;
}

/**
 * Declares a pass with typed options. An identity function that gives plugins and built-ins
 * the same checked shape.
 */
export function definePass<const O extends Record<string, PassOptionSpec> = Record<never, PassOptionSpec>>(
  def: PassDef<O>,
): PassDef<O> {
  return def;
}

/** A pass of any option shape, as registries hold them. */
// deno-lint-ignore no-explicit-any
export type AnyPass = PassDef<any>;

/** The longest text {@link thrownMessage} gives. */
const THROWN_MAX = 300;

/**
 * What a thrown value says, on one line, whatever it is: an Error's message, a Symbol's
 * description, a string, or the value as JSON. Never throws, even for an object whose `toString`,
 * `message` or `toJSON` throws, or a revoked proxy; long text is cut short.
 */
export function thrownMessage(e: unknown): string {
  const attempts: (() => unknown)[] = [
    () => e instanceof Error ? e.message : undefined,
    () => typeof e === "symbol" ? e.toString() : undefined,
    () => typeof e === "object" && e !== null ? undefined : String(e),
    () => {
      const s = String(e);
      return s === "[object Object]" ? undefined : s;
    },
    () => JSON.stringify(e),
  ];
  for (const attempt of attempts) {
    try {
      const text = attempt();
      if (typeof text === "string") {
        const line = text.replace(/\s*\n\s*/g, " ");
        return line.length > THROWN_MAX ? `${line.slice(0, THROWN_MAX)}...` : line;
      }
    } catch { /* try the next way */ }
  }
  return `a value that cannot be printed (${typeof e})`;
}
