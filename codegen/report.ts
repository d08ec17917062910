/** The compile report as a readable table. */

import type { CompileReport } from "./compile.ts";

const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

/**
 * The reuse of row-grouped kernels (codegen/wasm/grouped_bsr.ts), one line: products using
 * them, their distinct kernels, the distinct group patterns those bake (the id in the name,
 * whatever the epilogue), the calls per kernel and the code size; undefined when there are none.
 */
export function groupedSummary(r: CompileReport): string | undefined {
  const products = r.schedules.filter((s) => s.variant.includes("grouped")).length;
  const kernels = r.kernels.filter((k) => k.name.startsWith("gbsr_"));
  if (products === 0 || kernels.length === 0) return undefined;
  const patterns = new Set(kernels.map((k) => k.name.match(/^gbsr_m\d+_n\d+_k\d+_b\d+x\d+_[^_]+_g\d+/)?.[0]));
  const calls = kernels.reduce((n, k) => n + k.calls, 0);
  const kib = kernels.reduce((n, k) => n + k.textBytes, 0) / 1024;
  return `row-grouped kernels: ${products} products, ${kernels.length} kernels (${patterns.size} patterns), ` +
    `${calls} calls, ${(calls / kernels.length).toFixed(1)} per kernel, ${kib.toFixed(1)} KiB of text`;
}

/**
 * Formats a compile report for the terminal. `bsrSkips`, when the report carries it, is listed
 * last: the dense products `bsr-lower` left dense, one line each: the weight (`@name`, or `%name`
 * for a computed w), the reason's key as its statistic names it (`too-dense`, `use`, ...) and the
 * reason in words.
 */
export function formatReport(r: CompileReport): string {
  const ops = Object.entries(r.irOps).map(([k, v]) => `${k} ${v}`).join(", ");
  const lines = [
    `compiled @${r.func} of ${r.model}${
      r.buckets.length > 1 ? ` (${r.buckets.length} buckets; the first:)` : ""
    }: ${r.steps} kernel calls, ${r.kernels.length} distinct kernels, ` +
    `${(r.flops / 1e9).toFixed(2)} GFLOP per run`,
    `  IR ops: ${ops} (${r.folded} computed at compile time)`,
    `  memory: arena ${mib(r.arenaBytes)}, weights ${mib(r.weightsBytes)}, total ${mib(r.memoryBytes)}`,
    `  wasm: ${(r.wasmBytes.relaxed / 1024).toFixed(1)} KiB (relaxed SIMD), ${
      (r.wasmBytes.simd / 1024).toFixed(1)
    } KiB (SIMD)`,
    ...(r.buckets.length > 1
      ? [
        `  buckets (batch x length: kernel calls, GFLOP per run, arena): ${
          r.buckets.map((b) =>
            `${b.batch}x${b.seq}: ${b.steps}, ${(b.flops / 1e9).toFixed(2)}, ${mib(b.arenaBytes)}`
          )
            .join("; ")
        }`,
      ]
      : []),
    `  phases: ${Object.entries(r.phases).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(", ")}`,
    `  kernels:`,
  ];
  if (r.schedules.length > 0) {
    const groups = new Map<string, number>();
    for (const s of r.schedules) {
      const what = `${s.variant} (${s.fmaPerXLoad} FMA per x load, ${s.fmaPerWeightLoad} per weight load` +
        `${s.tokenPadding > 1 ? `, tokens padded ${s.tokenPadding.toFixed(2)}x` : ""}): ${s.why}`;
      groups.set(what, (groups.get(what) ?? 0) + 1);
    }
    lines.push(
      `  sparse schedules (${r.schedules.length} products${r.tuned ? `, ${r.tuned} tuned now` : ""}):`,
    );
    for (const [what, n] of groups) lines.push(`    ${String(n).padStart(3)}x ${what}`);
    const grouped = groupedSummary(r);
    if (grouped) lines.push(`  ${grouped}`);
  }
  const width = Math.max(...r.kernels.map((k) => k.name.length), 6);
  for (const k of r.kernels) {
    lines.push(
      `    ${k.name.padEnd(width)}  ${String(k.calls).padStart(3)}x  ${
        (k.flops / 1e9).toFixed(3).padStart(7)
      } GFLOP  ${(k.textBytes / 1024).toFixed(1).padStart(7)} KiB  ${k.ops}`,
    );
  }
  if (r.bsrSkips && r.bsrSkips.length > 0) {
    lines.push(`  left dense by bsr-lower (${r.bsrSkips.length}):`);
    for (const s of r.bsrSkips) lines.push(`    ${s.weight} (${s.reason}): ${s.detail}`);
  }
  return lines.join("\n");
}
