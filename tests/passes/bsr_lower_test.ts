/**
 * The `bsr-lower` pass: BSR arrays of small hand-derived matrices (as SciPy's `bsr_matrix`
 * gives them; a ragged 3x5 with 2x2 blocks showing the zero padding; an empty block row), the
 * IR after the pass printing, parsing and verifying against the new weights, the interpreter
 * agreeing before and after (small modules, a pruned synthetic bert-tiny, the real pruned
 * checkpoint when present), `block = auto`, the threshold and the skipped uses.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { importHfBert } from "../../frontend/hf.ts";
import { bertConfig, buildBertModule } from "../../frontend/synthetic_bert.ts";
import { seededInputs, seededWeights } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import { loadModule, loadWeights } from "../../ir/load.ts";
import type { Module } from "../../ir/module.ts";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { BsrTensor, Tensor } from "../../ir/tensor.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore, type WeightStore } from "../../ir/weights.ts";
import { defaultBsrVariant } from "../../codegen/wasm/bsr_cost.ts";
import { bsrBlockCost, bsrRegisterTile, detectBlock, toBsr } from "../../passes/bsr_lower.ts";
import { createPassRegistry } from "../../passes/index.ts";
import { type PipelineResult, runPipeline } from "../../passes/manager.ts";
import { parsePipeline } from "../../passes/pipeline.ts";

const registry = createPassRegistry;

function pipeline(m: Module, store: WeightStore, text: string, logs: string[] = []): PipelineResult {
  return runPipeline(m, parsePipeline(text, registry()), { weights: store, log: (l) => logs.push(l) });
}

function stat(r: PipelineResult, name: string): number | undefined {
  return r.stats.find((s) => s.pass === "bsr-lower" && s.name === name)?.value;
}

/** The module printed, parsed again and verified against `store`'s entries. */
function reparse(m: Module, store: WeightStore): Module {
  const text = print(m);
  const { module, diagnostics } = parse(text, { file: "after.sir" });
  assert.deepEqual(diagnostics, []);
  assert.equal(print(module!), text);
  assert.deepEqual(verify(module!, { weights: store.entries() }), []);
  return module!;
}

/** Max |a - b| over the outputs of `a` and `b` on seeded inputs. */
function maxDiff(a: Module, as: WeightStore, b: Module, bs: WeightStore, seed = 1): number {
  const inputs = seededInputs(a.funcs[0], seed);
  const x = interpret(a, inputs, as), y = interpret(b, inputs, bs);
  assert.equal(x.length, y.length);
  let d = 0;
  x.forEach((t, i) => {
    assert.deepEqual(t.shape, y[i].shape);
    for (let j = 0; j < t.data.length; j++) d = Math.max(d, Math.abs(t.data[j] - y[i].data[j]));
  });
  return d;
}

/** Runs bsr-lower on `m` and checks print/parse/verify and the interpreter before and after. */
function lower(m: Module, store: WeightStore, opts = "", logs: string[] = []) {
  const r = pipeline(m, store, `bsr-lower${opts ? `{${opts}}` : ""}`, logs);
  const store2 = r.weights;
  const m2 = reparse(r.module, store2);
  assert.ok(maxDiff(m, store, m2, store2) <= 1e-5);
  return { r, store: store2, m: m2 };
}

interface W {
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly values: number[];
  /** Attributes of its dense op; `transpose_b = true` by default. */
  readonly attrs?: string;
  readonly bias?: boolean;
}

/** A module with one dense op per weight (x [2, K]) and a store holding the weights' values. */
function model(ws: readonly W[]): { m: Module; store: WeightStore } {
  const attrs = (w: W) => w.attrs ?? "transpose_b = true";
  const tb = (w: W) => attrs(w).includes("transpose_b = true");
  const K = (w: W) => tb(w) ? w.cols : w.rows;
  const N = (w: W) => tb(w) ? w.rows : w.cols;
  const decls = ws.flatMap((w) => [
    `    @${w.name} : tensor<${w.rows}x${w.cols}xf32>`,
    ...(w.bias ? [`    @${w.name}.b : tensor<${N(w)}xf32>`] : []),
  ]).join("\n");
  const ta = (w: W) => attrs(w).includes("transpose_a = true");
  const params = ws.map((w, i) => `%x${i}: tensor<${ta(w) ? `${K(w)}x2` : `2x${K(w)}`}xf32>`).join(", ");
  const results = ws.map((w) => `tensor<2x${N(w)}xf32>`).join(", ");
  const ops = ws.map((w, i) =>
    `    %y${i} = dense %x${i}, @${w.name}${w.bias ? `, @${w.name}.b` : ""} {${attrs(w)}} : tensor<2x${
      N(w)
    }xf32>`
  ).join("\n");
  const text = `module @t {
  weights "t.safetensors" {
${decls}
  }

  func @main(${params}) -> (${results}) {
${ops}
    return ${ws.map((_, i) => `%y${i}`).join(", ")}
  }
}
`;
  const { module, diagnostics } = parse(text, { file: "t.sir" });
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(verify(module!), []);
  const tensors = new Map<string, Tensor>();
  for (const w of ws) {
    tensors.set(w.name, Tensor.from([w.rows, w.cols], "f32", w.values));
    if (w.bias) {
      tensors.set(
        `${w.name}.b`,
        Tensor.from(
          [N(w)],
          "f32",
          Array.from({ length: N(w) }, (_, i) => i),
        ),
      );
    }
  }
  return { m: module!, store: memoryStore(tensors) };
}

function bsrOf(r: PipelineResult, name: string): { data: number[]; indices: number[]; indptr: number[] } {
  const t = r.changedWeights.get(name);
  assert.ok(t instanceof BsrTensor, `${name} was lowered`);
  return { data: [...t.data], indices: [...t.indices], indptr: [...t.indptr] };
}

// 4x6, 2x3 blocks: block (0, 1) is all zero; the others each hold a non-zero.
const A = [
  [1, 2, 0, 0, 0, 0],
  [0, 3, 4, 0, 0, 0],
  [0, 0, 0, 5, 0, 0],
  [6, 0, 0, 0, 0, 7],
].flat();
// 3x5, 2x2 blocks: a 2x3 grid, the last block row and column padded with zeros.
const B = [
  [1, 0, 0, 0, 2],
  [0, 0, 0, 0, 3],
  [0, 0, 4, 0, 0],
].flat();
// 6x4, 2x2 blocks: block row 1 is empty.
const C = [
  [0, 0, 1, 1],
  [0, 0, 1, 1],
  [0, 0, 0, 0],
  [0, 0, 0, 0],
  [2, 0, 0, 0],
  [0, 2, 0, 0],
].flat();

Deno.test("bsr-lower: toBsr gives SciPy's bsr_matrix arrays (hand-derived)", () => {
  const plain = (b: ReturnType<typeof toBsr>) => ({
    data: [...b.data],
    indices: [...b.indices],
    indptr: [...b.indptr],
  });
  // scipy.sparse.bsr_matrix(A, blocksize=(2, 3))
  assert.deepEqual(plain(toBsr(A, 4, 6, [2, 3])), {
    data: [[[1, 2, 0], [0, 3, 4]], [[0, 0, 0], [6, 0, 0]], [[5, 0, 0], [0, 0, 7]]].flat(2),
    indices: [0, 0, 1],
    indptr: [0, 1, 3],
  });
  // As SciPy would give for B padded to 4x6; the padding is stored as zeros.
  assert.deepEqual(plain(toBsr(B, 3, 5, [2, 2])), {
    data: [[[1, 0], [0, 0]], [[2, 0], [3, 0]], [[4, 0], [0, 0]]].flat(2),
    indices: [0, 2, 1],
    indptr: [0, 2, 3],
  });
  assert.deepEqual(plain(toBsr(C, 6, 4, [2, 2])), {
    data: [[[1, 1], [1, 1]], [[2, 0], [0, 2]]].flat(2),
    indices: [1, 0],
    indptr: [0, 1, 1, 2],
  });
  // 1x1 is CSR; all zeros stores nothing.
  assert.deepEqual(plain(toBsr([0, 5, 0, 0], 2, 2, [1, 1])), { data: [5], indices: [1], indptr: [0, 1, 1] });
  assert.deepEqual(plain(toBsr([0, 0, 0, 0], 2, 2, [2, 2])), { data: [], indices: [], indptr: [0, 0] });
});

Deno.test("bsr-lower: dense becomes bsr_dense with the BSR weight; prints, parses, verifies, same outputs", () => {
  const { m, store } = model([
    { name: "a", rows: 4, cols: 6, values: A, bias: true, attrs: "transpose_b = true, activation = gelu" },
    { name: "b", rows: 3, cols: 5, values: B },
    { name: "c", rows: 6, cols: 4, values: C, bias: true },
  ]);
  const logs: string[] = [];
  const { r, m: m2 } = lower(m, store, "block=2x2", logs);
  const text = print(r.module);
  assert.match(text, /@a : tensor<4x6xf32, bsr<2x2, nnz = 5>>/);
  assert.match(text, /@a\.b : tensor<4xf32>\n/);
  assert.match(text, /@b : tensor<3x5xf32, bsr<2x2, nnz = 3>>/);
  assert.match(text, /@c : tensor<6x4xf32, bsr<2x2, nnz = 2>>/);
  assert.match(text, /%y0 = bsr_dense %x0, @a, @a\.b \{activation = gelu\} : tensor<2x4xf32>\n/);
  assert.match(text, /%y1 = bsr_dense %x1, @b : tensor<2x3xf32>\n/);
  assert.match(text, /%y2 = bsr_dense %x2, @c, @c\.b : tensor<2x6xf32>\n/);
  assert.doesNotMatch(text, / dense /);
  assert.deepEqual(bsrOf(r, "b"), {
    data: [[[1, 0], [0, 0]], [[2, 0], [3, 0]], [[4, 0], [0, 0]]].flat(2),
    indices: [0, 2, 1],
    indptr: [0, 2, 3],
  });
  assert.deepEqual(bsrOf(r, "c"), { data: [1, 1, 1, 1, 2, 0, 0, 2], indices: [1, 0], indptr: [0, 1, 1, 2] });
  assert.equal(stat(r, "weights"), 3);
  assert.equal(stat(r, "blocks"), 10);
  assert.equal(stat(r, "elements"), 40);
  assert.equal(r.runs[0].changed, true);
  assert.equal(m2.weights.get("a")!.type.sparse?.nnzBlocks, 5);
  assert.ok(
    logs.some((l) => l.startsWith("bsr-lower: @b: 2x2 blocks (73.3% zero), 3/6 blocks stored")),
    logs.join("\n"),
  );
  // The 2x3 golden through the pass.
  const a = lower(m, store, "block=2x3");
  assert.deepEqual(bsrOf(a.r, "a"), {
    data: [[[1, 2, 0], [0, 3, 4]], [[0, 0, 0], [6, 0, 0]], [[5, 0, 0], [0, 0, 7]]].flat(2),
    indices: [0, 0, 1],
    indptr: [0, 1, 3],
  });
  // The input module and store are untouched.
  assert.equal(m.weights.get("a")!.type.sparse, undefined);
  assert.equal(store.get(m.weights.get("a")!).data.length, 24);
});

Deno.test("bsr-lower: auto picks, among the blocks the zeros align to, the one the cost model prefers", () => {
  const auto = (values: number[], rows: number, cols: number) => {
    const mask = Uint8Array.from(values, (v) => v !== 0 ? 1 : 0);
    return detectBlock(mask, rows, cols, mask.reduce((a, b) => a + b, 0)).join("x");
  };
  assert.equal(auto([1, 1, 0, 0, 1, 1, 0, 0], 2, 4), "2x2");
  assert.equal(auto([1, 1, 0, 0, 0, 0, 1, 1], 2, 4), "1x2");
  assert.equal(auto([1, 0, 0, 1, 1, 0, 0, 1], 2, 4), "2x1");
  assert.equal(auto([1, 1, 1, 1, 0, 0, 0, 0], 2, 4), "1x4");
  assert.equal(auto(C, 6, 4), "1x1"); // [[2, 0], [0, 2]] is no aligned block
  assert.equal(auto(A, 4, 6), "1x1");
  // Dense: the largest of the equally fast blocks that fit the matrix without padding.
  assert.equal(auto(new Array(64).fill(1), 8, 8), "8x8");
  assert.equal(auto(new Array(6).fill(1), 2, 3), "2x3"); // any side dividing the matrix's, not only 2^k
  assert.equal(auto(new Array(10).fill(1), 1, 10), "1x10");
  // A slack lets stored blocks hold some zeros.
  const mask = Uint8Array.from(C, (v) => v !== 0 ? 1 : 0);
  assert.equal(detectBlock(mask, 6, 4, 6, 0.34).join("x"), "2x2");

  const { m, store } = model([{ name: "a", rows: 2, cols: 4, values: [1, 1, 0, 0, 0, 0, 1, 1] }]);
  const logs: string[] = [];
  const { r } = lower(m, store, "", logs);
  assert.deepEqual(bsrOf(r, "a"), { data: [1, 1, 1, 1], indices: [0, 1], indptr: [0, 1, 2] });
  assert.deepEqual(logs, [
    "bsr-lower: @a: zeros align to 1x2 blocks (50.0% zero), 2/4 blocks stored, tensor<2x4xf32, bsr<1x2, nnz = 2>>",
  ]);
});

/** Seeded uniform floats in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A `[rows, cols]` 0/1 mask whose R×C blocks are each kept with probability `keep` (seeded). */
function blockMask(rows: number, cols: number, [R, C]: readonly [number, number], keep: number, seed = 1) {
  const next = rng(seed);
  const mask = new Uint8Array(rows * cols);
  for (let br = 0; br < rows / R; br++) {
    for (let bc = 0; bc < cols / C; bc++) {
      if (next() >= keep) continue;
      for (let r = br * R; r < Math.min(br * R + R, rows); r++) {
        for (let c = bc * C; c < Math.min(bc * C + C, cols); c++) mask[r * cols + c] = 1;
      }
    }
  }
  return { mask, count: mask.reduce((a, b) => a + b, 0) };
}

Deno.test("bsr-lower: auto finds blocks that are not powers of two (3x3 on 768 wide, 1x48, 6x2, 1x96)", () => {
  for (
    const [rows, cols, block] of [
      [96, 768, [3, 3]],
      [64, 768, [1, 48]],
      [48, 64, [6, 2]],
      [30, 768, [5, 1]],
      [32, 768, [1, 96]],
      [64, 256, [1, 32]],
      [64, 64, [4, 4]],
    ] as const
  ) {
    const { mask, count } = blockMask(rows, cols, block, 0.2);
    assert.equal(detectBlock(mask, rows, cols, count).join("x"), block.join("x"), `${rows}x${cols}`);
  }
  // A ragged 10x10 in 3x3 blocks (the last block row and column one wide), its edge blocks empty.
  const { mask } = blockMask(10, 10, [3, 3], 0.6, 4);
  for (let i = 0; i < 10; i++) mask[9 * 10 + i] = mask[i * 10 + 9] = 0;
  assert.equal(detectBlock(mask, 10, 10, mask.reduce((a, b) => a + b, 0)).join("x"), "3x3");
  // Whole zero rows: any C dividing the width qualifies, and the cost model takes the widest (to 384).
  const rowsOnly = blockMask(16, 768, [1, 768], 0.5).mask;
  assert.equal(detectBlock(rowsOnly, 16, 768, rowsOnly.reduce((a, b) => a + b, 0)).join("x"), "1x384");
});

Deno.test("bsr-lower: through prune, an [in, out] weight pruned 3x3 and 1x48 over [out, in] lowers so", () => {
  const next = rng(9);
  const values = Array.from({ length: 48 * 96 }, () => next() - 0.5);
  for (const block of ["3x3", "1x48"]) {
    // Stored [in = 96, out = 48] (transpose_b = false), as ONNX MatMul initializers are.
    const { m, store } = model([{ name: "w", rows: 96, cols: 48, values, attrs: "transpose_b = false" }]);
    const pruned = pipeline(m, store, `prune{block=${block} sparsity=0.8 target=w}`);
    const logs: string[] = [];
    const { r } = lower(pruned.module, pruned.weights, "", logs);
    assert.equal(
      print(r.module).match(/@w : (.*)\n/)?.[1],
      `tensor<48x96xf32, bsr<${block}, nnz = ${block === "3x3" ? 102 : 19}>>`,
    );
    assert.ok(logs[0].includes(`zeros align to ${block} blocks`), logs[0]);
  }
});

Deno.test("bsr-lower: the block cost model follows the kernels' register tiles and measured ranking", () => {
  // The tile auto assumes is the one codegen's cost model gives R-row blocks over 128 tokens.
  for (let R = 1; R <= 64; R++) {
    const N = 768;
    const spec = {
      M: 128,
      N,
      K: 768,
      block: [R, 4] as [number, number],
      indptr: new Int32Array(Math.ceil(N / R) + 1),
      indices: new Int32Array(0),
      bias: false,
      activation: "none" as const,
    };
    const { variant } = defaultBsrVariant(spec);
    assert.deepEqual(bsrRegisterTile(R), { rows: variant.rows, vecs: variant.vecs }, `R = ${R}`);
  }
  // Single kernels at 80% (docs/codegen-runtime.md, bench/bsr_bench.ts): 4x4 < 32x1 < 1x32 < 1x1.
  const costs = ([[4, 4], [32, 1], [1, 32], [1, 1]] as const).map((b) => bsrBlockCost(b));
  assert.deepEqual(costs, costs.toSorted((a, b) => a - b));
  assert.ok(costs[0] < costs[1] && costs[1] < costs[2] && costs[2] < costs[3]);
  // With slack, stored zeros cost time: a 1x4-structured weight stays 1x4 even when 64x64 would
  // fit the slack (the largest block within the slack would be 64x64).
  const { mask, count } = blockMask(64, 64, [1, 4], 0.2, 3);
  assert.equal(detectBlock(mask, 64, 64, count, 100).join("x"), "1x4");
});

Deno.test("bsr-lower: threshold, transpose_a and shared weights are skipped, counted by reason", () => {
  const { m, store } = model([
    { name: "a", rows: 4, cols: 6, values: A }, // 70.8% zero
    { name: "b", rows: 3, cols: 5, values: B }, // 73.3% zero
    { name: "t", rows: 6, cols: 4, values: C, attrs: "transpose_b = false" },
    { name: "ta", rows: 4, cols: 6, values: A, attrs: "transpose_a = true, transpose_b = true" },
  ]);
  const logs: string[] = [];
  const r = pipeline(m, store, "bsr-lower{sparsity-threshold=0.72}", logs);
  assert.deepEqual([...r.changedWeights.keys()], ["b", "t"]);
  assert.deepEqual(logs.filter((l) => l.includes("skipped")), [
    "bsr-lower: @a is skipped: 70.8% zero, below the threshold 72.0%",
    "bsr-lower: @ta is skipped: '%y3' uses it with transpose_a = true",
  ]);
  assert.equal(stat(r, "skipped-use"), 1);
  assert.equal(stat(r, "skipped-too-dense"), 1);
  assert.equal(stat(r, "skipped-dtype"), undefined);
  const text = print(r.module);
  assert.match(text, /%y0 = dense /);
  assert.match(text, /%y1 = bsr_dense /);
  assert.match(text, /%y2 = bsr_dense /); // [in, out]: lowered, transposed
  assert.match(text, /%y3 = dense /);
  // @t is stored [in = 6, out = 4]: its BSR weight is Cᵀ [out, in], and the outputs agree.
  assert.match(text, /@t : tensor<4x6xf32, bsr<1x1, nnz = 6>>/);
  assert.ok(
    logs.some((l) => l.startsWith("bsr-lower: @t: zeros align to 1x1 blocks") && l.endsWith("[in, out]")),
  );
  assert.ok(maxDiff(m, store, reparse(r.module, r.weights), r.weights) <= 1e-5);
  // Nothing sparse enough: unchanged.
  const none = pipeline(m, store, "bsr-lower{sparsity-threshold=0.9}");
  assert.equal(none.runs[0].changed, false);
  assert.equal(none.changedWeights.size, 0);
  assert.equal(stat(none, "weights"), undefined);

  // A weight also read by another op (here as a second dense's x) is skipped.
  const shared = parse(
    `module @s {
  weights "s.safetensors" {
    @w : tensor<2x2xf32>
  }

  func @main(%x: tensor<2x2xf32>) -> (tensor<2x2xf32>, tensor<2x2xf32>) {
    %y = dense %x, @w {transpose_b = true} : tensor<2x2xf32>
    %z = dense @w, %x {transpose_b = true} : tensor<2x2xf32>
    return %y, %z
  }
}
`,
    { file: "s.sir" },
  ).module!;
  const sLogs: string[] = [];
  const sr = pipeline(
    shared,
    memoryStore(new Map([["w", Tensor.from([2, 2], "f32", [1, 0, 0, 1])]])),
    "bsr-lower",
    sLogs,
  );
  assert.equal(sr.changedWeights.size, 0);
  assert.deepEqual(sLogs, [
    "bsr-lower: %x is skipped: '%z' takes its w from '%x' (a parameter), not from a weight",
    "bsr-lower: @w is skipped: it is used by '%z' (dense) other than as dense's w",
  ]);
  assert.equal(stat(sr, "skipped-use"), 1);
  assert.equal(stat(sr, "skipped-not-weight"), 1);
});

Deno.test("bsr-lower: bad options are errors", () => {
  const { m, store } = model([{ name: "a", rows: 4, cols: 6, values: A }]);
  assert.throws(
    () => pipeline(m, store, "bsr-lower{block=1x0}"),
    /option 'block' must be auto or a block shape/,
  );
  assert.throws(
    () => pipeline(m, store, "bsr-lower{block=big}"),
    /option 'block' must be auto or a block shape/,
  );
  assert.throws(() => pipeline(m, store, "bsr-lower{sparsity-threshold=1.5}"), /must be in \[0, 1\]/);
  // A block of more elements than the matrix is refused before any block is allocated.
  assert.throws(
    () => pipeline(m, store, "bsr-lower{block=16384x16384}"),
    /block 16384x16384 holds more elements than weight '@a' \(4x6 as \[out, in\]\)/,
  );
});

function tinyBert(): { m: Module; store: WeightStore } {
  const c = bertConfig("bert-tiny", { seq: 8 });
  const m = buildBertModule(c, "w.safetensors");
  return { m, store: seededWeights(m, 3) };
}

const ENCODER = /encoder\.layer\.\d+\..*(query|key|value|dense)\.weight$/;

for (const block of ["1x32", "4x4"]) {
  Deno.test(`bsr-lower: a bert-tiny pruned with ${block} blocks: auto finds ${block}, outputs agree`, () => {
    const { m, store } = tinyBert();
    const pruned = pipeline(m, store, `prune{block=${block} sparsity=0.8}`);
    const prunedStore = pruned.weights;
    const logs: string[] = [];
    const { r, store: lowered, m: m2 } = lower(pruned.module, prunedStore, "", logs);
    const encoder = [...r.changedWeights.keys()].filter((n) => ENCODER.test(n));
    assert.equal(encoder.length, 12);
    for (const name of encoder) {
      const t = r.module.weights.get(name)!.type;
      assert.equal(t.sparse!.block.join("x"), block, name);
      const line = logs.find((l) => l.startsWith(`bsr-lower: @${name}: `)) ?? "";
      assert.ok(line.includes(`: zeros align to ${block} blocks (80.`), line);
      // About 20% of the blocks are kept.
      const [gr, gc] = [t.shape[0] / t.sparse!.block[0], t.shape[1] / t.sparse!.block[1]];
      assert.equal(t.sparse!.nnzBlocks, Math.round(0.2 * gr * gc), name);
    }
    assert.ok(print(r.module).includes("bsr_dense"));
    assert.ok(
      / = dense .*@bert\.pooler/.test(print(m2)),
      "the dense pooler stays dense under the default 0.5",
    );
    assert.ok(maxDiff(pruned.module, prunedStore, m2, lowered, 7) <= 1e-5);
    // With a fixed block and threshold 0 every dense op is lowered, the dense head too.
    const all = pipeline(pruned.module, prunedStore, `bsr-lower{sparsity-threshold=0 block=${block}}`);
    assert.ok(!/ = dense /.test(print(all.module)), "every dense lowered with threshold 0");
    // With the threshold at 0.5 only the pruned encoder weights are lowered.
    const half = pipeline(pruned.module, prunedStore, `bsr-lower{sparsity-threshold=0.5 block=${block}}`);
    assert.deepEqual([...half.changedWeights.keys()].sort(), encoder.sort());
    assert.equal(stat(half, "weights"), 12);
    assert.equal(stat(half, "elements"), (stat(half, "blocks") ?? 0) * 32 / (block === "1x32" ? 1 : 2));
  });
}

const MODEL = new URL("../../../shared/models/sst2-bert-mini-pruned-1x32-80", import.meta.url).pathname;
const hasModel = (() => {
  try {
    return Deno.statSync(join(MODEL, "model.safetensors")).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "bsr-lower: the real 1x32-pruned bert-mini checkpoint lowers with 1x32 found by auto",
  ignore: !hasModel,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-bsr-" });
    try {
      const irPath = join(dir, "m.sir");
      await importHfBert(MODEL, irPath, { seq: 8 });
      const loaded = await loadModule(irPath);
      assert.deepEqual(loaded.diagnostics, []);
      const m = loaded.module!;
      const store = await loadWeights(m, irPath);
      const logs: string[] = [];
      const { r } = lower(m, store, "", logs);
      const encoder = [...m.weights.keys()].filter((n) => ENCODER.test(n));
      assert.equal(encoder.length, 24);
      for (const name of encoder) {
        assert.equal(r.module.weights.get(name)!.type.sparse?.block.join("x"), "1x32", logs.join("\n"));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
