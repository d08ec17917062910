/**
 * The pass manager: verify-each, failures named with the pass and the place, malformed
 * results, the untouched input, statistics, analyses, filters, options, weights, and the
 * instruments (IR printing, dump folder, timing).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Analysis,
  type AnyPass,
  definePass,
  dumpDirInstrument,
  type Instrument,
  loadModule,
  loadWeights,
  type Loc,
  memoryStore,
  type Module,
  opCount,
  parse,
  parsePipeline,
  PassError,
  PassRegistry,
  print,
  printIrInstrument,
  rewrite,
  type RunOptions,
  runPipeline,
  Tensor,
  tensorType,
  TimingInstrument,
  verify,
  type WeightStore,
} from "../../mod.ts";
import { dce } from "../../passes/dce.ts";

const SRC = `// a small model
module @small {
  weights "small.safetensors" {
    @w : tensor<4x4xf32>
  }

  func @main(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>) {
    // first
    %a = tanh %x : tensor<2x4xf32>
    %b = gelu %a {approximation = erf} : tensor<2x4xf32>
    %y = dense %b, @w {transpose_b = true} : tensor<2x4xf32>
    return %y
  }

  func @second(%x: tensor<3xf32>) -> (tensor<3xf32>) {
    %t = tanh %x : tensor<3xf32>
    return %t
  }
}
`;

/** A fresh parse of SRC. */
function small(): Module {
  const { module, diagnostics } = parse(SRC, { file: "small.sir" });
  assert.deepEqual(diagnostics, []);
  return module!;
}

const at = (loc: Loc | undefined) => loc && `${loc.file}:${loc.line}:${loc.col}`;
const opNamed = (m: Module, ref: string) =>
  m.funcs.flatMap((f) => f.body).find((op) => op.result.ref === ref)!;

/** Runs `text` over `m` with the passes given (and dce) registered. */
function run(m: Module, text: string, passes: AnyPass[], options: RunOptions = {}) {
  return runPipeline(m, parsePipeline(text, new PassRegistry([dce, ...passes])), options);
}

/** The PassError running `text` throws; checks that the input was left untouched. */
function failure(text: string, passes: AnyPass[], options: RunOptions = {}): PassError {
  const m = small();
  try {
    run(m, text, passes, options);
  } catch (e) {
    assert.ok(e instanceof PassError, `expected a PassError, got ${e}`);
    assert.equal(print(m), SRC, "the input module changed");
    return e;
  }
  assert.fail(`'${text}' succeeded`);
}

const pass = (name: string, def: Partial<AnyPass>): AnyPass =>
  definePass({ name, description: `${name}, for tests.`, ...def } as AnyPass);

/** Changes the result type of %b: the module no longer verifies at %b and its user. */
const breaker = pass("breaker", {
  runOnFunction(f) {
    const gelu = f.body.find((op) => op.name === "gelu");
    if (!gelu) return "unchanged";
    gelu.result.type = tensorType([4, 2]);
    return "changed";
  },
});

Deno.test("manager: the test module is canonical and verifies", () => {
  const m = small();
  assert.equal(print(m), SRC);
  assert.deepEqual(verify(m), []);
  assert.equal(at(opNamed(m, "%b").loc), "small.sir:10:5");
});

Deno.test("manager: verify-each names the pass and the op where the IR broke", () => {
  const e = failure("dce,breaker", [breaker]);
  assert.equal(e.pass, "breaker");
  assert.equal(at(e.loc), "small.sir:10:5");
  assert.match(e.message, /^small\.sir:10:5: error: pass 'breaker' left IR that does not verify: /);
  assert.ok(e.diagnostics.length >= 1);
  assert.equal(at(e.diagnostics[0].loc), "small.sir:10:5");
});

Deno.test("manager: without verify-each, broken IR is still caught at the end of the pipeline", () => {
  const e = failure("breaker", [breaker], { verifyEach: false });
  assert.equal(e.pass, "(end of pipeline)");
  assert.match(e.detail, /verify-each was off: rerun with it to find the pass/);
  assert.ok(e.diagnostics.length > 0);
});

Deno.test("manager: a pass that throws is named, at its function or module", () => {
  const inFunction = failure("thrower", [
    pass("thrower", {
      runOnFunction() {
        throw new Error("boom");
      },
    }),
  ]);
  assert.equal(inFunction.pass, "thrower");
  assert.equal(inFunction.detail, "threw: boom");
  assert.equal(at(inFunction.loc), at(small().funcs[0].loc));
  assert.match(inFunction.message, /^small\.sir:7:\d+: error: pass 'thrower' threw: boom$/);

  const inModule = failure("thrower", [
    pass("thrower", {
      runOnModule() {
        throw "not even an Error";
      },
    }),
  ]);
  assert.equal(inModule.detail, "threw: not even an Error");
  assert.equal(at(inModule.loc), at(small().loc));
});

Deno.test("manager: ctx.error(op, ...) reports at the op", () => {
  const e = failure("picky", [
    pass("picky", {
      runOnFunction(f, ctx) {
        const gelu = f.body.find((op) => op.name === "gelu");
        if (gelu) throw ctx.error(gelu, "cannot handle this gelu");
        return "unchanged";
      },
    }),
  ]);
  assert.equal(e.message, "small.sir:10:5: error: pass 'picky' failed: cannot handle this gelu");

  const atLoc = failure("picky", [
    pass("picky", {
      runOnModule(_m, ctx) {
        throw ctx.error({ file: "elsewhere.sir", line: 3, col: 9 }, "at a place");
      },
    }),
  ]);
  assert.equal(atLoc.message, "elsewhere.sir:3:9: error: pass 'picky' failed: at a place");

  const nowhere = failure("picky", [
    pass("picky", {
      runOnFunction(_f, ctx) {
        throw ctx.error(undefined, "somewhere in here");
      },
    }),
  ]);
  assert.equal(at(nowhere.loc), at(small().funcs[0].loc), "falls back to the function");
});

Deno.test("manager: an error thrown in a rewrite pattern is reported at the op being rewritten", () => {
  const e = failure("bad-pattern", [
    pass("bad-pattern", {
      runOnFunction: (f, ctx) =>
        rewrite(f, ctx, [{
          match: "gelu",
          rewrite() {
            throw new TypeError("kaboom");
          },
        }]),
    }),
  ]);
  assert.equal(e.message, "small.sir:10:5: error: pass 'bad-pattern' failed: while rewriting '%b': kaboom");
});

Deno.test("manager: a malformed result is an error naming the pass", () => {
  const cases: [unknown, string][] = [
    [42, "returned 42"],
    [undefined, "returned nothing"],
    ["Changed", 'returned "Changed"'],
    [null, "returned null"],
    [{ changed: true }, 'returned {"changed":true}'],
    [true, "returned true"],
  ];
  for (const [result, detail] of cases) {
    const onModule = failure("odd", [pass("odd", { runOnModule: () => result as "changed" })]);
    assert.equal(onModule.detail, `${detail}; a pass returns "changed" or "unchanged"`);
    assert.equal(at(onModule.loc), at(small().loc));
    const onFunction = failure("odd", [pass("odd", { runOnFunction: () => result as "changed" })]);
    assert.equal(onFunction.detail, `${detail}; a pass returns "changed" or "unchanged"`);
    assert.equal(at(onFunction.loc), at(small().funcs[0].loc));
  }
});

Deno.test("manager: a pass that says unchanged but changed the module is caught", () => {
  const liar = pass("liar", {
    runOnFunction(f) {
      f.body[0].result.name = "renamed";
      return "unchanged";
    },
  });
  const e = failure("liar", [liar]);
  assert.equal(e.detail, `returned "unchanged" but changed the module`);
  assert.equal(e.pass, "liar");
  // Only verify-each looks for it.
  assert.match(print(run(small(), "liar", [liar], { verifyEach: false }).module), /%renamed = tanh/);
});

Deno.test("manager: the input stays untouched when a pass fails after changing things", () => {
  const vandal = pass("vandal", {
    runOnModule(m) {
      const main = m.funcs[0];
      main.body[0].result.name = "renamed";
      main.body[1].attrs.set("approximation", { kind: "enum", value: "tanh" });
      main.body[0].comments.leading.push("// added");
      main.returns = [main.params[0]];
      m.funcs[1].body.pop();
      m.weights.delete("w");
      m.attrs.set("touched", { kind: "bool", value: true });
      m.name = "other";
      throw new Error("after the damage");
    },
  });
  const e = failure("dce,vandal", [vandal]);
  assert.equal(e.detail, "threw: after the damage");
});

Deno.test("manager: the input stays untouched when the pipeline succeeds", () => {
  const m = small();
  const r = run(m, "gelu-off", [
    pass("gelu-off", {
      runOnFunction(f) {
        const gelu = f.body.find((op) => op.name === "gelu");
        if (!gelu) return "unchanged";
        gelu.attrs.set("approximation", { kind: "enum", value: "tanh" });
        return "changed";
      },
    }),
  ]);
  assert.equal(print(m), SRC);
  assert.equal(print(r.module), SRC.replace("approximation = erf", "approximation = tanh"));
  assert.notEqual(r.module, m);
});

Deno.test("manager: statistics are collected per pass run; an undeclared one is an error", () => {
  const counter = pass("counter", {
    statistics: { ops: "ops seen", funcs: "functions seen", never: "never counted" },
    runOnFunction(f, ctx) {
      ctx.stat("funcs");
      ctx.stat("ops", f.body.length);
      return "unchanged";
    },
  });
  const r = run(small(), "counter,counter", [counter]);
  assert.deepEqual(r.stats, [
    { pass: "counter", name: "funcs", doc: "functions seen", value: 2 },
    { pass: "counter", name: "ops", doc: "ops seen", value: 4 },
    { pass: "counter", name: "funcs", doc: "functions seen", value: 2 },
    { pass: "counter", name: "ops", doc: "ops seen", value: 4 },
  ]);

  const e = failure("sloppy", [
    pass("sloppy", {
      statistics: { declared: "declared" },
      runOnModule(_m, ctx) {
        ctx.stat("undeclared");
        return "unchanged";
      },
    }),
  ]);
  assert.equal(e.detail, "failed: counted statistic 'undeclared' that it does not declare");
  const none = failure("sloppy", [
    pass("sloppy", {
      runOnModule(_m, ctx) {
        ctx.stat("toString");
        return "unchanged";
      },
    }),
  ]);
  assert.match(none.detail, /counted statistic 'toString' that it does not declare/);
});

Deno.test("manager: analyses are cached, kept by preserving passes, dropped on change", () => {
  let computed = 0;
  const opCount: Analysis<number> = {
    name: "op-count",
    compute(m) {
      computed++;
      return m.funcs.reduce((n, f) => n + f.body.length, 0);
    },
  };
  const seen: number[] = [];
  const passes = [
    pass("use", {
      runOnModule(_m, ctx) {
        seen.push(ctx.analysis(opCount));
        return "unchanged";
      },
    }),
    pass("rename-keeping", {
      preserves: ["op-count"],
      runOnModule(m) {
        m.funcs[0].body[0].result.name += "x";
        return "changed";
      },
    }),
    pass("drop-last", {
      runOnModule(m) {
        m.funcs[1].body.pop();
        m.funcs[1].returns = [m.funcs[1].params[0]];
        return "changed";
      },
    }),
    pass("skipped", {
      filter: { ops: ["softmax"] },
      runOnModule: () => "changed",
    }),
  ];
  const r = run(small(), "use,use,rename-keeping,use,skipped,use,drop-last,use,use", passes);
  assert.deepEqual(seen, [4, 4, 4, 4, 3, 3]);
  assert.equal(computed, 2, "computed at the first use and after drop-last only");
  assert.equal(r.runs.length, 9);
});

Deno.test("manager: a filter skips the pass when the module lacks its ops", () => {
  let ran = 0;
  const needsSoftmax = pass("needs-softmax", {
    filter: { ops: ["softmax", "layer_norm"] },
    runOnModule() {
      ran++;
      return "unchanged";
    },
  });
  const needsGelu = pass("needs-gelu", {
    filter: { ops: ["softmax", "gelu"] },
    runOnModule() {
      ran++;
      return "unchanged";
    },
  });
  const r = run(small(), "needs-softmax,needs-gelu", [needsSoftmax, needsGelu]);
  assert.equal(ran, 1);
  assert.deepEqual(r.runs.map((x) => [x.pass.name, x.index, x.skipped, x.changed]), [
    ["needs-softmax", 1, true, false],
    ["needs-gelu", 2, false, false],
  ]);
});

Deno.test("manager: options reach ctx.options with defaults; log lines name the pass", () => {
  const lines: string[] = [];
  const got: unknown[] = [];
  const opts = pass("opts", {
    options: {
      level: { type: "int", default: 2, doc: "d" },
      name: { type: "string", default: "x", doc: "d" },
    },
    runOnModule(_m, ctx) {
      got.push({ ...ctx.options });
      ctx.log(`level ${ctx.options.level}`);
      return "unchanged";
    },
  });
  run(small(), "opts,opts{level=5 name=y}", [opts], { log: (line) => lines.push(line) });
  assert.deepEqual(got, [{ level: 2, name: "x" }, { level: 5, name: "y" }]);
  assert.deepEqual(lines, ["opts: level 2", "opts: level 5"]);
});

Deno.test("manager: runOnFunction visits each function; the module changed if any did", () => {
  const visited: string[] = [];
  const r = run(small(), "visit", [
    pass("visit", {
      runOnFunction(f) {
        visited.push(f.name);
        return f.name === "second" ? "changed" : "unchanged";
      },
    }),
  ]);
  assert.deepEqual(visited, ["main", "second"]);
  assert.equal(r.runs[0].changed, true);
});

Deno.test("manager: weights passes replace are returned and verified", () => {
  const w = Tensor.zeros(tensorType([4, 4]));
  const store = memoryStore(new Map([["w", w]]));
  const scale = pass("scale", {
    runOnModule(m, ctx) {
      const old = ctx.weights.get(m.weights.get("w")!);
      const doubled = Tensor.zeros(old.type);
      doubled.data.set(old.data.map((x) => 2 * x + 1));
      ctx.weights.set("w", doubled);
      return "changed";
    },
  });
  const r = run(small(), "scale", [scale], { weights: store });
  assert.deepEqual([...r.changedWeights.keys()], ["w"]);
  assert.equal(r.changedWeights.get("w")!.data[0], 1);
  assert.equal(w.data[0], 0, "the input weights are not written");

  const e = failure("reshape-w", [
    pass("reshape-w", {
      runOnModule(_m, ctx) {
        ctx.weights.set("w", Tensor.zeros(tensorType([2, 8])));
        return "changed";
      },
    }),
  ], { weights: store });
  assert.equal(e.pass, "reshape-w");
  assert.match(e.detail, /left IR that does not verify/);
});

Deno.test("instruments: print-ir before, after, after-all and after-change", () => {
  const setTanh = pass("set-tanh", {
    runOnFunction(f) {
      const gelu = f.body.find((op) => op.name === "gelu");
      if (!gelu || gelu.attrs.get("approximation")?.value === "tanh") return "unchanged";
      gelu.attrs.set("approximation", { kind: "enum", value: "tanh" });
      return "changed";
    },
  });
  const printed = (o: Omit<Parameters<typeof printIrInstrument>[0], "write">) => {
    const out: string[] = [];
    run(small(), "dce,set-tanh,set-tanh", [setTanh], {
      instruments: [printIrInstrument({ ...o, write: (t) => out.push(t) })],
    });
    return out;
  };
  const banner = (text: string) => text.split("\n")[0];
  const tanh = SRC.replace("approximation = erf", "approximation = tanh");

  const before = printed({ before: ["set-tanh"] });
  assert.deepEqual(before.map(banner), [
    "// -----// IR Dump Before set-tanh (2) //----- //",
    "// -----// IR Dump Before set-tanh (3) //----- //",
  ]);
  assert.equal(before[0], `${banner(before[0])}\n${SRC}`);
  assert.equal(before[1], `${banner(before[1])}\n${tanh}`);

  assert.deepEqual(printed({ after: ["dce"] }).map(banner), ["// -----// IR Dump After dce (1) //----- //"]);
  const all = printed({ afterAll: true });
  assert.deepEqual(all.map(banner), [
    "// -----// IR Dump After dce (1) //----- //",
    "// -----// IR Dump After set-tanh (2) //----- //",
    "// -----// IR Dump After set-tanh (3) //----- //",
  ]);
  for (const text of all) assert.deepEqual(parse(text).diagnostics, [], "each dump parses");
  assert.deepEqual(printed({ afterChange: true }), [
    `// -----// IR Dump After set-tanh (2) //----- //\n${tanh}`,
  ]);
  assert.deepEqual(printed({}), []);
});

Deno.test("instruments: dump-dir writes the input and one numbered file per pass, each parsing again", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-dump-" });
  try {
    const dumps = join(dir, "dumps");
    const m = small();
    run(m, "dce,gelu-off,dce", [
      pass("gelu-off", {
        filter: { ops: ["softmax"] },
        runOnModule: () => "changed",
      }),
    ], { instruments: [dumpDirInstrument(dumps, "../small.safetensors")] });
    const names = [...Deno.readDirSync(dumps)].map((e) => e.name).sort();
    assert.deepEqual(names, ["00-input.sir", "01-dce.sir", "02-gelu-off.sir", "03-dce.sir"]);
    for (const name of names) {
      const text = await Deno.readTextFile(join(dumps, name));
      const { module, diagnostics } = parse(text, { file: name });
      assert.deepEqual(diagnostics, [], name);
      assert.equal(module!.weightsFile, "../small.safetensors", name);
      assert.deepEqual(verify(module!), [], name);
    }
    assert.equal(m.weightsFile, "small.safetensors", "the module's own weights file is kept");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("instruments: timing has a row per pass, with the op count and result", () => {
  const timing = new TimingInstrument();
  run(small(), "dce,skipped,grow", [
    pass("skipped", { filter: { ops: ["softmax"] }, runOnModule: () => "unchanged" }),
    pass("grow", {
      runOnFunction(f) {
        f.body[0].result.name += "2";
        return "changed";
      },
    }),
  ], { instruments: [timing] });
  assert.deepEqual(timing.rows.map((r) => [r.run.index, r.run.pass.name, r.ops]), [
    [1, "dce", 4],
    [2, "skipped", 4],
    [3, "grow", 4],
  ]);
  for (const r of timing.rows) assert.ok(r.run.ms >= 0);
  const lines = timing.table().split("\n");
  assert.equal(lines.length, 5);
  assert.match(lines[0], /^#\s+pass\s+ms\s+ops after\s+result$/);
  assert.match(lines[1], /^1\s+dce\s+\d+\.\d\d\s+4\s+unchanged$/);
  assert.match(lines[2], /^2\s+skipped\s+\d+\.\d\d\s+4\s+skipped \(filter\)$/);
  assert.match(lines[3], /^3\s+grow\s+\d+\.\d\d\s+4\s+changed$/);
  assert.match(lines[4], /^\s+total\s+\d+\.\d\d$/);
});

Deno.test("instruments: hooks see every pass in order, after verification", () => {
  const events: string[] = [];
  const spy: Instrument = {
    beforePass: (p, i, m) => events.push(`before ${p.name} ${i} ${verify(m).length}`),
    afterPass: (r, m) => events.push(`after ${r.pass.name} ${r.index} ${r.changed} ${verify(m).length}`),
  };
  run(small(), "dce,dce", [], { instruments: [spy] });
  assert.deepEqual(events, [
    "before dce 1 0",
    "after dce 1 false 0",
    "before dce 2 0",
    "after dce 2 false 0",
  ]);
  events.length = 0;
  assert.throws(() => run(small(), "dce,breaker,dce", [breaker], { instruments: [spy] }), PassError);
  assert.deepEqual(events.slice(0, 3), ["before dce 1 0", "after dce 1 false 0", "before breaker 2 0"]);
  assert.ok(!events.includes("before dce 3 0"), "nothing runs after a failure");
});

Deno.test("manager: a pass that replaces weights but says unchanged is caught", () => {
  const e = failure("sneaky", [
    pass("sneaky", {
      runOnModule(_m, ctx) {
        ctx.weights.set("w", Tensor.zeros(tensorType([5])));
        return "unchanged";
      },
    }),
  ], { weights: memoryStore(new Map([["w", Tensor.zeros(tensorType([4, 4]))]])) });
  assert.equal(e.detail, `returned "unchanged" but replaced weights`);
});

Deno.test("manager: a failing pass cannot change the input through shared types or attributes", () => {
  const e = failure("mutator", [
    pass("mutator", {
      runOnFunction(f) {
        (f.params[0].type.shape as number[])[0] = 8;
        (f.body[1].attrs.get("approximation") as { value: string }).value = "tanh";
        throw new Error("after mutating in place");
      },
    }),
  ]);
  assert.equal(e.detail, "threw: after mutating in place");
});

Deno.test("manager: a PassError thrown by a pass is reported under the pass that threw it", () => {
  const e = failure("impostor", [
    pass("impostor", {
      runOnModule() {
        throw new PassError("someone-else", undefined, "did it");
      },
    }),
  ]);
  assert.equal(e.pass, "impostor");
  assert.match(e.detail, /^threw: .*pass 'someone-else' did it$/);
});

Deno.test("manager: a located failure raised inside a pattern without a place gets the op's place", () => {
  const m = small();
  const e = failure("nowhere", [
    pass("nowhere", {
      runOnFunction(f, ctx) {
        return rewrite(f, ctx, [{
          match: "gelu",
          rewrite() {
            throw ctx.error(undefined, "no place given");
          },
        }]);
      },
    }),
  ]);
  assert.equal(at(e.loc), at(opNamed(m, "%b").loc));
});

Deno.test("manager: instruments see the module a failing pass left", () => {
  const seen: string[] = [];
  const ins: Instrument = { afterFailure: (p, index, m) => seen.push(`${index}:${p.name}:${opCount(m)}`) };
  failure("dce,breaker", [breaker], { instruments: [ins] });
  assert.deepEqual(seen, ["2:breaker:4"]);
});

Deno.test("instruments: see the weights, with a version a replacement changes and frozen snapshots", () => {
  const store = memoryStore(new Map([["w", Tensor.zeros(tensorType([4, 4]))]]));
  const plusOne = pass("plus-one", {
    runOnModule(m, ctx) {
      const old = ctx.weights.get(m.weights.get("w")!);
      const next = Tensor.zeros(old.type);
      next.data.set(old.data.map((x) => x + 1));
      ctx.weights.set("w", next);
      return "changed";
    },
  });
  const seen: string[] = [];
  const snapshots: WeightStore[] = [];
  const ins: Instrument = {
    beforePass(_p, _i, m, weights) {
      snapshots.push(weights.snapshot());
      seen.push(`before v${weights.version} w=${weights.get(m.weights.get("w")!).data[0]}`);
    },
    afterPass(run, m, weights) {
      seen.push(`after ${run.pass.name} v${weights.version} w=${weights.get(m.weights.get("w")!).data[0]}`);
    },
  };
  const m = small();
  run(m, "plus-one,dce,plus-one", [plusOne], { weights: store, instruments: [ins] });
  assert.deepEqual(seen, [
    "before v0 w=0",
    "after plus-one v1 w=1",
    "before v1 w=1",
    "after dce v1 w=1",
    "before v1 w=1",
    "after plus-one v2 w=2",
  ]);
  const w = m.weights.get("w")!;
  assert.deepEqual(snapshots.map((s) => s.get(w).data[0]), [0, 1, 1], "each snapshot keeps its moment");
});

Deno.test("instruments: dump-dir writes weights for an input without a file and after each replacement", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-dump-" });
  try {
    const w = Tensor.zeros(tensorType([4, 4]));
    const plusOne = pass("plus-one", {
      runOnModule(m, ctx) {
        const next = Tensor.zeros(w.type);
        next.data.set(ctx.weights.get(m.weights.get("w")!).data.map((x) => x + 1));
        ctx.weights.set("w", next);
        return "changed";
      },
    });
    run(small(), "plus-one,dce", [plusOne], {
      weights: memoryStore(new Map([["w", w]])),
      instruments: [dumpDirInstrument(dir, undefined)],
    });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "00-input.safetensors",
      "00-input.sir",
      "01-plus-one.safetensors",
      "01-plus-one.sir",
      "02-dce.sir",
    ]);
    const expected = { "00-input": 0, "01-plus-one": 1, "02-dce": 1 };
    for (const [name, value] of Object.entries(expected)) {
      const loaded = await loadModule(join(dir, `${name}.sir`));
      assert.deepEqual(loaded.diagnostics, [], name);
      const weights = await loadWeights(loaded.module!, join(dir, `${name}.sir`));
      assert.equal(weights.get(loaded.module!.weights.get("w")!).data[0], value, name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
