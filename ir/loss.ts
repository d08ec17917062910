/**
 * Losses appended to a forward function, so that `grad` (autodiff.ts) has a scalar to
 * differentiate: `withCrossEntropyLoss` turns a classifier returning logits into a function of
 * the same arguments plus the labels, returning the mean cross-entropy and the logits.
 */

import { createOp } from "./builder.ts";
import { Func, type Module, Op, Value } from "./module.ts";
import { builtinRegistry } from "./ops/index.ts";
import type { OpRegistry } from "./registry.ts";
import type { AttrJs } from "./attrs.ts";
import { formatType, isFloat, type TensorType } from "./types.ts";

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
  const made = lossCopy(m, fnName, options, "withCrossEntropyLoss");
  const loss = made.emit("cross_entropy", [made.logits, made.labels], {}, "loss");
  loss.comments = {
    leading: ["// loss: mean cross-entropy of the logits against the labels"],
    blankLine: true,
  };
  return finish(m, fnName, made, loss.result, "a cross-entropy loss (withCrossEntropyLoss");
}

/** Options of {@link withDistillationLoss}. */
export interface DistillationOptions extends CrossEntropyOptions {
  /** The softmax temperature T of both distributions (> 0); 2 by default. */
  readonly temperature?: number;
  /** The weight α of the cross-entropy against the labels, in [0, 1]; 0.5 by default. */
  readonly alpha?: number;
  /** Name of the teacher's probabilities argument; `soft_targets` by default. */
  readonly softTargets?: string;
  /** Hidden-state distillation as well (a term added to the loss); none by default. */
  readonly hidden?: HiddenDistillation;
}

/**
 * Hidden-state (intermediate-layer) distillation, a term of {@link withDistillationLoss}: values of
 * the function, all of one float type `[..., H]` (for a BERT, each encoder layer's output
 * `[B, L, H]`), pulled toward a teacher's,
 *
 *   β · Σ_i Σ_{b,l,h} w_bl · (h_i − t_i)²_blh
 *
 * with `t_i` the argument `%<prefix><i>` (the teacher's value, same type) and `w` the argument
 * `%<weights>` of the same shape with a last dim of 1, broadcast over H. With `w = mask / (N·H)`, N
 * the real (unmasked) tokens of the batch, the term is β times the sum over the values of their
 * mean squared difference over real tokens and hidden units.
 */
export interface HiddenDistillation {
  /** Result names of ops of the function (e.g. `l0.ln2`), in order: value i is compared with teacher value i. */
  readonly values: readonly string[];
  /** The term's weight β (>= 0). */
  readonly beta: number;
  /** Prefix of the teachers' values' argument names; `teacher_hidden_` by default. */
  readonly prefix?: string;
  /** Name of the per-position weights argument; `hidden_weights` by default. */
  readonly weights?: string;
}

/**
 * Knowledge distillation (Hinton et al.): adds to `m` a copy of function `fnName` that takes two
 * more arguments, `%labels: tensor<Bxi64>` and `%soft_targets: tensor<BxCxf32>` (a teacher's
 * probabilities at temperature T, `softmax(teacher_logits / T)`), and returns `(loss, logits)`:
 *
 *   loss = α · cross_entropy(logits, labels) + (1 − α) · T² · mean_b(−Σ_c p_bc · log_softmax(logits / T)_bc)
 *
 * built from plain ops (`mul`, `exp`, `reduce_sum`, `log`, `sub`), so `grad` differentiates it
 * and codegen compiles it like any function. The soft cross-entropy differs from the KL
 * divergence by the teacher's entropy, a constant. `log_softmax` is taken without subtracting the
 * row maximum: exact in f32 while |logits / T| stays below about 80. With `options.hidden` the
 * loss has a third term, hidden-state distillation ({@link HiddenDistillation}), and the function
 * takes its arguments after the soft targets. Returns the new function's name.
 */
export function withDistillationLoss(m: Module, fnName: string, options: DistillationOptions = {}): string {
  const where = "withDistillationLoss";
  const T = options.temperature ?? 2;
  const alpha = options.alpha ?? 0.5;
  if (!(T > 0) || !(alpha >= 0 && alpha <= 1)) {
    throw new Error(`${where}: temperature must be > 0 and alpha in [0, 1], got ${T} and ${alpha}`);
  }
  const made = lossCopy(m, fnName, options, where);
  const { logits, labels, emit, param } = made;
  const soft = param(options.softTargets ?? "soft_targets", structuredClone(logits.type));
  const scalar = (value: number, name: string) =>
    emit("constant", [], { value: { shape: [], values: [value], float: true } }, name, {
      shape: [],
      dtype: logits.type.dtype,
    }).result;
  const B = logits.type.shape[0];
  const ce = emit("cross_entropy", [logits, labels], {}, "loss.ce");
  ce.comments = { leading: [`// loss: distillation at T = ${T}, alpha = ${alpha}`], blankLine: true };
  const u = emit("mul", [logits, scalar(1 / T, "loss.inv_t")], {}, "loss.scaled").result;
  const sums =
    emit("reduce_sum", [emit("exp", [u], {}, "loss.exp").result], { axes: [1], keepdims: true }, "loss.sum")
      .result;
  const logSoftmax =
    emit("sub", [u, emit("log", [sums], {}, "loss.log_sum").result], {}, "loss.log_softmax").result;
  const weighted = emit("mul", [soft, logSoftmax], {}, "loss.weighted").result;
  const total = emit("reduce_sum", [weighted], { axes: [0, 1], keepdims: false }, "loss.total").result;
  const kd = emit("mul", [total, scalar(-(1 - alpha) * T * T / B, "loss.kd_scale")], {}, "loss.kd").result;
  const hard = emit("mul", [ce.result, scalar(alpha, "loss.alpha")], {}, "loss.hard").result;
  if (!options.hidden) {
    const loss = emit("add", [hard, kd], {}, "loss").result;
    return finish(m, fnName, made, loss, "a distillation loss (withDistillationLoss");
  }
  const logitsTerms = emit("add", [hard, kd], {}, "loss.logits").result;
  const hidden = hiddenTerm(made, options.hidden, where, scalar);
  const loss = emit("add", [logitsTerms, hidden], {}, "loss").result;
  return finish(m, fnName, made, loss, "a distillation loss with hidden states (withDistillationLoss");
}

/** The hidden-state term β · Σ_i reduce_sum(w · (h_i − t_i)²), its arguments added to `made`. */
function hiddenTerm(
  made: LossCopy,
  h: HiddenDistillation,
  where: string,
  scalar: (value: number, name: string) => Value,
): Value {
  const { emit, param, lookup } = made;
  if (!(h.beta >= 0) || !Number.isFinite(h.beta)) {
    throw new Error(`${where}: beta must be >= 0, got ${h.beta}`);
  }
  if (h.values.length === 0) throw new Error(`${where}: hidden distillation needs at least one value`);
  const students = h.values.map((name) => {
    const v = lookup(name);
    if (!v) throw new Error(`${where}: the function has no op result '%${name}'`);
    return v;
  });
  const type = students[0].type;
  if (type.shape.length < 1 || !isFloat(type.dtype)) {
    throw new Error(
      `${where}: hidden value '%${h.values[0]}' must be a float tensor, got ${formatType(type)}`,
    );
  }
  students.forEach((v, i) => {
    if (formatType(v.type) !== formatType(type)) {
      throw new Error(
        `${where}: hidden values must share one type: '%${h.values[i]}' is ${formatType(v.type)}, ` +
          `'%${h.values[0]}' ${formatType(type)}`,
      );
    }
  });
  const prefix = h.prefix ?? "teacher_hidden_";
  const teachers = students.map((v, i) => param(`${prefix}${i}`, structuredClone(v.type)));
  const weights = param(h.weights ?? "hidden_weights", {
    shape: [...type.shape.slice(0, -1), 1],
    dtype: type.dtype,
  });
  const axes = type.shape.map((_, i) => i);
  let total: Value | undefined;
  students.forEach((v, i) => {
    const d = emit("sub", [v, teachers[i]], {}, `loss.hidden${i}.diff`);
    if (i === 0) {
      d.comments = {
        leading: [`// loss: hidden-state distillation of ${h.values.length} values, beta = ${h.beta}`],
        blankLine: true,
      };
    }
    const sq = emit("mul", [d.result, d.result], {}, `loss.hidden${i}.sq`).result;
    const weighted = emit("mul", [sq, weights], {}, `loss.hidden${i}.weighted`).result;
    const sum = emit("reduce_sum", [weighted], { axes, keepdims: false }, `loss.hidden${i}.sum`).result;
    total = total ? emit("add", [total, sum], {}, `loss.hidden.total`).result : sum;
  });
  return emit("mul", [total!, scalar(h.beta, "loss.beta")], {}, "loss.hidden").result;
}

/** A loss function under construction: `fnName`'s arguments and body copied, plus the labels. */
interface LossCopy {
  /** The new function's name. */
  readonly name: string;
  readonly copy: { params: Value[]; body: Op[] };
  /** The copied logits. */
  readonly logits: Value;
  /** The labels argument. */
  readonly labels: Value;
  /** Appends an op whose result is named `wanted` (suffixed when taken). */
  readonly emit: (
    name: string,
    operands: Value[],
    attrs: Record<string, AttrJs>,
    wanted: string,
    type?: TensorType,
  ) => Op;
  /** Appends an argument, refusing a name the function already has. */
  readonly param: (name: string, type: TensorType) => Value;
  /** The copy of the original function's op result named `name`, if any. */
  readonly lookup: (name: string) => Value | undefined;
}

function lossCopy(m: Module, fnName: string, options: CrossEntropyOptions, where: string): LossCopy {
  const f = m.func(fnName);
  if (!f) throw new Error(`${where}: the module has no function '@${fnName}'`);
  const name = options.name ?? `${fnName}_loss`;
  if (m.func(name)) throw new Error(`${where}: the module already has a function '@${name}'`);
  const output = options.output ?? 0;
  const logits = f.returns[output];
  if (!logits || logits.type.shape.length !== 2 || !isFloat(logits.type.dtype)) {
    const got = logits ? formatType(logits.type) : "nothing";
    throw new Error(`${where}: result ${output} of '@${fnName}' must be float logits [B, C], got ${got}`);
  }
  const taken = new Set([...f.params.map((p) => p.name), ...f.body.map((op) => op.result.name)]);
  const map = new Map<Value, Value>();
  const params = f.params.map((p) => {
    const copy = new Value(p.name, structuredClone(p.type), "arg");
    map.set(p, copy);
    return copy;
  });
  const body = f.body.map((op) => {
    const result = new Value(op.result.name, structuredClone(op.result.type), "result");
    const copy = new Op(op.name, op.operands.map((v) => map.get(v) ?? v), structuredClone(op.attrs), result);
    copy.comments = { ...op.comments, leading: [...op.comments.leading] };
    map.set(op.result, result);
    return copy;
  });
  const param = (pname: string, type: TensorType) => {
    if (taken.has(pname)) throw new Error(`${where}: '@${fnName}' already has a value '%${pname}'`);
    taken.add(pname);
    const v = new Value(pname, type, "arg");
    params.push(v);
    return v;
  };
  const labels = param(options.labels ?? "labels", {
    shape: [logits.type.shape[0]],
    dtype: options.labelsDtype ?? "i64",
  });
  const registry = options.registry ?? builtinRegistry;
  const emit = (
    op: string,
    operands: Value[],
    attrs: Record<string, AttrJs>,
    wanted: string,
    type?: TensorType,
  ) => {
    let rname = wanted;
    for (let i = 1; taken.has(rname); i++) rname = `${wanted}.${i}`;
    taken.add(rname);
    const made = createOp(registry, op, operands, attrs, rname, type);
    body.push(made);
    return made;
  };
  const lookup = (vname: string) => {
    const op = f.body.find((o) => o.result.name === vname);
    return op && map.get(op.result);
  };
  return { name, copy: { params, body }, logits: map.get(logits)!, labels, emit, param, lookup };
}

/** Adds the finished loss function after `fnName`, returning `(loss, logits)`; returns its name. */
function finish(m: Module, fnName: string, made: LossCopy, loss: Value, what: string): string {
  const { name, copy, logits } = made;
  const f = m.func(fnName)!;
  const fn = new Func(name, copy.params, [loss.type, logits.type], copy.body, [loss, logits]);
  fn.comments = { leading: [`// @${fnName} with ${what}, ir/loss.ts).`], blankLine: true };
  m.funcs.splice(m.funcs.indexOf(f) + 1, 0, fn);
  return name;
}
