/**
 * `prune-reconstruct`: one-shot pruning with reconstruction (OBS / SparseGPT style) of the weights
 * of `dense` ops, for any block shape RxC over W[out, in]. Where `prune` only zeroes the
 * lowest-norm blocks, this pass also chooses the blocks by how much output error they cause and
 * updates the weights that remain so that each layer's outputs on calibration data change least.
 *
 * **Calibration.** `calibration` sentences (default 256) are drawn without replacement, with a
 * seeded choice, from `calibration-data` (an SST-2 style TSV: a header naming a `sentence` or
 * `text` column, one row a line), tokenized with the `tokenizer.json` in `tokenizer` (by default
 * the model file's folder, else the folder of the weights file it names, which for an imported
 * Hugging Face checkpoint is the checkpoint's) and padded or truncated to `@main`'s static
 * length, as `deno task eval` does. `calibration-data=random` uses seeded random token ids of
 * random lengths instead (no tokenizer; for synthetic models). `@main` must take `input_ids`
 * (and optionally `token_type_ids`, `attention_mask`) of shape `[1, S]`. Passes only read files
 * `deno task compile` grants: it grants these two when the pipeline names this pass.
 *
 * **Sequential.** The ops of `@main` run op by op over all calibration inputs at once (the
 * reference ops, as the interpreter runs them). At each target `dense`, in program order, the
 * inputs X it receives from the already-pruned model are gathered (only the rows of real tokens
 * when the rows are the sequence positions; pad rows are left out), the weight is pruned and
 * reconstructed, and the run continues with the new weight, as SparseGPT does. With `correct`
 * (the default) a second run keeps the unpruned weights, giving the inputs X_d the unpruned
 * model feeds the op, and each weight is fitted to the unpruned outputs X_d Wᵀ rather than to
 * XWᵀ, so that each layer also corrects the error the layers pruned before it left in X: the
 * pruning starts from the damped least-squares target W̃ = W (X_dᵀX)(XᵀX + λI)⁻¹, and since
 * ‖X_d wᵀ − X vᵀ‖² = ‖X(v − w̃)ᵀ‖² + const (λ = 0), pruning W̃ with H below is exact for it.
 *
 * **Per weight** W `[out, in]`: H = XᵀX, damped by `damp` × mean(diag H) on the diagonal (λ),
 * and U the upper Cholesky factor of H⁻¹. Columns are taken in windows of `window` columns
 * (rounded to a multiple of C; 0 = all); at each window the blocks of its columns are scored by
 * their OBS saliency: for a block with columns B (C of them, a group) and rows r (R of them),
 * the sum over its rows of w_Bᵀ (H⁻¹_BB)⁻¹ w_B with H⁻¹_BB = U_BBᵀU_BB the C×C sub-block of the
 * inverse Hessian once the columns before B are eliminated, i.e. ‖z‖² with U_BBᵀ z = w_B. The
 * window's lowest-saliency blocks are pruned (as many as keep the count of pruned blocks so far
 * at round(sparsity × blocks so far), so the matrix ends at exactly round(sparsity × blocks)),
 * then its columns are eliminated one by one: a pruned w_j is zeroed and its error
 * w_j / U_jj · U_j,(j+1..) is subtracted from the columns after it in the row. Eliminating the
 * C columns of a block one at a time this way is the block-OBS update of the whole block.
 * Partial edge blocks have their saliency scaled to a full block's element count. With `bias`
 * (not with `correct`), the dense op's bias is updated too, as a last input column of ones that
 * is never pruned (on sst2-bert-mini this fits the calibration data better but generalizes
 * badly, hence off by default).
 *
 * **Report.** A log line per weight: blocks pruned, element sparsity, the number of calibration
 * tokens and the relative output error ‖X_d Wᵀ − XŴᵀ‖ / ‖X_d Wᵀ‖ (X_d = X without `correct`) of
 * the plain magnitude mask (block ℓ2 norm, as `prune{score=l2}`, no update) and of the
 * reconstructed weight, on the same inputs. Statistics `weights`, `blocks`, `elements` as in
 * `prune`.
 */

import { dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { AttrReader } from "../ir/attrs.ts";
import type { Func, Module, Op, Value, Weight } from "../ir/module.ts";
import { Random } from "../ir/random.ts";
import { allocData, Tensor } from "../ir/tensor.ts";
import { isFloat } from "../ir/types.ts";
import { definePass, type PassContext } from "./pass.ts";
import { DEFAULT_PRUNE_TARGET, lowest } from "./prune.ts";

/** The default `calibration-data`: SST-2 train as the CI checkout has it beside the repository. */
export const DEFAULT_CALIBRATION_DATA = "../shared/data/sst2/train.tsv";

const options = {
  sparsity: { type: "number", default: 0.8, doc: "fraction of blocks to zero in each weight, in [0, 1)" },
  block: { type: "block", default: [1, 1], doc: "block shape RxC over W[out, in]; 1x1 is unstructured" },
  target: { type: "string", default: DEFAULT_PRUNE_TARGET, doc: "regex over the names of weights to prune" },
  calibration: { type: "int", default: 256, doc: "number of calibration sentences" },
  seed: { type: "int", default: 0, doc: "seed of the choice of calibration sentences" },
  "calibration-data": {
    type: "string",
    default: DEFAULT_CALIBRATION_DATA,
    doc: "TSV of sentences (column 'sentence' or 'text'), or 'random' for seeded random token ids",
  },
  tokenizer: {
    type: "string",
    default: "",
    doc: "folder with tokenizer.json; default the model file's folder, else its weights file's",
  },
  damp: { type: "number", default: 0.01, doc: "diagonal damping of H, as a fraction of its mean diagonal" },
  correct: {
    type: "bool",
    default: true,
    doc: "fit each layer to the unpruned model's outputs (X_d W), correcting earlier layers' error",
  },
  bias: {
    type: "bool",
    default: false,
    doc: "also update each dense op's bias, as an input column of ones that is never pruned",
  },
  window: {
    type: "int",
    default: 128,
    doc: "columns per mask-selection window (rounded up to a multiple of C); 0 = the whole matrix",
  },
} as const;

const statistics = {
  weights: "weights pruned",
  blocks: "blocks zeroed",
  elements: "elements zeroed",
} as const;

// ---------------------------------------------------------------------------------------------
// Linear algebra on row-major Float64Arrays.

/**
 * The lower Cholesky factor L (H = LLᵀ) of the symmetric n×n `h`, or undefined when `h` is not
 * positive definite.
 */
export function cholesky(h: Float64Array, n: number): Float64Array | undefined {
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = h[rj + j];
    for (let k = 0; k < j; k++) d -= l[rj + k] * l[rj + k];
    if (!(d > 0)) return undefined;
    const ljj = Math.sqrt(d);
    l[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = h[ri + j];
      for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
      l[ri + j] = s / ljj;
    }
  }
  return l;
}

/** The inverse of the lower-triangular n×n `l` (lower triangular too), row by row. */
function invertLower(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    // Row i: (e_i − Σ_{k<i} L_ik · X_k,:) / L_ii.
    inv[ri + i] = 1;
    for (let k = 0; k < i; k++) {
      const a = l[ri + k];
      if (a === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) inv[ri + j] -= a * inv[rk + j];
    }
    const d = 1 / l[ri + i];
    for (let j = 0; j <= i; j++) inv[ri + j] *= d;
  }
  return inv;
}

/**
 * The upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU) for the symmetric positive-definite `h`, or
 * undefined when `h` is not positive definite. With P the order-reversing permutation and
 * PHP = L̂L̂ᵀ, H = VVᵀ for the upper-triangular V = PL̂P, so H⁻¹ = V⁻ᵀV⁻¹ and U = V⁻¹ = PL̂⁻¹P:
 * one Cholesky factorization and one triangular inverse.
 */
export function inverseCholeskyUpper(h: Float64Array, n: number): Float64Array | undefined {
  const flipped = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) flipped[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
  }
  const l = cholesky(flipped, n);
  if (!l) return undefined;
  const li = invertLower(l, n);
  const u = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) u[i * n + j] = li[(n - 1 - i) * n + (n - 1 - j)];
  return u;
}

/** Σ_r d_rᵀ H d_r over the rows of the `rows`×n matrix `d`, for the symmetric n×n `h`. */
export function quadraticForm(d: Float64Array, rows: number, h: Float64Array, n: number): number {
  let total = 0;
  const hd = new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const dr = r * n;
    hd.fill(0);
    for (let a = 0; a < n; a++) {
      const x = d[dr + a];
      if (x === 0) continue;
      const ha = a * n;
      for (let b = 0; b < n; b++) hd[b] += x * h[ha + b];
    }
    for (let b = 0; b < n; b++) total += d[dr + b] * hd[b];
  }
  return total;
}

/** Accumulates H += XᵀX for the `rows`×n row-major `x` into the full symmetric n×n `h`. */
export function accumulateGram(h: Float64Array, x: Float64Array, rows: number, n: number): void {
  const T = 32;
  const tile = new Float64Array(n * T);
  for (let r0 = 0; r0 < rows; r0 += T) {
    const t = Math.min(T, rows - r0);
    for (let i = 0; i < t; i++) for (let a = 0; a < n; a++) tile[a * T + i] = x[(r0 + i) * n + a];
    for (let a = 0; a < n; a++) {
      const ta = a * T;
      for (let b = a; b < n; b++) {
        const tb = b * T;
        let s = 0;
        for (let i = 0; i < t; i++) s += tile[ta + i] * tile[tb + i];
        h[a * n + b] += s;
      }
    }
  }
  for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) h[b * n + a] = h[a * n + b];
}

/** Accumulates C += XᵀY for the `rows`×n row-major `x` and `y` into the n×n `c`. */
export function accumulateCross(
  c: Float64Array,
  x: Float64Array,
  y: Float64Array,
  rows: number,
  n: number,
): void {
  const T = 32;
  const tx = new Float64Array(n * T), ty = new Float64Array(n * T);
  for (let r0 = 0; r0 < rows; r0 += T) {
    const t = Math.min(T, rows - r0);
    for (let i = 0; i < t; i++) {
      for (let a = 0; a < n; a++) {
        tx[a * T + i] = x[(r0 + i) * n + a];
        ty[a * T + i] = y[(r0 + i) * n + a];
      }
    }
    for (let a = 0; a < n; a++) {
      const ta = a * T;
      for (let b = 0; b < n; b++) {
        const tb = b * T;
        let s = 0;
        for (let i = 0; i < t; i++) s += tx[ta + i] * ty[tb + i];
        c[a * n + b] += s;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Pruning one weight.

/** How to prune one weight. */
export interface ReconstructOptions {
  /** Fraction of blocks to zero, in [0, 1). */
  readonly sparsity: number;
  /** Block shape [R, C] over W[out, in]. */
  readonly block: readonly [number, number];
  /** Diagonal damping as a fraction of mean(diag H); 0.01 by default. */
  readonly damp?: number;
  /** Columns per mask-selection window (rounded up to a multiple of C); 0 = all; 128 by default. */
  readonly window?: number;
  /** The bias `[out]`, to update as well (then `h` is the Gram matrix of [X, 1]). */
  readonly bias?: Float64Array;
  /**
   * Reconstruct against the unpruned model: with X the pruned model's inputs (`h` = XᵀX) and
   * X_d the unpruned model's, minimize ‖X_d Wᵀ − XŴᵀ‖² instead. `cross` = XᵀX_d and
   * `hDense` = X_dᵀX_d, both n×n like `h`.
   */
  readonly dense?: { readonly cross: Float64Array; readonly hDense: Float64Array };
}

/** What pruning one weight did. */
export interface ReconstructResult {
  /** The pruned and updated weight, `[out, in]` row-major. */
  readonly w: Float64Array;
  /** The updated bias, when one was given. */
  readonly bias?: Float64Array;
  /** Which blocks were pruned, row-major over the `[out, in]` block grid. */
  readonly mask: Uint8Array;
  /** Blocks pruned. */
  readonly pruned: number;
  /** Relative output error ‖X(W − Ŵ)ᵀ‖ / ‖XWᵀ‖ of the block-ℓ2 magnitude mask without update. */
  readonly errorMagnitude: number;
  /** The same for the reconstructed weight. */
  readonly errorReconstructed: number;
  /** The damping that made H positive definite (larger than asked when it had to be raised). */
  readonly damp: number;
}

/**
 * Block ℓ2 norms of `w` `[out, in]` over R×C blocks, normalized by each block's element count
 * (so the root mean square; as `prune{score=l2}`), row-major over the block grid.
 */
export function blockNorms(
  w: Float64Array,
  out: number,
  inn: number,
  block: readonly [number, number],
): Float64Array {
  const [R, C] = block;
  const gr = Math.ceil(out / R), gc = Math.ceil(inn / C);
  const acc = new Float64Array(gr * gc);
  for (let o = 0; o < out; o++) {
    const row = Math.floor(o / R) * gc;
    for (let i = 0; i < inn; i++) acc[row + Math.floor(i / C)] += w[o * inn + i] ** 2;
  }
  for (let br = 0; br < gr; br++) {
    const h = Math.min(R, out - br * R);
    for (let bc = 0; bc < gc; bc++) {
      const s = Math.sqrt(acc[br * gc + bc] / (h * Math.min(C, inn - bc * C)));
      acc[br * gc + bc] = Number.isNaN(s) ? Infinity : s;
    }
  }
  return acc;
}

/** ‖X(W − Ŵ)ᵀ‖ / ‖XWᵀ‖ from H = XᵀX. */
function relativeError(
  w: Float64Array,
  wHat: Float64Array,
  out: number,
  inn: number,
  h: Float64Array,
  base: number,
): number {
  const d = new Float64Array(w.length);
  for (let k = 0; k < d.length; k++) d[k] = w[k] - wHat[k];
  const e = quadraticForm(d, out, h, inn);
  return base > 0 ? Math.sqrt(Math.max(e, 0) / base) : 0;
}

/**
 * Prunes `w` (`[out, in]` row-major, not changed) to R×C blocks at `sparsity` and updates the
 * kept weights to minimize ‖XWᵀ − XŴᵀ‖² given H = XᵀX (`h`, not changed); see the file header.
 * With `opts.bias`, `h` is the (in+1)×(in+1) Gram matrix of X with a column of ones appended
 * (its last row and column: the column sums of X and the row count), and the bias is updated
 * too, as a column that is never pruned and comes last: ‖XWᵀ + b − XŴᵀ − b̂‖² is minimized.
 * Deterministic.
 */
export function reconstructWeight(
  w: Float64Array,
  out: number,
  inn: number,
  h: Float64Array,
  opts: ReconstructOptions,
): ReconstructResult {
  const [R, C] = opts.block;
  const gr = Math.ceil(out / R), gc = Math.ceil(inn / C);
  const total = gr * gc;
  const k = Math.round(opts.sparsity * total);
  const n = opts.bias ? inn + 1 : inn; // columns of the augmented problem
  if (h.length !== n * n) throw new Error(`H must be ${n}x${n}, got ${h.length} elements`);

  // The damped Hessian and the Cholesky factor of its inverse; raise damping until it factors.
  let meanDiag = 0;
  for (let i = 0; i < inn; i++) meanDiag += h[i * n + i];
  meanDiag = meanDiag / inn > 0 ? meanDiag / inn : 1;
  let damp = opts.damp ?? 0.01;
  let u: Float64Array | undefined;
  for (let attempt = 0; attempt < 8 && !u; attempt++) {
    const hd = h.slice();
    for (let i = 0; i < n; i++) {
      if (hd[i * n + i] === 0) hd[i * n + i] = meanDiag; // an input that is always zero
      hd[i * n + i] += damp * meanDiag;
    }
    u = inverseCholeskyUpper(hd, n);
    if (!u) damp = damp > 0 ? damp * 10 : 1e-6;
  }
  if (!u) throw new Error(`the Hessian is not positive definite even with damping ${damp}`);

  // [W | b], row-major out × n.
  const orig = new Float64Array(out * n);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inn; i++) orig[o * n + i] = w[o * inn + i];
    if (opts.bias) orig[o * n + inn] = opts.bias[o];
  }
  const cur = orig.slice();
  if (opts.dense) {
    // The unconstrained optimum (H + λI)⁻¹ X^T X_d w = UᵀU (cross · w) of each row is the target.
    const v = new Float64Array(n), t = new Float64Array(n);
    const { cross } = opts.dense;
    for (let o = 0; o < out; o++) {
      const row = o * n;
      for (let a = 0; a < n; a++) {
        let sum = 0;
        for (let b = 0; b < n; b++) sum += cross[a * n + b] * orig[row + b];
        v[a] = sum;
      }
      for (let a = 0; a < n; a++) {
        let sum = 0;
        for (let b = a; b < n; b++) sum += u[a * n + b] * v[b];
        t[a] = sum;
      }
      for (let b = 0; b < n; b++) cur[row + b] = 0;
      for (let a = 0; a < n; a++) {
        const ta = t[a];
        for (let b = a; b < n; b++) cur[row + b] += u[a * n + b] * ta;
      }
    }
  }
  const mask = new Uint8Array(total);
  const window = opts.window ?? 128;
  const step = window === 0 ? gc * C : Math.ceil(window / C) * C;
  const z = new Float64Array(C);
  // Saliency of the blocks in block columns [c0, c1), from the weights as they are now.
  const saliency = (c0: number, c1: number): Float64Array => {
    const wc = c1 - c0;
    const sal = new Float64Array(gr * wc);
    for (let bc = c0; bc < c1; bc++) {
      const j0 = bc * C, cb = Math.min(C, inn - j0);
      for (let o = 0; o < out; o++) {
        const row = o * n;
        let s = 0;
        for (let a = 0; a < cb; a++) {
          let v = cur[row + j0 + a];
          for (let b = 0; b < a; b++) v -= u![(j0 + b) * n + j0 + a] * z[b];
          z[a] = v / u![(j0 + a) * n + j0 + a];
          s += z[a] * z[a];
        }
        sal[Math.floor(o / R) * wc + (bc - c0)] += s;
      }
    }
    for (let br = 0; br < gr; br++) {
      const hgt = Math.min(R, out - br * R);
      for (let bc = c0; bc < c1; bc++) {
        const count = hgt * Math.min(C, inn - bc * C);
        const s = sal[br * wc + bc - c0] * (R * C) / count;
        sal[br * wc + bc - c0] = Number.isNaN(s) ? Infinity : s;
      }
    }
    return sal;
  };
  // How many blocks each window prunes: keeps the running count at round(k × columns so far).
  const windows: [number, number][] = [];
  for (let w0 = 0; w0 < inn; w0 += step) windows.push([w0, Math.min(inn, w0 + step)]);
  const perWindow = windows.map(([, w1]) => Math.round((k * Math.ceil(w1 / C)) / gc));
  for (let i = perWindow.length - 1; i > 0; i--) perWindow[i] -= perWindow[i - 1];
  let pruned = 0;
  windows.forEach(([w0, w1], wi) => {
    const c0 = w0 / C, c1 = Math.ceil(w1 / C); // block columns of this window
    const wc = c1 - c0;
    const sel = lowest(saliency(c0, c1), perWindow[wi]);
    for (let br = 0; br < gr; br++) {
      for (let bc = c0; bc < c1; bc++) {
        if (sel[br * wc + bc - c0]) {
          mask[br * gc + bc] = 1;
          pruned++;
        }
      }
    }
    // Eliminate the window's columns one by one (OBS with the rows of U); the bias column,
    // last, is never pruned and takes its share of every update.
    for (let j = w0; j < w1; j++) {
      const bc = Math.floor(j / C);
      const uj = j * n;
      const ujj = u![uj + j];
      for (let o = 0; o < out; o++) {
        if (!mask[Math.floor(o / R) * gc + bc]) continue;
        const row = o * n;
        const err = cur[row + j] / ujj;
        cur[row + j] = 0;
        if (err === 0) continue;
        for (let i = j + 1; i < n; i++) cur[row + i] -= err * u![uj + i];
      }
    }
  });

  // Errors on the undamped H, relative to ‖XWᵀ‖: the magnitude mask without update, and the result.
  const noBias = orig.slice();
  if (opts.bias) { for (let o = 0; o < out; o++) noBias[o * n + inn] = 0; }
  const base = quadraticForm(noBias, out, h, n);
  const magMask = lowest(blockNorms(w, out, inn, opts.block), k);
  const mag = orig.slice();
  const gcols = Math.ceil(inn / C);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inn; i++) {
      if (magMask[Math.floor(o / R) * gcols + Math.floor(i / C)]) mag[o * n + i] = 0;
    }
  }
  const resW = new Float64Array(out * inn);
  for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) resW[o * inn + i] = cur[o * n + i];
  let errorMagnitude: number, errorReconstructed: number;
  if (opts.dense) {
    // ‖X_d w − X v‖² = wᵀH_d w − 2 vᵀ(XᵀX_d)w + vᵀHv, relative to ‖X_d Wᵀ‖.
    const { cross, hDense } = opts.dense;
    const wd = quadraticForm(orig, out, hDense, n);
    const cw = new Float64Array(out * n);
    for (let o = 0; o < out; o++) {
      for (let a = 0; a < n; a++) {
        let sum = 0;
        for (let b = 0; b < n; b++) sum += cross[a * n + b] * orig[o * n + b];
        cw[o * n + a] = sum;
      }
    }
    const err = (v: Float64Array) => {
      let dot = 0;
      for (let i = 0; i < v.length; i++) dot += v[i] * cw[i];
      const e = wd - 2 * dot + quadraticForm(v, out, h, n);
      const b = quadraticForm(noBias, out, hDense, n);
      return b > 0 ? Math.sqrt(Math.max(e, 0) / b) : 0;
    };
    errorMagnitude = err(mag);
    errorReconstructed = err(cur);
  } else {
    errorMagnitude = relativeError(orig, mag, out, n, h, base);
    errorReconstructed = relativeError(orig, cur, out, n, h, base);
  }
  return {
    w: resW,
    bias: opts.bias ? Float64Array.from({ length: out }, (_, o) => cur[o * n + inn]) : undefined,
    mask,
    pruned,
    errorMagnitude,
    errorReconstructed,
    damp,
  };
}

// ---------------------------------------------------------------------------------------------
// Calibration inputs.

/** The token ids of one calibration sentence, fitted to the model's length. */
interface Sample {
  readonly ids: number[];
  /** Real tokens (the rest is padding). */
  readonly length: number;
}

/** Parses the sentences of an SST-2 style TSV (a header with a `sentence` or `text` column). */
export function tsvSentences(text: string, file: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0) {
    throw new Error(`'${file}' is empty (expected a header naming a 'sentence' column)`);
  }
  const header = lines[0].split("\t");
  const col = header.includes("sentence") ? header.indexOf("sentence") : header.indexOf("text");
  if (col < 0) {
    throw new Error(`'${file}': the header must name a 'sentence' (or 'text') column, got '${lines[0]}'`);
  }
  return lines.slice(1).map((l) => l.split("\t")[col] ?? "");
}

/** `n` distinct indices of `[0, total)` (all when n ≥ total), in the order a seeded shuffle draws them. */
export function seededChoice(total: number, n: number, seed: number): number[] {
  const rng = new Random(seed);
  const idx = Array.from({ length: total }, (_, i) => i);
  const take = Math.min(n, total);
  for (let i = 0; i < take; i++) {
    const j = i + rng.int(total - i);
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return idx.slice(0, take);
}

/** A sync BERT tokenizer from a folder's `tokenizer.json` (and `tokenizer_config.json`). */
function loadTokenizerSync(dir: string): { encode(s: string): number[]; sep: number; pad: number } {
  const path = join(dir, "tokenizer.json");
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    throw new Error(`cannot read '${path}': ${e instanceof Error ? e.message : e}`);
  }
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(Deno.readTextFileSync(join(dir, "tokenizer_config.json")));
  } catch { /* optional */ }
  let json: { model?: { vocab?: Record<string, number> } };
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`'${path}' is not valid JSON: ${e instanceof Error ? e.message : e}`);
  }
  const vocab = json.model?.vocab ?? {};
  const sep = vocab["[SEP]"];
  if (typeof sep !== "number") throw new Error(`'${path}' has no [SEP] token (not a BERT tokenizer)`);
  const tok = new Tokenizer(json as Record<string, unknown>, config);
  return {
    encode: (s) => tok.encode(s).ids,
    sep,
    pad: typeof vocab["[PAD]"] === "number" ? vocab["[PAD]"] : 0,
  };
}

/**
 * Where the tokenizer of a model is by default: the IR file's folder, else the folder of the
 * weights file it names (an imported Hugging Face checkpoint's own folder).
 */
function defaultTokenizerDir(m: Module): string {
  const dir = m.loc?.file ? dirname(m.loc.file) : ".";
  const candidates = [dir, ...(m.weightsFile ? [dirname(join(dir, m.weightsFile))] : [])];
  for (const c of candidates) {
    try {
      Deno.statSync(join(c, "tokenizer.json"));
      return c;
    } catch { /* not there, or not readable */ }
  }
  return dir;
}

/** Rows of the table `input_ids` is gathered from, if any. */
function vocabSize(f: Func, ids: Value): number | undefined {
  const g = f.body.find((op) => op.name === "gather" && op.operands[1] === ids);
  return g?.operands[0].type.shape[0];
}

// ---------------------------------------------------------------------------------------------
// Running @main op by op over all samples.

/** Runs the ops of `f` over many inputs at once, a span at a time, dropping dead values. */
class Stepper {
  private readonly envs: Map<Value, Tensor>[];
  private readonly lastUse = new Map<Value, number>();
  private next = 0;

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

  /** Runs ops up to (not including) index `end`. */
  runTo(end: number): void {
    const { m, ctx } = this;
    for (const env of this.envs) {
      for (let i = this.next; i < end; i++) {
        const op = this.f.body[i];
        const def = ctx.registry.get(op.name)!;
        const args = op.operands.map((v) => {
          if (v.kind === "weight") return this.weight(m.weights.get(v.name)!);
          return env.get(v)!;
        });
        let out: Tensor;
        try {
          out = def.interpret(args, new AttrReader(def.attrs, op.attrs), op.result.type);
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

  /** The value `v` in every sample's run. */
  values(v: Value): Tensor[] {
    return this.envs.map((env) => env.get(v)!);
  }
}

// ---------------------------------------------------------------------------------------------
// The pass.

/** A weight to prune: the dense op using it and its layout. */
interface Target {
  readonly weight: Weight;
  readonly op: Op;
  readonly index: number;
  readonly outIn: boolean;
  readonly out: number;
  readonly in: number;
  /** The op's bias, when it is a weight only this op uses. */
  readonly bias?: Weight;
}

function findTargets(m: Module, f: Func, ctx: PassContext<typeof options>, target: RegExp): Target[] {
  const uses = new Map<Weight, { op: Op; index: number; slot: number }[]>();
  for (const g of m.funcs) {
    g.body.forEach((op, index) =>
      op.operands.forEach((v, slot) => {
        const w = v.kind === "weight" ? m.weights.get(v.name) : undefined;
        if (!w) return;
        if (!uses.has(w)) uses.set(w, []);
        uses.get(w)!.push({ op, index: g === f ? index : -1, slot });
      })
    );
  }
  const out: Target[] = [];
  for (const [weight, us] of uses) {
    const t = weight.type;
    if (!target.test(weight.name) || !us.some((u) => u.op.name === "dense" && u.slot === 1)) continue;
    if (t.sparse || t.shape.length !== 2 || !isFloat(t.dtype)) continue;
    if (us.length !== 1 || us[0].index < 0) {
      ctx.log(`@${weight.name} is skipped: it is used more than once or outside @main`);
      continue;
    }
    const { op, index } = us[0];
    const attrs = new AttrReader(ctx.registry.get("dense")!.attrs, op.attrs);
    if (attrs.bool("transpose_a")) {
      ctx.log(`@${weight.name} is skipped: its dense has transpose_a`);
      continue;
    }
    const outIn = attrs.bool("transpose_b");
    const [a, b] = t.shape;
    const bv = op.operands[2];
    const bias = bv?.kind === "weight" ? m.weights.get(bv.name) : undefined;
    const ownBias = bias && uses.get(bias)?.length === 1 && !bias.type.sparse ? bias : undefined;
    out.push({ weight, op, index, outIn, out: outIn ? a : b, in: outIn ? b : a, bias: ownBias });
  }
  return out.sort((x, y) => x.index - y.index);
}

/** Checks the options; throws errors naming the option. */
function checkOptions(o: PassContext<typeof options>["options"], ctx: PassContext<typeof options>): RegExp {
  if (!(o.sparsity >= 0 && o.sparsity < 1)) {
    throw ctx.error(undefined, `option 'sparsity' must be in [0, 1), got ${o.sparsity}`);
  }
  if (!(Number.isSafeInteger(o.calibration) && o.calibration >= 1)) {
    throw ctx.error(undefined, `option 'calibration' must be a positive integer, got ${o.calibration}`);
  }
  if (!(o.damp >= 0 && Number.isFinite(o.damp))) {
    throw ctx.error(undefined, `option 'damp' must be a number >= 0, got ${o.damp}`);
  }
  if (!(Number.isSafeInteger(o.window) && o.window >= 0)) {
    throw ctx.error(undefined, `option 'window' must be an integer >= 0, got ${o.window}`);
  }
  if (!(o.block[0] >= 1 && o.block[1] >= 1)) {
    throw ctx.error(undefined, `option 'block' must be RxC with R, C >= 1, got ${o.block[0]}x${o.block[1]}`);
  }
  if (o.correct && o.bias) {
    throw ctx.error(undefined, `options 'correct' and 'bias' cannot be combined`);
  }
  if (o["calibration-data"] === "") {
    throw ctx.error(undefined, `option 'calibration-data' is empty: give a TSV file or 'random'`);
  }
  try {
    return new RegExp(o.target);
  } catch (e) {
    throw ctx.error(undefined, `option 'target' is not a valid regex: ${e instanceof Error ? e.message : e}`);
  }
}

/** The calibration samples, fitted to length `seq`. */
function calibrationSamples(m: Module, f: Func, ctx: PassContext<typeof options>, seq: number): Sample[] {
  const o = ctx.options;
  const data = o["calibration-data"];
  if (data === "random") {
    const ids = f.params.find((p) => p.name === "input_ids")!;
    const vocab = vocabSize(f, ids) ?? 100;
    const rng = new Random(o.seed);
    return Array.from({ length: o.calibration }, () => {
      const length = Math.min(seq, 2 + rng.int(Math.max(1, seq - 1)));
      const ids = Array.from({ length: seq }, (_, i) => i < length ? rng.int(vocab) : 0);
      return { ids, length };
    });
  }
  let text: string;
  try {
    text = Deno.readTextFileSync(data);
  } catch (e) {
    throw ctx.error(
      undefined,
      `option 'calibration-data': cannot read '${data}': ${e instanceof Error ? e.message : e}`,
    );
  }
  let sentences: string[];
  try {
    sentences = tsvSentences(text, data);
  } catch (e) {
    throw ctx.error(undefined, `option 'calibration-data': ${e instanceof Error ? e.message : e}`);
  }
  if (sentences.length === 0) throw ctx.error(undefined, `option 'calibration-data': '${data}' has no rows`);
  let tok: ReturnType<typeof loadTokenizerSync>;
  try {
    tok = loadTokenizerSync(o.tokenizer !== "" ? o.tokenizer : defaultTokenizerDir(m));
  } catch (e) {
    const hint = o.tokenizer === "" ? " (set tokenizer=DIR, the folder with tokenizer.json)" : "";
    throw ctx.error(undefined, `option 'tokenizer': ${e instanceof Error ? e.message : e}${hint}`);
  }
  if (o.calibration > sentences.length) {
    ctx.log(`calibration: '${data}' has only ${sentences.length} sentences; using all of them`);
  }
  return seededChoice(sentences.length, o.calibration, o.seed).map((i) => {
    let ids = tok.encode(sentences[i]);
    if (ids.length > seq) ids = [...ids.slice(0, seq - 1), tok.sep];
    const length = ids.length;
    return { ids: [...ids, ...Array(seq - length).fill(tok.pad)], length };
  });
}

/**
 * The rows of X a dense op received over all samples (real tokens only when the rows are the
 * sequence positions), with a column of ones appended: `[rows, k + 1]`.
 */
function gatherInputs(
  ts: Tensor[],
  samples: Sample[],
  seq: number,
): { x: Float64Array; rows: number; k: number } {
  const shape = ts[0].shape;
  const k = shape[shape.length - 1];
  const perSample = ts[0].data.length / k;
  const positional = perSample % seq === 0;
  const keep = (r: number, s: Sample) => !positional || (r % seq) < s.length;
  let rows = 0;
  samples.forEach((s) => {
    for (let r = 0; r < perSample; r++) if (keep(r, s)) rows++;
  });
  const x = new Float64Array(rows * (k + 1));
  let at = 0;
  ts.forEach((t, si) => {
    for (let r = 0; r < perSample; r++) {
      if (!keep(r, samples[si])) continue;
      for (let c = 0; c < k; c++) x[at * (k + 1) + c] = t.data[r * k + c];
      x[at * (k + 1) + k] = 1;
      at++;
    }
  });
  return { x, rows, k };
}

/** The one-shot pruning-with-reconstruction pass. */
export const pruneReconstruct = definePass({
  name: "prune-reconstruct",
  description:
    "One-shot OBS/SparseGPT pruning of dense weights to RxC blocks, reconstructing each layer on calibration data.",
  options,
  statistics,
  filter: { ops: ["dense"] },
  preserves: ["flops"],
  runOnModule(m, ctx) {
    const o = ctx.options;
    const target = checkOptions(o, ctx);
    const f = m.func("main");
    if (!f) throw ctx.error(undefined, `the module has no @main to run calibration data through`);
    const ids = f.params.find((p) => p.name === "input_ids");
    const bad = f.params.find((p) =>
      !["input_ids", "token_type_ids", "attention_mask"].includes(p.name) || p.type.shape.length !== 2 ||
      p.type.shape[0] !== 1 || isFloat(p.type.dtype)
    );
    if (!ids || bad) {
      throw ctx.error(
        f.loc,
        `@main must take integer input_ids (and token_type_ids, attention_mask) of shape [1, S]` +
          (bad ? `; %${bad.name} is not one of them` : ""),
      );
    }
    const seq = ids.type.shape[1];
    const ts = findTargets(m, f, ctx, target);
    if (ts.length === 0) return "unchanged";

    const t0 = performance.now();
    const samples = calibrationSamples(m, f, ctx, seq);
    const inputs = samples.map((s) =>
      f.params.map((p) => {
        const v = p.name === "input_ids"
          ? s.ids
          : p.name === "attention_mask"
          ? s.ids.map((_, i) => i < s.length ? 1 : 0)
          : s.ids.map(() => 0);
        return Tensor.from(p.type.shape, p.type.dtype, v);
      })
    );
    const tokens = samples.reduce((n, s) => n + s.length, 0);
    ctx.log(`calibration: ${samples.length} sentences, ${tokens} tokens, sequence length ${seq}`);
    const stepper = new Stepper(m, f, ctx as unknown as PassContext, inputs);
    // With `correct`, a second run keeps the unpruned weights (the data as the pass found it).
    const original = new Map<Weight, Tensor>();
    const denseRun = o.correct
      ? new Stepper(m, f, ctx as unknown as PassContext, inputs, (w) => {
        if (!original.has(w)) original.set(w, ctx.weights.get(w));
        return original.get(w)!;
      })
      : undefined;
    if (denseRun) { for (const w of m.weights.values()) original.set(w, ctx.weights.get(w)); }
    const sub = (a: Float64Array, k: number) => {
      const h = new Float64Array(k * k);
      for (let i = 0; i < k; i++) h.set(a.subarray(i * (k + 1), i * (k + 1) + k), i * k);
      return h;
    };
    type Grams = {
      h: Float64Array;
      ha: Float64Array;
      rows: number;
      cross?: Float64Array;
      hDense?: Float64Array;
    };
    const grams = new Map<Value, Grams>();
    let changed = false;
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    for (const t of ts) {
      stepper.runTo(t.index);
      denseRun?.runTo(t.index);
      const xv = t.op.operands[0];
      let g = grams.get(xv);
      if (!g) {
        const { x, rows, k } = gatherInputs(stepper.values(xv), samples, seq);
        const ha = new Float64Array((k + 1) * (k + 1)); // of [X, 1]
        accumulateGram(ha, x, rows, k + 1);
        g = { h: sub(ha, k), ha, rows };
        if (denseRun) {
          const xd = gatherInputs(denseRun.values(xv), samples, seq).x;
          const hd = new Float64Array((k + 1) * (k + 1)), cross = new Float64Array((k + 1) * (k + 1));
          accumulateGram(hd, xd, rows, k + 1);
          accumulateCross(cross, x, xd, rows, k + 1);
          g.hDense = sub(hd, k);
          g.cross = sub(cross, k);
        }
        grams.clear(); // only the latest input can be shared (by consecutive ops such as Q, K, V)
        grams.set(xv, g);
      }
      const src = ctx.weights.get(t.weight).data;
      const w = new Float64Array(t.out * t.in);
      for (let r = 0; r < t.out; r++) {
        for (let c = 0; c < t.in; c++) w[r * t.in + c] = src[t.outIn ? r * t.in + c : c * t.out + r];
      }
      const bias = o.bias && t.bias ? Float64Array.from(ctx.weights.get(t.bias).data) : undefined;
      let res: ReconstructResult;
      try {
        res = reconstructWeight(w, t.out, t.in, bias ? g.ha : g.h, {
          sparsity: o.sparsity,
          block: o.block,
          damp: o.damp,
          window: o.window,
          bias,
          dense: g.cross && g.hDense ? { cross: g.cross, hDense: g.hDense } : undefined,
        });
      } catch (e) {
        throw ctx.error(t.op, `@${t.weight.name}: ${e instanceof Error ? e.message : e}`);
      }
      const data = allocData(t.weight.type.dtype, w.length);
      let zeros = 0, touched = false;
      for (let r = 0; r < t.out; r++) {
        for (let c = 0; c < t.in; c++) {
          const v = res.w[r * t.in + c];
          const j = t.outIn ? r * t.in + c : c * t.out + r;
          data[j] = v;
          if (data[j] === 0) zeros++;
          if (data[j] !== src[j]) touched = true;
        }
      }
      const [R, C] = o.block;
      let elements = 0;
      const gc = Math.ceil(t.in / C);
      res.mask.forEach((b, i) => {
        if (b) elements += Math.min(R, t.out - Math.floor(i / gc) * R) * Math.min(C, t.in - (i % gc) * C);
      });
      ctx.log(
        `@${t.weight.name} [${t.out}x${t.in}] block ${R}x${C}: pruned ${res.pruned}/${res.mask.length} blocks` +
          ` (${pct(res.pruned / res.mask.length)}), element sparsity ${pct(zeros / data.length)};` +
          ` rel. error magnitude ${res.errorMagnitude.toFixed(4)} -> reconstructed ${
            res.errorReconstructed.toFixed(4)
          } (${g.rows} rows${res.damp !== o.damp ? `, damping raised to ${res.damp}` : ""})`,
      );
      if (res.pruned > 0) {
        ctx.stat("weights");
        ctx.stat("blocks", res.pruned);
        ctx.stat("elements", elements);
      }
      if (touched) {
        ctx.weights.set(t.weight.name, new Tensor(t.weight.type, data));
        changed = true;
      }
      if (res.bias && t.bias) {
        const old = ctx.weights.get(t.bias).data;
        const nb = allocData(t.bias.type.dtype, res.bias.length);
        nb.set(res.bias);
        if (nb.some((v, i) => v !== old[i])) {
          ctx.weights.set(t.bias.name, new Tensor(t.bias.type, nb));
          changed = true;
        }
      }
    }
    ctx.log(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return changed ? "changed" : "unchanged";
  },
});
