/**
 * Specialized BSR kernels are keyed on the pattern id (codegen/lower/bsr.ts), confirmed against
 * the arrays: two patterns whose 8-digit ids collide, or two ops whose `pattern` attributes are
 * forged equal, get two kernels and the right outputs; equal patterns share one kernel whatever
 * their attributes say; a malformed attribute never reaches a kernel name.
 */

import assert from "node:assert/strict";
import { compileModule } from "../../codegen/compile.ts";
import { seededInputs } from "../../ir/inputs.ts";
import { interpret } from "../../ir/interpreter.ts";
import { parse } from "../../ir/parse.ts";
import { BsrTensor } from "../../ir/tensor.ts";
import { verify } from "../../ir/verifier.ts";
import { memoryStore } from "../../ir/weights.ts";
import { loadCompiled } from "../../runtime/compiled.ts";

/**
 * Two 1x64 CSR rows whose hashes share their first 8 hex digits (see tests/bsr_pattern_test.ts):
 * without attributes both would want the id `pb7685844`.
 */
const COLLIDING = [[0, 11, 33, 40], [1, 10, 50, 58]];

/** `%yI = bsr_dense %x, @wI {attrs[I]}` over 1x64 CSR weights with the given columns. */
function model(columns: number[][], attrs: (string | undefined)[]) {
  const ws = columns.map((c, i) => `    @w${i} : tensor<1x64xf32, bsr<1x1, nnz = ${c.length}>>`);
  const ops = columns.map((_, i) =>
    `    %y${i} = bsr_dense %x, @w${i}${attrs[i] ? ` {pattern = "${attrs[i]}"}` : ""} : tensor<4x1xf32>`
  );
  const text = `module @p {
  weights "p.safetensors" {
${ws.join("\n")}
  }

  func @main(%x: tensor<4x64xf32>) -> (${columns.map(() => "tensor<4x1xf32>").join(", ")}) {
${ops.join("\n")}
    return ${columns.map((_, i) => `%y${i}`).join(", ")}
  }
}
`;
  const m = parse(text, { file: "p.sir" }).module!;
  assert.deepEqual(verify(m), []);
  const tensors = new Map(columns.map((c, i) => {
    const w = m.weights.get(`w${i}`)!;
    const data = Float32Array.from(c, (col, k) => (col + 1) * (k % 2 ? -0.25 : 0.5));
    return [`w${i}`, new BsrTensor(w.type, data, Int32Array.from(c), Int32Array.from([0, c.length]))];
  }));
  return { m, weights: memoryStore(tensors) };
}

/** Compiles, checks the outputs against the interpreter, and returns the specialized kernels' names. */
async function specializedKernels(columns: number[][], attrs: (string | undefined)[]): Promise<string[]> {
  const { m, weights } = model(columns, attrs);
  const compiled = await compileModule(m, weights);
  const inputs = seededInputs(m.funcs[0], 3);
  const expected = interpret(m, inputs, weights);
  const run = await loadCompiled(compiled, { threads: 1 });
  try {
    const out = run.run({ x: inputs[0].data });
    expected.forEach((t, i) => {
      const got = out[`y${i}`];
      for (let j = 0; j < t.data.length; j++) {
        assert.ok(Math.abs(got[j] - t.data[j]) <= 1e-5, `y${i}[${j}]: ${got[j]} != ${t.data[j]}`);
      }
    });
  } finally {
    run.close();
  }
  const names = compiled.kernels.map((k) => k.name).filter((n) =>
    n.startsWith("bsr_m") && !n.includes("_gen")
  );
  assert.equal(names.length, new Set(names).size);
  return names;
}

Deno.test("bsr kernels: colliding 8-digit ids get two kernels, each right", async () => {
  const names = await specializedKernels(COLLIDING, [undefined, undefined]);
  assert.equal(names.length, 2, names.join());
  assert.match(names[0], /_pb7685844_nnz4_/);
  assert.match(names[1], /_pb7685844-2_nnz4_/);
});

Deno.test("bsr kernels: forged equal pattern attributes over different arrays get two kernels", async () => {
  const names = await specializedKernels([[0, 1], [2, 3]], ["p00000000", "p00000000"]);
  assert.equal(names.length, 2, names.join());
  assert.match(names[0], /_p00000000_nnz2_/);
  assert.match(names[1], /_p00000000-2_nnz2_/);
});

Deno.test("bsr kernels: equal patterns share one kernel; a malformed attribute is not used", async () => {
  const shared = await specializedKernels([[3, 7], [3, 7]], ["p11111111", "p22222222"]);
  assert.equal(shared.length, 1, shared.join());
  assert.match(shared[0], /_p11111111_nnz2_/);
  const sanitized = await specializedKernels([[3, 7]], ["../../escape"]);
  assert.equal(sanitized.length, 1);
  assert.match(sanitized[0], /_p[0-9a-f]{8}_nnz2_/);
});
