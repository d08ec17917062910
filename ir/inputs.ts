/**
 * Seeded inputs for a function, so that `run` and tests can execute a model without data:
 * integer parameters used as `gather` indices get ids within the gathered table, integer
 * parameters named like a mask get ones, other integers zeros, floats standard normals.
 */

import type { Func } from "./module.ts";
import { Random } from "./random.ts";
import { Tensor } from "./tensor.ts";
import { isFloat, numel } from "./types.ts";

/** Makes deterministic inputs for every parameter of `f`. */
export function seededInputs(f: Func, seed: number): Tensor[] {
  const rng = new Random(seed);
  return f.params.map((p) => {
    const t = Tensor.zeros(p.type);
    const n = numel(p.type.shape);
    if (isFloat(p.type.dtype)) {
      for (let i = 0; i < n; i++) t.data[i] = rng.normal();
      return t;
    }
    const table = f.body.find((op) => op.name === "gather" && op.operands[1] === p)?.operands[0];
    const rows = table?.type.shape[0];
    const fill = rows !== undefined ? () => rng.int(rows) : /mask/i.test(p.name) ? () => 1 : () => 0;
    for (let i = 0; i < n; i++) t.data[i] = fill();
    return t;
  });
}
