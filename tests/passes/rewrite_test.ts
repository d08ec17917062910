/**
 * The Rewriter (create, replace, erase, setAttr, uses) and the `rewrite` driver: placement,
 * inferred types, names, inherited locations, comments that move with the ops, and failures
 * reported at the op.
 */

import assert from "node:assert/strict";
import {
  builtinRegistry,
  type Func,
  type Module,
  type Op,
  parse,
  type PassContext,
  PassFailure,
  type Pattern,
  print,
  rewrite,
  Rewriter,
  tensorType,
  verify,
} from "../../mod.ts";

const SRC = `module @r {
  func @main(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
    %a = tanh %x : tensor<2x4xf32>

    // about b
    %b = tanh %a : tensor<2x4xf32>  // trailing b
    %c = tanh %b : tensor<2x4xf32>
    %d = tanh %c : tensor<2x4xf32>
    %e = gelu %d {approximation = erf} : tensor<2x4xf32>
    return %e, %a
  }
}
`;

function load(): { m: Module; f: Func; op: (name: string) => Op; rw: Rewriter } {
  const { module, diagnostics } = parse(SRC, { file: "r.sir" });
  assert.deepEqual(diagnostics, []);
  const f = module!.funcs[0];
  const op = (name: string) => f.body.find((o) => o.result.name === name)!;
  return { m: module!, f, op, rw: new Rewriter(f, builtinRegistry) };
}

/** The body of @main as printed, one op or comment per line, without indentation. */
const body = (m: Module) => print(m).split("\n").slice(2, -4).map((l) => l.trim());

const at = (o: Op) => `${o.loc!.line}:${o.loc!.col}`;

/** What `rewrite` needs of a pass context. */
const ctx = { registry: builtinRegistry } as unknown as PassContext;

/** The PassFailure `fn` throws. */
function failure(fn: () => unknown): PassFailure {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PassFailure, `expected a PassFailure, got ${e}`);
    return e;
  }
  assert.fail("did not throw");
}

Deno.test("rewriter: the test module is canonical", () => {
  assert.equal(print(load().m), SRC);
});

Deno.test("rewriter: create places the op before the current one, inferring its type and name", () => {
  const { m, f, op, rw } = load();
  rw.at(op("e"));
  const v = rw.create("tanh", [op("a").result]);
  assert.equal(v.name, "e.0", "named after the op it is created at, suffixed when taken");
  assert.deepEqual(v.type, tensorType([2, 4]));
  assert.equal(v.definingOp!.name, "tanh");
  assert.equal(f.body.indexOf(v.definingOp!), f.body.indexOf(op("e")) - 1);
  assert.equal(at(v.definingOp!), at(op("e")), "the location is inherited");
  const flat = rw.create("reshape", [v], {}, { name: "flat", type: tensorType([8]) });
  assert.equal(flat.ref, "%flat");
  assert.deepEqual(body(m).slice(-3), [
    "%e.0 = tanh %a : tensor<2x4xf32>",
    "%flat = reshape %e.0 : tensor<8xf32>",
    "%e = gelu %d {approximation = erf} : tensor<2x4xf32>",
  ]);
  assert.deepEqual(verify(m), []);
});

Deno.test("rewriter: create checks the op like the builder does", () => {
  const { op, rw } = load();
  rw.at(op("e"));
  assert.throws(() => rw.create("gleu", [op("a").result]), { message: "unknown op 'gleu'" });
  assert.throws(() => rw.create("gelu", [op("a").result], { approximation: "fast" }), {
    message: /^'gelu': attribute 'approximation' /,
  });
  assert.throws(() => rw.create("tanh", [op("a").result], { axis: 1 }), {
    message: "'tanh': unknown attribute 'axis'",
  });
  assert.throws(() => rw.create("tanh", [op("a").result], {}, { type: tensorType([8]) }), {
    message: /^'tanh': result is tensor<2x4xf32>, not the requested tensor<8xf32>$/,
  });
});

Deno.test("rewriter: the first op created at an op takes its leading comments", () => {
  const { m, op, rw } = load();
  rw.at(op("b"));
  rw.create("tanh", [op("a").result], {}, { name: "first" });
  rw.create("tanh", [op("a").result], {}, { name: "second" });
  assert.deepEqual(body(m).slice(0, 7), [
    "%a = tanh %x : tensor<2x4xf32>",
    "",
    "// about b",
    "%first = tanh %a : tensor<2x4xf32>",
    "%second = tanh %a : tensor<2x4xf32>",
    "%b = tanh %a : tensor<2x4xf32>  // trailing b",
    "%c = tanh %b : tensor<2x4xf32>",
  ]);
});

Deno.test("rewriter: replace redirects every use, returns included, and erases the op", () => {
  const { m, f, op, rw } = load();
  const old = op("a");
  rw.at(old);
  const fresh = rw.create("tanh", [f.params[0]], {}, { name: "fresh" });
  rw.replace(old, fresh);
  assert.ok(!f.body.includes(old));
  assert.equal(op("b").operands[0], fresh);
  assert.equal(f.returns[1], fresh);
  assert.equal(fresh.name, "a", "a value created for the op takes its name");
  assert.deepEqual(verify(m), []);
  assert.equal(print(m), SRC, "same text: the new op stands where the old one did");
});

Deno.test("rewriter: a value created for the op takes its end-of-line comment; others keep their names", () => {
  const { m, op, rw } = load();
  rw.at(op("b"));
  const fresh = rw.create("gelu", [op("a").result], { approximation: "tanh" });
  rw.replace(op("b"), fresh);
  assert.deepEqual(body(m).slice(1, 4), [
    "",
    "// about b",
    "%b = gelu %a {approximation = tanh} : tensor<2x4xf32>  // trailing b",
  ]);
  // Replacing by a value that already existed renames nothing.
  rw.at(op("d"));
  rw.replace(op("d"), op("c").result);
  assert.equal(op("c").result.name, "c");
  assert.match(print(m), /%e = gelu %c /);
});

Deno.test("rewriter: users, isReturned and replaceAllUses", () => {
  const { f, op, rw } = load();
  assert.deepEqual(rw.users(op("a").result).map((o) => o.result.ref), ["%b"]);
  assert.equal(rw.isReturned(op("a").result), true);
  assert.equal(rw.isReturned(op("b").result), false);
  rw.replaceAllUses(op("a").result, f.params[0]);
  assert.deepEqual(rw.users(op("a").result), []);
  assert.deepEqual(rw.users(f.params[0]).map((o) => o.result.ref), ["%a", "%b"]);
  assert.deepEqual(f.returns.map((v) => v.ref), ["%e", "%x"]);
});

Deno.test("rewriter: erasing a value still in use fails at the op", () => {
  const { m, op, rw } = load();
  const used = failure(() => rw.erase(op("c")));
  assert.equal(used.message, "cannot erase '%c': it is still used by '%d'");
  assert.equal(used.loc, op("c").loc);
  const returned = failure(() => rw.erase(op("e")));
  assert.equal(returned.message, "cannot erase '%e': it is still used by the return");
  assert.equal(print(m).includes("%e = gelu"), true);
});

Deno.test("rewriter: an erased op's comments move to the next op, or to the return", () => {
  const { m, f, op, rw } = load();
  rw.replaceAllUses(op("b").result, op("a").result);
  rw.erase(op("b"));
  assert.deepEqual(body(m).slice(0, 6), [
    "%a = tanh %x : tensor<2x4xf32>",
    "",
    "// about b",
    "// trailing b",
    "%c = tanh %a : tensor<2x4xf32>",
    "%d = tanh %c : tensor<2x4xf32>",
  ]);
  assert.equal(f.body.length, 4);
  assert.deepEqual(verify(m), []);

  // The last op's comments go before the return.
  op("e").comments = { leading: ["// note on e"], trailing: "// end of e" };
  rw.replaceAllUses(op("e").result, op("d").result);
  rw.erase(op("e"));
  assert.ok(
    print(m).endsWith(
      "    %d = tanh %c : tensor<2x4xf32>\n    // note on e\n    // end of e\n    return %d, %a\n  }\n}\n",
    ),
    print(m),
  );
  assert.deepEqual(verify(m), []);
});

Deno.test("rewriter: setAttr converts by the op's schema and rejects unknown attributes", () => {
  const { m, op, rw } = load();
  rw.setAttr(op("e"), "approximation", "tanh");
  assert.deepEqual(op("e").attrs.get("approximation"), { kind: "enum", value: "tanh" });
  assert.match(print(m), /%e = gelu %d \{approximation = tanh\}/);
  const unknown = failure(() => rw.setAttr(op("e"), "fast", true));
  assert.equal(unknown.message, "'gelu' has no attribute 'fast'");
  assert.equal(unknown.loc, op("e").loc);
  assert.throws(() => rw.setAttr(op("e"), "approximation", "sigmoid"));
});

/** Folds tanh(tanh(x)) to tanh(x) (a toy: not an identity). */
const foldTanh: Pattern = {
  match: "tanh",
  where: (o) => o.operands[0].definingOp?.name === "tanh",
  rewrite: (o, rw) => rw.replace(o, o.operands[0]),
};

Deno.test("rewrite: applies patterns to a fixed point and reports a change", () => {
  const { m, f } = load();
  assert.equal(rewrite(f, ctx, [foldTanh]), "changed");
  assert.deepEqual(body(m), [
    "%a = tanh %x : tensor<2x4xf32>",
    "",
    "// about b",
    "// trailing b",
    "%e = gelu %a {approximation = erf} : tensor<2x4xf32>",
  ]);
  assert.deepEqual(verify(m), []);
  assert.equal(rewrite(f, ctx, [foldTanh]), "unchanged", "nothing left to do");
});

Deno.test("rewrite: match lists, where, and patterns that decline", () => {
  const { f } = load();
  const seen: string[] = [];
  const result = rewrite(f, ctx, [
    {
      match: ["gelu", "tanh"],
      where: (o) => o.result.name !== "c",
      rewrite(o) {
        seen.push(o.result.name);
        return false;
      },
    },
  ]);
  assert.equal(result, "unchanged");
  assert.deepEqual(seen, ["a", "b", "d", "e"]);
});

Deno.test("rewrite: ops erased by an earlier rewrite are not visited", () => {
  const { m, f } = load();
  const seen: string[] = [];
  let done = false;
  rewrite(f, ctx, [
    {
      match: "tanh",
      rewrite(o, rw) {
        seen.push(o.result.name);
        if (o.result.name !== "b" || done) return false;
        const c = rw.users(o.result)[0];
        rw.replaceAllUses(c.result, o.result);
        rw.erase(c);
        done = true;
      },
    },
  ]);
  assert.deepEqual(seen, ["a", "b", "d", "a", "b", "d"], "%c is skipped in the sweep that erased it");
  assert.doesNotMatch(print(m), /%c =/);
});

Deno.test("rewrite: patterns that never settle fail after maxSweeps, at the function", () => {
  const { f } = load();
  let calls = 0;
  const e = failure(() =>
    rewrite(f, ctx, [{ match: "gelu", rewrite: () => void calls++ }], { maxSweeps: 3 })
  );
  assert.equal(calls, 3);
  assert.equal(e.message, "patterns still applied after 3 sweeps: they do not reach a fixed point");
  assert.equal(e.loc, f.loc);
});

Deno.test("rewrite: a failing pattern is reported at the op it was rewriting", () => {
  const { f, op } = load();
  const e = failure(() =>
    rewrite(f, ctx, [{
      match: "gelu",
      rewrite() {
        throw new RangeError("out of range");
      },
    }])
  );
  assert.equal(e.message, "while rewriting '%e': out of range");
  assert.equal(e.loc, op("e").loc);
  // A PassFailure keeps its own place and message.
  const own = failure(() =>
    rewrite(f, ctx, [{
      match: "gelu",
      rewrite: (_o, rw) => rw.erase(op("a")),
    }])
  );
  assert.equal(own.message, "cannot erase '%a': it is still used by '%b'");
  assert.equal(own.loc, op("a").loc);
  // So does an error in `where`.
  const where = failure(() =>
    rewrite(f, ctx, [{
      match: "tanh",
      where: () => {
        throw new Error("bad condition");
      },
      rewrite: () => false,
    }])
  );
  assert.equal(where.message, "while rewriting '%a': bad condition");
});
