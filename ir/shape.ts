/** Shape rules shared by several ops: broadcasting and axis normalization. */

import { OpError } from "./registry.ts";

/** Numpy broadcasting of two shapes; throws OpError when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new OpError(`shapes [${a.join(", ")}] and [${b.join(", ")}] do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Maps a possibly negative axis into `[0, rank)`; throws OpError when out of range. */
export function normalizeAxis(axis: number, rank: number, what = "axis"): number {
  if (axis < -rank || axis >= rank) throw new OpError(`${what} ${axis} is out of range for rank ${rank}`);
  return axis < 0 ? axis + rank : axis;
}

/** Throws OpError with the message unless the condition holds. */
export function check(cond: boolean, message: string): asserts cond {
  if (!cond) throw new OpError(message);
}
