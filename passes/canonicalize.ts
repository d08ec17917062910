/**
 * `canonicalize`: constant folding plus local simplifications, as MLIR's canonicalizer.
 *
 * Algorithm: one list of rewrite patterns, applied by the `rewrite` driver, which sweeps the
 * function in order and retries every op until no pattern applies. The patterns:
 *
 * - fold: an op (other than `constant`) whose operands are all `constant` results, and whose
 *   result is dense with at most `max-fold-elements` elements, is evaluated with `evaluateOp`
 *   (the reference semantics, rounded to the dtype, exactly as the interpreter runs it) and
 *   replaced by a `constant`: `dense<v>` when all elements are equal, else the full literal.
 *   An op whose semantics reject its operands (an index out of range, say) is left alone; an
 *   op definition whose result is not the op's type is an error at the op.
 * - `reshape(reshape(x))` → `reshape(x)` (or `x` when the types match).
 * - `transpose(transpose(x))` → one transpose with the composed permutation (or `x` when it
 *   is the identity).
 * - no-ops → their input: a reshape or cast to the input's own type (not a cast to u8 or
 *   bool: by the reference semantics those map every non-zero value to 1), a transpose with
 *   the identity permutation, a slice that keeps the whole tensor.
 * - `x * 1`, `1 * x`, `x + 0`, `0 + x`, `x - 0` → `x`, where the 1 or 0 is a constant with
 *   all elements equal, and only when `x` already has the result's type: a broadcast that
 *   grows `x` must stay. (`x + 0.0` turns -0.0 into 0.0, the usual signed-zero leniency.)
 *
 * Inner ops of a chain are left for `dce` when other ops still use them. A replaced op's
 * result name goes to the op that replaces it; new ops take the replaced op's location and
 * comments, and the comments of an op replaced by an existing value move to the next line.
 */

import { AttrReader, type DenseLiteral } from "../ir/attrs.ts";
import { EvaluateError, evaluateOp } from "../ir/evaluate.ts";
import type { Op, Value } from "../ir/module.ts";
import type { OpRegistry } from "../ir/registry.ts";
import type { Tensor } from "../ir/tensor.ts";
import { isFloat, numel, sameType } from "../ir/types.ts";
import { definePass } from "./pass.ts";
import { type Pattern, rewrite } from "./rewrite.ts";

const options = {
  "max-fold-elements": {
    type: "int",
    default: 4096,
    min: 0,
    doc: "fold only ops whose result has at most this many elements",
  },
} as const;

const statistics = {
  folded: "ops folded to constants",
  "reshape-chains": "reshapes of reshapes merged",
  "transpose-chains": "transposes of transposes composed",
  "no-ops": "reshapes, casts, transposes and slices that change nothing, removed",
  identities: "x * 1, x + 0 and x - 0 replaced by x",
} as const;

/** The statistics `canonicalize` counts, one per kind of rewrite. */
export type CanonicalizeStat = keyof typeof statistics;

/** The canonicalization pass. */
export const canonicalize = definePass({
  name: "canonicalize",
  description: "Folds ops on constants and simplifies reshape/transpose chains, no-ops and x*1, x+0.",
  options,
  statistics,
  runOnFunction(f, ctx) {
    const limit = ctx.options["max-fold-elements"];
    if (limit < 0) {
      throw ctx.error(f.loc, `option 'max-fold-elements' must be at least 0, got ${limit}`);
    }
    return rewrite(f, ctx, canonicalizationPatterns(ctx.registry, limit, (s) => ctx.stat(s)));
  },
});

/**
 * The patterns of `canonicalize`, for other passes to reuse: folding up to `maxFoldElements`
 * result elements and the simplifications; `count` hears which kind applied.
 */
export function canonicalizationPatterns(
  registry: OpRegistry,
  maxFoldElements: number,
  count: (stat: CanonicalizeStat) => void = () => {},
): Pattern[] {
  const perm = (op: Op) => attrs(registry, op).ints("perm");
  return [
    {
      match: registry.names().filter((n) => n !== "constant"),
      where: (op) =>
        op.operands.length > 0 && op.operands.every(isConstant) && !op.result.type.sparse &&
        numel(op.result.type.shape) <= maxFoldElements,
      rewrite(op, rw) {
        const out = evaluate(registry, op);
        if (!out) return false;
        rw.replace(op, rw.create("constant", [], { value: literalOf(out) }, { type: op.result.type }));
        count("folded");
      },
    },
    {
      match: "reshape",
      where: (op) => op.operands[0].definingOp?.name === "reshape",
      rewrite(op, rw) {
        const x = op.operands[0].definingOp!.operands[0];
        if (sameType(x.type, op.result.type)) rw.replace(op, x);
        else rw.replace(op, rw.create("reshape", [x], {}, { type: op.result.type }));
        count("reshape-chains");
      },
    },
    {
      match: "transpose",
      where: (op) => op.operands[0].definingOp?.name === "transpose",
      rewrite(op, rw) {
        const inner = op.operands[0].definingOp!;
        const p1 = perm(inner);
        const composed = perm(op).map((i) => p1[i]);
        const x = inner.operands[0];
        if (isIdentity(composed)) rw.replace(op, x);
        else rw.replace(op, rw.create("transpose", [x], { perm: composed }));
        count("transpose-chains");
      },
    },
    {
      match: ["reshape", "cast", "slice"],
      where: (op) =>
        sameType(op.operands[0].type, op.result.type) &&
        !(op.name === "cast" && (op.result.type.dtype === "u8" || op.result.type.dtype === "bool")),
      rewrite(op, rw) {
        rw.replace(op, op.operands[0]);
        count("no-ops");
      },
    },
    {
      match: "transpose",
      where: (op) => isIdentity(perm(op)),
      rewrite(op, rw) {
        rw.replace(op, op.operands[0]);
        count("no-ops");
      },
    },
    {
      match: ["mul", "add", "sub"],
      rewrite(op, rw) {
        const x = identityOperand(op);
        if (!x) return false;
        rw.replace(op, x);
        count("identities");
      },
    },
  ];
}

function attrs(registry: OpRegistry, op: Op): AttrReader {
  return new AttrReader(registry.get(op.name)?.attrs ?? {}, op.attrs);
}

function isConstant(v: Value): boolean {
  return v.definingOp?.name === "constant";
}

function isIdentity(perm: readonly number[]): boolean {
  return perm.every((p, i) => p === i);
}

/** The value every element of a constant has, if `v` is a constant whose elements are all equal. */
function splatValue(v: Value): number | undefined {
  const op = v.definingOp;
  const a = op?.name === "constant" ? op.attrs.get("value") : undefined;
  if (a?.kind !== "dense" || a.value.values.length === 0) return undefined;
  const [first, ...rest] = a.value.values;
  return rest.every((x) => x === first) ? first : undefined;
}

/** The operand that `x * 1`, `x + 0` or `x - 0` reduces to, if it already has the result's type. */
function identityOperand(op: Op): Value | undefined {
  const [a, b] = op.operands;
  const unit = op.name === "mul" ? 1 : 0;
  const fits = (x: Value) => sameType(x.type, op.result.type);
  if (splatValue(b) === unit && fits(a)) return a;
  if (op.name !== "sub" && splatValue(a) === unit && fits(b)) return b;
  return undefined;
}

/**
 * Runs `op` on its constant operands with `evaluateOp`; undefined when its semantics reject them.
 * A malformed op definition (a result that is not the op's type) is thrown, not folded around.
 */
function evaluate(registry: OpRegistry, op: Op): Tensor | undefined {
  try {
    return evaluateOp(op, op.operands.map((v) => evaluateOp(v.definingOp!, [], registry)), registry);
  } catch (e) {
    if (e instanceof EvaluateError && e.kind === "failed") return undefined;
    throw e;
  }
}

/** The literal of a tensor: a splat when all elements are equal (-0.0 and 0.0 differ). */
function literalOf(t: Tensor): DenseLiteral {
  const float = isFloat(t.dtype);
  // Integer -0 (a truncated negative fraction in i64 storage) prints as 0 anyway.
  const values = Array.from(t.data, (x) => float ? x : x + 0);
  if (values.length > 0 && values.every((x) => Object.is(x, values[0]))) {
    return { shape: [], values: [values[0]], float };
  }
  return { shape: [...t.shape], values, float };
}
