/**
 * Runs the bsr-density example plugin (`examples/plugins/bsr-density/`) through the CLI,
 * exactly as `deno task compile --plugin` does, and checks each weight's line against counts
 * made here from the `indptr` of the weights the same pipeline wrote. Spawning the CLI needs
 * `--allow-run`; without it these tests are ignored.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bertConfig, type BsrTensor, loadModule, loadWeights, writeSyntheticBert } from "../../mod.ts";
import { CAN_RUN, compile, ROOT } from "../compile_cli.ts";

const PLUGIN = "examples/plugins/bsr-density/bsr-density.ts";

/** A temp folder with `bert-tiny.sir` (seq 16) and its weights. */
async function withModel(fn: (model: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-bsr-density-" });
  try {
    const model = join(dir, "bert-tiny.sir");
    await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16 }), model);
    await fn(model, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

interface Line {
  nnz: number;
  cells: number;
  cols: number;
  min: number;
  median: number;
  max: number;
  empty: number;
  rows: number;
  histogram: string;
}

/** The per-weight lines the pass logged, by weight name. */
function parse(stderr: string): Map<string, Line> {
  const out = new Map<string, Line>();
  const re =
    /^bsr-density: @(\S+) \[\d+x\d+\] \d+x\d+: (\d+)\/(\d+) blocks \([\d.]+%\); blocks per row of (\d+): min (\d+), median (\d+), max (\d+), empty rows (\d+)\/(\d+)\nbsr-density: {3}block rows by blocks stored: (.*)$/gm;
  for (const m of stderr.matchAll(re)) {
    const [nnz, cells, cols, min, median, max, empty, rows] = m.slice(2, 10).map(Number);
    out.set(m[1], { nnz, cells, cols, min, median, max, empty, rows, histogram: m[10] });
  }
  return out;
}

/** The same figures, counted here from a BSR tensor's indptr, with `bins` bins at most. */
function expected(t: BsrTensor, cols: number, bins: number): Omit<Line, "cells" | "cols"> {
  const rows = t.indptr.length - 1;
  const per = Array.from({ length: rows }, (_, r) => t.indptr[r + 1] - t.indptr[r]);
  const sorted = [...per].sort((a, b) => a - b);
  const width = Math.ceil((cols + 1) / bins);
  const parts: string[] = [];
  for (let from = 0; from <= cols; from += width) {
    const to = Math.min(cols, from + width - 1);
    const n = per.filter((c) => c >= from && c <= to).length;
    parts.push(`${from === to ? from : `${from}-${to}`}:${n}`);
  }
  return {
    nnz: t.indptr[rows],
    min: sorted[0],
    median: sorted[Math.floor((rows - 1) / 2)],
    max: sorted[rows - 1],
    empty: per.filter((c) => c === 0).length,
    rows,
    histogram: parts.join(" "),
  };
}

for (const [block, bins] of [["4x4", 10], ["1x32", 3], ["2x8", 100]] as const) {
  Deno.test({
    name: `bsr-density: ${block} blocks, bins=${bins}: every BSR weight's counts match its indptr`,
    ignore: !CAN_RUN,
    fn: () =>
      withModel(async (model, dir) => {
        const out = join(dir, "pruned.sir");
        const passes =
          `prune{sparsity=0.7 block=${block}},bsr-lower{block=${block}},bsr-density{bins=${bins}}`;
        const r = await compile(model, "--plugin", PLUGIN, "--passes", passes, "-o", out);
        assert.equal(r.code, 0, r.stderr);
        const lines = parse(r.stderr);
        const { module } = await loadModule(out);
        const weights = await loadWeights(module!, out);
        const bsr = [...module!.weights.values()].filter((w) => w.type.sparse);
        assert.equal(bsr.length, 12, "2 layers x 6 dense weights");
        assert.deepEqual([...lines.keys()].sort(), bsr.map((w) => w.name).sort());
        let stored = 0, total = 0;
        for (const w of bsr) {
          const t = weights.get(w) as BsrTensor;
          const [R, C] = w.type.sparse!.block;
          const cols = Math.ceil(w.type.shape[1] / C);
          const line = lines.get(w.name)!;
          assert.equal(line.cols, cols, w.name);
          assert.equal(line.cells, Math.ceil(w.type.shape[0] / R) * cols, w.name);
          const { cells: _, cols: __, ...got } = line;
          assert.deepEqual(got, expected(t, cols, bins), w.name);
          assert.equal(line.nnz, w.type.sparse!.nnzBlocks, w.name);
          stored += line.nnz;
          total += line.cells;
        }
        const share = (100 * stored / total).toFixed(1);
        assert.match(
          r.stderr,
          new RegExp(`^bsr-density: 12 BSR weights: ${stored}/${total} blocks stored \\(${share}%\\)$`, "m"),
        );
      }),
  });
}

Deno.test({
  name: "bsr-density: skipped by its filter on a model without bsr_dense; bins=0 is an error at the module",
  ignore: !CAN_RUN,
  fn: () =>
    withModel(async (model) => {
      const skipped = await compile(model, "--plugin", PLUGIN, "--passes", "bsr-density", "--timing");
      assert.equal(skipped.code, 0, skipped.stderr);
      assert.match(skipped.stderr, /^1\s+bsr-density\s+[\d.]+\s+\d+\s+skipped \(filter\)$/m);
      assert.doesNotMatch(skipped.stderr, /^bsr-density: /m);
      assert.equal(skipped.stdout, await Deno.readTextFile(model), "an analysis pass changes nothing");

      const bad = await compile(
        model,
        "--plugin",
        PLUGIN,
        "--passes",
        "prune{block=4x4},bsr-lower,bsr-density{bins=0}",
      );
      assert.equal(bad.code, 1, bad.stderr);
      assert.match(
        bad.stderr,
        /bert-tiny\.sir:\d+:\d+: error: pass 'bsr-density' failed: bins must be at least 1, got 0/,
      );
      assert.match(bad.stderr, /^nothing was written/m);
    }),
});

const PRUNED = join(ROOT, "../shared/models/sst2-bert-mini-pruned-1x32-80");
const HAS_PRUNED = (() => {
  try {
    return Deno.statSync(PRUNED).isDirectory;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "bsr-density: the real 1x32 80% checkpoint, lowered with block=auto, is 20% dense in every weight",
  ignore: !CAN_RUN || !HAS_PRUNED,
  async fn() {
    const r = await compile(PRUNED, "--plugin", PLUGIN, "--passes", "bsr-lower,bsr-density");
    assert.equal(r.code, 0, r.stderr);
    const lines = parse(r.stderr);
    assert.equal(lines.size, 24);
    for (const [name, line] of lines) {
      assert.equal(
        line.cols,
        name.endsWith("output.dense.weight") && !name.includes("attention") ? 32 : 8,
        name,
      );
      assert.ok(Math.abs(line.nnz / line.cells - 0.2) < 0.001, `${name}: ${line.nnz}/${line.cells}`);
    }
    assert.match(r.stderr, /^bsr-density: 24 BSR weights: 19664\/98304 blocks stored \(20\.0%\)$/m);
  },
});
