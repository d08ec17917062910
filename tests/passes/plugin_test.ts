/**
 * The pass registry's checks on pass objects, and loading plugins: what a plugin may export,
 * and how each broken plugin in `tests/fixtures/plugins/` (or written to a temp folder) is reported.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  type AnyPass,
  builtinPasses,
  createPassRegistry,
  definePass,
  loadPlugin,
  passProblem,
  PassRegistry,
  PluginError,
} from "../../mod.ts";

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/plugins/${name}`, import.meta.url));
const example = (name: string) => fileURLToPath(new URL(`../../examples/plugins/${name}`, import.meta.url));

const ok = { name: "ok-pass", description: "Well formed.", runOnModule: () => "unchanged" as const };

/** The problem passProblem finds in `ok` with `change` applied. */
function problemWith(change: Record<string, unknown>): string | undefined {
  return passProblem({ ...ok, ...change });
}

Deno.test("registry: a well-formed pass has no problem", () => {
  assert.equal(passProblem(ok), undefined);
  assert.equal(passProblem({ ...ok, runOnModule: undefined, runOnFunction: () => "unchanged" }), undefined);
  assert.equal(
    problemWith({
      options: {
        n: { type: "int", default: 1, doc: "" },
        "max-depth": { type: "number", default: 0.5, doc: "d" },
        kind: { type: "enum", values: ["a", "b"], default: "b", doc: "d" },
        block: { type: "block", default: [1, 32], doc: "d" },
      },
    }),
    undefined,
  );
  for (const p of builtinPasses) assert.equal(passProblem(p), undefined, p.name);
});

Deno.test("registry: rejects what is not an object", () => {
  assert.equal(passProblem(42), "a pass must be an object, got number");
  assert.equal(passProblem(null), "a pass must be an object, got object");
  assert.equal(passProblem(undefined), "a pass must be an object, got undefined");
  assert.equal(passProblem("dce"), "a pass must be an object, got string");
});

Deno.test("registry: rejects a missing or malformed name", () => {
  assert.equal(problemWith({ name: undefined }), "a pass needs a kebab-case 'name', got undefined");
  assert.equal(problemWith({ name: "" }), `a pass needs a kebab-case 'name', got ""`);
  assert.equal(problemWith({ name: "GeluTanh" }), `a pass needs a kebab-case 'name', got "GeluTanh"`);
  assert.equal(problemWith({ name: "gelu_tanh" }), `a pass needs a kebab-case 'name', got "gelu_tanh"`);
  assert.equal(problemWith({ name: "2fast" }), `a pass needs a kebab-case 'name', got "2fast"`);
  assert.equal(problemWith({ name: 7 }), "a pass needs a kebab-case 'name', got 7");
});

Deno.test("registry: rejects a missing description", () => {
  assert.equal(problemWith({ description: undefined }), "pass 'ok-pass' needs a one-line 'description'");
  assert.equal(problemWith({ description: "" }), "pass 'ok-pass' needs a one-line 'description'");
  assert.equal(problemWith({ description: 3 }), "pass 'ok-pass' needs a one-line 'description'");
});

Deno.test("registry: needs exactly one of runOnModule and runOnFunction", () => {
  const message = "pass 'ok-pass' needs exactly one of runOnModule and runOnFunction";
  assert.equal(problemWith({ runOnModule: undefined }), message);
  assert.equal(problemWith({ runOnFunction: () => "unchanged" }), message);
  assert.equal(problemWith({ runOnModule: "unchanged" }), message);
});

Deno.test("registry: rejects malformed option specs", () => {
  const cases: [unknown, string][] = [
    [{ "bad name": { type: "int", default: 1, doc: "" } }, "pass 'ok-pass': bad option name 'bad name'"],
    [
      { level: { default: 1, doc: "" } },
      "option 'level' needs a type (int, number, bool, string, enum, block)",
    ],
    [{ level: { type: "float", default: 1, doc: "" } }, "option 'level' needs a type"],
    [{ level: null }, "option 'level' needs a type"],
    [{ level: { type: "int", doc: "" } }, "pass 'ok-pass': option 'level' needs a default"],
    [{ level: { type: "int", default: 1 } }, "pass 'ok-pass': option 'level' needs a 'doc' line"],
    [
      { level: { type: "enum", values: ["a", "b"], default: "c", doc: "" } },
      "pass 'ok-pass': option 'level' default is not one of its values",
    ],
    [
      { level: { type: "enum", default: "c", doc: "" } },
      "pass 'ok-pass': option 'level' needs 'values', a list of strings",
    ],
    [{ level: { type: "enum", values: "abc", default: "a", doc: "" } }, "option 'level' needs 'values'"],
    [{ level: { type: "enum", values: [1, 2], default: 1, doc: "" } }, "option 'level' needs 'values'"],
    [{ level: { type: "enum", values: [], default: "a", doc: "" } }, "option 'level' needs 'values'"],
  ];
  for (const [options, message] of cases) {
    const problem = problemWith({ options });
    assert.ok(problem?.includes(message), `${JSON.stringify(options)}: got ${problem}`);
  }
});

Deno.test("registry: an option's default must fit its type", () => {
  const cases: [string, unknown, string][] = [
    ["int", 1.5, "a safe integer, got 1.5"],
    ["int", "1", 'a safe integer, got "1"'],
    ["int", 2 ** 53, "a safe integer, got 9007199254740992"],
    ["number", "0.5", 'a finite number, got "0.5"'],
    ["number", NaN, "a finite number, got NaN"],
    ["number", Infinity, "a finite number, got Infinity"],
    ["bool", "false", 'true or false, got "false"'],
    ["bool", 0, "true or false, got 0"],
    ["string", 3, "a string, got 3"],
    ["string", null, "a string, got null"],
    ["block", "1x32", 'a block shape [rows, cols] of positive integers, got "1x32"'],
    ["block", [1], "a block shape [rows, cols] of positive integers, got [1]"],
    ["block", [0, 32], "a block shape [rows, cols] of positive integers, got [0,32]"],
    ["block", [1.5, 2], "a block shape [rows, cols] of positive integers, got [1.5,2]"],
    ["block", [1, 2, 3], "a block shape [rows, cols] of positive integers, got [1,2,3]"],
  ];
  for (const [type, value, message] of cases) {
    assert.equal(
      problemWith({ options: { level: { type, default: value, doc: "" } } }),
      `pass 'ok-pass': option 'level' default must be ${message}`,
      `${type} ${String(value)}`,
    );
  }
  const fits: [string, unknown][] = [
    ["int", -3],
    ["number", 1],
    ["bool", false],
    ["string", ""],
    ["block", [4, 4]],
  ];
  for (const [type, value] of fits) {
    assert.equal(problemWith({ options: { level: { type, default: value, doc: "" } } }), undefined, type);
  }
});

Deno.test("registry: statistics, filter.ops and preserves must be what they say", () => {
  const statistics =
    "pass 'ok-pass': 'statistics' must be an object of statistic names to descriptions (strings)";
  const ops = "pass 'ok-pass': 'filter.ops' must be an array of op names (strings)";
  const preserves = "pass 'ok-pass': 'preserves' must be an array of analysis names (strings)";
  const cases: [Record<string, unknown>, string][] = [
    [{ statistics: "erased" }, statistics],
    [{ statistics: ["erased"] }, statistics],
    [{ statistics: null }, statistics],
    [{ statistics: { erased: 3 } }, statistics],
    [{ filter: "gelu" }, "pass 'ok-pass': 'filter' must be an object"],
    [{ filter: { ops: "gelu" } }, ops],
    [{ filter: { ops: ["gelu", 7] } }, ops],
    [{ preserves: "liveness" }, preserves],
    [{ preserves: [null] }, preserves],
  ];
  for (const [change, message] of cases) assert.equal(problemWith(change), message, JSON.stringify(change));
  assert.equal(
    problemWith({ statistics: { erased: "ops erased" }, filter: { ops: ["gelu"] }, preserves: ["liveness"] }),
    undefined,
  );
  assert.equal(problemWith({ statistics: {}, filter: {}, preserves: [] }), undefined);
});

Deno.test("registry: register throws the problem; names are unique and sorted; clones are separate", () => {
  const r = new PassRegistry();
  assert.throws(() => r.register({ ...ok, name: "Bad" } as AnyPass), { message: /kebab-case 'name'/ });
  r.register(definePass({ ...ok, name: "zeta" }));
  r.register(definePass({ ...ok, name: "alpha" }));
  assert.throws(() => r.register(definePass({ ...ok, name: "zeta" })), {
    message: "a pass named 'zeta' is already registered",
  });
  assert.deepEqual(r.names(), ["alpha", "zeta"]);
  assert.equal(r.get("alpha")?.name, "alpha");
  assert.equal(r.get("beta"), undefined);
  const copy = r.clone();
  copy.register(definePass({ ...ok, name: "beta" }));
  assert.deepEqual(copy.names(), ["alpha", "beta", "zeta"]);
  assert.deepEqual(r.names(), ["alpha", "zeta"]);
  assert.throws(() => new PassRegistry([ok, ok] as AnyPass[]), { message: /already registered/ });
});

Deno.test("registry: createPassRegistry is fresh each time and holds the built-ins", () => {
  const a = createPassRegistry();
  const b = createPassRegistry();
  a.register(definePass({ ...ok, name: "only-in-a" }));
  assert.equal(b.get("only-in-a"), undefined);
  assert.deepEqual(b.names(), builtinPasses.map((p) => p.name).sort());
  assert.ok(b.get("dce"));
});

/** The PluginError that loading `path` into a fresh registry throws. */
async function pluginError(path: string): Promise<PluginError> {
  try {
    await loadPlugin(path, createPassRegistry());
  } catch (e) {
    assert.ok(e instanceof PluginError, `expected a PluginError, got ${e}`);
    return e;
  }
  assert.fail(`${path} loaded`);
}

Deno.test("plugin: a pass as default export is registered like a built-in", async () => {
  const r = createPassRegistry();
  assert.deepEqual(await loadPlugin(example("gelu-tanh/gelu-tanh.ts"), r), ["gelu-tanh"]);
  assert.equal(
    r.get("gelu-tanh")?.description,
    "Switches erf GELUs to the tanh approximation (approximation = tanh).",
  );
  assert.deepEqual(await loadPlugin(example("flops-report/flops-report.ts"), r), ["flops-report"]);
  assert.ok(r.names().includes("dce"));
});

Deno.test("plugin: a function returning passes is called, and each pass registered", async () => {
  const r = createPassRegistry();
  assert.deepEqual(await loadPlugin(fixture("factory.ts"), r), ["factory-one", "factory-two"]);
  assert.ok(r.get("factory-one")?.runOnModule);
  assert.ok(r.get("factory-two")?.runOnFunction);
});

Deno.test("plugin: loading the same plugin twice, or taking a built-in's name, is an error", async () => {
  const r = createPassRegistry();
  await loadPlugin(example("gelu-tanh/gelu-tanh.ts"), r);
  await assert.rejects(loadPlugin(example("gelu-tanh/gelu-tanh.ts"), r), {
    name: "PluginError",
    message: /gelu-tanh\.ts: a pass named 'gelu-tanh' is already registered$/,
  });
  const clash = await pluginError(fixture("name_clash.ts"));
  assert.equal(clash.message, `plugin ${fixture("name_clash.ts")}: a pass named 'dce' is already registered`);
});

Deno.test("plugin: each broken plugin is reported with its path", async () => {
  const cases: [string, string][] = [
    ["throws_at_import.ts", "cannot be loaded: this plugin is broken on purpose"],
    ["empty_array.ts", "exports no passes"],
    ["async_rejects.ts", "its default export threw: no passes later either"],
    ["async_bad.ts", "pass 'async-bad' needs a one-line 'description'"],
    ["no_default.ts", "has no default export; export default a pass (see definePass)"],
    ["not_a_pass.ts", "a pass needs a kebab-case 'name', got undefined"],
    ["factory_throws.ts", "its default export threw: no passes today"],
    [
      "bad_option.ts",
      "pass 'bad-option': option 'level' needs a type (int, number, bool, string, enum, block)",
    ],
    ["does_not_exist.ts", "cannot be loaded: Module not found"],
  ];
  for (const [name, message] of cases) {
    const path = fixture(name);
    const e = await pluginError(path);
    assert.equal(e.path, path);
    assert.ok(e.message.startsWith(`plugin ${path}: ${message}`), `${name}: ${e.message}`);
    assert.ok(!e.message.includes("\n"), `${name}: one line`);
  }
});

Deno.test("plugin: an async factory, or a Promise as default export, is awaited", async () => {
  const r = createPassRegistry();
  assert.deepEqual(await loadPlugin(fixture("async_factory.ts"), r), ["async-factory"]);
  assert.deepEqual(await loadPlugin(fixture("async_default.ts"), r), ["async-one", "async-two"]);
  assert.ok(r.get("async-factory")?.runOnModule);
  assert.ok(r.get("async-two")?.runOnFunction);
});

Deno.test("plugin: every pass of an array is checked before any is registered", async () => {
  const cases: [string, string][] = [
    ["array_half_bad.ts", "pass 'half-bad' needs a one-line 'description'"],
    ["array_clash.ts", "a pass named 'dce' is already registered"],
    ["array_twice.ts", "exports two passes named 'twice'"],
    ["empty_array.ts", "exports no passes"],
  ];
  for (const [name, message] of cases) {
    const r = createPassRegistry();
    await assert.rejects(loadPlugin(fixture(name), r), { message: `plugin ${fixture(name)}: ${message}` });
    assert.deepEqual(r.names(), createPassRegistry().names(), `${name}: registry unchanged`);
  }
});

Deno.test("plugin: a throw while importing is reported at its place in the plugin", async () => {
  const atImport = fixture("throws_at_import.ts");
  assert.equal(
    (await pluginError(atImport)).message,
    `plugin ${atImport}: cannot be loaded: this plugin is broken on purpose (at ${atImport}:2:7)`,
  );
  // The first frame in the plugin, not the helper's frame where the Error was made.
  const viaHelper = fixture("throws_in_helper.ts");
  assert.equal(
    (await pluginError(viaHelper)).message,
    `plugin ${viaHelper}: cannot be loaded: the helper refused (at ${viaHelper}:5:16)`,
  );
});

Deno.test("plugin: a syntax error or a missing import keeps its location, on one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const syntax = join(dir, "syntax_error.ts");
    await Deno.writeTextFile(syntax, 'export default {\n  name: "x",\n  runOnModule( => "unchanged",\n};\n');
    const importsBroken = join(dir, "imports_broken.ts");
    await Deno.writeTextFile(importsBroken, 'import "./syntax_error.ts";\n');
    const importsMissing = join(dir, "imports_missing.ts");
    await Deno.writeTextFile(importsMissing, '// Imports what is not there.\nimport "./nowhere.ts";\n');
    const unexpected = /SyntaxError: Unexpected token `=>`[^\n]*/.source; // the rest is Deno's wording
    const missing = RegExp.escape(`Module not found "${pathToFileURL(join(dir, "nowhere.ts")).href}".`);
    // The plugin, what its import gives, and where: in the plugin, or in the file it imports.
    const cases: [string, string, string][] = [
      [syntax, unexpected, `${syntax}:3:16`],
      [importsBroken, unexpected, `${syntax}:3:16`],
      [importsMissing, missing, `${importsMissing}:2:8`],
    ];
    for (const [plugin, message, at] of cases) {
      const expected = `^${RegExp.escape(`plugin ${plugin}: cannot be loaded: `)}${message}`;
      assert.match(
        (await pluginError(plugin)).message,
        new RegExp(`${expected} \\(at ${RegExp.escape(at)}\\)$`),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plugin: a plugin that fails leaves the built-ins in place", async () => {
  const r = createPassRegistry();
  await assert.rejects(loadPlugin(fixture("not_a_pass.ts"), r), PluginError);
  assert.deepEqual(r.names(), createPassRegistry().names());
});
