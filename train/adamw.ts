/**
 * AdamW (Loshchilov & Hutter, decoupled weight decay) over named f32 parameters, as PyTorch's
 * `torch.optim.AdamW` computes it, and the learning-rate schedule BERT fine-tuning uses: linear
 * warmup from 0, then linear decay to 0 (Hugging Face's `get_linear_schedule_with_warmup`).
 *
 * Biases and LayerNorm weights get no weight decay, as BERT fine-tuning does ({@link decays}).
 *
 * ```ts
 * const opt = new AdamW(params, { weightDecay: 0.01 });
 * for (let t = 1; t <= steps; t++) opt.step(grads, warmupLinearLr(t, steps, warmup, 5e-5));
 * ```
 */

/** Settings of {@link AdamW}; the defaults are PyTorch's, except the weight decay (BERT's 0.01). */
export interface AdamWOptions {
  /** First-moment decay; 0.9. */
  readonly beta1?: number;
  /** Second-moment decay; 0.999. */
  readonly beta2?: number;
  /** Added to the root of the second moment; 1e-8. */
  readonly eps?: number;
  /** Decoupled weight decay, applied as `w -= lr · weightDecay · w` to the weights {@link decays} picks; 0.01. */
  readonly weightDecay?: number;
  /** Which weights decay, by name; {@link decays} by default. */
  readonly decay?: (name: string) => boolean;
}

/**
 * Whether a parameter gets weight decay, by its Hugging Face name: not biases and not LayerNorm
 * weights (`LayerNorm.weight`, or the old `gamma`/`beta`), as BERT fine-tuning sets it up.
 */
export function decays(name: string): boolean {
  return !/(^|\.)bias$/.test(name) && !/LayerNorm\.(weight|bias|gamma|beta)$/.test(name);
}

/**
 * The learning rate of step `t` (1-based) of `total`: `peak · t / warmup` for `t <= warmup`, then
 * linearly down, `peak · (total − t + 1) / (total − warmup)`: `peak` right after the warmup and
 * `peak / (total − warmup)` at the last step (Hugging Face's `get_linear_schedule_with_warmup`,
 * counted from 1 so that no step runs at 0: its first step runs at 0 with a warmup).
 */
export function warmupLinearLr(t: number, total: number, warmup: number, peak: number): number {
  if (t <= warmup) return peak * t / warmup;
  if (total <= warmup) return peak;
  return peak * Math.max(0, (total - t + 1) / (total - warmup));
}

/** AdamW's state and update over a fixed set of named parameters, updated in place. */
export class AdamW {
  /** First moments, by parameter name. */
  readonly m: Map<string, Float32Array> = new Map();
  /** Second moments, by parameter name. */
  readonly v: Map<string, Float32Array> = new Map();
  /** Steps taken. */
  t = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly eps: number;
  private readonly weightDecay: number;
  private readonly decay: (name: string) => boolean;

  /** An optimizer over `params` (their arrays are updated in place by {@link step}). */
  constructor(readonly params: ReadonlyMap<string, Float32Array>, options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.01;
    this.decay = options.decay ?? decays;
    for (const [name, p] of params) {
      this.m.set(name, new Float32Array(p.length));
      this.v.set(name, new Float32Array(p.length));
    }
  }

  /**
   * One update at learning rate `lr` from `grads` (by name; a parameter without a gradient is
   * left alone, its moments too). As PyTorch: `w -= lr·λ·w` (decaying weights only), then
   * `m = β1·m + (1−β1)·g`, `v = β2·v + (1−β2)·g²`, `w -= lr · m̂ / (√v̂ + ε)` with the bias
   * corrections `m̂ = m / (1−β1^t)`, `v̂ = v / (1−β2^t)`.
   */
  step(grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - b1 ** this.t, c2 = Math.sqrt(1 - b2 ** this.t);
    for (const [name, w] of this.params) {
      const g = grads.get(name);
      if (g === undefined) continue;
      if (g.length !== w.length) {
        throw new Error(`AdamW: gradient of '${name}' has ${g.length} values, the weight ${w.length}`);
      }
      const m = this.m.get(name)!, v = this.v.get(name)!;
      const keep = this.decay(name) ? 1 - lr * this.weightDecay : 1;
      const stepSize = lr / c1;
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        const mi = m[i] = b1 * m[i] + (1 - b1) * gi;
        const vi = v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        w[i] = w[i] * keep - stepSize * mi / (Math.sqrt(vi) / c2 + eps);
      }
    }
  }
}
