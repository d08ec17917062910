/**
 * Issue 17, broken and hostile inputs, through the real tasks (tests/adversarial/probe.ts): every
 * case ends in a short error naming the place, a non-zero exit, within seconds, with memory bounded
 * and nothing left behind. Classes covered here:
 *
 * - plugins: a pass that never returns (`--pass-timeout`), one that allocates without bound
 *   (`--max-memory`), one that never finishes loading, odd thrown values, `Deno.exit`, `-o` over
 *   the input, and an IR weights line naming no weights file (`/etc/passwd`, a link to it);
 * - options: catastrophic regexes in prune's `target` and rules (linear-time matching), blocks
 *   larger than the weight, `--threads` far above the cores;
 * - `run --inputs`: deep nesting, wrong lengths and types;
 * - diagnostics: at most 20 printed, then `and N more errors`.
 *
 * Hostile inputs are generated here, seeded, in a temp folder removed afterwards. The unit tests at
 * the end (no spawning) check the linear-time matcher against RegExp, the threads rule and the cap.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { formatDiagnostics, Random, writeSafetensors } from "../mod.ts";
import { nameRegex, thrownMessage } from "../passes/pass.ts";
import { maxThreads, readInputsJson, threadsFlag, UsageError } from "../cli/common.ts";
import { assertProbe, runProbe } from "./adversarial/probe.ts";
import { CAN_RUN, runTask } from "./compile_cli.ts";

const PLUGINS = "tests/fixtures/plugins";
const HOSTILE = `${PLUGINS}/hostile.ts`;

/** A model whose first weight has a long run of `a`s in its name, and a 256x256 one, `big`. */
async function regexModel(dir: string, run: number): Promise<string> {
  const name = "a".repeat(run) + ".weight";
  await writeSafetensors(join(dir, "re.safetensors"), [
    { name, dtype: "F32", shape: [8, 8], data: new Float32Array(64).fill(1) },
    { name: "big", dtype: "F32", shape: [256, 256], data: new Float32Array(65536).fill(1) },
  ]);
  const path = join(dir, "re.sir");
  await Deno.writeTextFile(
    path,
    `module @re {
  weights "re.safetensors" {
    @${name} : tensor<8x8xf32>
    @big : tensor<256x256xf32>
  }
  func @main(%x: tensor<1x8xf32>, %z: tensor<1x256xf32>) -> (tensor<1x8xf32>, tensor<1x256xf32>) {
    %y = dense %x, @${name} {transpose_b = true} : tensor<1x8xf32>
    %u = dense %z, @big {transpose_b = true} : tensor<1x256xf32>
    return %y, %u
  }
}
`,
  );
  return path;
}

/** An IR file whose weights line is `weights`. */
async function weightsLine(dir: string, file: string, weights: string): Promise<string> {
  const path = join(dir, file);
  await Deno.writeTextFile(path, `module @evil {\n  weights "${weights}" {\n  }\n}\n`);
  return path;
}

/** Entries of `dir` whose names contain `part` (staging folders, temp files). */
async function leftovers(dir: string, part: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.includes(part)) names.push(e.name);
  return names;
}

Deno.test({
  name: "adversarial CLI: plugins, options, --inputs and diagnostics end in one short error",
  ignore: !CAN_RUN,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-adversarial-" });
    try {
      const tiny = join(dir, "tiny.sir");
      const imported = await runTask("import", "synthetic:bert-tiny", "--seq", "16", "-o", tiny);
      assert.equal(imported.code, 0, imported.stderr);
      const art = join(dir, "art");
      const compiled = await runTask("compile", tiny, "-o", art, "--quiet");
      assert.equal(compiled.code, 0, compiled.stderr);

      await t.step("a pass that never returns is stopped by --pass-timeout, leaving nothing", async () => {
        const out = join(dir, "spun");
        const r = await assertProbe({
          task: "compile",
          args: [tiny, "--plugin", HOSTILE, "--passes", "spins", "--pass-timeout", "2", "-o", out],
          error: /^error: pass 'spins' did not finish within 2 s \(--pass-timeout\)\nnothing was written\n$/m,
          noOutput: [out, `${out}.reproducer.sir`],
          seconds: 20,
        });
        assert.equal(r.code, 1);
        assert.deepEqual(await leftovers(dir, ".spun.partial-"), []);
        await assertProbe({
          task: "compile",
          args: [tiny, "--plugin", HOSTILE, "--passes", "waits", "--pass-timeout", "2"],
          error: /^error: pass 'waits' did not finish within 2 s \(--pass-timeout\)$/m,
          code: 1,
          seconds: 20,
        });
        // A timer the pass leaves behind blocks the job after it: its heartbeat stops.
        const later = join(dir, "later");
        await assertProbe({
          task: "compile",
          args: [tiny, "--plugin", HOSTILE, "--passes", "spins-later", "--pass-timeout", "2", "-o", later],
          error:
            /^error: the compile job stopped responding for 2 s after pass 'spins-later' ran \(--pass-timeout\)$/m,
          noOutput: [later],
          seconds: 20,
        });
        assert.deepEqual(await leftovers(dir, ".later.partial-"), []);
        await assertProbe({
          task: "compile",
          args: [tiny, "--plugin", `${PLUGINS}/spins_at_import.ts`, "--pass-timeout", "2"],
          error:
            /^error: loading plugin tests\/fixtures\/plugins\/spins_at_import\.ts did not finish within 2 s/m,
          seconds: 20,
        });
        await assertProbe({
          task: "compile",
          args: [tiny, "--pass-timeout", "0"],
          error: /^error: --pass-timeout must be a number of seconds in \(0, 86400\], got '0'$/m,
          code: 2,
        });
      });

      await t.step("a pass that allocates without bound is stopped by --max-memory", async () => {
        const out = join(dir, "hoarded.sir");
        await assertProbe({
          task: "compile",
          args: [tiny, "--plugin", HOSTILE, "--passes", "hoards", "--max-memory", "512", "-o", out],
          error:
            /^error: pass 'hoards' used more than 512 MiB of memory \(--max-memory\)\nnothing was written$/m,
          noOutput: [out, join(dir, "hoarded.safetensors")],
          seconds: 30,
          mib: 900,
        });
        await assertProbe({
          task: "compile",
          args: [tiny, "--plugin", `${PLUGINS}/hoards_at_import.ts`, "--max-memory", "512"],
          error:
            /^error: loading plugin \S+hoards_at_import\.ts used more than 512 MiB of memory \(--max-memory\)$/m,
          code: 1,
          seconds: 30,
          mib: 900,
        });
      });

      await t.step("odd thrown values, Deno.exit and -o over the input are clean errors", async () => {
        const odd: [string, RegExp][] = [
          ["symbol", /threw: Symbol\(odd\)$/m],
          ["bad-tostring", /threw: \{\}$/m],
          ["null-proto", /threw: \{\}$/m],
          ["null", /threw: null$/m],
        ];
        for (const [what, said] of odd) {
          const r = await assertProbe({
            task: "compile",
            args: [tiny, "--plugin", HOSTILE, "--passes", `throws-odd{what=${what}}`],
            error: /tiny\.sir:\d+:\d+: error: pass 'throws-odd' threw: /,
            code: 1,
          });
          assert.match(r.stderr, said);
        }
        await assertProbe({
          task: "compile",
          args: [tiny, "--plugin", `${PLUGINS}/exits.ts`, "--passes", "deno-exit"],
          error: /pass 'deno-exit' threw: Deno\.exit\(0\) is not allowed in a pass/,
          code: 1,
        });
        await assertProbe({
          task: "compile",
          args: [tiny, "--passes", "dce", "-o", tiny],
          error: /would overwrite the input/,
        });
      });

      await t.step("an IR weights line cannot point the sandbox at any file", async () => {
        const sub = join(dir, "a", "b");
        await Deno.mkdir(sub, { recursive: true });
        await Deno.symlink("/etc/passwd", join(sub, "link.safetensors"));
        const cases: [string, RegExp][] = [
          [
            "/etc/passwd",
            /^error: \S+evil0\.sir: its weights line names '\/etc\/passwd', which is not a \.safetensors file$/m,
          ],
          [
            "link.safetensors",
            /^error: \S+evil1\.sir: its weights line names 'link\.safetensors', a link to \/etc\/passwd, which is not a \.safetensors file$/m,
          ],
          // A weights file is found where its line says, as Sparrow's own outputs need; none is there.
          [
            "../../../some/secret.safetensors",
            /evil2\.sir:1:8: error: weights file '\.\.\/\.\.\/\.\.\/some\/secret\.safetensors' not found/,
          ],
        ];
        for (const [i, [weights, error]] of cases.entries()) {
          const path = await weightsLine(sub, `evil${i}.sir`, weights);
          await assertProbe({ task: "compile", args: [path], error, code: 1 });
        }
      });

      await t.step("regexes in options cannot hang; blocks larger than the weight are refused", async () => {
        const re = await regexModel(dir, 5000);
        // Exponential for a backtracking matcher; linear here: it matches nothing and prints the module.
        const r = await runProbe({
          task: "compile",
          args: [re, "--passes", "prune{target=(a+)+$}"],
          error: /$/,
        });
        assert.equal(r.code, 0, r.stderr);
        assert.ok(r.seconds < 30, `took ${r.seconds} s`);
        const rules = join(dir, "rules.json");
        await Deno.writeTextFile(rules, JSON.stringify([{ match: "(a|a)*(a+)+$", sparsity: 0.5 }]));
        const r2 = await runProbe({
          task: "compile",
          args: [re, "--passes", `prune{rules=${rules} target=.}`],
          error: /$/,
        });
        assert.equal(r2.code, 0, r2.stderr);
        assert.ok(r2.seconds < 30, `took ${r2.seconds} s`);
        await assertProbe({
          task: "compile",
          args: [re, "--passes", String.raw`prune{target=(a)\1}`],
          error:
            /option 'target' is not a valid regex: a backreference \(not supported: names are matched in linear time\)/,
          code: 1,
        });
        await assertProbe({
          task: "compile",
          args: [re, "--passes", "prune{target=big block=4096x4096}"],
          error:
            /re\.sir:\d+:\d+: error: pass 'prune' failed: block 4096x4096 is larger than weight '@big' \(256x256/,
          code: 1,
        });
      });

      await t.step("--threads far above the cores is refused", async () => {
        const most = maxThreads();
        const error = new RegExp(`^error: --threads must be an integer from 1 to ${most} \\(4 per core`, "m");
        await assertProbe({ task: "run", args: [art, "--threads", "10000"], error, code: 2 });
        await assertProbe({
          task: "eval",
          args: [art, "--task", "sst2", "--data", join(dir, "none.tsv"), "--threads", "10000"],
          error,
          code: 2,
        });
      });

      await t.step("run --inputs: nesting, lengths and types are one line naming the input", async () => {
        const rng = new Random(17);
        const ids = () => Array.from({ length: 16 }, () => rng.int(30522));
        const good = () => ({
          input_ids: ids(),
          token_type_ids: new Array(16).fill(0),
          attention_mask: new Array(16).fill(1),
        });
        const deep = 100_000;
        const cases: [string, string, RegExp][] = [
          [
            "deep",
            `{"input_ids": ${"[".repeat(deep)}${"]".repeat(deep)}}`,
            /'input_ids' is nested deeper than its shape 1x16/,
          ],
          [
            "short",
            JSON.stringify({ ...good(), input_ids: [1, 2, 3] }),
            /'input_ids' has 3 values; shape 1x16 takes 16/,
          ],
          [
            "strings",
            JSON.stringify({ ...good(), input_ids: ids().map(String) }),
            /'input_ids' value 0 is "\d+", not a finite number/,
          ],
          [
            "nulls",
            JSON.stringify({ ...good(), attention_mask: new Array(16).fill(null) }),
            /'attention_mask' value 0 is null/,
          ],
          [
            "objects",
            JSON.stringify({ ...good(), token_type_ids: [{}] }),
            /'token_type_ids' value 0 is an object/,
          ],
          [
            "floats",
            JSON.stringify({ ...good(), input_ids: [0.5, ...ids().slice(1)] }),
            /'input_ids' value 0 is 0\.5; i64 takes integers/,
          ],
          [
            "range",
            JSON.stringify({ ...good(), input_ids: [30522, ...ids().slice(1)] }),
            /value 0 is 30522, outside \[0, 30522\)/,
          ],
          ["huge", " ".repeat(4 << 20), /bytes is more than inputs of this model take/],
        ];
        for (const [name, text, error] of cases) {
          const file = join(dir, `inputs-${name}.json`);
          await Deno.writeTextFile(file, text);
          await assertProbe({ task: "run", args: [art, "--inputs", file], error, code: 2, mib: 600 });
        }
        const missing = join(dir, "inputs-missing.json");
        await assertProbe({
          task: "run",
          args: [art, "--inputs", missing],
          error: /: no such file$/m,
          code: 1,
        });
      });

      await t.step("500 diagnostics print 20, then 'and 480 more errors'", async () => {
        const lines = ["module @many {", "  func @main(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>) {"];
        for (let i = 0; i < 500; i++) lines.push(`    %a${i} = softmax %x {axis = "a"} : tensor<2x4xf32>`);
        const many = join(dir, "many.sir");
        await Deno.writeTextFile(many, [...lines, "    return %x", "  }", "}", ""].join("\n"));
        for (const task of ["compile", "run"]) {
          const r = await runProbe({ task, args: [many], error: /$/ });
          assert.equal(r.code, 1, r.stderr);
          const err = r.stderr.trim().split("\n");
          assert.equal(err.filter((l) => /: error: /.test(l)).length, 20, r.stderr);
          assert.deepEqual(err.slice(-2), ["and 480 more errors", "500 errors"]);
          assert.ok(r.seconds < 30);
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("nameRegex agrees with RegExp on seeded patterns and names", () => {
  const rng = new Random(17);
  const pick = <T>(xs: readonly T[]) => xs[rng.int(xs.length)];
  const atoms = ["a", "b", ".", "[ab]", "[^a]", "\\d", "1", "\\.", "(a|b)", "(ab|a)", "(?:a|)", "[a-c1]"];
  const quantifiers = ["", "", "*", "+", "?", "{1,2}", "{2}", "*?", "{1,}"];
  let compared = 0;
  for (let k = 0; k < 2000; k++) {
    let source = rng.int(4) === 0 ? "^" : "";
    for (let j = rng.int(5); j >= 0; j--) source += pick(atoms) + pick(quantifiers);
    if (rng.int(4) === 0) source += "$";
    if (rng.int(5) === 0) source = `(${source})|${pick(atoms)}`;
    const re = new RegExp(source);
    const mine = nameRegex(source);
    for (let n = 0; n < 20; n++) {
      let name = "";
      for (let j = rng.int(8); j > 0; j--) name += pick(["a", "b", "1", ".", "c"]);
      assert.equal(mine.test(name), re.test(name), `/${source}/ on '${name}'`);
      compared++;
    }
  }
  assert.equal(compared, 40000);
  const target = String.raw`encoder\.layer\.\d+\..*(query|key|value|dense)\.weight$`;
  assert.ok(nameRegex(target).test("bert.encoder.layer.11.attention.self.query.weight"));
  assert.ok(!nameRegex(target).test("bert.encoder.layer.1.attention.self.query.bias"));
});

Deno.test("nameRegex: catastrophic patterns run in linear time; backtracking features are refused", () => {
  const long = "a".repeat(100_000) + ".weight";
  // Each would take longer than the age of the universe with a backtracking matcher.
  for (const p of ["(a+)+$", "(a|a)*$x", "(a*)*b", "(a|aa)+$", ".*.*.*.*.*.*.*.*z"]) {
    assert.equal(nameRegex(p).test(long), new RegExp(p).test("a".repeat(12) + ".weight"), p);
  }
  for (
    const [p, why] of [
      [String.raw`(a)\1`, /a backreference/],
      ["(?=a)", /lookaround/],
      ["(?<!a)b", /lookaround/],
      [String.raw`\bx`, /a word boundary/],
      ["a{5000}", /a repetition count out of range/],
      ["(a{1000}){1000}", /the pattern is too large/],
      ["(ab", /an unclosed group/],
      ["[z-a]", /a bad range/],
    ] as const
  ) {
    assert.throws(() => nameRegex(p), why, p);
  }
});

Deno.test("--threads allows 1 to 4 per core (at most 256); --inputs is read without recursion", async () => {
  const most = maxThreads();
  assert.equal(most, Math.min(256, 4 * navigator.hardwareConcurrency));
  assert.equal(threadsFlag(String(most)), most);
  assert.equal(threadsFlag(undefined), undefined);
  for (const bad of ["0", String(most + 1), "10000", "1.5", "-1", "x"]) {
    assert.throws(() => threadsFlag(bad), UsageError, bad);
  }
  const dir = await Deno.makeTempDir({ prefix: "sparrow-inputs-" });
  try {
    const file = join(dir, "in.json");
    const spec = [{ name: "ids", shape: [2, 3], dtype: "i32", limit: 10 }, {
      name: "x",
      shape: [2],
      dtype: "f32",
    }];
    await Deno.writeTextFile(file, JSON.stringify({ ids: [[1, 2, 3], [4, 5, 9]], x: [0.5, -1] }));
    assert.deepEqual(await readInputsJson(file, spec), { ids: [1, 2, 3, 4, 5, 9], x: [0.5, -1] });
    await Deno.writeTextFile(file, JSON.stringify({ ids: [[[1, 2, 3]], [4, 5, 9]], x: [0.5, -1] }));
    await assert.rejects(() => readInputsJson(file, spec), /'ids' is nested deeper than its shape 2x3/);
    await Deno.writeTextFile(file, JSON.stringify({ ids: [1, 2, 3, 4, 5, 9], x: [0.5, Infinity] }));
    await assert.rejects(() => readInputsJson(file, spec), /'x' value 1 is null, not a finite number/);
    await Deno.writeTextFile(file, JSON.stringify({ ids: [1, 2, 3, 4, 5, 9, 1] }));
    await assert.rejects(() => readInputsJson(file, spec), /'ids' has more than 6 values/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("formatDiagnostics shows 20, then counts the rest", () => {
  const ds = Array.from(
    { length: 25 },
    (_, i) => ({ loc: { file: "f.sir", line: i + 1, col: 1 }, message: `m${i}` }),
  );
  const lines = formatDiagnostics(ds).split("\n");
  assert.equal(lines.length, 21);
  assert.equal(lines[19], "f.sir:20:1: error: m19");
  assert.equal(lines[20], "and 5 more errors");
  assert.equal(formatDiagnostics(ds.slice(0, 20)).split("\n").length, 20);
  assert.equal(formatDiagnostics(ds, undefined, Infinity).split("\n").length, 25);
});

Deno.test("thrownMessage says something, on one line, for whatever was thrown", () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const badMessage = new Error("x");
  Object.defineProperty(badMessage, "message", {
    get() {
      throw new Error("no");
    },
  });
  const cases: [unknown, string | RegExp][] = [
    [new Error("line one\n  line two"), "line one line two"],
    [Symbol("s"), "Symbol(s)"],
    [null, "null"],
    [undefined, "undefined"],
    [42n, "42"],
    [{ code: 7 }, '{"code":7}'],
    [{ toString: () => "custom" }, "custom"],
    [{
      toJSON: () => {
        throw new Error("no");
      },
      toString: () => {
        throw new Error("no");
      },
    }, /^a value that cannot be printed \(object\)$/],
    [revoked.proxy, /^a value that cannot be printed \(object\)$/],
    [badMessage, /^Error: |^\{\}$|^a value/],
    ["y".repeat(1000), /^y{300}\.\.\.$/],
  ];
  for (const [value, want] of cases) {
    const said = thrownMessage(value);
    assert.ok(!said.includes("\n"), said);
    if (typeof want === "string") assert.equal(said, want);
    else assert.match(said, want);
  }
});
