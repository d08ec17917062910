/**
 * The static memory plan: every runtime buffer gets a fixed offset in one arena, and buffers
 * whose lifetimes do not overlap share bytes. Lifetimes are step ranges; a buffer is live from
 * the first step that touches it to the last, inclusive, so a step's output never shares bytes
 * with its own inputs.
 */

/** A buffer to place: its size in bytes and the steps it is live over. */
export interface BufferLife {
  size: number;
  first: number;
  last: number;
}

/** Offsets are multiples of this many bytes (a cache line; v128 loads stay aligned). */
export const ALIGN = 64;

/** Rounds `n` up to a multiple of ALIGN. */
export const alignUp = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

/**
 * Places buffers, largest first, each at the lowest aligned offset that overlaps no placed
 * buffer whose lifetime overlaps its own. Returns the offsets (in input order) and the arena size.
 */
export function planArena(buffers: readonly BufferLife[]): { offsets: number[]; size: number } {
  const order = buffers.map((_, i) => i).sort((a, b) =>
    buffers[b].size - buffers[a].size || buffers[a].first - buffers[b].first || a - b
  );
  const offsets = new Array<number>(buffers.length);
  const placed: number[] = [];
  let size = 0;
  for (const i of order) {
    const b = buffers[i];
    const conflicts = placed
      .filter((j) => buffers[j].first <= b.last && b.first <= buffers[j].last)
      .map((j) => [offsets[j], offsets[j] + alignUp(buffers[j].size)] as const)
      .sort((x, y) => x[0] - y[0]);
    let at = 0;
    for (const [start, end] of conflicts) {
      if (at + alignUp(b.size) <= start) break;
      at = Math.max(at, end);
    }
    offsets[i] = at;
    placed.push(i);
    size = Math.max(size, at + alignUp(b.size));
  }
  return { offsets, size };
}
