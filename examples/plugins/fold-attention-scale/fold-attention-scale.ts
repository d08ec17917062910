/**
 * `fold-attention-scale`: a pass that makes new constant weights. Attention multiplies its
 * scores by a constant, `mul (batch_matmul q, kᵀ), 1/sqrt(d)`. Matmuls are linear, so the scale
 * can be applied to the query projection's weight and bias once, at compile time:
 * `(s·q)·kᵀ = s·(q·kᵀ)`. The pass declares a new weight `@<name>.scaled` (and one for the
 * bias), fills it with the scaled data through `ctx.weights.set`, points the query `dense`
 * (or `bsr_dense`) at it and erases the `mul`. The old weights and the scale constant are left
 * unused for `dce` to erase.
 *
 * ```sh
 * deno task compile model.sir --plugin examples/plugins/fold-attention-scale/fold-attention-scale.ts \
 *   --passes fold-attention-scale,dce --stats -o out/folded.sir
 * ```
 *
 * The algorithm, for each `mul` with a scalar `constant` operand:
 * 1. the other operand must be a `batch_matmul` result used only by this `mul`;
 * 2. from the matmul's first operand, walk back through `reshape` and `transpose` ops (each used
 *    once) to a `dense` or `bsr_dense` whose weight (and bias, if any) are weights, used once;
 * 3. create the scaled weights, rewire the dense op to them, replace the `mul` by the matmul.
 * Anything else is left alone. The new weights keep the old ones' types, BSR encoding included,
 * so the pass works before or after `bsr-lower`; it runs after `prune`, whose default target
 * selects weights by their Hugging Face names (`...query.weight`), which the new names no longer end in.
 */

import {
  BsrTensor,
  definePass,
  type Module,
  type Op,
  type PassContext,
  rewrite,
  Tensor,
  type Value,
  Weight,
} from "../../../mod.ts";

/** The scalar value of `v` when a `constant` op with one element defines it. */
export function scalarConstant(v: Value): number | undefined {
  const op = v.definingOp;
  if (op?.name !== "constant") return undefined;
  const value = op.attrs.get("value");
  if (value?.kind !== "dense" || value.value.values.length !== 1) return undefined;
  return value.value.values[0];
}

/** Whether `v` is used by exactly one op in `ops` and not returned. */
function usedOnce(v: Value, ops: readonly Op[], returns: readonly Value[]): boolean {
  let uses = 0;
  for (const op of ops) for (const operand of op.operands) if (operand === v) uses++;
  return uses === 1 && !returns.includes(v);
}

/** The dense op at the root of `v` through single-use reshapes and transposes, if there is one. */
function projection(v: Value, ops: readonly Op[], returns: readonly Value[]): Op | undefined {
  let op = v.definingOp;
  while (op && (op.name === "reshape" || op.name === "transpose") && usedOnce(op.result, ops, returns)) {
    op = op.operands[0].definingOp;
  }
  if (!op || (op.name !== "dense" && op.name !== "bsr_dense")) return undefined;
  if (!usedOnce(op.result, ops, returns)) return undefined;
  const [, w, bias] = op.operands;
  const isF32Weight = (v: Value | undefined) => v?.kind === "weight" && v.type.dtype === "f32";
  return isF32Weight(w) && (bias === undefined || isF32Weight(bias)) ? op : undefined;
}

/** A free weight name: `<name>.scaled`, else `<name>.scaled2`, `<name>.scaled3`, ... */
function freshName(m: Module, name: string): string {
  for (let i = 1;; i++) {
    const candidate = `${name}.scaled${i === 1 ? "" : i}`;
    if (!m.weights.has(candidate)) return candidate;
  }
}

/** Declares `@<w>.scaled` with w's type and gives it w's data times `scale`; returns it. */
function scaledWeight(m: Module, ctx: PassContext, w: Value, scale: number): Weight {
  const old = ctx.weights.get(m.weights.get(w.name)!);
  const data = Float32Array.from(old.data, (x) => x * scale);
  const tensor = old instanceof BsrTensor
    ? new BsrTensor(old.sparseType, data, old.indices, old.indptr)
    : new Tensor(old.type, data);
  const name = freshName(m, w.name);
  const weight = new Weight(name, w.type);
  m.weights.set(name, weight);
  ctx.weights.set(name, tensor);
  ctx.stat("weights");
  return weight;
}

export default definePass({
  name: "fold-attention-scale",
  description: "Folds the constant scale of attention scores into new, scaled query weights.",
  statistics: { folded: "scales folded", weights: "weights created" },
  filter: { ops: ["batch_matmul"] },
  runOnModule(m, ctx) {
    let changed = false;
    for (const f of m.funcs) {
      const result = rewrite(f, ctx, [{
        match: "mul",
        rewrite(mul, rw) {
          const [a, b] = mul.operands;
          const right = scalarConstant(b);
          const [scores, scale] = right !== undefined ? [a, right] : [b, scalarConstant(a)];
          const matmul = scores.definingOp;
          if (scale === undefined || matmul?.name !== "batch_matmul") return false;
          if (!usedOnce(scores, f.body, f.returns) || scores.type.dtype !== "f32") return false;
          const dense = projection(matmul.operands[0], f.body, f.returns);
          if (!dense) return false;
          const [x, w, bias] = dense.operands;
          const scaled = [x, scaledWeight(m, ctx, w, scale)];
          if (bias) scaled.push(scaledWeight(m, ctx, bias, scale));
          dense.operands = scaled;
          ctx.log(`${mul.result.ref}: ${scale} folded into ${scaled.slice(1).map((v) => v.ref).join(", ")}`);
          rw.replace(mul, scores);
          ctx.stat("folded");
        },
      }]);
      changed ||= result === "changed";
    }
    return changed ? "changed" : "unchanged";
  },
});
