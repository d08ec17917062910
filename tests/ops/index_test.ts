import assert from "node:assert/strict";
import { attrFromJs } from "../../ir/attrs.ts";
import { builtinOps, builtinRegistry } from "../../ir/ops/index.ts";

const EXPECTED = [
  "add",
  "add_layer_norm",
  "batch_matmul",
  "bsr_dense",
  "bsr_dense_grad_w",
  "bsr_dense_grad_x",
  "cast",
  "concat",
  "constant",
  "cross_entropy",
  "cross_entropy_grad",
  "dense",
  "div",
  "erf",
  "exp",
  "gather",
  "gelu",
  "gelu_grad",
  "layer_norm",
  "layer_norm_grad",
  "log",
  "mul",
  "pow",
  "qdense",
  "qgather",
  "reduce_mean",
  "reduce_sum",
  "reshape",
  "scatter_add",
  "slice",
  "slice_grad",
  "softmax",
  "softmax_grad",
  "sqrt",
  "sub",
  "tanh",
  "transpose",
  "where",
];

Deno.test("builtinOps lists every op once, sorted by name", () => {
  assert.deepEqual(builtinOps.map((d) => d.name), EXPECTED);
  assert.deepEqual(builtinRegistry.names(), EXPECTED);
});

Deno.test("every op has a summary, attribute docs and defaults that fit their schema", () => {
  for (const def of builtinOps) {
    assert.ok(def.summary.length > 0, def.name);
    for (const [name, spec] of Object.entries(def.attrs)) {
      assert.ok(spec.doc.length > 0, `${def.name}.${name}`);
      if (spec.default !== undefined) attrFromJs(spec, spec.default);
    }
  }
});

Deno.test("operand schemas: optional and variadic slots come last, only the w of bsr_dense and its grads and qdense.wq are sparse", () => {
  for (const def of builtinOps) {
    const ops = def.operands;
    ops.forEach((o, i) => {
      if (o.variadic) assert.equal(i, ops.length - 1, `${def.name}.${o.name}`);
      if (!o.optional) assert.ok(ops.slice(0, i).every((p) => !p.optional), `${def.name}.${o.name}`);
      const sparse = (def.name.startsWith("bsr_dense") && o.name === "w") ||
        (def.name === "qdense" && o.name === "wq");
      assert.equal(!!o.sparse, sparse, `${def.name}.${o.name}`);
    });
  }
});
