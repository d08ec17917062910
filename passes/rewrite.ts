/**
 * Pattern rewriting, the way most passes change IR. A pattern names the ops it looks at (a
 * declarative filter), may add a condition, and rewrites one op through a Rewriter, which
 * builds new ops with inferred types, replaces uses and erases ops. `rewrite` applies a list
 * of patterns over a function until nothing more changes.
 *
 * ```ts
 * const foldDoubleTranspose: Pattern = {
 *   match: "transpose",
 *   where: (op) => op.operands[0].definingOp?.name === "transpose",
 *   rewrite(op, rw) {
 *     const inner = op.operands[0].definingOp!;
 *     const p1 = inner.attrs.get("perm")!.value as number[], p2 = op.attrs.get("perm")!.value as number[];
 *     rw.replace(op, rw.create("transpose", inner.operands, { perm: p2.map((i) => p1[i]) }));
 *   },
 * };
 * ```
 */

import { attrFromJs, type AttrJs } from "../ir/attrs.ts";
import { createOp, NameScope } from "../ir/builder.ts";
import type { Func, Op, Value } from "../ir/module.ts";
import type { OpRegistry } from "../ir/registry.ts";
import type { TensorType } from "../ir/types.ts";
import { type PassContext, PassFailure, type PassResult } from "./pass.ts";

/** A rewrite of one op. */
export interface Pattern {
  /** The op names this pattern looks at. */
  readonly match: string | readonly string[];
  /** A further condition, e.g. on operand shapes or producers. */
  readonly where?: (op: Op) => boolean;
  /** Rewrites `op` through `rw`. Returns false when it decided not to change anything. */
  rewrite(op: Op, rw: Rewriter): boolean | void;
}

/** Changes a function around one op at a time; new ops go right before that op. */
export class Rewriter {
  private anchor: Op | undefined;
  /** Values created at the current anchor; they take its name when they replace it. */
  private created = new Set<Value>();
  private readonly names: NameScope;

  /** A rewriter over function `f`, building ops from `registry`. */
  constructor(readonly func: Func, private readonly registry: OpRegistry) {
    this.names = new NameScope(func);
  }

  /** Sets the op new ops are placed before (the driver does this for each match). */
  at(op: Op): void {
    this.anchor = op;
    this.created = new Set();
  }

  /**
   * Creates an op before the current one, inferring its type (pass `type` for reshape, cast
   * and constant). It takes the current op's location, and its leading comments if it is the
   * first op created there.
   */
  create(name: string, operands: readonly Value[], attrs: Record<string, AttrJs> = {}, options: {
    name?: string;
    type?: TensorType;
  } = {}): Value {
    const anchor = this.anchor;
    const op = createOp(
      this.registry,
      name,
      operands,
      attrs,
      this.names.fresh(options.name ?? anchor?.result.name),
      options.type,
    );
    if (!anchor) {
      this.func.body.push(op);
      return op.result;
    }
    op.loc = anchor.loc;
    if (anchor.comments.leading.length > 0 || anchor.comments.blankLine) {
      op.comments = { leading: anchor.comments.leading, blankLine: anchor.comments.blankLine };
      anchor.comments = { leading: [], trailing: anchor.comments.trailing };
    }
    this.func.body.splice(this.func.body.indexOf(anchor), 0, op);
    this.created.add(op.result);
    return op.result;
  }

  /** Sets an attribute of an op, converting the JS value by the op's schema. */
  setAttr(op: Op, key: string, value: AttrJs): void {
    const spec = this.registry.get(op.name)?.attrs[key];
    if (!spec) throw new PassFailure(op.loc, `'${op.name}' has no attribute '${key}'`);
    op.attrs.set(key, attrFromJs(spec, value));
  }

  /** The ops that use a value, in order. */
  users(v: Value): Op[] {
    return this.func.body.filter((op) => op.operands.includes(v));
  }

  /** Whether the function returns the value. */
  isReturned(v: Value): boolean {
    return this.func.returns.includes(v);
  }

  /** Makes every use of `from` (ops and returns) use `to` instead. */
  replaceAllUses(from: Value, to: Value): void {
    for (const op of this.func.body) op.operands = op.operands.map((v) => v === from ? to : v);
    this.func.returns = this.func.returns.map((v) => v === from ? to : v);
  }

  /**
   * Replaces an op's result by `value` everywhere and erases the op. A value created for this
   * op takes its name and end-of-line comment, so dumps before and after line up.
   */
  replace(op: Op, value: Value): void {
    const own = this.created.has(value) && value.definingOp;
    this.replaceAllUses(op.result, value);
    if (own && op.comments.trailing !== undefined && own.comments.trailing === undefined) {
      own.comments = { ...own.comments, trailing: op.comments.trailing };
      op.comments = { ...op.comments, trailing: undefined };
    }
    const name = op.result.name;
    this.erase(op);
    if (own) value.name = name;
  }

  /**
   * Removes an op whose result is unused. Its comments (an end-of-line one as a line of its
   * own) move before the next op, or before `return` when it was the last.
   */
  erase(op: Op): void {
    const users = this.users(op.result);
    if (users.length > 0 || this.isReturned(op.result)) {
      const by = users.length > 0 ? `'${users[0].result.ref}'` : "the return";
      throw new PassFailure(op.loc, `cannot erase '${op.result.ref}': it is still used by ${by}`);
    }
    moveCommentsOn(this.func, op);
    const i = this.func.body.indexOf(op);
    if (i >= 0) this.func.body.splice(i, 1);
  }
}

/** Moves the comments of `op`, about to be erased, to the op after it or to the return. */
export function moveCommentsOn(f: Func, op: Op): void {
  const c = op.comments;
  const lines = c.trailing !== undefined ? [...c.leading, c.trailing] : c.leading;
  if (lines.length === 0 && !c.blankLine) return;
  const next = f.body[f.body.indexOf(op) + 1];
  const target = next ? next.comments : f.returnComments;
  const moved = {
    ...target,
    leading: [...lines, ...target.leading],
    blankLine: c.blankLine || target.blankLine,
  };
  if (!moved.blankLine) delete moved.blankLine;
  if (next) next.comments = moved;
  else f.returnComments = moved;
  op.comments = { leading: [] };
}

/** Options of `rewrite`. */
export interface RewriteOptions {
  /** Sweeps over the function before giving up on reaching a fixed point. */
  readonly maxSweeps?: number;
}

/**
 * Applies patterns to every op of `f`, sweeping until none applies. A pattern that throws is
 * reported at the op it was rewriting.
 */
export function rewrite(
  f: Func,
  ctx: PassContext,
  patterns: readonly Pattern[],
  options: RewriteOptions = {},
): PassResult {
  const rw = new Rewriter(f, ctx.registry);
  const byName = new Map<string, Pattern[]>();
  for (const p of patterns) {
    for (const name of typeof p.match === "string" ? [p.match] : p.match) {
      byName.set(name, [...(byName.get(name) ?? []), p]);
    }
  }
  let changed = false;
  const sweeps = options.maxSweeps ?? 20;
  for (let sweep = 0; sweep < sweeps; sweep++) {
    let changedThisSweep = false;
    for (const op of [...f.body]) {
      if (!f.body.includes(op)) continue;
      for (const p of byName.get(op.name) ?? []) {
        if (!f.body.includes(op)) break;
        rw.at(op);
        let applied: boolean | void;
        try {
          if (p.where && !p.where(op)) continue;
          applied = p.rewrite(op, rw);
        } catch (e) {
          if (e instanceof PassFailure) throw e.loc ? e : new PassFailure(op.loc, e.message);
          throw new PassFailure(op.loc, `while rewriting '${op.result.ref}': ${(e as Error).message}`);
        }
        if (applied !== false) changedThisSweep = true;
      }
    }
    if (!changedThisSweep) return changed ? "changed" : "unchanged";
    changed = true;
  }
  throw new PassFailure(
    f.loc,
    `patterns still applied after ${sweeps} sweeps: they do not reach a fixed point`,
  );
}
