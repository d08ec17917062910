/**
 * `bsr-lower`: turns `dense` ops over sparse enough weights into `bsr_dense` ops with
 * block-sparse (BSR) weights.
 *
 * **Which ops.** A `dense x, @w[, bias]` is lowered when `@w` is a declared, 2-D, dense (not yet
 * BSR) weight of dtype f32, f16 or bf16 (the dtypes a BSR tensor may hold), used with
 * `transpose_b = true` (so W is `[N = out, K = in]`, the layout of Linear weights) and
 * `transpose_a = false`, and every use of `@w` is such a dense op (normally there is exactly
 * one; if several dense ops share it, all are lowered together). The result is
 * `bsr_dense x, @w[, bias]` with the dense op's `activation` copied (when written), the same
 * name and result type. A weight also used any other way (transpose_b = false, transpose_a =
 * true, as x or bias, by another op) is skipped with a log line.
 *
 * **Sparsity threshold.** `sparsity-threshold` (default 0.5: a weight with fewer zeros runs faster
 * dense; TVM's `bsr_dense.convert` defaults to 0.85; 0 lowers every eligible weight)
 * compares the *element* sparsity, the fraction of elements of W that are exactly zero (`-0`
 * counts as zero, NaN as non-zero), as TVM's `sparsity_threshold` does: a weight is lowered
 * iff that fraction ≥ the threshold; otherwise it is skipped with a log line.
 *
 * **Block shape.** `block = RxC` uses that block for every weight. `block = auto` (the
 * default) picks per weight, among 1x1, 1x2, 1x4, …, 1x128, 2x1, 4x1, …, 32x1, 2x2, 4x4, 8x8,
 * 16x16, 32x32 (those not larger than the matrix), the largest R·C whose BSR form stores no
 * padding zeros beyond `auto-slack`: stored elements (stored blocks × R × C) ≤
 * (1 + auto-slack) × non-zero elements. With the default slack 0 this means the zeros are
 * exactly aligned to the blocks (every stored block is entirely non-zero, and a partial edge
 * block, whose padding would be stored, disqualifies the shape unless that block is empty).
 * Ties in R·C go to the larger C (1x32 before 32x1). 1x1 always qualifies.
 *
 * **The BSR data** is exactly what SciPy's `bsr_matrix(W, blocksize=(R, C))` holds: the blocks
 * in row-major block order, a block stored iff it has a non-zero element, `data` `[nnz, R, C]`,
 * `indices` the block column of each block, `indptr` `[N/R + 1]` the first block of each block
 * row. SciPy rejects shapes that are not a multiple of the block; here the grid rounds up and
 * the partial edge blocks are zero-padded (as the IR's BSR type says). The weight's declared
 * type becomes `tensor<NxKxdt, bsr<RxC, nnz = n>>` and its data is replaced through
 * `ctx.weights.set`.
 *
 * **Output.** A log line per weight considered, and the statistics `weights` (weights lowered),
 * `blocks` (blocks stored) and `elements` (elements stored, padding included: blocks × R × C).
 * Returns "changed" iff a weight was lowered.
 */

import { AttrReader } from "../ir/attrs.ts";
import type { Module, Op, Weight } from "../ir/module.ts";
import { BsrTensor } from "../ir/tensor.ts";
import { bsrGrid, formatType, type TensorType } from "../ir/types.ts";
import { definePass, type PassContext } from "./pass.ts";
import { rewrite } from "./rewrite.ts";

/** A block shape `[R, C]` over W `[out, in]`. */
export type Block = readonly [number, number];

/** The block shapes `block = auto` chooses from. */
export const AUTO_BLOCKS: readonly Block[] = [
  [1, 1],
  [1, 2],
  [1, 4],
  [1, 8],
  [1, 16],
  [1, 32],
  [1, 64],
  [1, 128],
  [2, 1],
  [4, 1],
  [8, 1],
  [16, 1],
  [32, 1],
  [2, 2],
  [4, 4],
  [8, 8],
  [16, 16],
  [32, 32],
];

const options = {
  block: { type: "string", default: "auto", doc: "block shape RxC over W[out, in], or auto (per weight)" },
  "sparsity-threshold": {
    type: "number",
    default: 0.5,
    doc: "lower only weights whose fraction of zero elements is at least this, in [0, 1]",
  },
  "auto-slack": {
    type: "number",
    default: 0,
    doc: "auto: allowed stored zeros as a fraction of the non-zeros (0 = zeros exactly block-aligned)",
  },
} as const;

const statistics = {
  weights: "weights lowered",
  blocks: "blocks stored",
  elements: "elements stored",
} as const;

/** Non-zero elements of a `[rows, cols]` row-major matrix, as a 0/1 mask, and their count. */
function nonZeroMask(data: ArrayLike<number>): { mask: Uint8Array; count: number } {
  const mask = new Uint8Array(data.length);
  let count = 0;
  for (let j = 0; j < data.length; j++) {
    if (data[j] !== 0) { // NaN !== 0: counts as non-zero; -0 === 0
      mask[j] = 1;
      count++;
    }
  }
  return { mask, count };
}

/**
 * Whether the BSR form of the masked `[rows, cols]` matrix with `block` stores at most
 * `limit` zeros (padding included). Stops at the first block that exceeds it.
 */
function fits(mask: Uint8Array, rows: number, cols: number, block: Block, limit: number): boolean {
  const [R, C] = block;
  const [gr, gc] = bsrGrid([rows, cols], block);
  let waste = 0;
  for (let br = 0; br < gr; br++) {
    for (let bc = 0; bc < gc; bc++) {
      let nz = 0;
      for (let r = br * R; r < Math.min(br * R + R, rows); r++) {
        const base = r * cols;
        for (let c = bc * C; c < Math.min(bc * C + C, cols); c++) nz += mask[base + c];
      }
      if (nz > 0) {
        waste += R * C - nz;
        if (waste > limit) return false;
      }
    }
  }
  return true;
}

/**
 * The block shape `auto` picks for a masked `[rows, cols]` matrix with `count` non-zeros: the
 * largest R·C (ties: larger C) among AUTO_BLOCKS not larger than the matrix whose stored zeros
 * are at most `slack × count`. Exported for tests.
 */
export function detectBlock(
  mask: Uint8Array,
  rows: number,
  cols: number,
  count: number,
  slack = 0,
): Block {
  const candidates = AUTO_BLOCKS
    .filter(([r, c]) => r <= rows && c <= cols)
    .toSorted((a, b) => b[0] * b[1] - a[0] * a[1] || b[1] - a[1]);
  for (const block of candidates) {
    if (fits(mask, rows, cols, block, slack * count)) return block;
  }
  return [1, 1];
}

/**
 * SciPy's `bsr_matrix(W, blocksize=block)` arrays for the row-major `[rows, cols]` `data`
 * (edge blocks zero-padded when the shape is not a multiple of the block). Exported for tests.
 */
export function toBsr(
  data: ArrayLike<number>,
  rows: number,
  cols: number,
  block: Block,
): { data: Float32Array; indices: Int32Array; indptr: Int32Array } {
  const [R, C] = block;
  const [gr, gc] = bsrGrid([rows, cols], block);
  const indptr = new Int32Array(gr + 1);
  const cols0: number[] = [];
  const rows0: number[] = [];
  const has = new Uint8Array(gc);
  for (let br = 0; br < gr; br++) {
    has.fill(0);
    for (let r = br * R; r < Math.min(br * R + R, rows); r++) {
      const base = r * cols;
      for (let c = 0; c < cols; c++) if (data[base + c] !== 0) has[Math.floor(c / C)] = 1;
    }
    for (let bc = 0; bc < gc; bc++) {
      if (has[bc]) {
        cols0.push(bc);
        rows0.push(br);
      }
    }
    indptr[br + 1] = cols0.length;
  }
  const out = new Float32Array(cols0.length * R * C);
  for (let k = 0; k < cols0.length; k++) {
    const r0 = rows0[k] * R, c0 = cols0[k] * C;
    for (let i = 0; i < R && r0 + i < rows; i++) {
      for (let j = 0; j < C && c0 + j < cols; j++) out[(k * R + i) * C + j] = data[(r0 + i) * cols + c0 + j];
    }
  }
  return { data: out, indices: Int32Array.from(cols0), indptr };
}

/** Parses the `block` option: `auto` or `RxC`. */
function parseBlock(ctx: PassContext<typeof options>): Block | "auto" {
  const text = ctx.options.block;
  if (text === "auto") return "auto";
  const m = /^(\d+)x(\d+)$/.exec(text);
  const block = [Number(m?.[1]), Number(m?.[2])] as const;
  if (!m || !block.every((n) => Number.isSafeInteger(n) && n >= 1)) {
    throw ctx.error(
      undefined,
      `option 'block' must be auto or a block shape RxC such as 1x32, got '${text}'`,
    );
  }
  return block;
}

/** Why a use of a weight keeps it from being lowered, or undefined when the use is fine. */
function badUse(op: Op, slot: number, ctx: PassContext<typeof options>): string | undefined {
  if (op.name !== "dense" || slot !== 1) {
    return `it is used by '${op.result.ref}' (${op.name}) other than as dense's w`;
  }
  const a = new AttrReader(ctx.registry.get("dense")!.attrs, op.attrs);
  if (!a.bool("transpose_b")) return `'${op.result.ref}' uses it with transpose_b = false ([in, out] layout)`;
  if (a.bool("transpose_a")) return `'${op.result.ref}' uses it with transpose_a = true`;
  return undefined;
}

/** The lowering pass. */
export const bsrLower = definePass({
  name: "bsr-lower",
  description: "Lowers dense ops over sparse [out, in] weights to bsr_dense with BSR weights.",
  options,
  statistics,
  filter: { ops: ["dense"] },
  runOnModule(m: Module, ctx) {
    const fixed = parseBlock(ctx);
    const threshold = ctx.options["sparsity-threshold"];
    if (!(threshold >= 0 && threshold <= 1)) {
      throw ctx.error(undefined, `option 'sparsity-threshold' must be in [0, 1], got ${threshold}`);
    }
    const slack = ctx.options["auto-slack"];
    if (!(slack >= 0)) throw ctx.error(undefined, `option 'auto-slack' must be >= 0, got ${slack}`);

    // Uses of each weight: the dense ops using it as w, and the first reason not to lower it.
    const uses = new Map<Weight, { ops: Op[]; bad?: string }>();
    for (const f of m.funcs) {
      for (const op of f.body) {
        op.operands.forEach((v, slot) => {
          const w = v.kind === "weight" ? m.weights.get(v.name) : undefined;
          if (!w) return;
          const u = uses.get(w) ?? { ops: [] };
          uses.set(w, u);
          u.bad ??= badUse(op, slot, ctx);
          if (!u.ops.includes(op)) u.ops.push(op);
        });
      }
    }

    const lowered = new Set<Weight>();
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    for (const w of m.weights.values()) {
      const u = uses.get(w);
      const t = w.type;
      if (!u || !u.ops.some((op) => op.name === "dense")) continue;
      if (t.sparse || t.shape.length !== 2) continue;
      if (u.bad) {
        ctx.log(`@${w.name} is skipped: ${u.bad}`);
        continue;
      }
      if (!["f32", "f16", "bf16"].includes(t.dtype)) {
        ctx.log(`@${w.name} is skipped: a bsr weight must be f32, f16 or bf16, it is ${t.dtype}`);
        continue;
      }
      const [rows, cols] = t.shape;
      if (rows * cols === 0) continue;
      const data = ctx.weights.get(w).data;
      const { mask, count } = nonZeroMask(data);
      const zeros = 1 - count / data.length;
      if (zeros < threshold) {
        ctx.log(`@${w.name} is skipped: ${pct(zeros)} zero, below the threshold ${pct(threshold)}`);
        continue;
      }
      const block = fixed === "auto" ? detectBlock(mask, rows, cols, count, slack) : fixed;
      const bsr = toBsr(data, rows, cols, block);
      const nnz = bsr.indices.length;
      const type: TensorType = {
        shape: [rows, cols],
        dtype: t.dtype,
        sparse: { kind: "bsr", block, nnzBlocks: nnz },
      };
      const [gr, gc] = bsrGrid([rows, cols], block);
      const how = fixed === "auto"
        ? `zeros align to ${block[0]}x${block[1]} blocks`
        : `${block[0]}x${block[1]} blocks`;
      ctx.log(
        `@${w.name}: ${how} (${pct(zeros)} zero), ${nnz}/${gr * gc} blocks stored, ${formatType(type)}`,
      );
      w.type = type;
      ctx.weights.set(w.name, new BsrTensor(type, bsr.data, bsr.indices, bsr.indptr));
      lowered.add(w);
      ctx.stat("weights");
      ctx.stat("blocks", nnz);
      ctx.stat("elements", nnz * block[0] * block[1]);
    }
    if (lowered.size === 0) return "unchanged";

    for (const f of m.funcs) {
      rewrite(f, ctx, [{
        match: "dense",
        where: (op) => lowered.has(op.operands[1] as Weight),
        rewrite(op, rw) {
          const attrs: Record<string, string> = {};
          if (op.attrs.has("activation")) {
            attrs.activation = new AttrReader(ctx.registry.get("dense")!.attrs, op.attrs).string(
              "activation",
            );
          }
          rw.replace(op, rw.create("bsr_dense", op.operands, attrs));
        },
      }]);
    }
    return "changed";
  },
});
