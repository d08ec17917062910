/**
 * codegen/wasm/hoist.ts: a ConstantPool moves each distinct v128 constant into one local set by its
 * setup, and interleave orders snippets statement by statement. (The kernels using them are checked
 * against the interpreter in kernels_test.ts and qgemm_test.ts.)
 */

import assert from "node:assert/strict";
import { ConstantPool, interleave } from "../../codegen/wasm/hoist.ts";
import { expInline } from "../../codegen/wasm/math.ts";
import { f32x4, Instr, local } from "../../codegen/wasm/wat.ts";

Deno.test("ConstantPool: each distinct v128 constant becomes one local, set once", () => {
  const pool = new ConstantPool("k");
  const x = local.v128("x");
  const code = pool.code([
    local.set(x, f32x4.add(local.get(x), f32x4.const(1))),
    [local.set(x, f32x4.mul(local.get(x), f32x4.const(2)))],
    false,
  ]) as unknown[];
  const result = pool.expr(f32x4.add(local.get(x), f32x4.const(1)));
  const text = JSON.stringify(code) + result.text;
  assert.doesNotMatch(text, /v128\.const/);
  assert.match(result.text, /\(local\.get \$k0\)/);
  assert.deepEqual(pool.locals.map((l) => l.name), ["k0", "k1"]);
  assert.equal(pool.setup.length, 2);
  assert.match(pool.setup[0].lines.join(""), /local\.set \$k0 \(v128\.const f32x4 1 1 1 1\)/);
  assert.equal(code[2], false);
});

Deno.test("interleave: statement i of every snippet, then statement i + 1", () => {
  const a = { code: [new Instr(["a0"]), new Instr(["a1"])] };
  const b = { code: [new Instr(["b0"]), new Instr(["b1"])] };
  assert.deepEqual(interleave([a, b]).map((i) => i.lines[0]), ["a0", "b0", "a1", "b1"]);
  assert.throws(() => interleave([a, { code: [new Instr(["c0"])] }]), /different lengths/);
  // snippets of one generator have the same statements on their own locals
  const e = [0, 1].map((k) => expInline(local.get(local.v128(`x${k}`)), `e${k}_`, { relaxedSimd: true }));
  const mixed = interleave(e);
  assert.equal(mixed.length, 2 * e[0].code.length);
  assert.match(mixed[1].lines.join(""), /\$e1_/);
});
