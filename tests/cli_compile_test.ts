/**
 * `deno task compile` end to end: the CLI is spawned exactly as deno.json's compile task runs
 * it (same permissions), on a synthetic bert-tiny in a temp folder. Broken plugins and failing
 * passes must give exit code 1 or 2, a message naming the plugin or the pass (with
 * `file:line:col` where there is a place), no stack trace, and no output file. The debugging
 * flags are checked on their output.
 *
 * Spawning needs `--allow-run`; without it these tests are ignored.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { bertConfig, writeSyntheticBert } from "../frontend/synthetic_bert.ts";
import { createPassRegistry, loadModule, parse } from "../mod.ts";
import { CAN_RUN, compile, COMPILE_TASK as TASK, type Run, runTask } from "./compile_cli.ts";

const FIXTURES = "tests/fixtures/plugins";
const GELU_TANH = "examples/plugins/gelu-tanh/gelu-tanh.ts";

interface Model {
  /** The temp folder. */
  dir: string;
  /** `bert-tiny.sir` in it. */
  path: string;
  /** Its text. */
  text: string;
  /** `file:line:col` of the op defining `ref` (e.g. `%l0.gelu`). */
  at(ref: string): string;
}

/** Runs `fn` with a synthetic bert-tiny (seq 16) in a temp folder, removed afterwards. */
function withModel(fn: (model: Model) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-cli-" });
    try {
      const path = join(dir, "bert-tiny.sir");
      await writeSyntheticBert(bertConfig("bert-tiny", { seq: 16 }), path);
      const text = await Deno.readTextFile(path);
      const lines = text.split("\n");
      const at = (ref: string) => {
        const line = lines.findIndex((l) => l.trimStart().startsWith(`${ref} = `));
        assert.ok(line >= 0, ref);
        return `${path}:${line + 1}:${lines[line].indexOf(ref) + 1}`;
      };
      await fn({ dir, path, text, at });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
}

/** Asserts a clean failure: the exit code, no stack trace, nothing on stdout, no output written. */
async function assertCleanFailure(r: Run, code: 1 | 2, outDir: string): Promise<void> {
  assert.equal(r.code, code, r.stderr);
  assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
  assert.doesNotMatch(r.stderr, /Uncaught/);
  assert.equal(r.stdout, "");
  // Only a crash reproducer (beside -o) may be there.
  const written = await Array.fromAsync(Deno.readDir(join(outDir, "out"))).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  });
  assert.deepEqual(
    written.map((e) => e.name).filter((n) => !/\.reproducer\.(sir|safetensors)$/.test(n)),
    [],
    "nothing but a crash reproducer was written",
  );
}

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `compile CLI: ${name}`, ignore: !CAN_RUN, fn });

Deno.test("compile CLI: the task runs with read, write and the CPU model only (the job narrows them further)", () => {
  assert.deepEqual(TASK, [
    "run",
    "--unstable-worker-options",
    "--allow-sys=cpus",
    "--allow-read",
    "--allow-write",
    "cli/compile.ts",
  ]);
});

test(
  "a pipeline that succeeds writes the output, which loads again",
  withModel(async (model) => {
    const out = join(model.dir, "out", "tiny.sir");
    const r = await compile(model.path, "--passes", "dce", "-o", out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.trim(), `wrote ${out}`);
    assert.deepEqual([...Deno.readDirSync(join(model.dir, "out"))].map((e) => e.name), ["tiny.sir"]);
    const again = await compile(out);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(
      again.stdout,
      model.text.replace('weights "bert-tiny.safetensors"', 'weights "../bert-tiny.safetensors"'),
    );
  }),
);

test(
  "without passes or -o, the canonical IR is printed",
  withModel(async (model) => {
    const r = await compile(model.path);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, model.text);
    assert.equal(r.stderr, "");
  }),
);

test(
  "broken plugins exit 2 with one line naming the plugin",
  withModel(async (model) => {
    const syntax = join(model.dir, "syntax_error.ts");
    await Deno.writeTextFile(syntax, 'export default {\n  name: "x",\n  runOnModule( => "unchanged",\n};\n');
    const cases: [string, string][] = [
      [`${FIXTURES}/throws_at_import.ts`, "cannot be loaded: this plugin is broken on purpose"],
      [`${FIXTURES}/no_default.ts`, "has no default export; export default a pass (see definePass)"],
      [`${FIXTURES}/not_a_pass.ts`, "a pass needs a kebab-case 'name', got undefined"],
      [`${FIXTURES}/factory_throws.ts`, "its default export threw: no passes today"],
      [`${FIXTURES}/bad_option.ts`, "pass 'bad-option': option 'level' needs a type"],
      [`${FIXTURES}/name_clash.ts`, "a pass named 'dce' is already registered"],
      [`${FIXTURES}/missing.ts`, "cannot be loaded: Module not found"],
      [syntax, "cannot be loaded: SyntaxError: "],
    ];
    for (const [plugin, message] of cases) {
      const r = await compile(
        model.path,
        "--plugin",
        plugin,
        "--passes",
        "dce",
        "-o",
        join(model.dir, "out", "x.sir"),
      );
      await assertCleanFailure(r, 2, model.dir);
      assert.ok(r.stderr.startsWith(`error: plugin ${plugin}: ${message}`), `${plugin}: ${r.stderr}`);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, `${plugin}: one line`);
    }
  }),
);

test(
  "a pass that fails is named, at its place in the model, and nothing is written",
  withModel(async (model) => {
    const out = join(model.dir, "out", "x.sir");
    const crash = join(model.dir, "out", "x.reproducer.sir");
    const fails = async (plugin: string, passes: string, first: string | RegExp) => {
      const r = await compile(model.path, "--plugin", `${FIXTURES}/${plugin}`, "--passes", passes, "-o", out);
      await assertCleanFailure(r, 1, model.dir);
      const lines = r.stderr.trimEnd().split("\n");
      if (typeof first === "string") assert.equal(lines[0], first);
      else assert.match(lines[0], first);
      assert.deepEqual(lines.slice(-2), [
        `the output was not written; pipeline: ${passes}`,
        `wrote the crash reproducer ${crash} (replay: deno task compile --run-reproducer ${crash})`,
      ]);
      return r;
    };
    await fails(
      "run_throws.ts",
      "dce,run-throws{how=error}",
      `${model.at("%l0.gelu")}: error: pass 'run-throws' failed: refusing this gelu`,
    );
    await fails(
      "run_throws.ts",
      "run-throws{how=pattern}",
      `${model.at("%l0.gelu")}: error: pass 'run-throws' failed: while rewriting '%l0.gelu': pattern failure`,
    );
    const func = model.text.split("\n").findIndex((l) => l.includes("func @main")) + 1;
    await fails(
      "run_throws.ts",
      "run-throws{how=plain}",
      new RegExp(
        `^${RegExp.escape(model.path)}:${func}:\\d+: error: pass 'run-throws' threw: plain failure$`,
      ),
    );
    await fails(
      "returns_42.ts",
      "returns-42",
      new RegExp(
        `^${
          RegExp.escape(model.path)
        }:\\d+:\\d+: error: pass 'returns-42' returned 42; a pass returns "changed" or "unchanged"$`,
      ),
    );
    await fails(
      "lies_unchanged.ts",
      "lies-unchanged",
      new RegExp(
        `^${
          RegExp.escape(model.path)
        }:\\d+:\\d+: error: pass 'lies-unchanged' returned "unchanged" but changed the module$`,
      ),
    );
    const broken = await fails(
      "unverifiable.ts",
      "dce,unverifiable",
      "error: pass 'unverifiable' left IR that does not verify:",
    );
    assert.match(
      broken.stderr,
      new RegExp(`^${RegExp.escape(model.at("%l0.inter"))}: error: 'dense': contraction dims differ`, "m"),
    );
  }),
);

test(
  "--print-ir-after-all prints the module after every pass, each one parsing again",
  withModel(async (model) => {
    const r = await compile(
      model.path,
      "--plugin",
      GELU_TANH,
      "--passes",
      "dce,gelu-tanh",
      "--print-ir-after-all",
    );
    assert.equal(r.code, 0, r.stderr);
    const banners = r.stderr.split("\n").filter((l) => l.startsWith("// -----// IR Dump"));
    assert.deepEqual(banners, [
      "// -----// IR Dump After dce (1) //----- //",
      "// -----// IR Dump After gelu-tanh (2) //----- //",
    ]);
    const dumps = r.stderr.split(/^\/\/ -----\/\/ IR Dump .*$/m).slice(1);
    assert.equal(dumps.length, 2);
    assert.equal(dumps[0].slice(1), model.text);
    assert.equal(dumps[1].slice(1), r.stdout, "the last dump is the result");
    for (const d of dumps) assert.deepEqual(parse(d).diagnostics, []);
  }),
);

test(
  "--print-ir-before/-after NAME and --print-ir-after-change choose the dumps",
  withModel(async (model) => {
    const banners = async (...flags: string[]) => {
      const r = await compile(model.path, "--plugin", GELU_TANH, "--passes", "dce,gelu-tanh,dce", ...flags);
      assert.equal(r.code, 0, r.stderr);
      return r.stderr.split("\n").filter((l) => l.startsWith("// -----// IR Dump"));
    };
    assert.deepEqual(await banners("--print-ir-before", "gelu-tanh"), [
      "// -----// IR Dump Before gelu-tanh (2) //----- //",
    ]);
    assert.deepEqual(await banners("--print-ir-after", "dce"), [
      "// -----// IR Dump After dce (1) //----- //",
      "// -----// IR Dump After dce (3) //----- //",
    ]);
    assert.deepEqual(await banners("--print-ir-after-change"), [
      "// -----// IR Dump After gelu-tanh (2) //----- //",
    ]);
    const r = await compile(model.path, "--passes", "dce", "--print-ir-after", "dse");
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /^error: --print-ir-before\/after: 'dse' is not a pass \(did you mean 'dce'\?\); the pipeline is: dce$/m,
    );
  }),
);

test(
  "--dump-dir writes 00-input.sir and NN-<pass>.sir, each loading with its weights",
  withModel(async (model) => {
    const dumps = join(model.dir, "dumps");
    const r = await compile(
      model.path,
      "--plugin",
      GELU_TANH,
      "--passes",
      "dce,gelu-tanh",
      "--dump-dir",
      dumps,
    );
    assert.equal(r.code, 0, r.stderr);
    const names = [...Deno.readDirSync(dumps)].map((e) => e.name).sort();
    assert.deepEqual(names, ["00-input.sir", "01-dce.sir", "02-gelu-tanh.sir"]);
    for (const name of names) {
      const loaded = await loadModule(join(dumps, name));
      assert.deepEqual(loaded.diagnostics, [], name);
    }
    assert.equal(
      await Deno.readTextFile(join(dumps, "02-gelu-tanh.sir")),
      r.stdout.replace('"bert-tiny', '"../bert-tiny'),
    );
  }),
);

test(
  "--dump-dir keeps the dumps before a failing pass; the output is not written",
  withModel(async (model) => {
    const dumps = join(model.dir, "dumps");
    const r = await compile(
      model.path,
      "--plugin",
      `${FIXTURES}/unverifiable.ts`,
      "--passes",
      "dce,unverifiable",
      "--dump-dir",
      dumps,
      "-o",
      join(model.dir, "out", "x.sir"),
    );
    await assertCleanFailure(r, 1, model.dir);
    assert.deepEqual([...Deno.readDirSync(dumps)].map((e) => e.name).sort(), [
      "00-input.sir",
      "01-dce.sir",
      "02-unverifiable.failed.sir",
    ]);
  }),
);

test(
  "--timing prints a row per pass; --stats prints what passes counted",
  withModel(async (model) => {
    const r = await compile(
      model.path,
      "--plugin",
      GELU_TANH,
      "--passes",
      "dce,gelu-tanh",
      "--timing",
      "--stats",
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.trimEnd().split("\n");
    assert.match(lines[0], /^#\s+pass\s+ms\s+ops after\s+result$/);
    const ops = model.text.match(/^ +%\S+ = /gm)!.length;
    assert.match(lines[1], new RegExp(`^1\\s+dce\\s+\\d+\\.\\d\\d\\s+${ops}\\s+unchanged$`));
    assert.match(lines[2], new RegExp(`^2\\s+gelu-tanh\\s+\\d+\\.\\d\\d\\s+${ops}\\s+changed$`));
    assert.match(lines[3], /^\s+total\s+\d+\.\d\d$/);
    assert.equal(lines[4], "gelu-tanh: gelus rewritten: 2");
    assert.equal(lines.length, 5);
  }),
);

test("--list-passes lists every pass with its options, plugins' included", async () => {
  const builtins = await compile("--list-passes");
  assert.equal(builtins.code, 0, builtins.stderr);
  const names = builtins.stdout.split("\n").filter((l) => /^ {2}\S/.test(l)).map((l) =>
    l.trim().split(":")[0]
  );
  assert.deepEqual(names, createPassRegistry().names());
  assert.match(
    builtins.stdout,
    /^ {2}dce: Erases ops whose results are unused, and unused weight declarations\.$/m,
  );

  const withPlugin = await compile(
    "--plugin",
    `${FIXTURES}/run_throws.ts`,
    "--plugin",
    GELU_TANH,
    "--list-passes",
  );
  assert.equal(withPlugin.code, 0, withPlugin.stderr);
  assert.match(withPlugin.stdout, /^ {2}gelu-tanh: Switches erf GELUs/m);
  assert.match(
    withPlugin.stdout,
    /^ {2}run-throws: Fails on purpose while running\.\n {4}how=error\|pattern\|plain \(default error\): how to fail$/m,
  );
});

test(
  "--passes mistakes exit 2 with the column, a caret, a suggestion and the list",
  withModel(async (model) => {
    const out = join(model.dir, "out", "x.sir");
    const all = createPassRegistry().names().join(", ");
    const cases: [string, string][] = [
      [
        "dce,dcee",
        `error: --passes:5: unknown pass 'dcee' (did you mean 'dce'?); passes: ${all}\n  dce,dcee\n      ^`,
      ],
      [
        "dce{agressive=1}",
        "error: --passes:5: unknown option 'agressive' of pass 'dce'; it takes no options",
      ],
      ["dce,", "error: --passes:4: expected a pass after ','"],
    ];
    for (const [passes, message] of cases) {
      const r = await compile(model.path, "--passes", passes, "-o", out);
      await assertCleanFailure(r, 2, model.dir);
      assert.ok(r.stderr.startsWith(message), r.stderr);
    }
    const bad = await compile(
      model.path,
      "--plugin",
      `${FIXTURES}/run_throws.ts`,
      "--passes",
      "run-throws{how=loud}",
    );
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /^error: --passes:12: option 'how' of 'run-throws' must be one of error, pattern, plain, got 'loud'$/m,
    );
  }),
);

test(
  "usage mistakes: unknown flag, no model, a model that cannot be read",
  withModel(async (model) => {
    const flag = await compile(model.path, "--pases", "dce");
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^error: unknown option '--pases' \(did you mean '--passes'\?\)/);
    const none = await compile("--passes", "dce");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^error: expected one model file/);
    const missing = join(model.dir, "missing.sir");
    const unreadable = await compile(missing);
    assert.equal(unreadable.code, 1);
    assert.equal(
      unreadable.stderr,
      `error: ${missing}: no such file or folder (expected an IR file, a checkpoint folder or an ONNX file)\n`,
    );
    for (const r of [flag, none, unreadable]) assert.doesNotMatch(r.stderr, /^\s+at /m);
  }),
);

test(
  "file-system mistakes are one line, exit 1, no stack trace",
  withModel(async (model) => {
    const file = join(model.dir, "a-file");
    await Deno.writeTextFile(file, "");
    const dump = await compile(model.path, "--passes", "dce", "--dump-dir", join(file, "d"));
    assert.equal(dump.code, 1, dump.stderr);
    assert.match(dump.stderr, /^error: /m);
    assert.doesNotMatch(dump.stderr, /^\s+at /m);
    const out = await compile(model.path, "--passes", "dce", "-o", join(file, "x.sir"));
    assert.equal(out.code, 1, out.stderr);
    assert.doesNotMatch(out.stderr, /^\s+at /m);
  }),
);

test(
  "-o DIR compiles an artifact that deno task run runs, with the interpreter's outputs",
  withModel(async (model) => {
    const out = join(model.dir, "artifact");
    const kernels = join(model.dir, "kernels");
    const r = await compile(model.path, "-o", out, "--emit-kernels", kernels);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /kernel calls, \d+ distinct kernels/);
    for (
      const f of [
        "plan.json",
        "kernels.relaxed.wasm",
        "kernels.simd.wasm",
        "weights.bin",
        "model.sir",
        "report.json",
      ]
    ) {
      await Deno.stat(join(out, f));
    }
    const wat = [...Deno.readDirSync(kernels)].map((e) => e.name).filter((n) => n.endsWith(".wat"));
    assert.ok(wat.some((n) => n.startsWith("gemm_")), `kernels written: ${wat}`);
    const compiled = JSON.parse(
      (await runTask("run", out, "--json", "--repeat", "2", "--threads", "2")).stdout,
    );
    const interpreted = JSON.parse((await runTask("run", model.path, "--json")).stdout);
    const a = compiled.outputs[0].first as number[], b = interpreted.outputs[0].first as number[];
    assert.equal(a.length, b.length);
    a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-4, `output ${i}: ${v} vs ${b[i]}`));
    assert.equal(compiled.threads, 2);
    assert.ok(compiled.latency.medianMs > 0);
    // A corrupt artifact is a one-line error naming the file.
    await Deno.writeFile(join(out, "weights.bin"), new Uint8Array(10));
    const corrupt = await runTask("run", out);
    assert.equal(corrupt.code, 1, corrupt.stderr);
    assert.match(corrupt.stderr, /weights\.bin: the weights file has 10 bytes, the plan expects \d+/);
    assert.doesNotMatch(corrupt.stderr, /^\s+at /m);
    // A folder that is not an artifact is never overwritten.
    const refused = await compile(model.path, "-o", model.dir);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /exists and is not a Sparrow artifact/);
    assert.doesNotMatch(refused.stderr, /^\s+at /m);
  }),
);

test(
  "passes and plugins may write only the output and dump folders",
  withModel(async (model) => {
    const escaped = new URL("./fixtures/plugins/escaped.txt", import.meta.url);
    const r = await compile(
      model.path,
      "--plugin",
      `${FIXTURES}/writes_outside.ts`,
      "--passes",
      "writes-outside",
      "-o",
      join(model.dir, "out", "x.sir"),
    );
    await assertCleanFailure(r, 1, model.dir);
    assert.match(r.stderr, /pass 'writes-outside' threw: Requires write access to ".*escaped\.txt"/);
    await assert.rejects(Deno.stat(escaped), Deno.errors.NotFound);
  }),
);

test(
  "the job may read exactly the files the pipeline's passes declare (a rules file, a plugin's input)",
  withModel(async (model) => {
    const elsewhere = await Deno.makeTempDir({ prefix: "sparrow-declared-" });
    try {
      const secret = join(elsewhere, "secret.txt");
      await Deno.writeTextFile(secret, "declared line\n");
      const plugin = `${FIXTURES}/reads_file.ts`;
      const declared = await compile(
        model.path,
        "--plugin",
        plugin,
        "--passes",
        `reads-file{file=${JSON.stringify(secret)}}`,
      );
      assert.equal(declared.code, 0, declared.stderr);
      assert.match(declared.stderr, /reads-file: first line: declared line/);
      const undeclared = await compile(
        model.path,
        "--plugin",
        plugin,
        "--passes",
        `reads-file{file=${JSON.stringify(secret)} declare=false}`,
        "-o",
        join(model.dir, "out", "x.sir"),
      );
      await assertCleanFailure(undeclared, 1, model.dir);
      assert.match(undeclared.stderr, /pass 'reads-file' threw: Requires read access to ".*secret\.txt"/);
      // prune's rules file, outside every folder the compile names otherwise.
      const rules = join(elsewhere, "rules.json");
      await Deno.writeTextFile(rules, JSON.stringify([{ match: "query", sparsity: 0.9 }]));
      const pruned = await compile(
        model.path,
        "--passes",
        `prune{rules=${JSON.stringify(rules)}}`,
        "--stats",
      );
      assert.equal(pruned.code, 0, pruned.stderr);
      assert.match(pruned.stderr, /query\.weight.*90\.0/);
    } finally {
      await Deno.remove(elsewhere, { recursive: true });
    }
  }),
);

test(
  "a pass that calls Deno.exit, process.exit or close fails as a pass: a failed compile never exits 0",
  withModel(async (model) => {
    for (
      const [pass, what] of [["deno-exit", "Deno.exit"], ["process-exit", "process.exit"], [
        "close-worker",
        "close",
      ]]
    ) {
      const r = await compile(model.path, "--plugin", `${FIXTURES}/exits.ts`, "--passes", pass);
      assert.equal(r.code, 1, `${pass}: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(`pass '${pass}' threw: ${what.replace(".", "\\.")}\\(0?\\) is not allowed in a pass`),
      );
      assert.doesNotMatch(r.stderr, /^\s+at /m);
    }
  }),
);
