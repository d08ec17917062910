/**
 * Transposes folded into batched `batch_matmul`s (codegen/lower/matmul.ts, fusion.ts): operands
 * read in place of the transpose's source and results written into a transpose's buffer, by
 * strides. Compiled modules must match the interpreter, and the steps show which transposes
 * were folded and which kept (a transpose moving the last axis, one with another user, a
 * transposed result that is also used elsewhere, a batch of 1).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { seededInputs } from "../../ir/inputs.ts";
import { compile, interpret, loadCompiled, memoryStore, parse, writeArtifact } from "../../mod.ts";

const SOURCE = `module @attn {
  func @main(%q: tensor<1x6x3x4xf32>, %k: tensor<1x6x3x4xf32>, %v: tensor<1x6x3x4xf32>, %w: tensor<2x3x5x4xf32>) -> (tensor<1x6x3x4xf32>, tensor<1x3x6x4xf32>, tensor<2x5x3x3xf32>, tensor<12x6xf32>) {
    %qt = transpose %q {perm = [0, 2, 1, 3]} : tensor<1x3x6x4xf32>
    %kt = transpose %k {perm = [0, 2, 3, 1]} : tensor<1x3x4x6xf32>
    %vt = transpose %v {perm = [0, 2, 1, 3]} : tensor<1x3x6x4xf32>
    %s = batch_matmul %qt, %kt : tensor<1x3x6x6xf32>
    %c = batch_matmul %s, %vt : tensor<1x3x6x4xf32>
    %ct = transpose %c {perm = [0, 2, 1, 3]} : tensor<1x6x3x4xf32>
    %vt2 = add %vt, %vt : tensor<1x3x6x4xf32>
    %wt = transpose %w {perm = [2, 0, 1, 3]} : tensor<5x2x3x4xf32>
    %wt2 = transpose %wt {perm = [1, 0, 3, 2]} : tensor<2x5x4x3xf32>
    %u = transpose %w {perm = [1, 0, 2, 3]} : tensor<3x2x5x4xf32>
    %ut = transpose %u {perm = [1, 2, 0, 3]} : tensor<2x5x3x4xf32>
    %p = batch_matmul %ut, %wt2 : tensor<2x5x3x3xf32>
    %q0 = reshape %q : tensor<6x12xf32>
    %k0 = reshape %k : tensor<12x6xf32>
    %one = batch_matmul %q0, %k0 : tensor<6x6xf32>
    %v0 = reshape %v : tensor<6x12xf32>
    %v1 = transpose %v0 {perm = [1, 0]} : tensor<12x6xf32>
    %m = batch_matmul %v1, %one : tensor<12x6xf32>
    return %ct, %vt2, %p, %m
  }
}`;

Deno.test("transposes around batched batch_matmuls are folded into their strides and match the interpreter", async () => {
  const parsed = parse(SOURCE, { file: "attn.sir" });
  assert.deepEqual(parsed.diagnostics.map((d) => d.message), []);
  const m = parsed.module!;
  const f = m.funcs[0];
  const inputs = seededInputs(f, 3);
  const expected = interpret(m, inputs, memoryStore(new Map()));
  const compiled = await compile({ module: m, weights: memoryStore(new Map()) }, { pipeline: "" });
  const steps = compiled.artifact!.plan.buckets[0].steps.map((s) => `${s.value} ${s.op}`);
  // q's and v's head splits are read in place, c is written as ct; k's moves the last axis.
  assert.ok(steps.includes("%s transpose+batch_matmul"), steps.join("\n"));
  assert.ok(steps.includes("%c batch_matmul+transpose"), steps.join("\n"));
  assert.ok(steps.includes("%kt transpose"), steps.join("\n"));
  // vt has a second user, so it is computed; wt2 swaps the last two axes; ut is read in place of u,
  // a uniform batch stride over its two batch dims (5 x 3 x 4 in a [3, 2, 5, 4] buffer).
  assert.ok(steps.includes("%vt transpose"), steps.join("\n"));
  assert.ok(steps.includes("%wt2 transpose"), steps.join("\n"));
  assert.ok(steps.includes("%p transpose+batch_matmul"), steps.join("\n"));
  // a batch of one goes its own way: its transposes stay
  assert.ok(steps.includes("%v1 transpose"), steps.join("\n"));
  for (const gone of ["%qt", "%ct", "%ut"]) {
    assert.ok(
      !steps.some((s) => s.startsWith(`${gone} `)),
      `${gone} has no step of its own:\n${steps.join("\n")}`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "sparrow-attn-" });
  try {
    await writeArtifact(compiled, join(dir, "out"));
    for (const threads of [1, 2]) {
      const model = await loadCompiled(join(dir, "out"), { threads });
      try {
        const out = model.run(Object.fromEntries(f.params.map((p, i) => [p.name, inputs[i].data])));
        f.returns.forEach((r, i) => {
          const want = expected[i].data;
          const got = out[r.name];
          assert.equal(got.length, want.length);
          for (let j = 0; j < got.length; j++) {
            assert.ok(
              Math.abs(got[j] - want[j]) <= 1e-5,
              `${r.ref}[${j}] at ${threads} threads: ${got[j]} vs ${want[j]}`,
            );
          }
        });
      } finally {
        model.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
