/**
 * Deep copies of modules, so that a pipeline can work on a copy and leave its input
 * untouched when a pass fails, even one that mutates types or attribute values in place.
 * Locations and comments are kept.
 */

import { type Comments, Func, Module, Op, Value, Weight } from "./module.ts";

function copyComments(c: Comments): Comments {
  return { ...c, leading: [...c.leading] };
}

/** A deep copy of a module. */
export function cloneModule(m: Module): Module {
  const weights = new Map<string, Weight>();
  for (const [name, w] of m.weights) {
    const copy = new Weight(w.name, structuredClone(w.type), w.loc);
    copy.comments = copyComments(w.comments);
    weights.set(name, copy);
  }
  const out = new Module(m.name, structuredClone(m.attrs), m.weightsFile, weights, [], m.loc);
  out.comments = copyComments(m.comments);
  out.weightsComments = copyComments(m.weightsComments);
  out.weightsEndComments = [...m.weightsEndComments];
  out.endComments = [...m.endComments];
  out.fileEndComments = [...m.fileEndComments];
  out.funcs = m.funcs.map((f) => cloneFunc(f, weights));
  return out;
}

function cloneFunc(f: Func, weights: ReadonlyMap<string, Weight>): Func {
  const values = new Map<Value, Value>();
  const map = (v: Value): Value => {
    if (v.kind === "weight") return weights.get(v.name) ?? v;
    return values.get(v) ?? v;
  };
  const params = f.params.map((p) => {
    const copy = new Value(p.name, structuredClone(p.type), "arg", p.loc);
    values.set(p, copy);
    return copy;
  });
  const body = f.body.map((op) => {
    const result = new Value(op.result.name, structuredClone(op.result.type), "result", op.result.loc);
    const copy = new Op(op.name, op.operands.map(map), structuredClone(op.attrs), result, op.loc);
    copy.comments = copyComments(op.comments);
    values.set(op.result, result);
    return copy;
  });
  const out = new Func(f.name, params, structuredClone(f.resultTypes), body, f.returns.map(map), f.loc);
  out.comments = copyComments(f.comments);
  out.returnComments = copyComments(f.returnComments);
  out.endComments = [...f.endComments];
  out.returnLoc = f.returnLoc;
  return out;
}
