/**
 * Two ways to make inline vector math (math.ts's snippets) cheaper inside a kernel's loop:
 *
 * - {@link ConstantPool} moves every `v128.const` of some code into a local set once, before the
 *   loops. V8 builds a v128 constant where it is used, every time; GELU in a loop went from 16.3
 *   to 11.2 ns a vector with its constants hoisted (AMD EPYC).
 * - {@link interleave} runs several snippets of the same shape statement by statement, so that
 *   their dependency chains overlap: GELU went from 10.7 to 6.5 ns a vector with 4 at once.
 *
 * Both leave the arithmetic as it was: the results are bit for bit those of the plain snippets.
 */

import type { Inline } from "./math.ts";
import type { Code, Local } from "./wat.ts";
import { Expr, Instr, local } from "./wat.ts";

/** The v128 constants of some code, each moved into a local of its own. */
export class ConstantPool {
  private readonly constants = new Map<string, Local<"v128">>();

  /** Locals are named `${prefix}0`, `${prefix}1`, ... */
  constructor(private readonly prefix: string) {}

  private text(text: string): string {
    return text.replace(/\(v128\.const [^()]*\)/g, (c) => {
      if (!this.constants.has(c)) this.constants.set(c, local.v128(`${this.prefix}${this.constants.size}`));
      return `(local.get $${this.constants.get(c)!.name})`;
    });
  }

  /** `code` with its v128 constants read from the pool's locals. */
  code(code: Code): Code {
    if (code instanceof Instr) return new Instr(code.lines.map((l) => this.text(l)));
    if (Array.isArray(code)) return code.map((c) => this.code(c));
    return code;
  }

  /** `e` with its v128 constants read from the pool's locals. */
  expr<T extends Expr<"v128">>(e: T): T {
    return new Expr("v128", this.text(e.text)) as T;
  }

  /** The constants' locals, for the kernel to declare. */
  get locals(): Local<"v128">[] {
    return [...this.constants.values()];
  }

  /** Sets the constants' locals: to run before the loops that use them. */
  get setup(): Instr[] {
    return [...this.constants].map(([c, l]) => local.set(l, new Expr("v128", c)));
  }
}

/**
 * The statements of `snippets` (made by the same generator, so statement i of each is the same
 * instruction on its own locals) interleaved: statement 0 of each, then statement 1 of each, ...
 */
export function interleave(snippets: readonly Pick<Inline, "code">[]): Instr[] {
  const length = snippets[0]?.code.length ?? 0;
  if (snippets.some((s) => s.code.length !== length)) {
    throw new Error("interleave: snippets of different lengths");
  }
  return Array.from({ length }, (_, i) => snippets.map((s) => s.code[i])).flat();
}
