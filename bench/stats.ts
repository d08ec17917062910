/** Summary statistics of repeated timings. */

/** Median, mean, standard deviation, min and max of a sample, in its unit. */
export interface Summary {
  median: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  n: number;
}

/** Summarizes `xs` (non-empty). */
export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const std = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, mean, std, min: s[0], max: s[n - 1], n };
}

/** Max abs difference of two arrays of equal length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return Number.isNaN(d) ? Infinity : d;
}
