/**
 * `recognize`: finds the decomposed forms that model exporters (torch.onnx, Hugging Face optimum)
 * write for BERT's building blocks, and puts the IR's own ops back, so that later passes
 * (`fuse`, pruning, codegen) see `layer_norm`, `gelu`, `dense` with its bias and `softmax` with
 * its mask.
 *
 * - LayerNorm, as torch exports it: `m = reduce_mean(x)`, `d = x - m`, `pow(d, 2)` (or `d * d`),
 *   `reduce_mean`, `+ eps`, `sqrt`, `d / that`, then optionally `* gamma` and `+ beta` →
 *   `layer_norm(x, gamma, beta) {axis, epsilon}`. The reductions must be over the same trailing
 *   dims, with keepdims; gamma and beta are taken when they have the normalized shape (leading
 *   unit dims are reshaped away); without a gamma, a `constant` of ones stands in.
 * - GELU with erf: `x · 0.5 · (1 + erf(x / √2))`, the three factors multiplied in any order and
 *   nesting, `x / √2` also as `x · (1/√2)` → `gelu {approximation = erf}`.
 * - GELU with tanh: `x · 0.5 · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`, with `x³` as
 *   `pow(x, 3)` or `x · x · x` → `gelu {approximation = tanh}`.
 * - A bias add after a bias-less `dense`: `dense(x, w) + b` with `b` of shape `[N]` →
 *   `dense(x, w, b)` (torch exports Linear as MatMul + Add).
 * - A mask add before a mask-less `softmax`: `softmax(s + m)`, `m` broadcasting to `s` →
 *   `softmax(s, m)`.
 *
 * Constants (0.5, √2, eps, ...) are `constant` ops whose elements are all equal, or weights
 * holding one value. Every op of a matched chain but its last must have no user outside the
 * chain (and not be returned); the new op takes the last op's name, and the constants the chain
 * used are erased when nothing else uses them. The rewrites are exact up to rounding: the fused
 * ops compute in f64 where the chain rounded each step to its dtype.
 */

import type { DenseLiteral } from "../ir/attrs.ts";
import { type Func, type Op, type Value, Weight } from "../ir/module.ts";
import { numel, sameShape, type TensorType } from "../ir/types.ts";
import { definePass, type PassContext } from "./pass.ts";
import { type Pattern, rewrite, type Rewriter } from "./rewrite.ts";

const statistics = {
  "layer-norms": "decomposed LayerNorms replaced by layer_norm",
  "gelus": "decomposed GELUs replaced by gelu (erf and tanh forms)",
  "dense-biases": "bias adds folded into dense",
  "softmax-masks": "mask adds folded into softmax",
} as const;

/** The recognition pass. */
export const recognize = definePass({
  name: "recognize",
  description:
    "Turns decomposed LayerNorm and GELU chains, dense + bias and softmax(x + mask) into single ops.",
  options: {
    "layer-norm": { type: "bool", default: true, doc: "recognize decomposed LayerNorms" },
    "gelu": { type: "bool", default: true, doc: "recognize decomposed GELUs (erf and tanh forms)" },
    "dense-bias": { type: "bool", default: true, doc: "fold a bias add into the bias-less dense before it" },
    "softmax-mask": { type: "bool", default: true, doc: "fold an additive mask into the softmax after it" },
  },
  statistics,
  filter: { ops: ["div", "mul", "add"] },
  runOnFunction(f, ctx) {
    const m = new Matcher(f, ctx);
    const patterns: Pattern[] = [];
    if (ctx.options["layer-norm"]) patterns.push(m.layerNormPattern());
    if (ctx.options.gelu) patterns.push(m.geluPattern());
    if (ctx.options["dense-bias"]) patterns.push(m.denseBiasPattern());
    if (ctx.options["softmax-mask"]) patterns.push(m.softmaxMaskPattern());
    return rewrite(f, ctx, patterns);
  },
});

const SQRT2 = Math.SQRT2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_KAPPA = 0.044715;

/** Whether `v` is within a relative 1e-6 of `want` (f32 constants are off by about 6e-8). */
function near(v: number | undefined, want: number): boolean {
  return v !== undefined && Math.abs(v - want) <= 1e-6 * Math.abs(want);
}

/** The shortest decimal that rounds to the same f32 as `v` (1e-12, not 9.99999996e-13). */
function shortF32(v: number): number {
  const f = Math.fround(v);
  for (let p = 1; p <= 17; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return v;
}

/** A chain found by a matcher: the ops it replaces (the last one is the anchor). */
interface Chain {
  readonly ops: Op[];
}

/** A LayerNorm chain and what `layer_norm` needs. */
interface LayerNormMatch extends Chain {
  readonly x: Value;
  readonly axis: number;
  readonly epsilon: number;
  readonly gamma?: Value;
  readonly beta?: Value;
}

/** A GELU chain. */
interface GeluMatch extends Chain {
  readonly x: Value;
  readonly approximation: "erf" | "tanh";
}

class Matcher {
  constructor(private readonly f: Func, private readonly ctx: PassContext) {}

  /** The op defining `v` when it is named `name`. */
  private def(v: Value | undefined, name: string): Op | undefined {
    const op = v?.definingOp;
    return op?.name === name && this.f.body.includes(op) ? op : undefined;
  }

  /** Whether every use of `v` is by an op of `ops`, and `v` is not returned. */
  private usedOnlyBy(v: Value, ops: ReadonlySet<Op>): boolean {
    if (this.f.returns.includes(v)) return false;
    return this.f.body.every((op) => !op.operands.includes(v) || ops.has(op));
  }

  /** Whether the results of all ops of the chain but its last stay inside it. */
  private closed(ops: readonly Op[]): boolean {
    const set = new Set(ops);
    return ops.slice(0, -1).every((op) => this.usedOnlyBy(op.result, set));
  }

  /** The single user op of `v`, when there is exactly one and `v` is not returned. */
  private soleUser(v: Value): Op | undefined {
    if (this.f.returns.includes(v)) return undefined;
    const users = this.f.body.filter((op) => op.operands.includes(v));
    return users.length === 1 ? users[0] : undefined;
  }

  /**
   * The value all elements of `v` have, for a `constant` or a small weight whose elements are
   * all equal; undefined otherwise.
   */
  scalar(v: Value | undefined): number | undefined {
    if (!v) return undefined;
    let values: ArrayLike<number> | undefined;
    const op = v.definingOp;
    if (op?.name === "constant") {
      const a = op.attrs.get("value");
      if (a?.kind === "dense") values = a.value.values;
    } else if (v instanceof Weight && !v.type.sparse && numel(v.type.shape) <= 64) {
      try {
        values = this.ctx.weights.get(v).data;
      } catch {
        return undefined;
      }
    }
    if (!values || values.length === 0) return undefined;
    const first = values[0];
    for (let i = 1; i < values.length; i++) if (values[i] !== first) return undefined;
    return first;
  }

  /** For a binary op, the operand that is not the constant `want`, when the other one is. */
  private otherThan(op: Op, want: number): Value | undefined {
    const [a, b] = op.operands;
    if (near(this.scalar(b), want)) return a;
    if (near(this.scalar(a), want)) return b;
    return undefined;
  }

  /** The leaves of a tree of `mul`s rooted at `root`, the inner muls used only by their parent. */
  private mulLeaves(root: Op, max: number): { leaves: Value[]; inner: Op[] } | undefined {
    const leaves: Value[] = [];
    const inner: Op[] = [];
    const visit = (op: Op): boolean => {
      for (const v of op.operands) {
        const p = this.def(v, "mul");
        if (p && p !== root && this.usedOnlyBy(v, new Set([op])) && op.operands[0] !== op.operands[1]) {
          inner.push(p);
          if (!visit(p)) return false;
        } else {
          leaves.push(v);
        }
        if (leaves.length > max) return false;
      }
      return true;
    };
    return visit(root) ? { leaves, inner } : undefined;
  }

  // --- LayerNorm ---------------------------------------------------------------------------

  /** Matches the chain whose `div` is `div`, with the gamma mul and beta add after it. */
  matchLayerNorm(div: Op): LayerNormMatch | undefined {
    const [d, s] = div.operands;
    const sub = this.def(d, "sub");
    const sqrt = this.def(s, "sqrt");
    if (!sub || !sqrt) return undefined;
    const [x, mean] = sub.operands;
    const mean1 = this.def(mean, "reduce_mean");
    if (!mean1 || mean1.operands[0] !== x) return undefined;
    const addEps = this.def(sqrt.operands[0], "add");
    if (!addEps) return undefined;
    const [ea, eb] = addEps.operands;
    const epsFirst = this.scalar(ea) !== undefined && this.def(eb, "reduce_mean") !== undefined;
    const variance = epsFirst ? eb : ea;
    const epsilon = this.scalar(epsFirst ? ea : eb);
    const mean2 = this.def(variance, "reduce_mean");
    if (!mean2 || epsilon === undefined || !(epsilon >= 0)) return undefined;
    const square = this.def(mean2.operands[0], "pow") ?? this.def(mean2.operands[0], "mul");
    if (!square) return undefined;
    const [sa, sb] = square.operands;
    const squares = square.name === "pow" ? sa === d && this.scalar(sb) === 2 : sa === d && sb === d;
    if (!squares) return undefined;
    const rank = x.type.shape.length;
    const axes = this.trailingAxes(mean1, rank);
    const axes2 = this.trailingAxes(mean2, rank);
    if (axes === undefined || axes !== axes2) return undefined;
    if (!sameShape(div.result.type.shape, x.type.shape) || !sameShape(sub.result.type.shape, x.type.shape)) {
      return undefined;
    }
    const norm = x.type.shape.slice(rank - axes);
    const ops = [mean1, sub, square, mean2, addEps, sqrt, div];
    // The affine part: `* gamma` and then `+ beta`, each optional.
    let last = div;
    const affine = (name: string): Value | undefined => {
      const user = this.soleUser(last.result);
      if (user?.name !== name || !sameShape(user.result.type.shape, x.type.shape)) return undefined;
      const [a, b] = user.operands;
      const other = a === last.result ? b : a;
      if (other === last.result || !this.fitsNorm(other, norm)) return undefined;
      ops.push(user);
      last = user;
      return other;
    };
    const gamma = affine("mul");
    const beta = affine("add");
    if (!this.closed(ops)) return undefined;
    return { ops, x, axis: -axes, epsilon: shortF32(epsilon), gamma, beta };
  }

  /** How many trailing dims a keepdims `reduce_mean` reduces (undefined for other axes). */
  private trailingAxes(op: Op, rank: number): number | undefined {
    const axes = op.attrs.get("axes");
    const keep = op.attrs.get("keepdims");
    if (axes?.kind !== "ints" || (keep?.kind === "bool" && !keep.value)) return undefined;
    const sorted = axes.value.map((a) => a < 0 ? a + rank : a).sort((p, q) => p - q);
    const k = sorted.length;
    return sorted.every((a, i) => a === rank - k + i) ? k : undefined;
  }

  /** Whether `v` is a gamma or beta for `norm`: that shape, maybe with leading unit dims. */
  private fitsNorm(v: Value, norm: readonly number[]): boolean {
    const s = v.type.shape;
    if (sameShape(s, norm)) return true;
    const lead = s.length - norm.length;
    return lead > 0 && s.slice(0, lead).every((d) => d === 1) && sameShape(s.slice(lead), norm) &&
      (v.kind === "weight" || v.definingOp?.name === "constant");
  }

  layerNormPattern(): Pattern {
    return {
      match: "div",
      rewrite: (op, rw) => {
        const m = this.matchLayerNorm(op);
        if (!m) return false;
        const last = m.ops[m.ops.length - 1];
        rw.at(last);
        const norm = m.x.type.shape.slice(m.x.type.shape.length + m.axis);
        const dtype = m.x.type.dtype;
        const fit = (v: Value, suffix: string) =>
          sameShape(v.type.shape, norm) ? v : rw.create("reshape", [v], {}, {
            name: `${last.result.name}.${suffix}`,
            type: { shape: [...norm], dtype: v.type.dtype },
          });
        const gamma = m.gamma ? fit(m.gamma, "gamma") : rw.create("constant", [], { value: splat(1, true) }, {
          name: `${last.result.name}.gamma`,
          type: { shape: [...norm], dtype },
        });
        const operands = m.beta ? [m.x, gamma, fit(m.beta, "beta")] : [m.x, gamma];
        const ln = rw.create("layer_norm", operands, { axis: m.axis, epsilon: m.epsilon });
        this.replaceChain(rw, m, ln);
        this.ctx.stat("layer-norms");
      },
    };
  }

  // --- GELU --------------------------------------------------------------------------------

  /** Matches a GELU whose outermost multiplication is `root`. */
  matchGelu(root: Op): GeluMatch | undefined {
    const tree = this.mulLeaves(root, 3);
    if (!tree || tree.leaves.length !== 3) return undefined;
    const half = tree.leaves.findIndex((v) => near(this.scalar(v), 0.5));
    if (half < 0) return undefined;
    const rest = tree.leaves.filter((_, i) => i !== half);
    for (const [x, onePlus] of [[rest[0], rest[1]], [rest[1], rest[0]]]) {
      const add = this.def(onePlus, "add");
      const inner = add && this.otherThan(add, 1);
      if (!add || !inner) continue;
      const erf = this.def(inner, "erf");
      const tanh = this.def(inner, "tanh");
      let ops: Op[] | undefined;
      if (erf) ops = this.erfArgument(erf, x);
      else if (tanh) ops = this.tanhArgument(tanh, x);
      if (!ops) continue;
      const chain = [...ops, erf ?? tanh!, add, ...tree.inner.reverse(), root];
      if (!sameShape(root.result.type.shape, x.type.shape) || !this.closed(chain)) continue;
      return { ops: chain, x, approximation: erf ? "erf" : "tanh" };
    }
    return undefined;
  }

  /** The ops computing `x / √2` (or `x · (1/√2)`) for an erf, when that is its operand. */
  private erfArgument(erf: Op, x: Value): Op[] | undefined {
    const z = erf.operands[0];
    const div = this.def(z, "div");
    if (div && div.operands[0] === x && near(this.scalar(div.operands[1]), SQRT2)) return [div];
    const mul = this.def(z, "mul");
    if (mul && mul.operands.includes(x) && this.otherThan(mul, 1 / SQRT2) === x) return [mul];
    return undefined;
  }

  /** The ops computing `√(2/π) · (x + 0.044715 · x³)` for a tanh, when that is its operand. */
  private tanhArgument(tanh: Op, x: Value): Op[] | undefined {
    const outer = this.def(tanh.operands[0], "mul");
    const scaled = outer && this.mulLeaves(outer, 2);
    if (!scaled || scaled.leaves.length !== 2) return undefined;
    const b = scaled.leaves.findIndex((v) => near(this.scalar(v), SQRT_2_OVER_PI));
    const sum = b < 0 ? undefined : this.def(scaled.leaves[1 - b], "add");
    if (!sum || !sum.operands.includes(x)) return undefined;
    const cubicTerm = sum.operands[0] === x ? sum.operands[1] : sum.operands[0];
    const cubic = this.def(cubicTerm, "mul");
    const terms = cubic && this.mulLeaves(cubic, 4);
    if (!terms) return undefined;
    const k = terms.leaves.findIndex((v) => near(this.scalar(v), GELU_KAPPA));
    if (k < 0) return undefined;
    const powers = terms.leaves.filter((_, i) => i !== k);
    const ops: Op[] = [];
    if (powers.length === 3 && powers.every((v) => v === x)) {
      // x · x · x
    } else if (powers.length === 1) {
      const pow = this.def(powers[0], "pow");
      if (!pow || pow.operands[0] !== x || this.scalar(pow.operands[1]) !== 3) return undefined;
      ops.push(pow);
    } else {
      return undefined;
    }
    return [...ops, ...terms.inner.reverse(), cubic, sum, ...scaled.inner.reverse(), outer];
  }

  geluPattern(): Pattern {
    return {
      match: "mul",
      rewrite: (op, rw) => {
        const m = this.matchGelu(op);
        if (!m) return false;
        const gelu = rw.create("gelu", [m.x], { approximation: m.approximation });
        this.replaceChain(rw, m, gelu);
        this.ctx.stat("gelus");
      },
    };
  }

  // --- dense + bias, softmax(x + mask) -------------------------------------------------------

  denseBiasPattern(): Pattern {
    return {
      match: "add",
      rewrite: (op, rw) => {
        for (const [i, dense] of op.operands.map((v, i) => [i, this.def(v, "dense")] as const)) {
          if (!dense || dense.operands.length !== 2) continue;
          const act = dense.attrs.get("activation");
          if (act && act.value !== "none") continue;
          const bias = op.operands[1 - i];
          const n = dense.result.type.shape.at(-1)!;
          const fits = bias.type.shape.length === 1 ? bias.type.shape[0] === n : this.fitsNorm(bias, [n]);
          if (!fits || !sameShape(op.result.type.shape, dense.result.type.shape)) continue;
          if (bias.type.dtype !== dense.result.type.dtype || !this.closed([dense, op])) continue;
          const b = bias.type.shape.length === 1 ? bias : rw.create("reshape", [bias], {}, {
            name: `${op.result.name}.bias`,
            type: vector(n, bias.type),
          });
          const attrs = Object.fromEntries(
            [...dense.attrs].map(([k, a]) => [k, a.value as boolean | string]),
          );
          const fused = rw.create("dense", [...dense.operands, b], attrs);
          rw.replace(op, fused);
          rw.erase(dense);
          this.ctx.stat("dense-biases");
          return true;
        }
        return false;
      },
    };
  }

  softmaxMaskPattern(): Pattern {
    return {
      match: "add",
      rewrite: (op, rw) => {
        const softmax = this.soleUser(op.result);
        if (softmax?.name !== "softmax" || softmax.operands.length !== 1) return false;
        const [a, b] = op.operands;
        const full = (v: Value) => sameShape(v.type.shape, op.result.type.shape);
        // The mask is the operand that broadcasts; with both full-sized, the second (scores + mask).
        const [x, mask] = full(a) ? [a, b] : full(b) ? [b, a] : [undefined, undefined];
        if (!x || !mask) return false;
        rw.at(softmax);
        const axis = softmax.attrs.get("axis");
        const fused = rw.create("softmax", [x, mask], axis ? { axis: axis.value as number } : {});
        rw.replace(softmax, fused);
        rw.erase(op);
        this.ctx.stat("softmax-masks");
        return true;
      },
    };
  }

  // --- rewriting -----------------------------------------------------------------------------

  /** Replaces the chain's last op by `value` and erases the rest, then constants left unused. */
  private replaceChain(rw: Rewriter, chain: Chain, value: Value): void {
    const last = chain.ops[chain.ops.length - 1];
    const constants = new Set(
      chain.ops.flatMap((op) => op.operands).map((v) => v.definingOp).filter((op) => op?.name === "constant"),
    );
    rw.replace(last, value);
    const rest = chain.ops.slice(0, -1).sort((p, q) => this.f.body.indexOf(q) - this.f.body.indexOf(p));
    for (const op of rest) rw.erase(op);
    for (const c of constants) {
      if (c && this.f.body.includes(c) && rw.users(c.result).length === 0 && !rw.isReturned(c.result)) {
        rw.erase(c);
      }
    }
  }
}

function splat(v: number, float: boolean): DenseLiteral {
  return { shape: [], values: [v], float };
}

function vector(n: number, t: TensorType): TensorType {
  return { shape: [n], dtype: t.dtype };
}
