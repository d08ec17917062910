/**
 * Reverse-mode automatic differentiation as a transformation of the IR: `grad` builds, from a
 * forward function whose result is a scalar loss, a backward function in the same module that
 * returns the loss and the gradient of chosen weights (and float arguments). Each op's
 * vector-Jacobian rule lives in its own file (`OpDef.grad`); this file only walks the function.
 *
 * ```ts
 * const lossFn = withCrossEntropyLoss(module, "main");          // @main_loss(..., %labels)
 * const info = grad(module, lossFn);                              // @main_loss_grad
 * const { loss, grads } = runGrad(module, info, inputs, weights); // grads.get("classifier.weight")
 * ```
 */

import { type AttrJs, AttrReader, attrToJs } from "./attrs.ts";
import { createOp, NameScope } from "./builder.ts";
import { formatDiagnostics } from "./diagnostics.ts";
import { interpret } from "./interpreter.ts";
import { Func, type Module, noComments, Op, Value } from "./module.ts";
import { builtinRegistry } from "./ops/index.ts";
import { type GradEmitter, OpError, type OpRegistry } from "./registry.ts";
import type { Tensor } from "./tensor.ts";
import { type DType, formatType, isFloat, sameShape, type TensorType } from "./types.ts";
import { verify } from "./verifier.ts";
import type { WeightStore } from "./weights.ts";

/** Options of {@link grad}. */
export interface GradOptions {
  /**
   * Names of the weights to differentiate (without `@`). By default every float weight the loss
   * depends on through differentiable ops. A named weight the loss does not depend on is an error.
   */
  readonly wrt?: readonly string[];
  /** Names of float arguments of the function to differentiate too (without `%`); none by default. */
  readonly args?: readonly string[];
  /** Name of the backward function; `<fn>_grad` by default. It must not exist yet. */
  readonly name?: string;
  /** Which result of the function is the loss (a float scalar); 0 by default. */
  readonly output?: number;
  /** The ops, with their gradient rules; the built-in ops by default. */
  readonly registry?: OpRegistry;
}

/** One gradient the backward function returns. */
export interface GradEntry {
  /** The weight or argument name, without sigil. */
  readonly name: string;
  /** A weight (`@name`) or an argument of the function (`%name`). */
  readonly kind: "weight" | "arg";
  /**
   * The gradient's type: the value's type, or for a BSR weight the dense `[nnz, R, C]` type of its
   * stored blocks (the gradient of `<name>.data`).
   */
  readonly type: TensorType;
}

/** What {@link grad} built. */
export interface GradInfo {
  /** The backward function's name. */
  readonly func: string;
  /** The forward function it was built from. */
  readonly forward: string;
  /** The backward function's results after the loss (result 0), in order. */
  readonly grads: readonly GradEntry[];
}

/** A failure of `grad`: an op without a rule, a bad option; the message names the place. */
export class GradError extends Error {
  /** Creates the error with its message. */
  constructor(message: string) {
    super(message);
    this.name = "GradError";
  }
}

/** Where an op is, for messages: `file:line:col` when parsed, and its result name. */
function where(op: Op): string {
  const at = op.loc ? `${op.loc.file}:${op.loc.line}:${op.loc.col}: ` : "";
  return `${at}'${op.name}' (${op.result.ref})`;
}

/** The gradient type of a value: its own type, or the `[nnz, R, C]` blocks of a BSR weight. */
function gradType(t: TensorType): TensorType {
  if (!t.sparse) return { shape: [...t.shape], dtype: t.dtype };
  return { shape: [t.sparse.nnzBlocks, ...t.sparse.block], dtype: t.dtype };
}

/** Copies `f`'s parameters (same names and types) for a new function; returns them with a value map. */
function copyParams(f: Func): { params: Value[]; map: Map<Value, Value> } {
  const map = new Map<Value, Value>();
  const params = f.params.map((p) => {
    const copy = new Value(p.name, structuredClone(p.type), "arg");
    map.set(p, copy);
    return copy;
  });
  return { params, map };
}

/** Copies `op` into a new function whose values are mapped by `map`, keeping its comments. */
function copyOp(op: Op, map: Map<Value, Value>): Op {
  const operands = op.operands.map((v) => v.kind === "weight" ? v : map.get(v)!);
  const result = new Value(op.result.name, structuredClone(op.result.type), "result");
  const copy = new Op(op.name, operands, structuredClone(op.attrs), result);
  copy.comments = { ...op.comments, leading: [...op.comments.leading] };
  map.set(op.result, result);
  return copy;
}

/**
 * Adds to `m` the backward function of function `fnName`, whose result `output` (0 by default) is
 * a float scalar loss: it takes the same arguments, recomputes the ops the loss depends on, then
 * runs every op's gradient rule in reverse order, and returns the loss followed by the gradient of
 * each chosen weight, then of each chosen argument (their order is `GradInfo.grads`).
 *
 * Cotangents of values used several times are summed with `add`; ops the loss does not depend on,
 * and ops on no path from a chosen value to the loss, get no backward ops. A BSR weight's gradient
 * is that of its stored blocks, `[nnz, R, C]`. The new function is verified. Throws GradError for
 * an op without a gradient rule on a path from a chosen value to the loss (naming the op and its
 * place), for a loss that is not a float scalar, and for bad options; `m` is left unchanged then.
 */
export function grad(m: Module, fnName: string, options: GradOptions = {}): GradInfo {
  const registry = options.registry ?? builtinRegistry;
  const f = m.func(fnName);
  if (!f) throw new GradError(`grad: the module has no function '@${fnName}'`);
  const name = options.name ?? `${fnName}_grad`;
  if (m.func(name)) throw new GradError(`grad: the module already has a function '@${name}'`);
  const output = options.output ?? 0;
  const loss = f.returns[output];
  if (!loss) throw new GradError(`grad: '@${fnName}' has no result ${output}`);
  if (loss.type.shape.length !== 0 || !isFloat(loss.type.dtype)) {
    throw new GradError(
      `grad: the loss (result ${output} of '@${fnName}', ${loss.ref}) must be a float scalar, got ${
        formatType(loss.type)
      }`,
    );
  }

  // The ops the loss depends on, in order.
  const needed = new Set<Value>([loss]);
  const live: Op[] = [];
  for (let i = f.body.length - 1; i >= 0; i--) {
    const op = f.body[i];
    if (!needed.has(op.result)) continue;
    live.push(op);
    for (const v of op.operands) needed.add(v);
  }
  live.reverse();

  // The values to differentiate.
  const targets: Value[] = [];
  const usedWeights = [...m.weights.values()].filter((w) => needed.has(w));
  if (options.wrt) {
    for (const wn of options.wrt) {
      const w = m.weights.get(wn);
      if (!w) throw new GradError(`grad: '@${wn}' is not a weight of the module`);
      if (!isFloat(w.type.dtype)) throw new GradError(`grad: '@${wn}' is not a float weight`);
      if (!needed.has(w)) throw new GradError(`grad: the loss of '@${fnName}' does not depend on '@${wn}'`);
      targets.push(w);
    }
  } else {
    targets.push(...usedWeights.filter((w) => isFloat(w.type.dtype)));
  }
  for (const an of options.args ?? []) {
    const p = f.params.find((v) => v.name === an);
    if (!p) throw new GradError(`grad: '@${fnName}' has no argument '%${an}'`);
    if (!isFloat(p.type.dtype)) throw new GradError(`grad: argument '%${an}' is not a float tensor`);
    targets.push(p);
  }

  // Values that depend on a target through float values: the ones that get cotangents.
  const active = new Set<Value>(targets);
  for (const op of live) {
    if (isFloat(op.result.type.dtype) && op.operands.some((v) => active.has(v))) active.add(op.result);
  }
  const defaulted = !options.wrt;

  // The backward function: the forward ops first.
  const { params, map } = copyParams(f);
  const fn = new Func(name, params, [], [], []);
  fn.comments = {
    leading: [`// Reverse-mode gradient of @${fnName} (grad, ir/autodiff.ts).`],
    blankLine: true,
  };
  fn.body = live.map((op) => copyOp(op, map));
  const scope = new NameScope(fn);
  const mapped = (v: Value) => v.kind === "weight" ? v : map.get(v)!;
  let pendingComment: string | undefined = "backward";
  let created: Set<Value> | undefined; // the values the running rule emitted
  const emit = (
    opName: string,
    operands: readonly Value[],
    attrs: Record<string, AttrJs>,
    base: string,
    type?: TensorType,
  ) => {
    const op = createOp(registry, opName, operands, attrs, scope.fresh(base), type);
    if (pendingComment) {
      op.comments = { leading: [`// ${pendingComment}`], blankLine: true };
      pendingComment = undefined;
    }
    fn.body.push(op);
    created?.add(op.result);
    return op.result;
  };

  // Cotangents, by forward value.
  const cot = new Map<Value, Value>();
  const accumulate = (v: Value, g: Value, base: string) => {
    const prior = cot.get(v);
    cot.set(v, prior ? emit("add", [prior, g], {}, base) : g);
  };
  const seed = emit("constant", [], { value: { shape: [], values: [1], float: true } }, `d.${loss.name}`, {
    shape: [],
    dtype: loss.type.dtype,
  });
  cot.set(loss, seed);

  for (let i = live.length - 1; i >= 0; i--) {
    const op = live[i];
    const dy = cot.get(op.result);
    if (!dy || !active.has(op.result)) continue;
    const def = registry.get(op.name)!;
    const wanted = op.operands.map((v) => active.has(v));
    if (!def.grad) {
      const from = targets.find((t) => dependsOn(op, t, live)) ?? targets[0];
      throw new GradError(
        `grad: ${
          where(op)
        } has no gradient rule, and it is on the path from ${from.ref} to the loss of '@${fnName}'` +
          (defaulted ? "" : " (leave that value out of wrt)"),
      );
    }
    const base = `d.${op.result.name}`;
    const e: GradEmitter = {
      operands: op.operands.map(mapped),
      result: map.get(op.result)!,
      attrs: new AttrReader(def.attrs, op.attrs),
      written: Object.fromEntries([...op.attrs].map(([k, a]) => [k, attrToJs(a)])),
      needs: (j) => wanted[j] ?? false,
      op: (n, operands, attrs = {}, type) => emit(n, operands, { ...attrs }, base, type),
      constant: (value: number, dtype: DType, shape: readonly number[] = []) =>
        emit("constant", [], { value: { shape: [], values: [value], float: true } }, `${base}.c`, {
          shape: [...shape],
          dtype,
        }),
    };
    let grads: readonly (Value | undefined)[];
    created = new Set();
    try {
      grads = def.grad(e, dy);
    } catch (err) {
      const why = err instanceof OpError ? err.message : String(err instanceof Error ? err.message : err);
      throw new GradError(`grad: the gradient rule of ${where(op)} failed: ${why}`);
    }
    const fresh = created;
    created = undefined;
    op.operands.forEach((v, j) => {
      if (!wanted[j]) return;
      const g = grads[j];
      if (!g) {
        throw new GradError(
          `grad: ${
            where(op)
          } gives no gradient for its operand ${j} (${v.ref}), which depends on a differentiated value`,
        );
      }
      const want = gradType(v.type);
      if (!sameShape(g.type.shape, want.shape) || g.type.dtype !== want.dtype) {
        throw new GradError(
          `grad: the gradient rule of ${where(op)} gave ${formatType(g.type)} for ${v.ref}, expected ${
            formatType(want)
          }`,
        );
      }
      // A cotangent the rule made is named after its operand: `%d.<operand>`.
      if (fresh.has(g) && v.kind !== "weight") {
        g.name = scope.fresh(`d.${v.name}`);
        fresh.delete(g);
      }
      accumulate(v, g, `d.${v.name}`);
    });
  }

  // Results: the loss, then each target's gradient (zeros when no differentiable path reached it).
  const grads: GradEntry[] = [];
  const returns: Value[] = [map.get(loss)!];
  for (const t of targets) {
    const type = gradType(t.type);
    let g = cot.get(t);
    if (!g) {
      if (!defaulted || t.kind === "arg") {
        g = emit("constant", [], { value: { shape: [], values: [0], float: true } }, `grad.${t.name}`, type);
      } else continue;
    }
    if (g.kind === "result" && !fn.params.includes(g)) {
      // The final cotangent of a target: give it a readable name.
      const fresh = scope.fresh(`grad.${t.name}`);
      g.name = fresh;
    }
    returns.push(g);
    grads.push({ name: t.name, kind: t.kind === "weight" ? "weight" : "arg", type });
  }
  fn.returns = returns;
  fn.resultTypes = returns.map((v) => structuredClone(v.type));
  fn.returnComments = noComments();

  const at = m.funcs.indexOf(f);
  m.funcs.splice(at + 1, 0, fn);
  const problems = verify(m, { registry });
  if (problems.length > 0) {
    m.funcs.splice(at + 1, 1);
    throw new GradError(
      `grad: the backward function does not verify (a broken gradient rule):\n${formatDiagnostics(problems)}`,
    );
  }
  return { func: name, forward: fnName, grads };
}

/** Whether `op`'s result depends on `target` among the ops `live`. */
function dependsOn(op: Op, target: Value, live: readonly Op[]): boolean {
  const reach = new Set<Value>([target]);
  for (const o of live) {
    if (o.operands.some((v) => reach.has(v))) reach.add(o.result);
    if (o === op) break;
  }
  return reach.has(op.result);
}

/** What {@link runGrad} returns. */
export interface GradValues {
  /** The loss, as a number. */
  readonly loss: number;
  /** The gradients, by weight or argument name (see `GradInfo.grads`). */
  readonly grads: Map<string, Tensor>;
}

/**
 * Runs the backward function `info` describes with the reference interpreter on `inputs` (by
 * argument name, or in order: the forward function's arguments) and `weights`, and returns the
 * loss and the gradients by name.
 */
export function runGrad(
  m: Module,
  info: GradInfo,
  inputs: Readonly<Record<string, Tensor>> | readonly Tensor[],
  weights: WeightStore,
  options: { readonly registry?: OpRegistry } = {},
): GradValues {
  const [loss, ...rest] = interpret(m, inputs, weights, { func: info.func, registry: options.registry });
  return { loss: loss.data[0], grads: new Map(info.grads.map((g, i) => [g.name, rest[i]])) };
}
