/**
 * Shape specialization: the same function at another batch size and sequence length. A model is
 * imported, pruned and lowered at one static shape; an artifact holds it at several (buckets),
 * all over the same weights. `specializeShapes` gives the function's inputs new leading
 * dimensions and re-derives every op's result type with the op's own shape rule, so the ops,
 * attributes and weights stay exactly as the passes left them.
 *
 * Only four kinds of op carry a shape of their own, and each is carried over by a rule:
 * - `reshape` (its declared type): the dims it shares with its operand at the front and at the
 *   back follow the operand; the ones in between (the heads split, the mask's broadcast axes)
 *   stay, e.g. `[1,64,256] -> [1,64,4,64]` becomes `[8,32,256] -> [8,32,4,64]`;
 * - `cast` (its declared dtype): the operand's new shape;
 * - `slice` of a value that does not depend on the inputs (the position table): an extent equal
 *   to the old sequence length becomes the new one;
 * - `constant` holding `0, 1, ..., seq - 1` along its last axis (position ids an exporter folded
 *   from `arange(seq)`): the same at the new length, a row per batch row.
 * Everything is then verified; an op the rules cannot carry is an error naming it.
 */

import { AttrReader } from "./attrs.ts";
import { cloneModule } from "./clone.ts";
import { formatDiagnostics } from "./diagnostics.ts";
import type { Module, Op, Value } from "./module.ts";
import { builtinRegistry } from "./ops/index.ts";
import type { OpRegistry } from "./registry.ts";
import { formatShape, formatType, numel, type TensorType } from "./types.ts";
import { verify } from "./verifier.ts";

/** The shape to specialize to: batch size and sequence length. */
export interface ShapeBucket {
  /** Rows per run (the inputs' first dimension). */
  readonly batch: number;
  /** Tokens per row (the inputs' last dimension). */
  readonly seq: number;
}

/** A function that cannot be specialized: the message names the op and why. */
export class SpecializeError extends Error {
  /** The error's name. */
  override name = "SpecializeError";
}

/**
 * The batch and sequence length of function `func`'s inputs: each is `[batch, seq]`, and all
 * agree. Throws a SpecializeError otherwise.
 */
export function bucketOf(m: Module, func = "main"): ShapeBucket {
  const f = m.func(func);
  if (!f) throw new SpecializeError(`the module has no function '@${func}'`);
  const shapes = f.params.map((p) => p.type.shape);
  const [first] = shapes;
  if (!first || shapes.some((s) => s.length !== 2 || s[0] !== first[0] || s[1] !== first[1])) {
    throw new SpecializeError(
      `@${func}'s inputs must all be [batch, seq] to compile buckets, got ${
        f.params.map((p) => `${p.ref}: ${formatType(p.type)}`).join(", ")
      }`,
    );
  }
  return { batch: first[0], seq: first[1] };
}

/** The reshape rule: `to` with the dims `from` shares at its front and back taken from `now`. */
function carryReshape(from: readonly number[], to: readonly number[], now: readonly number[]): number[] {
  let front = 0;
  while (front < from.length && front < to.length && from[front] === to[front]) front++;
  let back = 0;
  while (
    back < from.length - front && back < to.length - front &&
    from[from.length - 1 - back] === to[to.length - 1 - back]
  ) back++;
  const middle = (s: readonly number[]) => s.slice(front, s.length - back);
  if (now.length !== from.length || formatShape(middle(now)) !== formatShape(middle(from))) return [];
  return [...now.slice(0, front), ...middle(to), ...now.slice(now.length - back)];
}

/**
 * The position-ids rule: a constant holding `0, 1, ..., seq - 1` along its last axis of length
 * `seq` (what exporters fold `arange(seq)` to) holds `0, ..., now - 1` instead, and a `[1, seq]`
 * one (ids broadcast over the batch) gets a row per batch row, so what it feeds keeps the batch's
 * shape. Its new type is returned; any other constant is left alone.
 */
function positionIds(op: Op, declared: TensorType, old: ShapeBucket, now: ShapeBucket): TensorType {
  const value = op.attrs.get("value");
  const { shape } = declared;
  if (value?.kind !== "dense" || shape.at(-1) !== old.seq || numel(shape) !== old.seq) return declared;
  const { values, float } = value.value;
  if (values.length !== old.seq || values.some((v, i) => v !== i)) return declared;
  const rows = shape.length === 2 && old.batch === 1 ? now.batch : 1;
  const ids = Array.from({ length: rows * now.seq }, (_, i) => i % now.seq);
  const to = rows > 1 ? [rows, now.seq] : [...shape.slice(0, -1), now.seq];
  op.attrs.set("value", { kind: "dense", value: { shape: to, values: ids, float } });
  return { ...declared, shape: to };
}

/**
 * A copy of module `m` whose function `func` takes inputs of shape `[bucket.batch, bucket.seq]`,
 * every op's result re-derived. Weights, ops and attributes are shared in meaning: the copy runs
 * the same model on more rows or longer rows. Throws a SpecializeError naming the op that the
 * rules cannot carry over.
 */
export function specializeShapes(
  m: Module,
  bucket: ShapeBucket,
  options: { func?: string; registry?: OpRegistry } = {},
): Module {
  const func = options.func ?? "main";
  const registry = options.registry ?? builtinRegistry;
  const old = bucketOf(m, func);
  const out = cloneModule(m);
  const f = out.func(func)!;
  for (const p of f.params) p.type = { ...p.type, shape: [bucket.batch, bucket.seq] };
  // Values that depend on the inputs; a slice of anything else keeps its meaning per length.
  const varying = new Set<Value>(f.params);
  const fail = (op: Op, why: string) =>
    new SpecializeError(
      `${op.loc ? `${op.loc.file}:${op.loc.line}:${op.loc.col}: ` : ""}cannot specialize ${op.result.ref} ` +
        `('${op.name}') to batch ${bucket.batch}, seq ${bucket.seq}: ${why}`,
    );
  const before = m.func(func)!.body;
  for (const [i, op] of f.body.entries()) {
    const def = registry.get(op.name);
    if (!def) throw fail(op, "unknown op");
    const dependent = op.operands.some((v) => varying.has(v));
    if (dependent) varying.add(op.result);
    let declared: TensorType = op.result.type;
    if (op.name === "reshape" && dependent) {
      const x = before[i].operands[0].type.shape;
      const shape = carryReshape(x, declared.shape, op.operands[0].type.shape);
      if (shape.length === 0 || numel(shape) !== numel(op.operands[0].type.shape)) {
        throw fail(
          op,
          `its operand became ${formatShape(op.operands[0].type.shape)}; no shape follows from ` +
            `${formatShape(x)} -> ${formatShape(declared.shape)}`,
        );
      }
      declared = { ...declared, shape };
    } else if (op.name === "cast") {
      declared = { ...declared, shape: [...op.operands[0].type.shape] };
    } else if (op.name === "constant") {
      declared = positionIds(op, declared, old, bucket);
    } else if (op.name === "slice" && !dependent && old.seq !== bucket.seq) {
      const ends = op.attrs.get("ends");
      const starts = op.attrs.get("starts");
      if (ends?.kind === "ints" && starts?.kind === "ints") {
        const newEnds = ends.value.map((e, i) => starts.value[i] === 0 && e === old.seq ? bucket.seq : e);
        op.attrs.set("ends", { kind: "ints", value: newEnds });
      }
    }
    try {
      op.result.type = def.infer(
        op.operands.map((v) => v.type),
        new AttrReader(def.attrs, op.attrs),
        declared,
      );
    } catch (e) {
      throw fail(op, (e as Error).message);
    }
  }
  f.resultTypes = f.returns.map((r) => r.type);
  const diagnostics = verify(out, { registry });
  if (diagnostics.length > 0) {
    throw new SpecializeError(
      `the module specialized to batch ${bucket.batch}, seq ${bucket.seq} does not verify:\n${
        formatDiagnostics(diagnostics)
      }`,
    );
  }
  return out;
}
