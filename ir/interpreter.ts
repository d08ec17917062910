/**
 * The reference interpreter: runs a verified module in plain TypeScript on typed arrays.
 * It is the oracle every pass and kernel is tested against, so it favours clarity. Each op is
 * computed by `evaluateOp`, as every other place that evaluates ops does.
 */

import { evaluateOp } from "./evaluate.ts";
import type { Loc, Module, Value } from "./module.ts";
import { builtinRegistry } from "./ops/index.ts";
import type { OpRegistry } from "./registry.ts";
import { MAX_LIVE_ELEMENTS, type Tensor, tensorSizeProblem } from "./tensor.ts";
import { formatType, numel, sameShape, type TensorType } from "./types.ts";
import type { WeightStore } from "./weights.ts";

/** Options of `interpret`. */
export interface InterpretOptions {
  /** Function to run; `main` by default. */
  readonly func?: string;
  /** Ops to run with; the built-in ops by default. */
  readonly registry?: OpRegistry;
}

/** A failure while running: names the op's place and what went wrong. */
export class InterpretError extends Error {
  /** Prefixes the message with `file:line:col: error:`, or `error:` without a location. */
  constructor(loc: Loc | undefined, message: string) {
    super(loc ? `${loc.file}:${loc.line}:${loc.col}: error: ${message}` : `error: ${message}`);
    this.name = "InterpretError";
  }
}

/** The elements the interpreter holds for a value of type `t` (a BSR value: its stored blocks). */
function heldElements(t: TensorType): number {
  const s = t.sparse;
  return s ? s.nnzBlocks * s.block[0] * s.block[1] : numel(t.shape);
}

/**
 * Runs a function of a verified module on inputs (by parameter name, or in order) and
 * returns its results. Throws InterpretError on bad inputs or a failing op. Before anything
 * runs, every parameter and op result is checked against the interpreter's size limit
 * (`MAX_TENSOR_ELEMENTS`, 2^28 elements), and each value is dropped after its last use; an op
 * whose result would take the values computed and still live past `MAX_LIVE_ELEMENTS` (2^30) is
 * refused before it runs.
 */
export function interpret(
  m: Module,
  inputs: Readonly<Record<string, Tensor>> | readonly Tensor[],
  weights: WeightStore,
  options: InterpretOptions = {},
): Tensor[] {
  const name = options.func ?? "main";
  const registry = options.registry ?? builtinRegistry;
  const f = m.func(name);
  if (!f) throw new InterpretError(m.loc, `the module has no function '@${name}'`);
  const given = Array.isArray(inputs)
    ? inputs
    : f.params.map((p) => (inputs as Record<string, Tensor>)[p.name]);
  if (given.length !== f.params.length) {
    throw new InterpretError(f.loc, `'@${name}' takes ${f.params.length} inputs, got ${given.length}`);
  }
  for (const v of [...f.params, ...f.body.map((op) => op.result)]) {
    const problem = tensorSizeProblem(heldElements(v.type), `'${v.ref}' (${formatType(v.type)})`);
    if (problem) throw new InterpretError(v.loc, problem);
  }
  const lastUse = new Map<Value, number>();
  f.body.forEach((op, i) => op.operands.forEach((v) => lastUse.set(v, i)));
  for (const v of f.returns) lastUse.set(v, Infinity);
  const env = new Map<Value, Tensor>();
  f.params.forEach((p, i) => {
    const t = given[i];
    if (!t) throw new InterpretError(p.loc, `input '${p.ref}' is missing`);
    if (t.dtype !== p.type.dtype || !sameShape(t.shape, p.type.shape)) {
      throw new InterpretError(
        p.loc,
        `input '${p.ref}' must be ${formatType(p.type)}, got ${formatType(t.type)}`,
      );
    }
    env.set(p, t);
  });
  const read = (v: Value): Tensor => {
    let t = env.get(v);
    if (!t && v.kind === "weight") {
      t = weights.get(m.weights.get(v.name)!);
      env.set(v, t);
    }
    return t!;
  };
  let live = 0; // elements of the op results held in env
  const computed = new Set<Value>(f.body.map((op) => op.result));
  for (const [i, op] of f.body.entries()) {
    const need = heldElements(op.result.type);
    if (live + need > MAX_LIVE_ELEMENTS) {
      throw new InterpretError(
        op.loc,
        `'${op.result.ref}' (${formatType(op.result.type)}) would make ${live + need} elements live, ` +
          `over the interpreter's limit of ${MAX_LIVE_ELEMENTS} (2^30)`,
      );
    }
    let out: Tensor;
    try {
      out = evaluateOp(op, op.operands.map(read), registry);
    } catch (e) {
      throw new InterpretError(
        op.loc,
        `while running '${op.name}' for '${op.result.ref}': ${(e as Error).message}`,
      );
    }
    if (lastUse.has(op.result)) {
      env.set(op.result, out);
      live += out.data.length;
    }
    for (const v of new Set(op.operands)) {
      if (lastUse.get(v) !== i) continue;
      if (computed.has(v)) live -= env.get(v)?.data.length ?? 0;
      env.delete(v);
    }
  }
  return f.returns.map(read);
}
