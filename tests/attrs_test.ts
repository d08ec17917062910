/** Attribute printing, schema checks and defaults. */

import assert from "node:assert/strict";
import { attrFromJs, checkAttr, formatFloat } from "../ir/attrs.ts";
import { AttrReader, formatAttr, parse, print } from "../mod.ts";

Deno.test("floats always print as floats, -0 included, and read back the same", () => {
  assert.deepEqual([1, 0.5, 1e-12, -0, Infinity, -Infinity, NaN].map(formatFloat), [
    "1.0",
    "0.5",
    "1e-12",
    "-0.0",
    "inf",
    "-inf",
    "nan",
  ]);
  const text = `module @m {
  func @main() -> (tensor<3xf32>) {
    %c = constant {value = dense<[-0.0, 1e-12, inf]>} : tensor<3xf32>
    return %c
  }
}
`;
  const m = parse(text).module!;
  assert.equal(print(m), text);
  const value = m.funcs[0].body[0].attrs.get("value")!;
  assert.ok(value.kind === "dense" && Object.is(value.value.values[0], -0));
});

Deno.test("attributes are checked against their schema; an int serves where a float is asked", () => {
  assert.equal(checkAttr({ type: "float", doc: "" }, { kind: "int", value: 1 }), undefined);
  assert.equal(
    checkAttr({ type: "enum", values: ["erf", "tanh"], doc: "" }, { kind: "enum", value: "relu" }),
    "must be one of erf, tanh, got relu",
  );
  assert.equal(
    checkAttr({ type: "block", doc: "" }, { kind: "block", value: [0, 4] }),
    "must be a block shape such as 1x32, got 0x4",
  );
  assert.equal(
    checkAttr({ type: "shape", doc: "" }, { kind: "ints", value: [2, -1] }),
    "must be a shape (a list of non-negative ints), got [2, -1]",
  );
});

Deno.test("the builder's JS values become attributes of the schema's kind", () => {
  assert.equal(formatAttr(attrFromJs({ type: "float", doc: "" }, 2)), "2.0");
  assert.equal(formatAttr(attrFromJs({ type: "block", doc: "" }, [32, 1])), "32x1");
  assert.throws(() => attrFromJs({ type: "int", doc: "" }, 1.5), /must be an int/);
});

Deno.test("the reader fills in schema defaults but reports what was written", () => {
  const specs = {
    axis: { type: "int" as const, default: -1, doc: "" },
    axes: { type: "ints" as const, optional: true, doc: "" },
  };
  const r = new AttrReader(specs, new Map());
  assert.equal(r.int("axis"), -1);
  assert.equal(r.has("axis"), false);
  assert.equal(r.has("axes"), false);
});
