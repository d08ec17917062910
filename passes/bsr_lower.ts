/**
 * `bsr-lower`: turns `dense` ops over sparse enough weights into `bsr_dense` ops with
 * block-sparse (BSR) weights.
 *
 * **Which ops.** A `dense x, @w[, bias]` is lowered when `@w` is a declared, 2-D, dense (not yet
 * BSR) weight of dtype f32, f16 or bf16 (the dtypes a BSR tensor may hold), used with
 * `transpose_a = false`, and every use of `@w` is as the w of such a dense op in one layout
 * (normally there is exactly one use; if several dense ops share it, all are lowered together).
 * Both layouts are lowered: `transpose_b = true` (W stored `[N = out, K = in]`, PyTorch's Linear
 * weight, as Hugging Face checkpoints and torch.onnx with a Transpose node give it) and
 * `transpose_b = false` (W stored `[in, out]`, as ONNX MatMul initializers are when the exporter
 * folded the transpose). The BSR weight is always `[out, in]`, the layout `bsr_dense` takes, so an
 * `[in, out]` weight is transposed as it is lowered and its declared shape becomes `[out, in]`;
 * blocks, `block`, and what `auto` finds are always over W[out, in], the matrix PyTorch prunes.
 * The result is `bsr_dense x, @w[, bias]` with the dense op's `activation` copied (when
 * written), the same name and result type.
 *
 * **Skips.** A weight that is not lowered is skipped with a log line, counted in the statistic
 * of its reason (`skipped-<reason>`, printed by `--stats`), and listed by {@link bsrLowerSkips}
 * for the compile report (`formatReport` in codegen/report.ts lists a report's `bsrSkips`). The
 * reasons: `use` (used other than as the w of a dense op: by another op, as x or bias, with
 * `transpose_a`, or by dense ops in both layouts), `not-weight` (a dense op whose w is computed
 * or a `constant` op, not a declared weight), `dtype` (not f32, f16 or bf16), `empty` (a
 * zero-sized matrix), `too-dense` (below `sparsity-threshold`). A weight already in BSR form is
 * not a skip. A fixed block that does not divide the shape is no skip either: edge blocks are
 * zero-padded (below).
 *
 * **Sparsity threshold.** `sparsity-threshold` (default 0.5: a weight with fewer zeros runs faster
 * dense; TVM's `bsr_dense.convert` defaults to 0.85; 0 lowers every eligible weight)
 * compares the *element* sparsity, the fraction of elements of W that are exactly zero (`-0`
 * counts as zero, NaN as non-zero), as TVM's `sparsity_threshold` does: a weight is lowered
 * iff that fraction ≥ the threshold.
 *
 * **Block shape.** `block = RxC` uses that block for every weight. `block = auto` (the default)
 * picks per weight among every R×C with R ≤ 64 and C ≤ 384 (the shapes the kernels are tested
 * at, `tests/codegen/bsr_test.ts`) whose BSR form stores at most `auto-slack` × the non-zeros in
 * zeros, padding included. With the default slack 0 these are exactly the shapes the zeros align
 * to: every stored block entirely non-zero, and a partial edge block (whose padding would be
 * stored) only when it is empty. Along each axis such a side divides the gcd of the positions
 * where the non-zero pattern changes (a 768-wide weight pruned in 1x48 blocks changes only at
 * multiples of 48), so sides that are not powers of two (3x3, 1x48, 6x2) are found too; the
 * candidates are those divisors, the divisors of the matrix's sides and the powers of two. Among
 * the shapes that qualify, `auto` takes the one the kernel's modelled cost
 * ({@link bsrBlockCost}, the register tiles of `codegen/wasm/bsr_cost.ts`) says is fastest:
 * stored elements × cost per element; ties go to the larger R·C, then the larger C. 1x1 always
 * qualifies.
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
 * `blocks` (blocks stored), `elements` (elements stored, padding included: blocks × R × C) and
 * one `skipped-<reason>` count per skip reason. Returns "changed" iff a weight was lowered.
 */

import { AttrReader } from "../ir/attrs.ts";
import type { Module, Op, Value, Weight } from "../ir/module.ts";
import { builtinRegistry } from "../ir/ops/index.ts";
import type { OpRegistry } from "../ir/registry.ts";
import { BsrTensor } from "../ir/tensor.ts";
import { bsrGrid, formatType, type TensorType } from "../ir/types.ts";
import { definePass, type PassContext } from "./pass.ts";
import { entryOptions, type Pipeline } from "./pipeline.ts";
import { rewrite } from "./rewrite.ts";

/** A block shape `[R, C]` over W `[out, in]`. */
export type Block = readonly [number, number];

/** The largest block sides `block = auto` considers: rows and columns. */
export const AUTO_MAX_BLOCK: Block = [64, 384];

const options = {
  block: { type: "string", default: "auto", doc: "block shape RxC over W[out, in], or auto (per weight)" },
  "sparsity-threshold": {
    type: "number",
    default: 0.5,
    min: 0,
    max: 1,
    doc: "lower only weights whose fraction of zero elements is at least this",
  },
  "auto-slack": {
    type: "number",
    default: 0,
    min: 0,
    doc: "auto: allowed stored zeros as a fraction of the non-zeros (0 = zeros exactly block-aligned)",
  },
} as const;

/** Why `bsr-lower` leaves a dense product dense (see the module header). */
export type BsrSkipReason = "use" | "not-weight" | "dtype" | "empty" | "too-dense";

const SKIP_DOC: Readonly<Record<BsrSkipReason, string>> = {
  use: "weights skipped for their uses (other than the w of dense ops in one layout)",
  "not-weight": "dense ops skipped for a w that is not a declared weight",
  dtype: "weights skipped for their dtype (not f32, f16 or bf16)",
  empty: "weights skipped as zero-sized",
  "too-dense": "weights skipped as too dense (below sparsity-threshold)",
};

const statistics = {
  weights: "weights lowered",
  blocks: "blocks stored",
  elements: "elements stored",
  ...Object.fromEntries(Object.entries(SKIP_DOC).map(([k, v]) => [`skipped-${k}`, v])),
} as const;

/** A dense product `bsr-lower` left dense, and why. */
export interface BsrSkip {
  /** The weight (`@name`), or the computed w (`%name`) for `not-weight`. */
  readonly weight: string;
  /** The reason, as a statistic names it. */
  readonly reason: BsrSkipReason;
  /** The reason in words, with the figures behind it. */
  readonly detail: string;
}

/** A weight that can be lowered: its dense ops and whether it is stored `[out, in]`. */
interface Candidate {
  readonly weight: Weight;
  readonly ops: Op[];
  readonly outIn: boolean;
  /** W in `[out, in]` layout, row-major. */
  readonly data: ArrayLike<number>;
  readonly out: number;
  readonly in: number;
  /** Fraction of elements that are zero. */
  readonly zeros: number;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Why a use of a weight keeps it from being lowered, or undefined when the use is fine. */
function badUse(op: Op, slot: number, registry: OpRegistry): string | undefined {
  if (op.name !== "dense" || slot !== 1) {
    return `it is used by '${op.result.ref}' (${op.name}) other than as dense's w`;
  }
  if (new AttrReader(registry.get("dense")!.attrs, op.attrs).bool("transpose_a")) {
    return `'${op.result.ref}' uses it with transpose_a = true`;
  }
  return undefined;
}

/** Row-major `[cols, rows]` transpose of the row-major `[rows, cols]` `data`. */
function transpose(data: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const t = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = data[r * cols + c];
  return t;
}

/**
 * The weights of the module's dense ops sorted into those `bsr-lower` may lower at `threshold`
 * and those it skips, with the reason. Weights already in BSR form are neither.
 */
function classify(
  m: Module,
  registry: OpRegistry,
  get: (w: Weight) => ArrayLike<number>,
  threshold: number,
): { candidates: Candidate[]; skips: BsrSkip[] } {
  const skips: BsrSkip[] = [];
  const uses = new Map<Weight, { ops: Op[]; layouts: Set<boolean>; bad?: string }>();
  const computed = new Set<Value>();
  for (const f of m.funcs) {
    for (const op of f.body) {
      const v = op.operands[1];
      if (op.name === "dense" && v.kind !== "weight" && !computed.has(v)) {
        computed.add(v);
        skips.push({
          weight: v.ref,
          reason: "not-weight",
          detail: `'${op.result.ref}' takes its w from '${v.ref}'${
            v.definingOp ? ` (${v.definingOp.name})` : " (a parameter)"
          }, not from a weight`,
        });
      }
      op.operands.forEach((v, slot) => {
        const w = v.kind === "weight" ? m.weights.get(v.name) : undefined;
        if (!w) return;
        const u = uses.get(w) ?? { ops: [], layouts: new Set() };
        uses.set(w, u);
        u.bad ??= badUse(op, slot, registry);
        if (op.name === "dense" && slot === 1) {
          u.layouts.add(new AttrReader(registry.get("dense")!.attrs, op.attrs).bool("transpose_b"));
        }
        if (!u.ops.includes(op)) u.ops.push(op);
      });
    }
  }
  const candidates: Candidate[] = [];
  for (const w of m.weights.values()) {
    const u = uses.get(w);
    const t = w.type;
    if (!u || u.layouts.size === 0 || t.sparse || t.shape.length !== 2) continue;
    const skip = (reason: BsrSkipReason, detail: string) => skips.push({ weight: w.ref, reason, detail });
    if (u.bad) {
      skip("use", u.bad);
      continue;
    }
    if (u.layouts.size > 1) {
      skip("use", "dense ops use it both with transpose_b = true and false");
      continue;
    }
    if (!["f32", "f16", "bf16"].includes(t.dtype)) {
      skip("dtype", `a bsr weight must be f32, f16 or bf16, it is ${t.dtype}`);
      continue;
    }
    const [a, b] = t.shape;
    if (a * b === 0) {
      skip("empty", `it has no elements (${a}x${b})`);
      continue;
    }
    const stored = get(w);
    let nz = 0;
    for (let j = 0; j < stored.length; j++) if (stored[j] !== 0) nz++; // NaN counts as non-zero; -0 as zero
    const zeros = 1 - nz / stored.length;
    if (zeros < threshold) {
      skip("too-dense", `${pct(zeros)} zero, below the threshold ${pct(threshold)}`);
      continue;
    }
    const outIn = [...u.layouts][0];
    candidates.push({
      weight: w,
      ops: u.ops,
      outIn,
      data: outIn ? stored : transpose(stored, a, b),
      out: outIn ? a : b,
      in: outIn ? b : a,
      zeros,
    });
  }
  return { candidates, skips };
}

/**
 * The dense products `bsr-lower` leaves dense in `m` and why, with the options of the last
 * `bsr-lower` of `pipeline` (undefined when the pipeline has none). Run on the module after the
 * pipeline, it lists what the pass skipped there as the compiled model has it (weights it lowered
 * are BSR by then); the compile report shows the list.
 */
export function bsrLowerSkips(
  m: Module,
  weights: { get(w: Weight): { readonly data: ArrayLike<number> } },
  pipeline: Pipeline,
  registry: OpRegistry = builtinRegistry,
): BsrSkip[] | undefined {
  const entry = pipeline.entries.findLast((e) => e.pass.name === "bsr-lower");
  if (!entry) return undefined;
  const threshold = entryOptions(entry)["sparsity-threshold"] as number;
  return classify(m, registry, (w) => weights.get(w).data, threshold).skips;
}

/**
 * The register tile of the BSR kernel's default schedule for R-row blocks over more than 4
 * tokens: block rows per tile and 4-lane vectors of tokens. Mirrors `defaultBsrVariant` in
 * `codegen/wasm/bsr_cost.ts` (passes do not import codegen; a test checks they agree).
 */
export function bsrRegisterTile(rows: number): { rows: number; vecs: number } {
  if (rows === 1) return { rows: 1, vecs: 8 };
  if (rows % 4 === 0) return { rows: 4, vecs: 2 };
  return { rows: 2, vecs: 4 };
}

/** Instructions per stored block and register-tile chunk besides the column steps: the index load and the loop. */
const BLOCK_OVERHEAD = 2;

/**
 * The modelled cost of an R×C block per stored element, relative to one multiply-add: the
 * kernel's inner loop runs, for each chunk of a block's rows its register tile covers (rc rows,
 * v token vectors), C column steps of v x loads, rc weight splats and rc·v FMAs, plus
 * `BLOCK_OVERHEAD` per block and chunk; the cost is those instructions per FMA. It ranks the
 * shapes as the single-kernel measurements in docs/codegen-runtime.md do (4x4 < 32x1 < 1x32 <
 * 1x1, `bench/bsr_bench.ts`).
 */
export function bsrBlockCost(block: Block): number {
  const [R, C] = block;
  const { rows, vecs } = bsrRegisterTile(R);
  let instructions = 0;
  for (let r0 = 0; r0 < R; r0 += rows) {
    const rc = Math.min(rows, R - r0);
    instructions += C * (vecs + rc + rc * vecs) + BLOCK_OVERHEAD;
  }
  return instructions / (R * C * vecs);
}

const gcd = (a: number, b: number): number => b === 0 ? a : gcd(b, a % b);

/**
 * Candidate sides along an axis of length `n`: the divisors of `n`, the powers of two and the
 * divisors of `g` (the gcd of the positions where the pattern changes along the axis), up to
 * `max`.
 */
function sides(n: number, g: number, max: number): number[] {
  const out: number[] = [];
  for (let d = 1; d <= Math.min(n, max); d++) {
    if (n % d === 0 || (d & (d - 1)) === 0 || (g > 0 && g % d === 0)) out.push(d);
  }
  return out;
}

/**
 * The block shape `auto` picks for a masked `[rows, cols]` matrix (1 where W[out, in] is
 * non-zero) with `count` non-zeros: among the candidate shapes (see the header) whose stored
 * zeros are at most `slack × count`, the least stored elements × {@link bsrBlockCost}; ties to
 * the larger R·C, then the larger C. Exported for tests.
 */
export function detectBlock(
  mask: Uint8Array,
  rows: number,
  cols: number,
  count: number,
  slack = 0,
): Block {
  // Where the pattern changes: between columns c-1 and c of a row, rows r-1 and r of a column.
  let gc = 0, gr = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 1; c < cols; c++) if (mask[base + c] !== mask[base + c - 1]) gc = gcd(c, gc);
    if (r > 0) {
      for (let c = 0; c < cols; c++) {
        if (mask[base + c] !== mask[base - cols + c]) {
          gr = gcd(r, gr);
          break;
        }
      }
    }
  }
  // Prefix sums of the mask: the non-zeros of any block in four reads.
  const w = cols + 1;
  const sum = new Int32Array((rows + 1) * w);
  for (let r = 0; r < rows; r++) {
    let run = 0;
    for (let c = 0; c < cols; c++) {
      run += mask[r * cols + c];
      sum[(r + 1) * w + c + 1] = sum[r * w + c + 1] + run;
    }
  }
  const limit = slack * count;
  /** Stored elements with `block`, or undefined when its zeros exceed the limit. */
  const stored = (R: number, C: number): number | undefined => {
    let waste = 0;
    for (let r0 = 0; r0 < rows; r0 += R) {
      const r1 = Math.min(r0 + R, rows);
      for (let c0 = 0; c0 < cols; c0 += C) {
        const c1 = Math.min(c0 + C, cols);
        const nz = sum[r1 * w + c1] - sum[r0 * w + c1] - sum[r1 * w + c0] + sum[r0 * w + c0];
        if (nz > 0) {
          waste += R * C - nz;
          if (waste > limit) return undefined;
        }
      }
    }
    return count + waste;
  };
  let best: Block = [1, 1];
  let bestTime = Infinity;
  for (const R of sides(rows, gr, AUTO_MAX_BLOCK[0])) {
    for (const C of sides(cols, gc, AUTO_MAX_BLOCK[1])) {
      const n = stored(R, C);
      if (n === undefined) continue;
      const time = n * bsrBlockCost([R, C]);
      const [bR, bC] = best;
      const tie = Math.abs(time - bestTime) <= 1e-9 * bestTime;
      if (
        (!tie && time < bestTime) || (tie && (R * C > bR * bC || (R * C === bR * bC && C > bC)))
      ) {
        best = [R, C];
        bestTime = time;
      }
    }
  }
  return best;
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

/** The lowering pass. */
export const bsrLower = definePass({
  name: "bsr-lower",
  description:
    "Lowers dense ops over sparse weights (either layout) to bsr_dense with [out, in] BSR weights.",
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

    const { candidates, skips } = classify(m, ctx.registry, (w) => ctx.weights.get(w).data, threshold);
    for (const s of skips) {
      ctx.log(`${s.weight} is skipped: ${s.detail}`);
      ctx.stat(`skipped-${s.reason}`);
    }
    const lowered = new Set<Weight>();
    for (const c of candidates) {
      const { weight: w, data, out: rows, in: cols } = c;
      const mask = new Uint8Array(data.length);
      let count = 0;
      for (let j = 0; j < data.length; j++) if (data[j] !== 0) (mask[j] = 1), count++;
      const block = fixed === "auto" ? detectBlock(mask, rows, cols, count, slack) : fixed;
      // Edge blocks are padded, but a block of more elements than the matrix is mostly padding (and
      // a huge one a memory bomb).
      if (block[0] * block[1] > rows * cols) {
        throw ctx.error(
          c.ops[0],
          `block ${block[0]}x${
            block[1]
          } holds more elements than weight '@${w.name}' (${rows}x${cols} as [out, in])`,
        );
      }
      const bsr = toBsr(data, rows, cols, block);
      const nnz = bsr.indices.length;
      const type: TensorType = {
        shape: [rows, cols],
        dtype: w.type.dtype,
        sparse: { kind: "bsr", block, nnzBlocks: nnz },
      };
      const [gr, gc] = bsrGrid([rows, cols], block);
      const how = fixed === "auto"
        ? `zeros align to ${block[0]}x${block[1]} blocks`
        : `${block[0]}x${block[1]} blocks`;
      const layout = c.outIn ? "" : `, transposed from [in, out]`;
      ctx.log(
        `@${w.name}: ${how} (${pct(c.zeros)} zero), ${nnz}/${gr * gc} blocks stored, ${
          formatType(type)
        }${layout}`,
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
