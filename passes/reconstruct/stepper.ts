/**
 * The calibration run of `prune-reconstruct`: the ops of a function, run with `evaluateOp` (as
 * the interpreter runs them) over many inputs at once, a span of ops at a time, so that the pass
 * can read what a `dense` op receives, replace its weight, and carry on with the new one.
 */

import { evaluateOp } from "../../ir/evaluate.ts";
import type { Func, Module, Value, Weight } from "../../ir/module.ts";
import type { Tensor } from "../../ir/tensor.ts";
import type { PassContext } from "../pass.ts";

/** Runs the ops of `f` over many inputs at once, a span at a time, dropping dead values. */
export class Stepper {
  private readonly envs: Map<Value, Tensor>[];
  private readonly lastUse = new Map<Value, number>();
  private next = 0;

  /**
   * A run of `f` (of module `m`) on each input list of `inputs` (one tensor per parameter),
   * reading weights through `weight` (the pass's current weights by default).
   */
  constructor(
    private readonly m: Module,
    private readonly f: Func,
    private readonly ctx: PassContext,
    inputs: Tensor[][],
    private readonly weight: (w: Weight) => Tensor = (w) => ctx.weights.get(w),
  ) {
    this.envs = inputs.map((ts) => new Map(f.params.map((p, i) => [p as Value, ts[i]])));
    f.body.forEach((op, i) => op.operands.forEach((v) => this.lastUse.set(v, i)));
    for (const v of f.returns) this.lastUse.set(v, Infinity);
  }

  /** Runs ops up to (not including) index `end`; a failing op is a pass error at the op. */
  runTo(end: number): void {
    const { m, ctx } = this;
    for (const env of this.envs) {
      for (let i = this.next; i < end; i++) {
        const op = this.f.body[i];
        const args = op.operands.map((v) => {
          if (v.kind === "weight") return this.weight(m.weights.get(v.name)!);
          return env.get(v)!;
        });
        let out: Tensor;
        try {
          out = evaluateOp(op, args, ctx.registry);
        } catch (e) {
          throw ctx.error(
            op,
            `calibration run failed at '${op.name}': ${e instanceof Error ? e.message : e}`,
          );
        }
        env.set(op.result, out);
        for (const v of op.operands) if (this.lastUse.get(v) === i) env.delete(v);
        if ((this.lastUse.get(op.result) ?? -1) < i) env.delete(op.result);
      }
    }
    this.next = Math.max(this.next, end);
  }

  /** The value `v` in every input's run. */
  values(v: Value): Tensor[] {
    return this.envs.map((env) => env.get(v)!);
  }
}
