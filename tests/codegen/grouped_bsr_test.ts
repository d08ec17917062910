/**
 * The row-grouped BSR kernel (codegen/wasm/grouped_bsr.ts): every case of grouped_cases.ts on
 * both targets and 1-3 threads against the interpreter; grouping, packing, kernel names shared
 * by equal groups, candidacy and the cost model's choice, the tuning-log key.
 */

import assert from "node:assert/strict";
import { packBsrData, packBsrIndex, unpackBsrData } from "../../codegen/bsr_pack.ts";
import { cpuModel, tuningKey } from "../../codegen/tuning_log.ts";
import { bsrKernel, type BsrSpec, GROUPED_VARIANT, variantKey } from "../../codegen/wasm/bsr.ts";
import {
  bsrVariants,
  defaultBsrVariant,
  GROUPED_MAX_GROUPS,
  groupedCandidate,
} from "../../codegen/wasm/bsr_cost.ts";
import { gatherQuads, groupedLayout } from "../../codegen/wasm/grouped_bsr.ts";
import { bsrRowGroupCount, bsrRowGroups } from "../../ir/bsr_pattern.ts";
import { GROUPED, GROUPED_CASES, groupedInstance, groupedPattern } from "./grouped_cases.ts";
import { rng } from "./kernel_runner.ts";
import { testFamily } from "./kernel_runner.ts";

testFamily(GROUPED);

Deno.test("bsrRowGroups: rows with equal column lists, canonical order, empty rows a group", () => {
  const indptr = Int32Array.from([0, 2, 2, 4, 5, 7, 7]);
  const indices = Int32Array.from([1, 3, 1, 3, 0, 1, 3]);
  const groups = bsrRowGroups({ indptr, indices });
  assert.deepEqual(groups.map((g) => [...g.columns]), [[], [0], [1, 3]]);
  assert.deepEqual(groups.map((g) => [...g.rows]), [[1, 5], [3], [0, 2, 4]]);
  assert.equal(bsrRowGroupCount({ indptr, indices }), 3);
});

Deno.test("grouped: packing round-trips, the index names every output row once per slot", () => {
  for (const c of GROUPED_CASES) {
    const { spec, data } = groupedInstance(c);
    const packed = packBsrData(spec, GROUPED_VARIANT, data);
    const back = unpackBsrData(spec, GROUPED_VARIANT, packed);
    assert.deepEqual(back, data.map((x) => (Number.isNaN(x) ? 0 : x)), `seed ${c.seed}`);
    assert.ok(packed.every((x) => Number.isFinite(x)), `seed ${c.seed}: packed padding is finite`);
    const index = packBsrIndex(spec, GROUPED_VARIANT)!;
    const layout = groupedLayout(spec);
    const rows = new Set<number>();
    for (const g of layout.groups) {
      for (let f = 0; f < g.panels * 8; f++) rows.add(index[g.indexOffset + f] / 4);
    }
    assert.equal(rows.size, spec.N, `seed ${c.seed}: every output row is written`);
  }
  assert.deepEqual(gatherQuads([3, 4, 5, 6, 9, 10, 2]), [
    { src: [3, 4, 5, 6], consecutive: true },
    { src: [9, 10, 2], consecutive: false },
  ]);
});

/** A spec of `groups` patterns over BERT-base-like sizes. */
function bertLike(seed: number, N: number, K: number, block: [number, number], groups: number): BsrSpec {
  const [R, C] = block;
  const p = groupedPattern(rng(seed), Math.ceil(N / R), Math.ceil(K / C), groups, 0.2);
  return { M: 128, N, K, block, indptr: p.indptr, indices: p.indices, bias: true, activation: "none" };
}

Deno.test("grouped: equal groups on other rows share one kernel; other columns get another", () => {
  const t = { relaxedSimd: true };
  const a = bertLike(1, 96, 128, [1, 8], 4);
  // The same patterns, rows permuted: reverse the block rows.
  const nbr = a.indptr.length - 1;
  const rows = Array.from(
    { length: nbr },
    (_, r) => a.indices.subarray(a.indptr[nbr - 1 - r], a.indptr[nbr - r]),
  );
  const indptr = new Int32Array(nbr + 1);
  rows.forEach((r, i) => (indptr[i + 1] = indptr[i] + r.length));
  const b: BsrSpec = { ...a, indptr, indices: Int32Array.from(rows.flatMap((r) => [...r])) };
  const c = bertLike(2, 96, 128, [1, 8], 4);
  const name = (s: BsrSpec) => bsrKernel(s, GROUPED_VARIANT, t).kernel.name;
  assert.match(name(a), /^gbsr_m128_n96_k128_b1x8_p[0-9a-f]{16}_g4_bias_fma$/);
  assert.equal(name(a), name(b));
  assert.notEqual(name(a), name(c));
  assert.notDeepEqual(packBsrIndex(a, GROUPED_VARIANT), packBsrIndex(b, GROUPED_VARIANT));
});

Deno.test("grouped: a candidate with few row patterns, not for magnitude-pruned ones; the cost model prefers it at BERT sizes", () => {
  // 16 shared patterns at BERT-base sizes: a candidate for every block shape, and the default
  // for 1xC blocks (whose index-driven kernels reuse no loaded x vector across rows).
  for (const block of [[1, 32], [1, 1], [4, 4], [8, 8], [32, 1]] as [number, number][]) {
    for (const [N, K] of [[768, 768], [3072, 768], [768, 3072]]) {
      const s = bertLike(3, N, K, block, 16);
      assert.ok(groupedCandidate(s), `${block} ${N}x${K}`);
      assert.ok(bsrVariants(s).some((v) => v.grouped));
      if (block[0] !== 1) continue;
      const d = defaultBsrVariant(s);
      assert.equal(variantKey(d.variant), variantKey(GROUPED_VARIANT), `${block} ${N}x${K}: ${d.why}`);
      assert.match(d.why, /^row-grouped: 16 column patterns/);
    }
  }
  // Every row its own pattern (magnitude pruning): no grouped candidate.
  const rand = rng(4);
  const own = groupedPattern(rand, 768, 24, 768, 0.2);
  const s: BsrSpec = { ...bertLike(5, 768, 768, [1, 32], 1), indptr: own.indptr, indices: own.indices };
  assert.ok(bsrRowGroupCount(s) > GROUPED_MAX_GROUPS);
  assert.equal(groupedCandidate(s), false);
  assert.ok(!bsrVariants(s).some((v) => v.grouped));
  assert.equal(defaultBsrVariant(s).variant.grouped, undefined);
  // Magnitude-pruned with few block columns (bert-mini's 256x256 in 1x32 blocks: 8 columns), so
  // rows repeat patterns by chance: a candidate, far slower by the estimate, and not mentioned.
  const mini = groupedPattern(rng(8), 256, 8, 256, 0.2);
  const m: BsrSpec = {
    ...bertLike(9, 256, 256, [1, 32], 1),
    M: 64,
    indptr: mini.indptr,
    indices: mini.indices,
  };
  assert.ok(groupedCandidate(m) && bsrRowGroupCount(m) > GROUPED_MAX_GROUPS);
  assert.equal(defaultBsrVariant(m).variant.grouped, undefined);
  assert.doesNotMatch(defaultBsrVariant(m).why, /grouped/i);
  // Groups of one thin row each (32 groups of 1 row at 4 tokens): padding makes it slower, not chosen.
  const thin = bertLike(6, 32, 64, [1, 1], 32);
  if (bsrRowGroupCount(thin) === 32) {
    assert.notEqual(defaultBsrVariant({ ...thin, M: 4 }).variant.grouped, true);
  }
});

Deno.test("grouped: the tuning-log key counts groups when they are few", () => {
  const s = bertLike(7, 768, 768, [1, 32], 12);
  const key = tuningKey({ ...s, density: 0.2 }, true, cpuModel());
  assert.match(key, / groups 12 relaxed-simd /);
  const plain = tuningKey({ M: 128, N: 768, K: 768, block: [1, 32], density: 0.2 }, true, "cpu");
  assert.equal(plain, "128x768x768 block 1x32 density 0.20 relaxed-simd cpu");
});
