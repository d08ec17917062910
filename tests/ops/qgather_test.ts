/** The `qgather` op: shape rules, semantics on a hand-computed case, negative and out-of-range indices, the text form. */

import assert from "node:assert/strict";
import { parse } from "../../ir/parse.ts";
import { print } from "../../ir/printer.ts";
import { qgather } from "../../ir/ops/qgather.ts";
import { verify } from "../../ir/verifier.ts";
import { assertInferError, assertTensor, run, t, ty } from "./helpers.ts";

const TABLE = [1, -2, 3, 127, 0, -127]; // [V, H] = [3, 2]
const SCALE = [0.5, 0.25, 0.1];

Deno.test("qgather: rows times their scale, in f32, indices of any shape, negative from the end", () => {
  const out = run(qgather, [t([3, 2], TABLE, "i8"), t([3], SCALE), t([2, 2], [2, 0, -2, 1], "i64")]);
  const f = Math.fround;
  assertTensor(out, [2, 2, 2], [0, f(-127 * f(0.1)), 0.5, -1, 0.75, f(127 * 0.25), 0.75, f(127 * 0.25)], 0);
});

Deno.test("qgather: an index out of range is a RangeError naming it", () => {
  assert.throws(
    () => run(qgather, [t([3, 2], TABLE, "i8"), t([3], SCALE), t([1], [3], "i32")]),
    /qgather index 3 \(at position 0\) is out of range for 3 rows/,
  );
});

Deno.test("qgather: operand rules", () => {
  assertInferError(qgather, [ty([3, 2], "f32"), ty([3]), ty([1], "i32")], "dense i8 [V, H]");
  assertInferError(qgather, [ty([3, 2], "i8"), ty([2]), ty([1], "i32")], "operand 'scale' must be f32 [3]");
  assertInferError(
    qgather,
    [ty([3, 2], "i8"), ty([3]), ty([1], "f32")],
    "operand 'indices' must be i32 or i64",
  );
});

Deno.test("qgather: parses, verifies and prints back exactly", () => {
  const text = `module @m {
  func @main(%ids: tensor<1x4xi64>, %t: tensor<10x8xi8>, %s: tensor<10xf32>) -> (tensor<1x4x8xf32>) {
    %e = qgather %t, %s, %ids : tensor<1x4x8xf32>
    return %e
  }
}
`;
  const r = parse(text, { file: "q.sir" });
  assert.deepEqual(r.diagnostics, []);
  assert.deepEqual(verify(r.module!), []);
  assert.equal(print(r.module!), text);
});
