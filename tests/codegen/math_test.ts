/**
 * The math helpers' text; their values are checked by the claims in cases/math.ts
 * (kernels_test.ts).
 */

import assert from "node:assert/strict";
import { WASM_HELPERS } from "../../codegen/wasm/math.ts";

Deno.test("every helper is a func named by its key", () => {
  for (const [name, wat] of Object.entries(WASM_HELPERS)) {
    assert.match(wat, new RegExp(`^\\s*\\(func \\$${name} \\(param \\$x v128\\)`));
    if (name.endsWith("_fma")) assert.match(wat, /relaxed_madd/);
    else assert.doesNotMatch(wat, /relaxed/, `${name} uses plain SIMD128 only`);
    assert.match(wat, /;; /, `${name} has a comment`);
  }
});
