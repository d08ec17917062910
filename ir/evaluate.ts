/**
 * Evaluating one op on concrete tensors: the one way the reference interpreter, `canonicalize`'s
 * constant folding, the ONNX importer's shape folding, codegen's compile-time folding and
 * `prune-reconstruct`'s calibration run compute an op, so that they all get the same numbers.
 *
 * `evaluateOp` looks the op up, reads its attributes (defaults filled in), runs its reference
 * semantics (`OpDef.interpret`), checks that the result has the op's result type, and rounds it
 * to that dtype: f32 and the integer dtypes are rounded, truncated or wrapped by their storage
 * (Float32Array, Int32Array, Int8Array, Uint8Array; ops truncate integer results themselves),
 * f16 and bf16 values are rounded to their precision (`roundToDType`), f64 and i64 are stored
 * as float64.
 */

import { AttrReader } from "./attrs.ts";
import type { Op } from "./module.ts";
import type { OpRegistry } from "./registry.ts";
import { allocData, roundToDType, type Tensor } from "./tensor.ts";
import { formatType, sameShape } from "./types.ts";

/**
 * Why an op could not be evaluated: `failed` when its reference semantics rejected these
 * operands (an index out of range, say), `malformed` when the op is not in the registry or its
 * semantics gave a result that is not the op's result type (a broken op definition).
 */
export type EvaluateFailure = "failed" | "malformed";

/** An op could not be evaluated. The message names no place: each caller words it with `op`. */
export class EvaluateError extends Error {
  /** A failure of `op` of the given kind. */
  constructor(readonly op: Op, readonly kind: EvaluateFailure, message: string) {
    super(message);
    this.name = "EvaluateError";
  }
}

/**
 * Computes `op` on `operands` (one tensor per operand, in order) with the reference semantics
 * of its definition in `registry`, checked against and rounded to `op.result.type`. Throws
 * EvaluateError.
 */
export function evaluateOp(op: Op, operands: readonly Tensor[], registry: OpRegistry): Tensor {
  const def = registry.get(op.name);
  if (!def) throw new EvaluateError(op, "malformed", `unknown op '${op.name}'`);
  const type = op.result.type;
  let out: Tensor;
  try {
    out = def.interpret(operands, new AttrReader(def.attrs, op.attrs), type);
  } catch (e) {
    throw new EvaluateError(op, "failed", e instanceof Error ? e.message : String(e));
  }
  if (
    out.dtype !== type.dtype || !sameShape(out.shape, type.shape) ||
    out.data.constructor !== allocData(type.dtype, 0).constructor
  ) {
    throw new EvaluateError(
      op,
      "malformed",
      `the reference semantics of '${op.name}' gave ${
        formatType(out.type)
      } in a ${out.data.constructor.name}, ` +
        `but its result is ${formatType(type)}`,
    );
  }
  roundToDType(out);
  return out;
}
