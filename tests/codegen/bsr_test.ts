/**
 * BSR weight packing (codegen/bsr_pack.ts), kernel names, the specialization budget, and the
 * variants (codegen/wasm/bsr_cost.ts) of the case table in cases/bsr.ts, whose outputs
 * kernels_test.ts checks.
 */

import assert from "node:assert/strict";
import { packBsrData, packBsrIndex, unpackBsrData } from "../../codegen/bsr_pack.ts";
import { bsrKernel, type BsrVariant, variantKey } from "../../codegen/wasm/bsr.ts";
import { bsrVariants, defaultBsrVariant, SPECIALIZE_BUDGET_BYTES } from "../../codegen/wasm/bsr_cost.ts";
import { BSR_CASES, type BsrCase, bsrInstance } from "./cases/bsr.ts";

/** A case of the table's kind, for the tests here. */
const instance = (seed: number, M: number, N: number, K: number, block: [number, number], density: number) =>
  bsrInstance({ seed, M, N, K, block, density, bias: true, activation: "none" } satisfies BsrCase);

Deno.test("bsr cases: the default variant is a candidate; specialized variants have no index; empty matrices", () => {
  for (const c of BSR_CASES) {
    const { spec } = bsrInstance(c);
    const variants = bsrVariants(spec);
    const def = variantKey(defaultBsrVariant(spec).variant);
    assert.ok(variants.some((v) => variantKey(v) === def), `default ${def} not a candidate`);
    for (const v of variants) assert.equal(packBsrIndex(spec, v) === undefined, v.specialized, variantKey(v));
  }
  const empty = BSR_CASES.filter((c) => c.density === 0 && !c.skewed).map((c) => bsrInstance(c).spec);
  assert.ok(empty.length > 0 && empty.every((s) => s.indices.length === 0));
});

Deno.test("bsr: packBsrData round-trips, index layout, names, budget", () => {
  const c = instance(7, 5, 19, 23, [4, 3], 0.5);
  for (const v of bsrVariants(c.spec)) {
    const back = unpackBsrData(c.spec, v, packBsrData(c.spec, v, c.data));
    const expected = c.data.map((x) => (Number.isNaN(x) ? 0 : x));
    assert.deepEqual(back, expected, variantKey(v));
    const index = packBsrIndex(c.spec, v);
    if (index && !v.grouped) {
      const nbr = c.spec.indptr.length - 1;
      assert.deepEqual(index.subarray(0, nbr + 1), c.spec.indptr);
      assert.equal(index.length, nbr + 1 + c.spec.indices.length);
    }
  }
  // Same pattern, same specialized kernel; another pattern, another name; generic shared.
  const v: BsrVariant = { xT: true, vecs: 2, rows: 4, specialized: true };
  const g: BsrVariant = { ...v, specialized: false };
  const d = instance(8, 5, 19, 23, [4, 3], 0.5);
  const t = { relaxedSimd: true };
  assert.equal(bsrKernel(c.spec, v, t).kernel.name, bsrKernel({ ...c.spec }, v, t).kernel.name);
  assert.notEqual(bsrKernel(c.spec, v, t).kernel.name, bsrKernel(d.spec, v, t).kernel.name);
  assert.equal(bsrKernel(c.spec, g, t).kernel.name, bsrKernel(d.spec, g, t).kernel.name);
  // A BERT-size pattern is over budget: generic by default, and its kernel is small.
  const big = instance(9, 128, 768, 768, [1, 1], 0.2);
  const def = defaultBsrVariant(big.spec);
  assert.equal(def.variant.specialized, false);
  assert.ok(def.why.length > 20);
  assert.ok(bsrKernel(big.spec, def.variant, t).kernel.wat.length < SPECIALIZE_BUDGET_BYTES);
});
