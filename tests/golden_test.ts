/**
 * Golden tests: one test per `tests/ir/*.sir` file, driven by the directives in its comments
 * (see `filecheck.ts`).
 *
 * - With ERROR directives: the diagnostics of `parse`, or of `verify` when parsing succeeds,
 *   must be exactly the expected ones.
 * - With CHECK directives: the printed module must match them.
 * - With neither: the file is canonical, `print(parse(text)) === text` byte for byte, and it
 *   must verify.
 * - Whenever a module comes out of `parse`, it is round-tripped: `parse(print(m))` is
 *   structurally equal to `m`, verifies the same, and `print` is idempotent.
 *
 * Verification runs without a weights map, so the `weights "file"` clause is never opened.
 */

import assert from "node:assert/strict";
import { type Diagnostic, formatDiagnostics } from "../ir/diagnostics.ts";
import type { Module } from "../ir/module.ts";
import { parse } from "../ir/parse.ts";
import { print } from "../ir/printer.ts";
import { verify } from "../ir/verifier.ts";
import { seededInputs, seededWeights } from "../ir/inputs.ts";
import { interpret } from "../ir/interpreter.ts";
import { createPassRegistry } from "../passes/index.ts";
import { runPipeline } from "../passes/manager.ts";
import { parsePipeline } from "../passes/pipeline.ts";
import {
  type Check,
  matchErrors,
  moduleData,
  parseDirectives,
  runChecks,
  stripDirectives,
} from "./filecheck.ts";

const DIR = new URL("./ir/", import.meta.url);

const messages = (ds: readonly Diagnostic[]) => ds.map((d) => d.message);

/** Print, parse back, compare; print again, compare text. */
function roundTrip(name: string, m: Module, printed: string, diagnostics: readonly Diagnostic[]): void {
  const again = parse(printed, { file: `${name} (printed)` });
  assert.ok(again.module, `printed module does not parse:\n${formatDiagnostics(again.diagnostics, printed)}`);
  assert.deepStrictEqual(moduleData(again.module), moduleData(m), "parse(print(m)) differs from m");
  assert.deepStrictEqual(
    messages(verify(again.module)),
    messages(diagnostics),
    "verify differs after printing",
  );
  assert.equal(print(again.module), printed, "print is not idempotent");
}

/**
 * Runs the RUN pipeline, matches CHECK lines against its output, and checks that the
 * interpreter gives the same outputs before and after, on seeded inputs and weights.
 */
function runPasses(name: string, m: Module, pipeline: string, checks: readonly Check[]): void {
  assert.ok(checks.length > 0, "a RUN file needs CHECK lines");
  assert.deepStrictEqual(messages(verify(m)), [], "a RUN file must verify before the passes");
  const weights = seededWeights(m, 1);
  const { module: out } = runPipeline(m, parsePipeline(pipeline, createPassRegistry()), { weights });
  const printed = print(out);
  const checkFailures = runChecks(stripDirectives(printed), checks);
  if (checkFailures.length > 0) assert.fail(`${checkFailures.join("\n")}\n\nprinted:\n${printed}`);
  roundTrip(name, out, printed, []);
  for (const f of m.funcs) {
    const inputs = seededInputs(f, 2);
    const want = interpret(m, inputs, weights, { func: f.name });
    const got = interpret(out, inputs, weights, { func: f.name });
    want.forEach((w, i) => {
      assert.deepStrictEqual(got[i].shape, w.shape, `@${f.name} result ${i}: shape`);
      w.data.forEach((x, j) => {
        const y = got[i].data[j];
        const close = Math.abs(x - y) <= 1e-5 * (1 + Math.abs(x)) || (Number.isNaN(x) && Number.isNaN(y));
        if (!close) assert.fail(`@${f.name} result ${i}[${j}]: ${y} after the passes, ${x} before`);
      });
    });
  }
}

async function runGolden(name: string): Promise<void> {
  const text = await Deno.readTextFile(new URL(name, DIR));
  const { run, checks, errors, problems } = parseDirectives(text);
  assert.deepStrictEqual(problems, [], "malformed directives");
  const parsed = parse(text, { file: name });
  const diagnostics = parsed.module ? verify(parsed.module) : parsed.diagnostics;
  const failures = matchErrors(
    diagnostics.map((d) => ({ line: d.loc.line, col: d.loc.col, message: d.message })),
    errors,
  );
  if (failures.length > 0) {
    assert.fail(`${failures.join("\n")}\n\nall diagnostics:\n${formatDiagnostics(diagnostics, text)}`);
  }
  if (!parsed.module) {
    assert.equal(checks.length, 0, "CHECK directives need a file that parses");
    return;
  }
  if (run !== undefined) return runPasses(name, parsed.module, run, checks);
  const printed = print(parsed.module);
  if (checks.length > 0) {
    const checkFailures = runChecks(stripDirectives(printed), checks);
    if (checkFailures.length > 0) assert.fail(`${checkFailures.join("\n")}\n\nprinted:\n${printed}`);
  } else if (errors.length === 0) {
    assert.equal(printed, text, "a file without directives must be canonical");
  }
  roundTrip(name, parsed.module, printed, diagnostics);
}

Deno.test("golden: the directives themselves", () => {
  const d = parseDirectives(
    "a // ERROR: here\n// ERROR@+1:7: below\n// ERROR@-2: above\n// ERROR@9:3: absolute\n// CHECK-NXT: typo\n",
  );
  assert.deepStrictEqual(d.errors.map((e) => [e.line, e.col, e.message]), [
    [1, undefined, "here"],
    [3, 7, "below"],
    [1, undefined, "above"],
    [9, 3, "absolute"],
  ]);
  assert.equal(d.problems.length, 1);
  const checks =
    parseDirectives("// CHECK: a\n// CHECK-NEXT: b\n// CHECK-NOT: x\n// CHECK: c\n// CHECK-EMPTY:\n").checks;
  assert.deepStrictEqual(runChecks(["a", "b", "y", "c", ""], checks), []);
  assert.equal(runChecks(["a", "", "b", "c", ""], checks).length, 1); // CHECK-NEXT b fails
  assert.equal(runChecks(["a", "b", "x", "c", ""], checks).length, 1); // CHECK-NOT x fails
  assert.equal(runChecks(["a", "b", "c", "d"], checks).length, 1); // CHECK-EMPTY fails
  assert.deepStrictEqual(stripDirectives("  // CHECK: a\nx  // ERROR: b\ny"), ["x", "y"]);
  const reported = [{ line: 1, col: 2, message: "m" }, { line: 3, col: 1, message: "n" }];
  assert.deepStrictEqual(matchErrors(reported, [{ line: 1, message: "m", directiveLine: 2 }]), [
    "unexpected: 3:1: n",
  ]);
  assert.equal(matchErrors(reported, [{ line: 1, col: 3, message: "m", directiveLine: 2 }]).length, 3);
});

const files = [...Deno.readDirSync(DIR)]
  .filter((e) => e.isFile && e.name.endsWith(".sir"))
  .map((e) => e.name)
  .sort();

Deno.test("golden: the corpus is there", () => {
  assert.ok(files.length >= 25, `only ${files.length} golden files in ${DIR.pathname}`);
});

for (const name of files) {
  Deno.test(`golden: ${name}`, () => runGolden(name));
}
