/** Loading IR files from disk: weight declarations checked against the weights file. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModule, loadWeights, writeSafetensors } from "../mod.ts";

const IR = `module @t {
  weights "w.safetensors" {
    @a : tensor<2x3xf32>
    @b : tensor<3xf32>
    @s : tensor<4x4xf32, bsr<2x2, nnz = 1>>
  }

  func @main(%x: tensor<1x3xf32>) -> (tensor<1x3xf32>) {
    %y = add %x, @b : tensor<1x3xf32>
    return %y
  }
}
`;

async function setup(tensors: Parameters<typeof writeSafetensors>[1]) {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(join(dir, "m.sir"), IR);
  if (tensors.length > 0) await writeSafetensors(join(dir, "w.safetensors"), tensors);
  return join(dir, "m.sir");
}

const f32 = (shape: number[]) => ({
  dtype: "F32" as const,
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
});
const i32 = (values: number[]) => ({
  dtype: "I32" as const,
  shape: [values.length],
  data: Int32Array.from(values),
});

const GOOD = [
  { name: "a", ...f32([2, 3]) },
  { name: "b", ...f32([3]) },
  { name: "s.data", ...f32([1, 2, 2]) },
  { name: "s.indices", ...i32([1]) },
  { name: "s.indptr", ...i32([0, 1, 1]) },
];

Deno.test("a module whose weights match the file loads, and its weights read back", async () => {
  const path = await setup(GOOD);
  const r = await loadModule(path);
  assert.deepEqual(r.diagnostics, []);
  const store = await loadWeights(r.module!, path);
  assert.deepEqual(store.get(r.module!.weights.get("a")!).shape, [2, 3]);
  assert.deepEqual(store.get(r.module!.weights.get("s")!).shape, [1, 2, 2]);
});

Deno.test("a weight missing from the file is reported at its declaration, with a suggestion", async () => {
  const path = await setup(GOOD.map((t) => t.name === "a" ? { ...t, name: "aa" } : t));
  const r = await loadModule(path);
  assert.deepEqual(r.diagnostics.map((d) => [d.loc.line, d.loc.col, d.message]), [
    [3, 5, "weight '@a' is missing from w.safetensors (did you mean 'aa'?)"],
  ]);
});

Deno.test("a weight whose shape or dtype differs from the file is reported", async () => {
  const path = await setup(
    GOOD.map((t) =>
      t.name === "a" ? { name: "a", ...f32([3, 2]) } : t.name === "b" ? { name: "b", ...i32([1, 2, 3]) } : t
    ),
  );
  const r = await loadModule(path);
  assert.deepEqual(r.diagnostics.map((d) => d.message), [
    "weight '@a' is declared as 2x3 f32 but w.safetensors has 3x2 f32",
    "weight '@b' is declared as 3 f32 but w.safetensors has 3 i32",
  ]);
});

Deno.test("a BSR weight needs its data, indices and indptr arrays", async () => {
  const path = await setup(GOOD.filter((t) => t.name !== "s.indptr"));
  const r = await loadModule(path);
  assert.deepEqual(r.diagnostics.map((d) => d.message), ["weight '@s.indptr' is missing from w.safetensors"]);
});

Deno.test("a missing or corrupt weights file is one clear diagnostic", async () => {
  const missing = await setup([]);
  const r1 = await loadModule(missing);
  assert.equal(r1.diagnostics.length, 1);
  assert.match(r1.diagnostics[0].message, /weights file .*w\.safetensors.* not found/);
  const corrupt = await setup([]);
  await Deno.writeFile(
    join(corrupt, "..", "w.safetensors"),
    new Uint8Array([255, 255, 255, 255, 255, 255, 255, 255, 1]),
  );
  const r2 = await loadModule(corrupt);
  assert.equal(r2.diagnostics.length, 1);
  assert.match(r2.diagnostics[0].message, /w\.safetensors/);
});

Deno.test("an unreadable IR file is a diagnostic, not an exception", async () => {
  const r = await loadModule("/nonexistent/model.sir");
  assert.equal(r.diagnostics.length, 1);
  assert.match(r.diagnostics[0].message, /cannot read the file/);
});

Deno.test("malformed BSR index arrays are reported at the declaration when the file loads", async () => {
  const cases: [number[], number[], string][] = [
    [[2], [0, 1, 1], "block column 2 at 0 is outside 0..1"],
    [[-1], [0, 1, 1], "block column -1 at 0 is outside 0..1"],
    [[0], [0, 2, 1], "indptr decreases at block row 1 (2 then 1)"],
    [[0], [1, 1, 1], "indptr must have 3 entries, start at 0 and end at nnz 1"],
  ];
  for (const [indices, indptr, why] of cases) {
    const path = await setup(
      GOOD.map((t) =>
        t.name === "s.indices"
          ? { name: t.name, ...i32(indices) }
          : t.name === "s.indptr"
          ? { name: t.name, ...i32(indptr) }
          : t
      ),
    );
    const r = await loadModule(path);
    assert.deepEqual(r.diagnostics.map((d) => [d.loc.line, d.loc.col]), [[5, 5]]);
    assert.match(
      r.diagnostics[0].message,
      new RegExp(`^weight '@s' in .*w\\.safetensors: bad bsr index: ${why.replace(/[()]/g, "\\$&")}$`),
    );
  }
});
