/**
 * Sparsity objectives for training: which weights are prunable, masks that keep pruned entries
 * at zero, the group-lasso penalty and its proximal step, and gradual magnitude pruning on Zhu &
 * Gupta's cubic schedule.
 *
 * **Prunable weights** are the ones the `prune` and `prune-reconstruct` passes touch: the `w` of a
 * `dense` op, 2-D, dense and f32, whose name matches the passes' default target
 * ({@link DEFAULT_PRUNE_TARGET}, matched with the passes' {@link nameRegex}); a weight any other op
 * also reads (a tied embedding) is left out, as `prune` leaves it.
 *
 * **Blocks** are R×C over the `[out, in]` view of the weight (a Linear weight stored `[out, in]`
 * with `transpose_b`, or `[in, out]` without), numbered row-major over the block grid; edge blocks
 * may be partial. Pruning scores a block by its ℓ2 norm over √(elements) and zeroes the `round(s ·
 * blocks)` lowest, ties to the lower index ({@link lowest}, the `prune` pass's own selection): the
 * same blocks `prune{score=l2 block=RxC sparsity=s}` zeroes.
 */

import { AttrReader } from "../ir/attrs.ts";
import type { Module, Weight } from "../ir/module.ts";
import { builtinRegistry } from "../ir/ops/index.ts";
import { nameRegex } from "../passes/pass.ts";
import { DEFAULT_PRUNE_TARGET, lowest } from "../passes/prune.ts";

export { DEFAULT_PRUNE_TARGET } from "../passes/prune.ts";

/** A block shape R×C (rows of `[out, in]` × columns). */
export type Block = readonly [number, number];

/** A prunable weight matrix: its name and how its data maps onto `[out, in]`. */
export interface Matrix {
  /** The weight's name. */
  readonly name: string;
  /** Output features (rows of the `[out, in]` view). */
  readonly out: number;
  /** Input features (columns of the `[out, in]` view). */
  readonly in: number;
  /** Whether the data is stored `[out, in]` (`transpose_b = true`, PyTorch's Linear) or `[in, out]`. */
  readonly outIn: boolean;
}

/**
 * The prunable weights of `m` (see the header), in declaration order. `target` is a regex over
 * names, by default the passes' {@link DEFAULT_PRUNE_TARGET} (every encoder dense weight).
 */
export function prunableWeights(m: Module, target: string = DEFAULT_PRUNE_TARGET): Matrix[] {
  const re = nameRegex(target);
  const specs = builtinRegistry.get("dense")!.attrs;
  const layout = new Map<Weight, boolean[]>();
  const other = new Set<Weight>();
  for (const f of m.funcs) {
    for (const op of f.body) {
      op.operands.forEach((v, slot) => {
        const w = v.kind === "weight" ? m.weights.get(v.name) : undefined;
        if (!w) return;
        if (op.name !== "dense" || slot !== 1) return void other.add(w);
        const list = layout.get(w) ?? [];
        list.push(new AttrReader(specs, op.attrs).bool("transpose_b"));
        layout.set(w, list);
      });
    }
  }
  const out: Matrix[] = [];
  for (const w of m.weights.values()) {
    const uses = layout.get(w);
    const t = w.type;
    if (!uses || other.has(w) || t.sparse || t.shape.length !== 2 || t.dtype !== "f32") continue;
    if (!re.test(w.name) || uses.some((u) => u !== uses[0])) continue;
    const [a, b] = t.shape;
    out.push({ name: w.name, out: uses[0] ? a : b, in: uses[0] ? b : a, outIn: uses[0] });
  }
  return out;
}

/** Parses a block shape `RxC` (e.g. `1x32`); throws an Error saying what was expected. */
export function parseBlock(text: string): Block {
  const m = /^(\d+)x(\d+)$/.exec(text.trim());
  const block = [Number(m?.[1]), Number(m?.[2])] as const;
  if (!m || !block.every((n) => Number.isSafeInteger(n) && n >= 1 && n <= 16384)) {
    throw new Error(`a block shape is RxC with sides from 1 to 16384 (e.g. 1x32 or 4x4), got '${text}'`);
  }
  return block;
}

/** Checks that `block` fits `mat`; throws an Error naming the weight otherwise. */
export function checkBlock(mat: Matrix, block: Block): void {
  if (block[0] > mat.out || block[1] > mat.in) {
    throw new Error(
      `block ${block[0]}x${block[1]} is larger than weight '${mat.name}' (${mat.out}x${mat.in} as [out, in])`,
    );
  }
}

/** Rows and columns of the block grid (rounded up). */
export function blockGrid(mat: Matrix, block: Block): [number, number] {
  return [Math.ceil(mat.out / block[0]), Math.ceil(mat.in / block[1])];
}

/** Calls `f(index, blockIndex)` for every element of `mat`'s data, with its block's row-major index. */
function eachElement(mat: Matrix, block: Block, f: (index: number, blockIndex: number) => void): void {
  const gc = Math.ceil(mat.in / block[1]);
  const [so, si] = mat.outIn ? [mat.in, 1] : [1, mat.out];
  for (let o = 0; o < mat.out; o++) {
    const row = Math.floor(o / block[0]) * gc;
    for (let i = 0; i < mat.in; i++) f(o * so + i * si, row + Math.floor(i / block[1]));
  }
}

/** The ℓ2 norm of every block (row-major over the grid), unnormalized. */
export function blockNorms(w: Float32Array, mat: Matrix, block: Block): Float64Array {
  const [gr, gc] = blockGrid(mat, block);
  const acc = new Float64Array(gr * gc);
  eachElement(mat, block, (i, b) => acc[b] += w[i] * w[i]);
  for (let b = 0; b < acc.length; b++) acc[b] = Math.sqrt(acc[b]);
  return acc;
}

/** The group-lasso penalty `λ · Σ_b ‖w_b‖₂` of one weight over R×C blocks. */
export function groupLassoPenalty(w: Float32Array, mat: Matrix, block: Block, lambda: number): number {
  let sum = 0;
  for (const n of blockNorms(w, mat, block)) sum += n;
  return lambda * sum;
}

/**
 * The proximal step of the group-lasso penalty with threshold `tau` (= lr · λ), in place: each
 * block is scaled by `max(0, 1 − τ / ‖w_b‖₂)` (block soft-thresholding), so blocks with a norm at
 * most τ become exactly zero. Returns how many blocks are zero afterwards.
 */
export function proxGroupLasso(w: Float32Array, mat: Matrix, block: Block, tau: number): number {
  const norms = blockNorms(w, mat, block);
  const scale = new Float64Array(norms.length);
  let zero = 0;
  for (let b = 0; b < norms.length; b++) {
    scale[b] = norms[b] > tau ? 1 - tau / norms[b] : 0;
    if (scale[b] === 0) zero++;
  }
  eachElement(mat, block, (i, b) => w[i] *= scale[b]);
  return zero;
}

/**
 * Zeroes the `round(sparsity · blocks)` blocks of `w` with the lowest ℓ2 norm per element count
 * (see the header), in place, and clears their entries in `mask` (when given). Returns the blocks
 * zeroed by this call's selection (already-zero blocks it selects count too).
 */
export function pruneBlocks(
  w: Float32Array,
  mat: Matrix,
  block: Block,
  sparsity: number,
  mask?: Uint8Array,
): number {
  if (!(sparsity >= 0 && sparsity < 1)) throw new Error(`sparsity must be in [0, 1), got ${sparsity}`);
  const [gr, gc] = blockGrid(mat, block);
  const norms = blockNorms(w, mat, block);
  const scores = new Float64Array(norms.length);
  for (let br = 0; br < gr; br++) {
    const h = Math.min(block[0], mat.out - br * block[0]);
    for (let bc = 0; bc < gc; bc++) {
      const k = br * gc + bc;
      const s = norms[k] / Math.sqrt(h * Math.min(block[1], mat.in - bc * block[1]));
      scores[k] = Number.isNaN(s) ? Infinity : s;
    }
  }
  const k = Math.round(sparsity * scores.length);
  const pruned = lowest(scores, k);
  eachElement(mat, block, (i, b) => {
    if (pruned[b]) {
      w[i] = 0;
      if (mask) mask[i] = 0;
    }
  });
  return k;
}

/** A mask (1 = trainable, 0 = held at zero) for each named weight: 0 exactly where it is zero now. */
export function masksFromZeros(
  weights: ReadonlyMap<string, Float32Array>,
  names: readonly string[],
): Map<string, Uint8Array> {
  const masks = new Map<string, Uint8Array>();
  for (const name of names) {
    const w = weights.get(name);
    if (!w) throw new Error(`no weight '${name}' to mask`);
    const mask = new Uint8Array(w.length);
    for (let i = 0; i < w.length; i++) mask[i] = w[i] !== 0 ? 1 : 0;
    masks.set(name, mask);
  }
  return masks;
}

/** Sets `x[i] = 0` wherever `mask[i]` is 0, in place (a weight, a gradient or an update). */
export function applyMask(x: Float32Array, mask: Uint8Array): void {
  if (x.length !== mask.length) throw new Error(`mask of ${mask.length} entries over ${x.length} values`);
  for (let i = 0; i < x.length; i++) if (mask[i] === 0) x[i] = 0;
}

/** The fraction of `w`'s entries that are exactly zero. */
export function zeroFraction(w: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < w.length; i++) if (w[i] === 0) n++;
  return w.length === 0 ? 0 : n / w.length;
}

/** Zhu & Gupta's gradual pruning schedule. */
export interface CubicSchedule {
  /** Initial sparsity s_i (usually 0). */
  readonly initial: number;
  /** Final sparsity s_f. */
  readonly final: number;
  /** The first pruning step t0. */
  readonly start: number;
  /** Steps between pruning updates, Δt. */
  readonly interval: number;
  /** Number of pruning updates n after the first; pruning ends at `t0 + n·Δt`. */
  readonly updates: number;
}

/**
 * Zhu & Gupta's target sparsity at step `t`: `s_f + (s_i − s_f)(1 − (t − t0)/(nΔt))³`, held at
 * s_i before t0 and at s_f after `t0 + nΔt` (and s_f throughout when n = 0).
 */
export function cubicSparsity(t: number, s: CubicSchedule): number {
  if (t < s.start) return s.initial;
  const span = s.updates * s.interval;
  if (span <= 0 || t >= s.start + span) return s.final;
  return s.final + (s.initial - s.final) * (1 - (t - s.start) / span) ** 3;
}

/** Whether step `t` is one where the cubic schedule prunes: t0, t0 + Δt, ..., t0 + nΔt. */
export function isPruningStep(t: number, s: CubicSchedule): boolean {
  return t >= s.start && t <= s.start + s.updates * s.interval && (t - s.start) % s.interval === 0;
}
