/**
 * Seeded inputs for a function, so that `run` and tests can execute a model without data:
 * integer parameters used as `gather` indices get ids within the gathered table, integer
 * parameters named like a mask get ones, other integers zeros, floats standard normals.
 */

import { InterpretError } from "./interpreter.ts";
import type { Func, Module } from "./module.ts";
import { Random } from "./random.ts";
import { BsrTensor, MAX_LIVE_ELEMENTS, Tensor, tensorSizeProblem } from "./tensor.ts";
import { bsrGrid, formatType, isFloat, numel } from "./types.ts";
import { memoryStore, type WeightStore } from "./weights.ts";

/**
 * Makes deterministic inputs for every parameter of `f`. Throws an InterpretError, before
 * allocating anything, at a parameter over the interpreter's size limit, or at the function when
 * the parameters together are over its live limit.
 */
export function seededInputs(f: Func, seed: number): Tensor[] {
  for (const p of f.params) {
    const problem = tensorSizeProblem(numel(p.type.shape), `'${p.ref}' (${formatType(p.type)})`);
    if (problem) throw new InterpretError(p.loc, problem);
  }
  const total = f.params.reduce((n, p) => n + numel(p.type.shape), 0);
  if (total > MAX_LIVE_ELEMENTS) {
    throw new InterpretError(
      f.loc,
      `the inputs of '@${f.name}' have ${total} elements together, over the limit of ${MAX_LIVE_ELEMENTS} (2^30)`,
    );
  }
  const rng = new Random(seed);
  return f.params.map((p) => {
    const t = Tensor.zeros(p.type);
    const n = numel(p.type.shape);
    if (isFloat(p.type.dtype)) {
      for (let i = 0; i < n; i++) t.data[i] = rng.normal();
      return t;
    }
    const gather = f.body.find((op) => op.name === "gather" && op.operands[1] === p);
    const table = gather?.operands[0].type.shape;
    const axis = gather?.attrs.get("axis")?.value as number | undefined ?? 0;
    const rows = table?.[axis < 0 ? axis + table.length : axis];
    const fill = rows !== undefined ? () => rng.int(rows) : /mask/i.test(p.name) ? () => 1 : () => 0;
    for (let i = 0; i < n; i++) t.data[i] = fill();
    return t;
  });
}

/**
 * Deterministic weights for every declaration of a module: floats normal(0, 0.5), integers
 * 0..3, and BSR weights storing their first `nnz` blocks of the grid in row-major order.
 * For tests that compare two versions of a module without a weights file.
 */
export function seededWeights(m: Module, seed: number): WeightStore {
  const rng = new Random(seed);
  const tensors = new Map<string, Tensor>();
  for (const w of m.weights.values()) {
    const s = w.type.sparse;
    if (s) {
      const [rows, cols] = bsrGrid(w.type.shape, s.block);
      const data = new Float32Array(s.nnzBlocks * s.block[0] * s.block[1]).map(() => rng.normal(0, 0.5));
      const indices = Int32Array.from({ length: s.nnzBlocks }, (_, k) => k % cols);
      const indptr = Int32Array.from({ length: rows + 1 }, (_, r) => Math.min(r * cols, s.nnzBlocks));
      tensors.set(w.name, new BsrTensor(w.type, data, indices, indptr));
      continue;
    }
    const t = Tensor.zeros(w.type);
    const float = isFloat(w.type.dtype);
    for (let i = 0; i < t.data.length; i++) t.data[i] = float ? rng.normal(0, 0.5) : rng.int(4);
    tensors.set(w.name, t);
  }
  return memoryStore(tensors);
}
