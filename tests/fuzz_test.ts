/**
 * Mutation fuzzing of the parser, verifier and printer. Valid golden files (`tests/ir/*.sir`
 * without ERROR directives) are mutated with a fixed-seed PRNG; for every variant:
 *
 * - `parse`, and `verify` when a module comes out, return instead of throwing, in bounded time;
 * - no diagnostic is an "internal error" or "the input nests too deeply" (the catch-alls);
 * - every diagnostic has an integer line >= 1, col >= 1 and a non-empty message;
 * - a module that verifies prints, parses back to the same structure, verifies, and prints the
 *   same text again.
 */

import assert from "node:assert/strict";
import type { Diagnostic } from "../ir/diagnostics.ts";
import { builtinRegistry } from "../ir/ops/index.ts";
import { parse } from "../ir/parse.ts";
import { print } from "../ir/printer.ts";
import { DTYPES } from "../ir/types.ts";
import { verify } from "../ir/verifier.ts";
import { moduleData, parseDirectives } from "./filecheck.ts";

const SEED = 0x5eed_2024;
const VARIANTS = 10_000;
/** A single parse + verify taking longer than this counts as a hang. */
const SLOW_MS = 1000;

/** mulberry32: a small, fast PRNG with a 32-bit state. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHARS = [
  ...`%@"<>{}[](),:=x-.0123456789afinrstxz_ /\\`,
  "\n",
  "\r",
  "\t",
  "\u0000",
  "\u00a0",
  "é",
  "😀",
  "\u2028",
];
// deno-fmt-ignore
const TOKENS = [
  "module", "func", "return", "weights", "attributes", "tensor", "dense", "bsr", "nnz", "%x", "%y", "@w",
  '%"a b"', '@""', "->", "<", ">", "{", "}", "[", "]", "(", ")", ",", ":", "=", "0", "1", "-1", "1.5",
  "1e9", "inf", "-inf", "nan", "true", "false", '"s"', '"\\q"', "1x32", "0x0", "1x2x3", "2x4xf32", "f32",
  "i64", "bool", "f33", "// comment\n", "\n", "", "add", "gelu", "constant", "transpose_b", "axis", "perm",
  "value", "constructor", "__proto__", "tensor<f32>", "tensor<2x2xf32, bsr<1x1, nnz = 9>>",
];
// deno-fmt-ignore
const NUMBERS = [
  "99999999999999999999", "-1", "0", "-0", "0.5", "-0.0", "1e308", "1e999", "-1e999", "2147483648",
  "65536", "007", "1.5e-320", "4294967297", "9007199254740993", "123456789012345678901234567890",
];

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
const at = (r: Rand, s: string) => Math.floor(r() * (s.length + 1));

/** Rough tokens of IR text: quoted names, words with sigils, arrows, single characters. */
const TOKEN_RE = /[%@]"(?:[^"\\\n]|\\.)*"|"(?:[^"\\\n]|\\.)*"|[%@]?[\w.$-]+|->|\S/g;
const NUMBER_RE = /-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?/g;
const NAME_RE = /[%@](?:"(?:[^"\\\n]|\\.)*"|[\w.$-]+)/g;
const DTYPE_RE = /(?<=[x<])(?:f32|f16|bf16|f64|i64|i32|i8|u8|bool)(?=[>,])/g;
const OP_RE = /(?<== )[a-z_]+(?= )/g;

function spans(re: RegExp, s: string): [number, number][] {
  return [...s.matchAll(re)].map((m) => [m.index!, m.index! + m[0].length]);
}

function replaceSpan(r: Rand, s: string, re: RegExp, by: string[]): string {
  const all = spans(re, s);
  if (all.length === 0) return s;
  const [from, to] = pick(r, all);
  return s.slice(0, from) + pick(r, by) + s.slice(to);
}

function mapLines(s: string, f: (lines: string[]) => void): string {
  const lines = s.split("\n");
  f(lines);
  return lines.join("\n");
}

/** Deep nesting of one bracket kind, closed or not, sometimes inside `dense<`. */
function nesting(r: Rand): string {
  const depth = pick(r, [63, 64, 65, 100, 1000, 5000, 20000]);
  const [open, close] = pick(r, [["[", "]"], ["[", "]"], ["{", "}"], ["(", ")"], ["<", ">"], [
    "dense<",
    ">",
  ]]);
  const body = open.repeat(depth) + (r() < 0.5 ? "1" + close.repeat(depth) : "");
  return r() < 0.5 ? `dense<${body}>` : body;
}

/** `s` with `remove` characters at a random place replaced by `insert`. */
function splice(r: Rand, s: string, insert: string, remove = 0): string {
  const i = at(r, s);
  return s.slice(0, i) + insert + s.slice(i + remove);
}

const MUTATIONS: ((r: Rand, s: string) => string)[] = [
  // Characters, lines, tokens:
  (r, s) => splice(r, s, "", 1),
  (r, s) => splice(r, s, pick(r, CHARS)),
  (r, s) => splice(r, s, pick(r, CHARS), 1),
  (r, s) => mapLines(s, (l) => l.splice(Math.floor(r() * l.length), 1)),
  (r, s) => mapLines(s, (l) => l.splice(Math.floor(r() * l.length), 0, pick(r, l))),
  (r, s) =>
    mapLines(s, (l) => {
      const i = Math.floor(r() * l.length), j = Math.floor(r() * l.length);
      [l[i], l[j]] = [l[j], l[i]];
    }),
  (r, s) => replaceSpan(r, s, TOKEN_RE, TOKENS),
  (r, s) => splice(r, s, pick(r, TOKENS) + " "),
  (r, s) => s.slice(0, at(r, s)),
  (r, s) => replaceSpan(r, s, NUMBER_RE, NUMBERS),
  (r, s) => splice(r, s, nesting(r)),
  (r, s) => replaceSpan(r, s, /dense<[^>]*>|\[[^\]]*\]/g, [nesting(r)]),
  // Changes that often keep the syntax, to reach the verifier and the printer:
  (r, s) => replaceSpan(r, s, NAME_RE, s.match(NAME_RE) ?? []),
  (r, s) => replaceSpan(r, s, DTYPE_RE, [...DTYPES, "f33"]),
  (r, s) => replaceSpan(r, s, OP_RE, [...builtinRegistry.names(), "densee"]),
  (r, s) => replaceSpan(r, s, NUMBER_RE, ["0", "1", "2", "3", "4", "8", "-1", "-2", "0.5"]),
];

function mutate(r: Rand, s: string): string {
  const n = r() < 0.6 ? 1 : 2 + Math.floor(r() * 2);
  for (let i = 0; i < n; i++) s = pick(r, MUTATIONS)(r, s);
  return s;
}

/** -0 and 0 print alike (formatFloat), so structural comparison treats them alike. */
function zeroes(x: unknown): unknown {
  if (Object.is(x, -0)) return 0;
  if (Array.isArray(x)) return x.map(zeroes);
  if (x && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, zeroes(v)]));
  }
  return x;
}

function checkDiagnostics(ds: readonly Diagnostic[], what: string): void {
  for (const d of ds) {
    assert.ok(Number.isInteger(d.loc.line) && d.loc.line >= 1, `${what}: bad line in ${JSON.stringify(d)}`);
    assert.ok(Number.isInteger(d.loc.col) && d.loc.col >= 1, `${what}: bad col in ${JSON.stringify(d)}`);
    assert.ok(typeof d.message === "string" && d.message.trim() !== "", `${what}: empty message`);
    assert.ok(!d.message.includes("internal error"), `${what}: ${d.message}`);
    assert.ok(!d.message.includes("nests too deeply"), `${what}: ${d.message}`);
  }
}

type Outcome = "rejected by parse" | "rejected by verify" | "valid";

/** Runs one input through parse, verify and the round trip, asserting the invariants. */
function check(text: string): Outcome {
  const start = performance.now();
  const parsed = parse(text);
  checkDiagnostics(parsed.diagnostics, "parse");
  if (!parsed.module) {
    assert.ok(parsed.diagnostics.length > 0, "no module and no diagnostics");
    return "rejected by parse";
  }
  const diagnostics = verify(parsed.module);
  checkDiagnostics(diagnostics, "verify");
  assert.ok(performance.now() - start < SLOW_MS, `parse + verify took ${performance.now() - start} ms`);
  if (diagnostics.length > 0) return "rejected by verify";
  const printed = print(parsed.module);
  const again = parse(printed);
  assert.ok(again.module, `the printed module does not parse: ${again.diagnostics[0]?.message}\n${printed}`);
  assert.deepStrictEqual(verify(again.module), [], "the printed module does not verify");
  assert.deepStrictEqual(zeroes(moduleData(again.module)), zeroes(moduleData(parsed.module)));
  assert.equal(print(again.module), printed, "print is not idempotent");
  return "valid";
}

async function seeds(): Promise<string[]> {
  const dir = new URL("./ir/", import.meta.url);
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".sir")) continue;
    const text = await Deno.readTextFile(new URL(e.name, dir));
    if (parseDirectives(text).errors.length === 0) out.push(`${e.name}\n${text}`);
  }
  return out.sort().map((s) => s.slice(s.indexOf("\n") + 1));
}

Deno.test("fuzz: mutated IR never crashes parse, verify or print", async () => {
  const bases = await seeds();
  assert.ok(bases.length >= 10, `only ${bases.length} valid golden files to mutate`);
  for (const b of bases) assert.equal(check(b), "valid");
  const r = prng(SEED);
  const counts: Record<Outcome, number> = { "rejected by parse": 0, "rejected by verify": 0, "valid": 0 };
  const start = performance.now();
  for (let i = 0; i < VARIANTS; i++) {
    const variant = mutate(r, pick(r, bases));
    try {
      counts[check(variant)]++;
    } catch (e) {
      const shown = variant.length > 2000
        ? `${variant.slice(0, 2000)}... (${variant.length} chars)`
        : variant;
      throw new Error(`variant ${i} (seed ${SEED}): ${(e as Error).message}\n--- input ---\n${shown}`);
    }
  }
  const ms = (performance.now() - start).toFixed(0);
  const { valid, "rejected by verify": unverified, "rejected by parse": unparsed } = counts;
  console.log(
    `fuzz: ${VARIANTS} variants of ${bases.length} files in ${ms} ms: ${valid} parsed and verified, ` +
      `${unverified} parsed but failed to verify, ${unparsed} failed to parse`,
  );
});

Deno.test("fuzz: inputs that once broke the parser", () => {
  const fn = (body: string) =>
    `module @m {\n  func @f(%x: tensor<2xf32>) -> () {\n${body}\n    return\n  }\n}\n`;
  const cases = [
    "", // empty input
    "module", // ends after one token
    "\u0000\u00a0😀",
    fn(`    %c = constant {value = dense<${"[".repeat(100_000)}1${"]".repeat(100_000)}>} : tensor<f32>`),
    fn(`    %c = constant {value = dense<${"[".repeat(100_000)}>} : tensor<f32>`),
    "[".repeat(100_000),
    fn("    %a = add %x, %x {constructor = 1, __proto__ = 2, toString = 3} : tensor<2xf32>"),
    fn("    %c = constant {value = dense<[[1], [[2]]]>} : tensor<2x1x1xf32>"),
    fn("    %c = constant {value = dense<[123456789012345678901234]>} : tensor<1xi64>"),
    "module @m {\r  func @f() -> () {\r #\r return\r }\r}", // lone CR is not a line break
    "module @m {\n  // lost?\n  weights {\n  }\n}\n", // empty weights block with a comment
    "module @m {\n  func @f() -> () {\n\n    return\n  }\n\n\n  func @g() -> () {\n    return\n  }\n}\n",
    'module @m {\n  func @f(%"a b": tensor<2xf32>) -> () {\n    %c = add %"a c", %"a c" : tensor<2xf32>\n    return\n  }\n}\n',
  ];
  for (const c of cases) check(c);
  // A lone CR does not start a line: the error is on line 1.
  const cr = parse("module @m {\r #\r}").diagnostics;
  assert.deepStrictEqual(cr.map((d) => [d.loc.line, d.loc.col]), [[1, 14]]);
  // The suggestion is written as a name is written, quoted when it has to be.
  const quoted = parse(cases[12]).diagnostics.map((d) => d.message);
  assert.ok(quoted[0].endsWith(`(did you mean '%"a b"'?)`), quoted[0]);
});
