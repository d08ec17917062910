/**
 * Losses appended to a forward function, so that `grad` (autodiff.ts) has a scalar to
 * differentiate: `withCrossEntropyLoss` turns a classifier returning logits into a function of
 * the same arguments plus the labels, returning the mean cross-entropy and the logits.
 */

import { createOp } from "./builder.ts";
import { Func, type Module, Op, Value } from "./module.ts";
import { builtinRegistry } from "./ops/index.ts";
import type { OpRegistry } from "./registry.ts";
import { type DType, formatType, isFloat } from "./types.ts";

/** Options of {@link withCrossEntropyLoss}. */
export interface CrossEntropyOptions {
  /** Which result of the function holds the logits `[B, C]`; 0 by default. */
  readonly output?: number;
  /** Name of the new function; `<fn>_loss` by default. It must not exist yet. */
  readonly name?: string;
  /** Name of the labels argument; `labels` by default. */
  readonly labels?: string;
  /** Dtype of the labels, i64 (as Hugging Face's input ids) by default, or i32. */
  readonly labelsDtype?: "i64" | "i32";
  /** The ops to build with; the built-in ops by default. */
  readonly registry?: OpRegistry;
}

/**
 * Adds to `m` a copy of function `fnName` that takes one more argument, `%labels: tensor<Bxi64>`
 * (integer classes in `0..C-1`), and returns `(loss, logits)`: `loss = cross_entropy(logits,
 * labels)`, the mean over the batch of the softmax cross-entropy (PyTorch's `CrossEntropyLoss`),
 * a scalar of the logits' dtype. Returns the new function's name. Throws an Error when the
 * function is missing, the new name is taken, or the chosen result is not float `[B, C]`.
 */
export function withCrossEntropyLoss(m: Module, fnName: string, options: CrossEntropyOptions = {}): string {
  const f = m.func(fnName);
  if (!f) throw new Error(`withCrossEntropyLoss: the module has no function '@${fnName}'`);
  const name = options.name ?? `${fnName}_loss`;
  if (m.func(name)) throw new Error(`withCrossEntropyLoss: the module already has a function '@${name}'`);
  const output = options.output ?? 0;
  const logits = f.returns[output];
  if (!logits || logits.type.shape.length !== 2 || !isFloat(logits.type.dtype)) {
    const got = logits ? formatType(logits.type) : "nothing";
    throw new Error(
      `withCrossEntropyLoss: result ${output} of '@${fnName}' must be float logits [B, C], got ${got}`,
    );
  }
  const labelsName = options.labels ?? "labels";
  if (f.params.some((p) => p.name === labelsName) || f.body.some((op) => op.result.name === labelsName)) {
    throw new Error(`withCrossEntropyLoss: '@${fnName}' already has a value '%${labelsName}'`);
  }
  const dtype: DType = options.labelsDtype ?? "i64";
  const map = new Map<Value, Value>();
  const params = f.params.map((p) => {
    const copy = new Value(p.name, structuredClone(p.type), "arg");
    map.set(p, copy);
    return copy;
  });
  const labels = new Value(labelsName, { shape: [logits.type.shape[0]], dtype }, "arg");
  params.push(labels);
  const body = f.body.map((op) => {
    const result = new Value(op.result.name, structuredClone(op.result.type), "result");
    const copy = new Op(op.name, op.operands.map((v) => map.get(v) ?? v), structuredClone(op.attrs), result);
    copy.comments = { ...op.comments, leading: [...op.comments.leading] };
    map.set(op.result, result);
    return copy;
  });
  const taken = new Set([...params.map((p) => p.name), ...body.map((op) => op.result.name)]);
  let lossName = "loss";
  for (let i = 1; taken.has(lossName); i++) lossName = `loss.${i}`;
  const mappedLogits = map.get(logits)!;
  const loss = createOp(
    options.registry ?? builtinRegistry,
    "cross_entropy",
    [mappedLogits, labels],
    {},
    lossName,
  );
  loss.comments = {
    leading: ["// loss: mean cross-entropy of the logits against the labels"],
    blankLine: true,
  };
  body.push(loss);
  const fn = new Func(name, params, [loss.result.type, mappedLogits.type], body, [loss.result, mappedLogits]);
  fn.comments = {
    leading: [`// @${fnName} with a cross-entropy loss (withCrossEntropyLoss, ir/loss.ts).`],
    blankLine: true,
  };
  m.funcs.splice(m.funcs.indexOf(f) + 1, 0, fn);
  return name;
}
