import assert from "node:assert/strict";
import { assembleWat } from "../../codegen/wasm/assemble.ts";
import {
  block,
  br,
  br_if,
  call,
  comment,
  f32,
  f32x4,
  func,
  i32,
  i32x4,
  i8x16,
  if_,
  ifResult,
  importMemory,
  local,
  loop,
  madd,
  mem,
  module,
  return_,
  v128,
} from "../../codegen/wasm/wat.ts";

const RELAXED = { relaxedSimd: true };
const PLAIN = { relaxedSimd: false };

/** `y[i] = a·x[i] + y[i]` for `n` floats (a multiple of 8): a loop of two vectors, then `sum(y)` as an f32. */
function axpyModule(target: { relaxedSimd: boolean }): string {
  const [x, y, n, a] = [local.i32("x"), local.i32("y"), local.i32("n"), local.f32("a")];
  const [o, va] = [local.i32("o"), local.v128("va")];
  const at = (p: typeof x, offset: number) => mem(i32.add(local.get(p), local.get(o)), offset);
  const axpy = func(
    "axpy",
    [x, y, n, a],
    [o, va],
    [
      if_(i32.eqz(local.get(n)), return_()),
      local.set(va, f32x4.splat(local.get(a))),
      loop(
        "vec",
        [0, 16].map((k) =>
          v128.store(at(y, k), madd(target, local.get(va), v128.load(at(x, k)), v128.load(at(y, k))))
        ),
        local.set(o, i32.add(local.get(o), i32.const(32))),
        br_if("vec", i32.lt_u(local.get(o), i32.shl(local.get(n), i32.const(2)))),
      ),
    ],
    { export: true, comment: "y = a·x + y" },
  );
  const [p, end, s] = [local.i32("p"), local.i32("end"), local.v128("s")];
  const sum = func(
    "sum",
    [p, end],
    [s],
    block(
      "done",
      loop(
        "next",
        br_if("done", i32.ge_u(local.get(p), local.get(end))),
        local.set(s, f32x4.add(local.get(s), v128.load(local.get(p)))),
        local.set(p, i32.add(local.get(p), i32.const(16))),
        br("next"),
      ),
    ),
    { export: true, result: f32x4.extract_lane(0, call("v128", "hsum", local.get(s))) },
  );
  // hsum: the sum of the four lanes, in every lane
  const v = local.v128("v");
  const addSwapped = (byteLanes: number[]) =>
    local.set(v, f32x4.add(local.get(v), i8x16.shuffle(byteLanes, local.get(v), local.get(v))));
  const hsum = func("hsum", [v], [], [
    addSwapped([8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]),
    addSwapped([4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11]),
  ], { result: local.get(v) });
  return module([importMemory("env", "memory", 1, { shared: true }), hsum, axpy, sum]);
}

Deno.test("wat: functions print as folded S-expressions, blocks indented", () => {
  const [x, n, i, acc] = [local.i32("x"), local.i32("n"), local.i32("i"), local.v128("acc")];
  const text = func(
    "k",
    [x, n],
    [i, acc],
    [
      comment("sum the vectors"),
      local.set(acc, i32x4.const(0)),
      loop(
        "l",
        local.set(acc, f32x4.add(local.get(acc), v128.load(local.get(x), { offset: 16 }))),
        local.set(i, i32.add(local.get(i), i32.const(1))),
        false,
        br_if("l", i32.lt_u(local.get(i), local.get(n))),
      ),
      if_(i32.eqz(local.get(n)), [v128.store(mem(local.get(x), 32), local.get(acc))], [
        f32.store(local.get(x), f32.const(0.1)),
      ]),
    ],
    { export: true, comment: "a test" },
  );
  assert.equal(
    text,
    `(func $k (export "k") (param $x i32) (param $n i32)
  ;; a test
  (local $i i32)
  (local $acc v128)
  ;; sum the vectors
  (local.set $acc (v128.const i32x4 0 0 0 0))
  (loop $l
    (local.set $acc (f32x4.add (local.get $acc) (v128.load offset=16 (local.get $x))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br_if $l (i32.lt_u (local.get $i) (local.get $n)))
  )
  (if (i32.eqz (local.get $n)) (then
    (v128.store offset=32 (local.get $x) (local.get $acc))
  ) (else
    (f32.store (local.get $x) (f32.const 0.1))
  ))
)`,
  );
  assert.equal(
    ifResult("f32", local.get(n), f32.const(1), f32.const(-Infinity)).text,
    "(if (result f32) (local.get $n) (then (f32.const 1)) (else (f32.const -inf)))",
  );
  assert.equal(f32x4.const(1, 2, 0.5, NaN).text, "(v128.const f32x4 1 2 0.5 nan)");
  assert.equal(
    v128.load32_lane(2, mem(local.get(x), 4), local.get(acc), { offset: 4 }).text,
    "(v128.load32_lane offset=8 2 (local.get $x) (local.get $acc))",
  );
  assert.throws(() => i32.const(0.5), /not an i32/);
  assert.throws(() => i8x16.shuffle([0, 1], local.get(acc), local.get(acc)), /shuffle/);
});

Deno.test("wat: madd is relaxed_madd with relaxed SIMD, else mul then add", () => {
  const [a, b, c] = [f32x4.const(1), f32x4.const(2), f32x4.const(3)];
  assert.equal(
    madd(RELAXED, a, b, c).text,
    "(f32x4.relaxed_madd (v128.const f32x4 1 1 1 1) (v128.const f32x4 2 2 2 2) (v128.const f32x4 3 3 3 3))",
  );
  assert.equal(
    madd(PLAIN, a, b, c).text,
    "(f32x4.add (f32x4.mul (v128.const f32x4 1 1 1 1) (v128.const f32x4 2 2 2 2)) (v128.const f32x4 3 3 3 3))",
  );
});

Deno.test("wat: a module assembles with wabt and runs, on both targets", async () => {
  for (const target of [RELAXED, PLAIN]) {
    const wat = axpyModule(target);
    assert.equal(wat.includes("relaxed_madd"), target.relaxedSimd);
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    const wasm = await assembleWat("axpy.wat", wat);
    const { instance } = await WebAssembly.instantiate(wasm as BufferSource, { env: { memory } });
    const { axpy, sum } = instance.exports as {
      axpy: (x: number, y: number, n: number, a: number) => void;
      sum: (p: number, end: number) => number;
    };
    const n = 16;
    const xs = new Float32Array(memory.buffer, 0, n), ys = new Float32Array(memory.buffer, 64, n);
    for (let k = 0; k < n; k++) [xs[k], ys[k]] = [k, 100 * k];
    axpy(0, 64, n, 0.5);
    assert.deepEqual([...ys], [...xs].map((x) => 100.5 * x));
    assert.equal(sum(64, 64 + 4 * n), 100.5 * (n * (n - 1) / 2));
  }
});

// Compile-time checks only: each line is a type error (wrong arity or value type).
function _typeErrors() {
  const x = local.i32("x"), v = local.v128("v");
  // @ts-expect-error: one operand missing
  i32.add(i32.const(1));
  // @ts-expect-error: a v128 where an i32 goes
  i32.add(local.get(v), i32.const(1));
  // @ts-expect-error: an i32 into a v128 local
  local.set(v, local.get(x));
  // @ts-expect-error: a statement is not an operand
  f32x4.add(v128.store(local.get(x), local.get(v)), local.get(v));
  // @ts-expect-error: two lanes are neither one nor four
  f32x4.const(1, 2);
}
