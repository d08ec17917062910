/**
 * The identity of a BSR sparsity pattern (ir/bsr_pattern.ts): the hash covers shape, block,
 * indptr and indices and nothing else; id tables give equal patterns one id and different ones
 * different ids, also when their hashes collide (a real collision of the 8-digit ids is used);
 * the ids of a set get a longer prefix when 8 digits do not tell them apart.
 */

import assert from "node:assert/strict";
import {
  BSR_PATTERN_ID,
  type BsrPattern,
  bsrPatternHash,
  BsrPatternIds,
  bsrPatternIds,
  canonicalBsrPattern,
  sameBsrPattern,
} from "../ir/bsr_pattern.ts";

/** A pattern from plain lists. */
function pattern(
  shape: [number, number],
  block: [number, number],
  indptr: number[],
  indices: number[],
): BsrPattern {
  return { shape, block, indptr: Int32Array.from(indptr), indices: Int32Array.from(indices) };
}

/**
 * Two 1x64 CSR rows of 4 entries whose hashes share their first 8 hex digits (found by a birthday
 * search over 4-subsets of 64 columns): both want the id `pb7685844`.
 */
const A = pattern([1, 64], [1, 1], [0, 4], [0, 11, 33, 40]);
const B = pattern([1, 64], [1, 1], [0, 4], [1, 10, 50, 58]);

Deno.test("bsr pattern: the hash is 64 bits over shape, block, indptr and indices", () => {
  const p = pattern([4, 4], [2, 2], [0, 1, 2], [0, 1]);
  assert.match(bsrPatternHash(p), /^[0-9a-f]{16}$/);
  assert.equal(bsrPatternHash(pattern([4, 4], [2, 2], [0, 1, 2], [0, 1])), bsrPatternHash(p));
  for (
    const q of [
      pattern([4, 3], [2, 2], [0, 1, 2], [0, 1]),
      pattern([4, 4], [2, 1], [0, 1, 2], [0, 1]),
      pattern([4, 4], [2, 2], [0, 2, 2], [0, 1]),
      pattern([4, 4], [2, 2], [0, 1, 2], [1, 1]),
    ]
  ) {
    assert.notEqual(bsrPatternHash(q), bsrPatternHash(p));
    assert.equal(sameBsrPattern(q, p), false);
  }
  // The id dedup-patterns writes for @q in tests/ir/pass_dedup_patterns.sir (its first 5 blocks).
  const q = pattern([8, 16], [2, 4], [0, 4, 5, 5, 5], [0, 1, 2, 3, 0]);
  assert.equal(bsrPatternIds([q])[0], "pd713e2e5");
  assert.equal(bsrPatternHash(A).slice(0, 8), bsrPatternHash(B).slice(0, 8));
  assert.notEqual(bsrPatternHash(A), bsrPatternHash(B));
  // Canonical form sorts each block row; a canonical pattern is returned as it is.
  const unsorted = pattern([4, 8], [2, 2], [0, 2, 3], [3, 1, 0]);
  const c = canonicalBsrPattern(unsorted);
  assert.deepEqual([...c.indices], [1, 3, 0]);
  assert.equal(canonicalBsrPattern(c), c);
});

Deno.test("bsr pattern ids: a table never gives two different patterns one id, even on a hash collision", () => {
  const ids = new BsrPatternIds();
  assert.equal(ids.id(A), "pb7685844");
  assert.equal(ids.id(B), "pb7685844-2", "same 8-digit id wanted, other arrays: a suffix");
  assert.equal(ids.id({ ...A, indices: A.indices.slice() }), "pb7685844", "equal arrays: the same id");
  assert.equal(ids.id(B, "pb7685844"), "pb7685844-2", "a known pattern keeps its id, whatever is wanted");
  // A wanted id already naming other arrays (a stale or forged attribute) is not reused.
  const C = pattern([1, 64], [1, 1], [0, 1], [5]);
  assert.equal(ids.id(C, "pb7685844"), "pb7685844-3");
  const D = pattern([1, 64], [1, 1], [0, 1], [6]);
  assert.equal(ids.id(D, "p0123456789"), "p0123456789");
  for (const id of ["pb7685844", "pb7685844-2", "p0123456789abcdef"]) assert.match(id, BSR_PATTERN_ID);
  for (const id of ["p1234567", "pB7685844", "p12345678-0", "../p12345678", "p12345678/x"]) {
    assert.doesNotMatch(id, BSR_PATTERN_ID);
  }
});

Deno.test("bsr pattern ids of a set: the shortest prefix that tells the distinct hashes apart", () => {
  const [a, b, a2] = bsrPatternIds([A, B, { ...A }]);
  assert.equal(a, a2);
  assert.notEqual(a, b);
  assert.match(a, /^pb7685844[0-9a-f]$/);
  assert.match(b, /^pb7685844[0-9a-f]$/);
  assert.deepEqual(bsrPatternIds([A]), ["pb7685844"]);
  assert.deepEqual(bsrPatternIds([]), []);
});
