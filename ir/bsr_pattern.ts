/**
 * The identity of a block-sparse (BSR) weight's sparsity pattern, defined once for the whole
 * compiler: `dedup-patterns` marks each `bsr_dense` op with its weight's pattern id, the pattern
 * report groups weights by it, and codegen names specialized kernels by it.
 *
 * **A pattern** is a logical shape `[N, K]`, a block `RxC` and SciPy's `indptr` and `indices`:
 * where the stored blocks are, not the dtype or the values. Two patterns are equal when all four
 * are (`sameBsrPattern`); that comparison, never a hash alone, decides equality.
 *
 * **Canonical form** is SciPy's `has_canonical_format`: within each block row the block columns
 * are strictly increasing (`isCanonical`; `canonicalBsr` sorts and sums duplicates as SciPy's
 * `sort_indices()` and `sum_duplicates()` do). The pattern report compares weights in canonical
 * form; a kernel bakes the arrays as stored, so codegen compares them as stored.
 *
 * **Ids.** A pattern's hash (`bsrPatternHash`) is 64 bits, 16 hex digits, from two seeded
 * murmur3 lanes over `N, K, R, C`, `indptr` and `indices`. Its id is `p` and a prefix of the hash,
 * at least 8 digits; a different pattern wanting an id already taken gets a `-2`, `-3`, ...
 * suffix (`BsrPatternIds`), so within one table equal ids mean equal patterns and different
 * patterns never share an id, even when their hashes collide. `bsrPatternIds` gives a set of
 * patterns ids with the shortest prefix that tells their distinct hashes apart, the same ids in
 * every module for the same patterns unless a longer prefix is needed.
 */

import type { BsrTensor } from "./tensor.ts";

/** Where a BSR matrix stores its blocks. */
export interface BsrPattern {
  /** Logical shape `[N, K]` (`[out, in]`). */
  readonly shape: readonly [number, number];
  /** Block shape `[R, C]`. */
  readonly block: readonly [number, number];
  /** SciPy BSR block-row starts over ceil(N / R) block rows (first entry 0). */
  readonly indptr: Int32Array;
  /** SciPy BSR block column of each stored block. */
  readonly indices: Int32Array;
}

/** The pattern of a BSR tensor, its arrays as stored (not put in canonical form). */
export function bsrPatternOf(t: BsrTensor): BsrPattern {
  const [N, K] = t.sparseType.shape;
  const [R, C] = t.sparseType.sparse!.block;
  return { shape: [N, K], block: [R, C], indptr: t.indptr, indices: t.indices };
}

/** Whether the block columns of every block row are strictly increasing (SciPy's has_canonical_format). */
export function isCanonical(indices: Int32Array, indptr: Int32Array): boolean {
  for (let r = 0; r + 1 < indptr.length; r++) {
    for (let k = indptr[r] + 1; k < indptr[r + 1]; k++) if (indices[k] <= indices[k - 1]) return false;
  }
  return true;
}

/**
 * The canonical form of BSR arrays with blocks of `blockSize` elements: block columns sorted in
 * each block row (stably, data moving with its block), duplicates summed into the first. Returns
 * new arrays and the number of blocks merged away.
 */
export function canonicalBsr(
  data: Float32Array,
  indices: Int32Array,
  indptr: Int32Array,
  blockSize: number,
): { data: Float32Array; indices: Int32Array; indptr: Int32Array; merged: number } {
  const outIndices: number[] = [];
  const out = new Float32Array(data.length);
  const outPtr = new Int32Array(indptr.length);
  for (let r = 0; r + 1 < indptr.length; r++) {
    const ks = [];
    for (let k = indptr[r]; k < indptr[r + 1]; k++) ks.push(k);
    ks.sort((a, b) => indices[a] - indices[b] || a - b);
    let last = -1;
    for (const k of ks) {
      const src = data.subarray(k * blockSize, (k + 1) * blockSize);
      if (indices[k] === last) {
        const at = (outIndices.length - 1) * blockSize;
        for (let j = 0; j < blockSize; j++) out[at + j] += src[j];
      } else {
        out.set(src, outIndices.length * blockSize);
        outIndices.push(indices[k]);
        last = indices[k];
      }
    }
    outPtr[r + 1] = outIndices.length;
  }
  return {
    data: out.slice(0, outIndices.length * blockSize),
    indices: Int32Array.from(outIndices),
    indptr: outPtr,
    merged: indices.length - outIndices.length,
  };
}

/** The canonical form of a pattern (the pattern itself when it is canonical already). */
export function canonicalBsrPattern(p: BsrPattern): BsrPattern {
  if (isCanonical(p.indices, p.indptr)) return p;
  const { indices, indptr } = canonicalBsr(new Float32Array(p.indices.length), p.indices, p.indptr, 1);
  return { ...p, indices, indptr };
}

/** Whether two int arrays are equal. */
function sameInts(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Whether two patterns are equal: shape, block, indptr and indices. */
export function sameBsrPattern(a: BsrPattern, b: BsrPattern): boolean {
  return sameInts(a.shape, b.shape) && sameInts(a.block, b.block) && sameInts(a.indptr, b.indptr) &&
    sameInts(a.indices, b.indices);
}

/** A 32-bit murmur3 round. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** murmur3's finalizer, as 8 hex digits. */
function fmix(h: number, length: number): string {
  h ^= length;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0).toString(16).padStart(8, "0");
}

/** The 64-bit hash of a pattern, 16 hex digits: two seeded murmur3 lanes over N, K, R, C, indptr and indices. */
export function bsrPatternHash(p: BsrPattern): string {
  const [N, K] = p.shape, [R, C] = p.block;
  let a = 0x5bd1e995, b = 0x1b873593 ^ 0x9747b28c, n = 0;
  for (const ws of [[0x62737200, N, K, R, C], p.indptr, p.indices]) {
    for (let i = 0; i < ws.length; i++, n++) {
      a = mix(a, ws[i]);
      b = mix(b, ws[i] ^ Math.imul(n, 0x27d4eb2f));
    }
  }
  return fmix(a, n) + fmix(b, n);
}

/** What a pattern id looks like: `p`, 8 to 16 hex digits, and an optional `-N` suffix. */
export const BSR_PATTERN_ID: RegExp = /^p[0-9a-f]{8,16}(-[1-9][0-9]*)?$/;

/**
 * A table of pattern ids: equal patterns get one id, different patterns never share one.
 * Lookups compare the arrays (`sameBsrPattern`), so a hash collision cannot merge two patterns.
 */
export class BsrPatternIds {
  readonly #byHash = new Map<string, { pattern: BsrPattern; id: string }[]>();
  readonly #taken = new Set<string>();

  /**
   * The id of `p`: the id an equal pattern already has; else `wanted` (default `p` and the
   * first 8 hex digits of its hash) when no other pattern has it, else `wanted-2`, `wanted-3`, ...
   */
  id(p: BsrPattern, wanted?: string): string {
    const hash = bsrPatternHash(p);
    const known = this.#byHash.get(hash) ?? [];
    const same = known.find((e) => sameBsrPattern(e.pattern, p));
    if (same) return same.id;
    const base = wanted ?? `p${hash.slice(0, 8)}`;
    let id = base;
    for (let n = 2; this.#taken.has(id); n++) id = `${base}-${n}`;
    this.#taken.add(id);
    known.push({ pattern: p, id });
    this.#byHash.set(hash, known);
    return id;
  }
}

/**
 * The ids of `patterns`, one per entry, as `dedup-patterns` assigns them: `p` and the shortest
 * prefix (at least 8 hex digits) of the hash that tells the distinct patterns' hashes apart, with
 * a `-2` suffix on a full 64-bit collision. Equal patterns get equal ids; the first of the
 * colliding patterns keeps the unsuffixed id.
 */
export function bsrPatternIds(patterns: readonly BsrPattern[]): string[] {
  const hashes = patterns.map(bsrPatternHash);
  const distinct = [...new Set(hashes)];
  let digits = 8;
  while (digits < 16 && new Set(distinct.map((h) => h.slice(0, digits))).size < distinct.length) digits++;
  const table = new BsrPatternIds();
  return patterns.map((p, i) => table.id(p, `p${hashes[i].slice(0, digits)}`));
}

/**
 * The most distinct block-row patterns a weight may have for its block rows to be grouped (one
 * dense micro-GEMM per group, codegen/wasm/grouped_bsr.ts), or at most half its block rows: the
 * one threshold pruning, `dedup-patterns`' report and codegen's cost model agree on.
 */
export const GROUPED_MAX_GROUPS = 32;

/** Whether `groups` distinct block-row patterns of `blockRows` are few enough to group by. */
export function fewRowPatterns(groups: number, blockRows: number): boolean {
  return groups <= GROUPED_MAX_GROUPS || groups <= blockRows / 2;
}

/**
 * Block rows that store the same block columns, in the same order: one group of a weight's
 * row-grouped form (codegen/wasm/grouped_bsr.ts runs one dense micro-GEMM per group).
 */
export interface BsrRowGroup {
  /** The block columns every block row of the group stores, in their stored order (empty for empty rows). */
  readonly columns: Int32Array;
  /** The group's block rows, ascending. */
  readonly rows: Int32Array;
}

/**
 * The block rows of a pattern grouped by identical `indices` lists (as stored, order included),
 * in canonical order: by column list (shorter first, then lexicographically), so two weights
 * with the same groups list them alike whichever rows hold them. A magnitude-pruned weight has
 * about one group per block row; a weight pruned to K shared row patterns has K groups.
 */
export function bsrRowGroups(
  p: { readonly indptr: Int32Array; readonly indices: Int32Array },
): BsrRowGroup[] {
  const byKey = new Map<string, { columns: Int32Array; rows: number[] }>();
  for (let r = 0; r + 1 < p.indptr.length; r++) {
    const columns = p.indices.subarray(p.indptr[r], p.indptr[r + 1]);
    const key = columns.join(",");
    const g = byKey.get(key);
    if (g) g.rows.push(r);
    else byKey.set(key, { columns, rows: [r] });
  }
  const order = (a: Int32Array, b: Int32Array) => {
    if (a.length !== b.length) return a.length - b.length;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  };
  return [...byKey.values()]
    .sort((a, b) => order(a.columns, b.columns))
    .map((g) => ({ columns: Int32Array.from(g.columns), rows: Int32Array.from(g.rows) }));
}

/** The number of distinct block-row patterns (`bsrRowGroups(p).length`) without building the groups. */
export function bsrRowGroupCount(p: { readonly indptr: Int32Array; readonly indices: Int32Array }): number {
  const keys = new Set<string>();
  for (let r = 0; r + 1 < p.indptr.length; r++) {
    keys.add(p.indices.subarray(p.indptr[r], p.indptr[r + 1]).join(","));
  }
  return keys.size;
}

/** A group's output rows: R per block row, fewer in a block row cut by the shape's edge. */
export function bsrGroupRows(p: BsrPattern, g: BsrRowGroup): number {
  const [N] = p.shape, [R] = p.block;
  let n = 0;
  for (const br of g.rows) n += Math.min(R, N - br * R);
  return n;
}

/**
 * What a row-grouped kernel bakes, as a pattern for `BsrPatternIds` and `bsrPatternHash`: the
 * shape and block, and per group (in `bsrRowGroups` order) its output-row count followed by its
 * block columns (`indices`, delimited by `indptr`). Which rows a group holds is not part of it
 * (the kernel reads them from data), so weights whose groups keep the same columns for the same
 * number of rows share one kernel. `rowsOut(group)` is the group's output rows (R per block row,
 * fewer at a ragged edge).
 */
export function bsrGroupedSignature(
  p: BsrPattern,
  groups: readonly BsrRowGroup[],
  rowsOut: (g: BsrRowGroup) => number,
): BsrPattern {
  const indptr = new Int32Array(groups.length + 1);
  const indices: number[] = [];
  groups.forEach((g, i) => {
    indices.push(rowsOut(g), ...g.columns);
    indptr[i + 1] = indices.length;
  });
  return { shape: p.shape, block: p.block, indptr, indices: Int32Array.from(indices) };
}
