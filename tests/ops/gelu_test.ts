import { gelu } from "../../ir/ops/gelu.ts";
import { assertInferError, assertTensor, enumValue, run, t, ty } from "./helpers.ts";

Deno.test("gelu with erf (the default)", () => {
  assertTensor(run(gelu, [t([3], [1, -1, 0])]), [3], [0.8413447, -0.1586553, 0]);
  assertTensor(run(gelu, [t([1], [1])], { approximation: enumValue("erf") }), [1], [0.8413447]);
});

Deno.test("gelu with the tanh approximation", () => {
  const out = run(gelu, [t([3], [1, -1, 0])], { approximation: enumValue("tanh") });
  assertTensor(out, [3], [0.841192, -0.158808, 0]);
});

Deno.test("gelu needs a float dtype", () => {
  assertInferError(gelu, [ty([2], "i64")], "operand 'x' must be a float tensor, got tensor<2xi64>");
});
