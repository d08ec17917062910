/**
 * Weights as arguments: `weightsAsParams` adds to a module a copy of a function in which chosen
 * weights are read from new arguments instead of the weights file. Compiled code treats weights
 * as compile-time constants (packed into the artifact); a training step, whose weights change
 * every step, compiles the copy instead, so the weights are run-time inputs and one artifact
 * serves every step.
 */

import { Func, type Module, Op, Value } from "./module.ts";
import { verify } from "./verifier.ts";

/** Options of {@link weightsAsParams}. */
export interface WeightsAsParamsOptions {
  /** The weights to turn into arguments, by name; every weight the function uses by default. */
  readonly weights?: readonly string[];
  /** Name of the new function; `<fn>_params` by default. It must not exist yet. */
  readonly name?: string;
}

/** What {@link weightsAsParams} made. */
export interface ParamsInfo {
  /** The new function's name. */
  readonly func: string;
  /** Each weight turned into an argument and the argument's name, in argument order (after fn's own). */
  readonly params: readonly { readonly weight: string; readonly param: string }[];
}

/**
 * Adds to `m`, right after function `fnName`, a copy of it whose arguments are `fnName`'s followed
 * by one per chosen weight (same type; named as the weight, or `<weight>.param`, `<weight>.param.1`,
 * ... when a value of the function already has that name), every use of the weight replaced by
 * its argument. Dense weights only: a BSR weight (a sparse type) is refused. Throws an Error,
 * leaving `m` unchanged, when the function is missing, the name is taken, a named weight is not
 * declared or not used by the function, or the result does not verify.
 */
export function weightsAsParams(m: Module, fnName: string, options: WeightsAsParamsOptions = {}): ParamsInfo {
  const f = m.func(fnName);
  if (!f) throw new Error(`weightsAsParams: the module has no function '@${fnName}'`);
  const name = options.name ?? `${fnName}_params`;
  if (m.func(name)) throw new Error(`weightsAsParams: the module already has a function '@${name}'`);
  const used = new Set<string>();
  for (const op of f.body) for (const v of op.operands) if (v.kind === "weight") used.add(v.name);
  for (const v of f.returns) if (v.kind === "weight") used.add(v.name);
  const chosen = options.weights ? [...options.weights] : [...m.weights.keys()].filter((w) => used.has(w));
  if (new Set(chosen).size !== chosen.length) throw new Error("weightsAsParams: a weight is named twice");
  for (const w of chosen) {
    const decl = m.weights.get(w);
    if (!decl) throw new Error(`weightsAsParams: the module declares no weight '@${w}'`);
    if (!used.has(w)) throw new Error(`weightsAsParams: '@${fnName}' does not use weight '@${w}'`);
    if (decl.type.sparse) {
      throw new Error(`weightsAsParams: weight '@${w}' is sparse (BSR); dense weights only`);
    }
  }
  const taken = new Set([...f.params.map((p) => p.name), ...f.body.map((op) => op.result.name)]);
  const map = new Map<Value, Value>();
  const params = f.params.map((p) => {
    const copy = new Value(p.name, structuredClone(p.type), "arg", p.loc);
    map.set(p, copy);
    return copy;
  });
  const added = chosen.map((w) => {
    let param = w;
    for (let i = 0; taken.has(param); i++) param = i === 0 ? `${w}.param` : `${w}.param.${i}`;
    taken.add(param);
    const decl = m.weights.get(w)!;
    const v = new Value(param, structuredClone(decl.type), "arg");
    map.set(decl, v);
    params.push(v);
    return { weight: w, param };
  });
  const mapped = (v: Value): Value => map.get(v.kind === "weight" ? m.weights.get(v.name) ?? v : v) ?? v;
  const body = f.body.map((op) => {
    const result = new Value(op.result.name, structuredClone(op.result.type), "result", op.result.loc);
    const copy = new Op(op.name, op.operands.map(mapped), structuredClone(op.attrs), result, op.loc);
    copy.comments = { ...op.comments, leading: [...op.comments.leading] };
    map.set(op.result, result);
    return copy;
  });
  const fn = new Func(name, params, structuredClone(f.resultTypes), body, f.returns.map(mapped), f.loc);
  fn.returnLoc = f.returnLoc;
  fn.comments = {
    leading: [`// @${fnName} with ${added.length} weights as arguments (weightsAsParams, ir/params.ts).`],
    blankLine: true,
  };
  m.funcs.splice(m.funcs.indexOf(f) + 1, 0, fn);
  const problems = verify(m);
  if (problems.length > 0) {
    m.funcs.splice(m.funcs.indexOf(fn), 1);
    const text = problems.slice(0, 5).map((d) => d.message).join("; ");
    throw new Error(`weightsAsParams: the new function does not verify: ${text}`);
  }
  return { func: name, params: added };
}
