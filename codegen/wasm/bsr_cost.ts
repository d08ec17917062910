/**
 * The cost model of the BSR kernels (codegen/wasm/bsr.ts): which schedules (variants) are
 * candidates for a sparse product, which one is the default and why, and the code-size estimate
 * that decides whether a pattern may be baked into a specialized kernel.
 *
 * The kernels are bound by loads, so the default register block is the one that reuses loaded
 * values most for the block shape: a 32-token tile for 1xC blocks (each weight splat feeds 8
 * FMAs), 4 rows by 8 tokens for blocks of 4k rows (each x vector feeds 4), 2 by 16 otherwise,
 * block rows sharing x loads when a tile is one vector. A pattern whose unrolled code stays
 * under `SPECIALIZE_BUDGET_BYTES` is baked in; a larger one gets the generic kernel, with token
 * tiles outermost for 1xC blocks whose xᵀ outgrows the cache. `--tune` times the candidates
 * (codegen/tune.ts) and a tuning log overrides the default.
 *
 * A weight whose block rows share few column patterns (at most `GROUPED_MAX_GROUPS`) also has the
 * row-grouped kernel (grouped_bsr.ts) as a candidate; it is the default when its estimated cost
 * (padded micro-GEMM work, gather and scattered stores at the dense GEMM's rate) is below the
 * estimate of the index-driven default.
 */

import {
  type BsrSpec,
  type BsrVariant,
  checkBsrSpec,
  GROUPED_VARIANT,
  paddedTokens,
  variantKey,
} from "./bsr.ts";
import { bsrRowGroupCount, fewRowPatterns, GROUPED_MAX_GROUPS } from "../../ir/bsr_pattern.ts";
import { GROUP_PANEL, groupedCodeBytes, groupedLayout } from "./grouped_bsr.ts";

/** xᵀ larger than this (bytes) no longer stays in a core's L2 cache with the rest (Zen 5: 1 MiB). */
const XT_CACHE_BYTES = 512 * 1024;

/**
 * Code-size budget of one specialized kernel: 256 KiB of (estimated) function body, far below
 * V8's 7,654,321-byte limit on a function body and small enough to compile quickly. Patterns
 * whose unrolled code would be larger get only generic variants.
 */
export const SPECIALIZE_BUDGET_BYTES = 256 * 1024;

/** Register blocks (rows x vecs) that fit V8's 15 usable xmm registers with room for x vectors, a weight splat and a temporary. */
const REGISTER_BLOCKS: readonly [number, number][] = [[1, 8], [1, 4], [1, 12], [2, 4], [4, 2], [3, 3], [
  8,
  1,
]];

/** The candidate variants for autotuning: register blocks fitted to R, generic, plus specialized where within budget. */
export function bsrVariants(spec: BsrSpec): BsrVariant[] {
  checkBsrSpec(spec);
  const R = spec.block[0];
  const out: BsrVariant[] = [];
  const def = indexedBsrVariant(spec).variant;
  for (const [rows, vecs] of [[def.rows, def.vecs], ...REGISTER_BLOCKS]) {
    const isDefault = rows === def.rows && vecs === def.vecs;
    if (!isDefault && rows > 1 && rows > R) continue;
    if (!isDefault && R === 1 && rows > 1) continue;
    if (!isDefault && R >= 4 && rows === 1) continue;
    if (!isDefault && vecs === 1 && R < 8) continue;
    if (!isDefault && rows === 3 && R % 3 !== 0) continue;
    const v: BsrVariant = { xT: true, vecs, rows, specialized: false };
    out.push(v);
    if (paddedTokens(spec.M, v) > 4 * vecs) out.push({ ...v, tilesOuter: true });
    const s = { ...v, specialized: true };
    if (specializedBytes(spec, s) <= SPECIALIZE_BUDGET_BYTES) out.push(s);
  }
  if (groupedCandidate(spec)) out.push(GROUPED_VARIANT);
  const seen = new Set<string>();
  return out.filter((v) => !seen.has(variantKey(v)) && !!seen.add(variantKey(v)));
}

/** The heuristic choice: the register block that best reuses loads for the block shape, specialized when it fits the budget. */
export function defaultBsrVariant(spec: BsrSpec): { variant: BsrVariant; why: string } {
  const chosen = indexedBsrVariant(spec);
  const grouped = groupedCandidate(spec) ? groupedEstimate(spec) : undefined;
  if (!grouped) return chosen;
  const other = indexedEstimate(spec, chosen.variant);
  const ratio = (grouped.cost / Math.max(other, 1e-9)).toFixed(2);
  if (grouped.cost < other) {
    return {
      variant: GROUPED_VARIANT,
      why: `row-grouped: ${grouped.groups} column patterns over ${grouped.blockRows} block rows; each ` +
        `group's columns gathered once, then 6x8 dense micro-GEMM tiles (${grouped.padding.toFixed(2)}x ` +
        `padded work); est. ${ratio}x the time of ${variantKey(chosen.variant)}; ~${
          Math.ceil(grouped.codeBytes / 1024)
        } KiB of code.`,
    };
  }
  // A near miss is worth a word (tuning may decide otherwise); a far one would only make the
  // report's otherwise equal lines differ.
  if (grouped.cost > 1.5 * other) return chosen;
  return {
    variant: chosen.variant,
    why: `${chosen.why} Row-grouped (${grouped.groups} groups): est. ${ratio}x.`,
  };
}

/**
 * The row-grouped kernel is a candidate for at most `GROUPED_MAX_GROUPS` block-row patterns (or
 * half the block rows), ir/bsr_pattern.ts's threshold: more groups mean thin micro-GEMMs (fewer
 * output rows per panel of 8) and more gather code.
 */
export { fewRowPatterns, GROUPED_MAX_GROUPS };

/**
 * Whether the row-grouped kernel (grouped_bsr.ts) is a candidate: at most `GROUPED_MAX_GROUPS`
 * distinct block-row patterns (or at most half as many as block rows, for small matrices), and
 * its gather code within `SPECIALIZE_BUDGET_BYTES`.
 */
export function groupedCandidate(spec: BsrSpec): boolean {
  checkBsrSpec(spec);
  if (!fewRowPatterns(bsrRowGroupCount(spec), spec.indptr.length - 1)) return false;
  return groupedCodeBytes(spec) <= SPECIALIZE_BUDGET_BYTES;
}

/**
 * Relative time per FMA of each kernel, from single-kernel measurements against the dense GEMM
 * at 80% sparsity (bench/bsr_bench.ts, docs/codegen-runtime.md): indexed BSR kernels run at
 * about 0.85 (4k-row blocks), 0.75 (2-3 rows), 0.68 (1xC, C >= 8) and 0.5 (narrower 1xC) of the
 * dense GEMM's rate; the grouped micro-GEMM at about 0.95, its gather and scattered stores aside.
 */
function indexedEstimate(spec: BsrSpec, v: BsrVariant): number {
  const [R, C] = spec.block;
  const rate = R >= 4 ? 0.85 : R >= 2 ? 0.75 : C >= 8 ? 0.68 : 0.5;
  return (spec.indices.length * R * C * paddedTokens(spec.M, v)) / rate;
}

/** The grouped kernel's estimated cost (in the units of indexedEstimate) and its facts for the report. */
function groupedEstimate(spec: BsrSpec) {
  const layout = groupedLayout(spec);
  const Mp = Math.ceil(spec.M / 6) * 6;
  let work = 0, useful = 0, gather = 0, stores = 0;
  for (const g of layout.groups) {
    work += g.panels * GROUP_PANEL * g.Kp * Mp;
    useful += g.features.length * g.kept.length * spec.M;
    gather += spec.M * g.Kp;
    stores += g.panels * GROUP_PANEL * Mp;
  }
  // In multiply-adds of the dense GEMM (single kernels, Zen 5, 2026-12-06): a gathered float
  // about 4 from L1 (half of it the lane loads), 8 while x fits in L2 with the rest, 20 beyond
  // (x's lines come from L3 once per group); an output stored lane by lane about 3.
  const xBytes = 4 * spec.M * spec.K;
  const perGathered = xBytes <= 32 * 1024 ? 4 : xBytes <= XT_CACHE_BYTES ? 8 : 20;
  const cost = (work + perGathered * gather + (layout.vectorStores ? 0 : 3) * stores) / 0.95;
  return {
    cost,
    groups: layout.groups.length,
    blockRows: spec.indptr.length - 1,
    padding: work / Math.max(useful, 1),
    codeBytes: groupedCodeBytes(spec, layout),
  };
}

/** The best of the index-driven (generic or specialized) variants, by the heuristics below. */
export function indexedBsrVariant(spec: BsrSpec): { variant: BsrVariant; why: string } {
  checkBsrSpec(spec);
  const R = spec.block[0];
  let rows = 1, vecs = 8;
  let reason: string;
  if (spec.M <= 4) {
    vecs = 1;
    rows = R >= 4 ? 4 : R >= 2 ? 2 : 1;
    reason = `${spec.M} token(s) fill one vector, so block rows share each x load`;
  } else if (R === 1) {
    vecs = spec.M <= 16 ? Math.ceil(spec.M / 4) : 8;
    reason = `1xC blocks have no row reuse, so a ${4 * vecs}-token tile reuses each weight splat`;
  } else if (R % 4 === 0) {
    rows = 4, vecs = 2;
    reason = `${R}-row blocks reuse each loaded x vector across 4 rows (4x8 register tile)`;
  } else {
    rows = 2, vecs = 4;
    reason = `${R}-row blocks reuse each loaded x vector across 2 rows (2x16 register tile)`;
  }
  const generic: BsrVariant = { xT: true, vecs, rows, specialized: false };
  const spec_: BsrVariant = { ...generic, specialized: true };
  const xtBytes = 4 * paddedTokens(spec.M, generic) * Math.ceil(spec.K / spec.block[1]) * spec.block[1];
  const tiles = paddedTokens(spec.M, generic) / (4 * vecs);
  const bytes = specializedBytes(spec, spec_);
  if (bytes <= SPECIALIZE_BUDGET_BYTES) {
    return { variant: spec_, why: `${reason}; offsets baked into ~${Math.ceil(bytes / 1024)} KiB of code.` };
  }
  // Measured (bench/bsr_bench.ts, K = 3072): 48-token tiles outermost help 1xC blocks, whose every
  // FMA loads x, and cost row-reusing register blocks a few percent; --tune decides per weight.
  if (R === 1 && tiles > 1 && xtBytes > XT_CACHE_BYTES) {
    // 48-token tiles: one pass fewer over the streamed weights (measured best for 1x1 and 1x32).
    const wide: BsrVariant = { ...generic, vecs: spec.M > 32 ? 12 : generic.vecs, tilesOuter: true };
    return {
      variant: wide,
      why: `1xC blocks have no row reuse, so a ${4 * wide.vecs}-token tile reuses each weight splat; ` +
        `generic (index in memory; unrolling would need ~${Math.ceil(bytes / 1024)} KiB); token tiles ` +
        `outermost, since xᵀ (${Math.ceil(xtBytes / 1024)} KiB) exceeds the cache a tile's slice fits in.`,
    };
  }
  return {
    variant: generic,
    why: `${reason}; generic (index in memory): unrolling would need ~${
      Math.ceil(bytes / 1024)
    } KiB, over the ${SPECIALIZE_BUDGET_BYTES / 1024} KiB budget.`,
  };
}

/** Estimated bytes of a specialized kernel's body: the unrolled column steps dominate. */
function specializedBytes(spec: BsrSpec, v: BsrVariant): number {
  const [R, C] = spec.block;
  const nbr = spec.indptr.length - 1;
  let bytes = 200;
  for (let br = 0; br < nbr; br++) {
    const rowsValid = Math.min(R, spec.N - br * R);
    for (let r0 = 0; r0 < rowsValid; r0 += v.rows) {
      const rc = Math.min(v.rows, R - r0);
      bytes += 60 + rc * v.vecs * 40; // chunk: zeroing and epilogue
      for (let b = spec.indptr[br]; b < spec.indptr[br + 1]; b++) {
        const cols = Math.min(C, spec.K - spec.indices[b] * C);
        bytes += cols * stepBytes(rc, v.vecs);
      }
    }
  }
  return bytes;
}

/** Bytes of one column step: vecs loads, rc splats, rc·vecs multiply-adds. */
function stepBytes(rc: number, vecs: number): number {
  return rc === 1 ? 8 + vecs * 13 : vecs * 9 + rc * 9 + rc * vecs * 10;
}
