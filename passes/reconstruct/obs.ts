/**
 * Pruning one weight with reconstruction (OBS / SparseGPT style; the algorithm is described in
 * `passes/prune_reconstruct.ts`): chooses the R×C blocks of W[out, in] to zero by their OBS
 * saliency under H = XᵀX and updates the kept weights so that XWᵀ changes least, optionally
 * fitting the unpruned model's outputs X_d Wᵀ instead, and reports the output error against the
 * plain block-magnitude mask.
 */

import { lowest } from "../prune.ts";
import { groupBlockRows, type Grouping } from "./groups.ts";
import { inverseCholeskyUpper, quadraticForm } from "./linalg.ts";

/** How to prune one weight. */
export interface ReconstructOptions {
  /** Fraction of blocks to zero, in [0, 1). */
  readonly sparsity: number;
  /** Block shape [R, C] over W[out, in]. */
  readonly block: readonly [number, number];
  /** Diagonal damping as a fraction of mean(diag H); 0.01 by default. */
  readonly damp?: number;
  /** Columns per mask-selection window (rounded up to a multiple of C); 0 = all; 128 by default; not with `groups`. */
  readonly window?: number;
  /** The bias `[out]`, to update as well (then `h` is the Gram matrix of [X, 1]). */
  readonly bias?: Float64Array;
  /**
   * Reconstruct against the unpruned model: with X the pruned model's inputs (`h` = XᵀX) and
   * X_d the unpruned model's, minimize ‖X_d Wᵀ − XŴᵀ‖² instead. `cross` = XᵀX_d and
   * `hDense` = X_dᵀX_d, both n×n like `h`.
   */
  readonly dense?: { readonly cross: Float64Array; readonly hDense: Float64Array };
  /**
   * Pattern groups (`passes/reconstruct/groups.ts`): the block rows are put in at most `max`
   * groups by their OBS saliency before any update (clustering seeded with `seed`), and every
   * block row of a group prunes the same block columns, those of least saliency summed over the
   * group's rows, chosen once for the whole matrix (`window` does not apply).
   */
  readonly groups?: { readonly max: number; readonly seed: number };
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
  /** The same for the chosen mask applied to the weights without any update. */
  readonly errorMaskOnly: number;
  /** With `groups`: the grouping of the block rows and each group's pruned block-column count. */
  readonly grouping?: Grouping;
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
  // With groups the mask is chosen once for the whole matrix (the clustering's own choice): chosen
  // window by window, after updates, the groups drift towards the same columns and fit worse.
  const step = window === 0 || opts.groups ? gc * C : Math.ceil(window / C) * C;
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
  const share = (count: number) => {
    const per = windows.map(([, w1]) => Math.round((count * Math.ceil(w1 / C)) / gc));
    for (let i = per.length - 1; i > 0; i--) per[i] -= per[i - 1];
    return per;
  };
  const perWindow = share(k);
  // With groups: the grouping from the saliency of every block before any update, and each
  // group's pruned columns shared out over the windows the same way.
  const grouping = opts.groups
    ? groupBlockRows(saliency(0, gc), gr, gc, opts.groups.max, k, opts.groups.seed)
    : undefined;
  const groupWindows = grouping ? [...grouping.pruned].map(share) : [];
  const members: number[][] = grouping ? Array.from({ length: grouping.groups }, () => []) : [];
  grouping?.group.forEach((g, br) => members[g].push(br));
  let pruned = 0;
  windows.forEach(([w0, w1], wi) => {
    const c0 = w0 / C, c1 = Math.ceil(w1 / C); // block columns of this window
    const wc = c1 - c0;
    const sal = saliency(c0, c1);
    if (grouping) {
      members.forEach((rows, g) => {
        const sum = new Float64Array(wc);
        for (const br of rows) for (let j = 0; j < wc; j++) sum[j] += sal[br * wc + j];
        const sel = lowest(sum, groupWindows[g][wi]);
        for (let j = 0; j < wc; j++) {
          if (!sel[j]) continue;
          for (const br of rows) mask[br * gc + c0 + j] = 1;
          pruned += rows.length;
        }
      });
    } else {
      const sel = lowest(sal, perWindow[wi]);
      for (let br = 0; br < gr; br++) {
        for (let bc = c0; bc < c1; bc++) {
          if (sel[br * wc + bc - c0]) {
            mask[br * gc + bc] = 1;
            pruned++;
          }
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
  // The chosen mask on the original weights, no update.
  const masked = orig.slice();
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inn; i++) {
      if (mask[Math.floor(o / R) * gcols + Math.floor(i / C)]) masked[o * n + i] = 0;
    }
  }
  const resW = new Float64Array(out * inn);
  for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) resW[o * inn + i] = cur[o * n + i];
  let errorMagnitude: number, errorReconstructed: number, errorMaskOnly: number;
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
    errorMaskOnly = err(masked);
  } else {
    errorMagnitude = relativeError(orig, mag, out, n, h, base);
    errorReconstructed = relativeError(orig, cur, out, n, h, base);
    errorMaskOnly = relativeError(orig, masked, out, n, h, base);
  }
  return {
    w: resW,
    bias: opts.bias ? Float64Array.from({ length: out }, (_, o) => cur[o * n + inn]) : undefined,
    mask,
    pruned,
    errorMagnitude,
    errorReconstructed,
    damp,
    errorMaskOnly,
    ...(grouping ? { grouping } : {}),
  };
}
