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
    () => e instanceof Error ? e.message || e.name : undefined,
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

/** A name pattern compiled by {@link nameRegex}: `test` runs in time linear in the name's length. */
export interface NameRegex {
  /** Whether the pattern is found in `name` (searched, not anchored, as `RegExp.test`). */
  test(name: string): boolean;
  /** The pattern as written. */
  readonly source: string;
  /** `/source/`, as a RegExp prints. */
  toString(): string;
}

/** The most NFA states a pattern may compile to (counted repetition is expanded). */
const REGEX_MAX_STATES = 2000;

/** One NFA state: a character test, a fork, an anchor, or the match. */
type NfaState =
  | { kind: "char"; test: (c: number) => boolean; next: number }
  | { kind: "split"; a: number; b: number }
  | { kind: "anchor"; end: boolean; next: number }
  | { kind: "match" };

/** The parsed pattern. */
type RegexNode =
  | { kind: "char"; test: (c: number) => boolean }
  | { kind: "anchor"; end: boolean }
  | { kind: "seq"; items: RegexNode[] }
  | { kind: "alt"; options: RegexNode[] }
  | { kind: "repeat"; body: RegexNode; min: number; max: number };

const isDigit = (c: number) => c >= 48 && c <= 57;
const isWord = (c: number) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isSpace = (c: number) => /\s/.test(String.fromCharCode(c));
const LINE_END = new Set([10, 13, 0x2028, 0x2029]);
const LINEAR = "not supported: names are matched in linear time";

/**
 * Compiles a regular expression over names (weight names in pass options and rules files) to a
 * matcher that cannot backtrack: a Thompson NFA, simulated state set by state set, so `(a+)+$`
 * against a long name takes linear time, not exponential. The syntax is JavaScript's without what
 * needs backtracking: literals, `.`, classes (`[a-z_]`, `[^.]`, `\d \w \s` and their negations),
 * escapes, groups (`(...)`, `(?:...)`, `(?<name>...)`), `|`, `* + ? {n} {n,} {n,m}` (lazy forms
 * match the same) and the anchors `^ $`. Backreferences, lookaround and `\b` are refused, as is a
 * pattern that expands to more than 2000 states. Throws an Error saying why.
 */
export function nameRegex(source: string): NameRegex {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at offset ${i}`);
  };
  /** The escape after a backslash: its test, and its character when it is one. */
  const escape = (): { test: (c: number) => boolean; code?: number } => {
    const e = source[i++];
    if (e === undefined) fail("a trailing backslash");
    const classes: Record<string, (c: number) => boolean> = {
      d: isDigit,
      D: (c) => !isDigit(c),
      w: isWord,
      W: (c) => !isWord(c),
      s: isSpace,
      S: (c) => !isSpace(c),
    };
    if (classes[e]) return { test: classes[e] };
    if (/[1-9]/.test(e) || e === "k") fail(`a backreference (${LINEAR})`);
    if (e === "b" || e === "B") fail(`a word boundary (${LINEAR})`);
    const named: Record<string, number> = { t: 9, n: 10, r: 13, f: 12, v: 11, "0": 0 };
    let code = named[e];
    if (code === undefined && (e === "x" || e === "u")) {
      const hex = source.slice(i, i + (e === "x" ? 2 : 4));
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== (e === "x" ? 2 : 4)) {
        fail(`a malformed \\${e} escape`);
      }
      i += hex.length;
      code = parseInt(hex, 16);
    }
    if (code === undefined) {
      if (/[a-zA-Z]/.test(e)) fail(`an unsupported escape \\${e}`);
      code = e.charCodeAt(0);
    }
    const only = code;
    return { test: (c) => c === only, code };
  };
  const classTest = (): (c: number) => boolean => {
    const negate = source[i] === "^";
    if (negate) i++;
    const parts: ((c: number) => boolean)[] = [];
    const single = (): { test: (c: number) => boolean; code?: number } => {
      if (source[i] === "\\") {
        i++;
        return escape();
      }
      const code = source.charCodeAt(i++);
      return { test: (c) => c === code, code };
    };
    let first = true;
    while (source[i] !== "]" || first) {
      if (i >= source.length) fail("an unclosed character class");
      first = false;
      if (source[i] === "]") break;
      const lo = single();
      if (source[i] === "-" && source[i + 1] !== "]" && i + 1 < source.length) {
        i++;
        const hi = single();
        if (lo.code === undefined || hi.code === undefined || lo.code > hi.code) {
          fail("a bad range in a class");
        }
        const [a, b] = [lo.code!, hi.code!];
        parts.push((c) => c >= a && c <= b);
      } else parts.push(lo.test);
    }
    i++; // ]
    return (c) => parts.some((p) => p(c)) !== negate;
  };
  const atom = (): RegexNode => {
    const ch = source[i];
    if (ch === "(") {
      i++;
      if (source[i] === "?") {
        if (source[i + 1] === ":") i += 2;
        else if (source[i + 1] === "<" && /[A-Za-z_$]/.test(source[i + 2] ?? "")) {
          i = source.indexOf(">", i) + 1;
          if (i === 0) fail("an unclosed group name");
        } else fail(`lookaround (${LINEAR})`);
      }
      const inner = alternation();
      if (source[i] !== ")") fail("an unclosed group");
      i++;
      return inner;
    }
    i++;
    if (ch === ".") return { kind: "char", test: (c) => !LINE_END.has(c) };
    if (ch === "^" || ch === "$") return { kind: "anchor", end: ch === "$" };
    if (ch === "[") return { kind: "char", test: classTest() };
    if (ch === "\\") return { kind: "char", test: escape().test };
    if (ch === ")" || ch === "*" || ch === "+" || ch === "?") {
      i--;
      fail(`a misplaced '${ch}'`);
    }
    const code = ch.charCodeAt(0);
    return { kind: "char", test: (c) => c === code };
  };
  const quantified = (): RegexNode => {
    let node = atom();
    for (;;) {
      const q = /^(?:[*+?]|\{(\d+)(,(\d*))?\})/.exec(source.slice(i));
      if (!q) return node;
      if (node.kind === "anchor") fail("a quantified anchor");
      i += q[0].length;
      if (source[i] === "?") i++;
      const min = q[0] === "+" ? 1 : q[0][0] === "{" ? Number(q[1]) : 0;
      const max = q[0] === "?"
        ? 1
        : q[0][0] === "{"
        ? (q[2] === undefined ? min : q[3] ? Number(q[3]) : Infinity)
        : Infinity;
      if (min > 1000 || (max !== Infinity && (max > 1000 || max < min))) {
        fail("a repetition count out of range");
      }
      node = { kind: "repeat", body: node, min, max };
    }
  };
  const sequence = (): RegexNode => {
    const items: RegexNode[] = [];
    while (i < source.length && source[i] !== "|" && source[i] !== ")") items.push(quantified());
    return { kind: "seq", items };
  };
  const alternation = (): RegexNode => {
    const options = [sequence()];
    while (source[i] === "|") {
      i++;
      options.push(sequence());
    }
    return options.length === 1 ? options[0] : { kind: "alt", options };
  };
  const tree = alternation();
  if (i < source.length) fail(`an unmatched '${source[i]}'`);

  // Thompson's construction, from the end backwards: each node is compiled knowing its successor.
  const states: NfaState[] = [{ kind: "match" }];
  const add = (s: NfaState): number => {
    if (states.length >= REGEX_MAX_STATES) {
      throw new Error(
        `the pattern is too large (over ${REGEX_MAX_STATES} states once repetitions are expanded)`,
      );
    }
    states.push(s);
    return states.length - 1;
  };
  const build = (n: RegexNode, next: number): number => {
    switch (n.kind) {
      case "char":
        return add({ kind: "char", test: n.test, next });
      case "anchor":
        return add({ kind: "anchor", end: n.end, next });
      case "seq":
        return n.items.reduceRight((after, item) => build(item, after), next);
      case "alt": {
        const starts = n.options.map((o) => build(o, next));
        return starts.reduceRight((b, a) => add({ kind: "split", a, b }));
      }
      case "repeat": {
        let after = next;
        if (n.max === Infinity) {
          const loop = add({ kind: "split", a: -1, b: next });
          (states[loop] as { a: number }).a = build(n.body, loop);
          after = loop;
        } else {
          for (let k = n.min; k < n.max; k++) {
            after = add({ kind: "split", a: build(n.body, after), b: next });
          }
        }
        for (let k = 0; k < n.min; k++) after = build(n.body, after);
        return after;
      }
    }
  };
  const start = build(tree, 0);

  const test = (name: string): boolean => {
    let current: number[] = [];
    const seen = new Int32Array(states.length).fill(-1);
    // Adds `s` and what it reaches without reading a character, at position `pos`; true at the match.
    const close = (s: number, pos: number, into: number[]): boolean => {
      const stack = [s];
      while (stack.length > 0) {
        const k = stack.pop()!;
        if (seen[k] === pos) continue;
        seen[k] = pos;
        const st = states[k];
        if (st.kind === "match") return true;
        if (st.kind === "split") stack.push(st.b, st.a);
        else if (st.kind === "anchor") {
          if (st.end ? pos === name.length : pos === 0) stack.push(st.next);
        } else into.push(k);
      }
      return false;
    };
    for (let pos = 0; pos <= name.length; pos++) {
      if (close(start, pos, current)) return true;
      if (pos === name.length) return false;
      const c = name.charCodeAt(pos);
      const next: number[] = [];
      for (const k of current) {
        const st = states[k] as { test: (c: number) => boolean; next: number };
        if (st.test(c) && close(st.next, pos + 1, next)) return true;
      }
      current = next;
    }
    return false;
  };
  return { test, source, toString: () => `/${source}/` };
}
