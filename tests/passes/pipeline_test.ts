/**
 * Pipeline text: parsing against a registry, printing back, and the errors with their
 * columns, suggestions and lists.
 */

import assert from "node:assert/strict";
import {
  definePass,
  entryOptions,
  formatOptionRange,
  formatOptionValue,
  parsePipeline,
  PassRegistry,
  PipelineError,
  printPipeline,
} from "../../mod.ts";
import { dce } from "../../passes/dce.ts";

/** A pass with one option of every kind. */
const tune = definePass({
  name: "tune",
  description: "Takes every kind of option.",
  options: {
    count: { type: "int", default: 3, doc: "an int" },
    ratio: { type: "number", default: 0.5, doc: "a number" },
    verbose: { type: "bool", default: false, doc: "a bool" },
    label: { type: "string", default: "none", doc: "a string" },
    mode: { type: "enum", values: ["fast", "slow"], default: "fast", doc: "an enum" },
    block: { type: "block", default: [1, 32], doc: "a block shape" },
  },
  runOnModule: () => "unchanged",
});

const registry = new PassRegistry([dce, tune]);

/** The PipelineError that parsing `text` throws. */
function parseError(text: string): PipelineError {
  try {
    parsePipeline(text, registry);
  } catch (e) {
    assert.ok(e instanceof PipelineError, `expected a PipelineError, got ${e}`);
    return e;
  }
  assert.fail(`'${text}' parsed`);
}

Deno.test("pipeline: canonical text prints back unchanged", () => {
  for (
    const text of [
      "",
      "dce",
      "dce,dce",
      "tune{count=7}",
      "tune{count=-2 ratio=0.25 verbose=true label=hello mode=slow block=4x4}",
      "tune{mode=slow count=1},dce,tune{block=32x1}",
      'tune{label="two words"}',
      'tune{label="a,b"}',
      'tune{label="x=y"}',
      'tune{label=""}',
      'tune{label="say \\"hi\\""}',
      "tune{ratio=1e-7}",
      "tune{label=path/to/file.txt}",
      'tune{label="a}b, c"}',
      'tune{label="{x}"},dce',
      'tune{label="a \\"}, b\\""}',
      "tune{label=back\\slash}",
      'tune{label="C:\\\\Program Files"}',
      'tune{label="two\\nlines\\ttab"}',
      'dce,tune{label="a}b" count=2},tune{mode=slow label=",,"}',
      "tune{ratio=-0.5 count=-9007199254740991}",
      "tune{ratio=1e+21}",
    ]
  ) {
    assert.equal(printPipeline(parsePipeline(text, registry)), text, text);
  }
});

Deno.test("pipeline: other spellings print in canonical form", () => {
  const cases: [string, string][] = [
    [" dce , tune{ count=1   verbose=false } ", "dce,tune{count=1 verbose=false}"],
    ["tune{}", "tune"],
    ["dce{},tune{  }", "dce,tune"],
    ["dce {} , dce", "dce,dce"],
    ["tune{ratio=-.5e+3}", "tune{ratio=-500}"],
    ["tune{ratio=1.}", "tune{ratio=1}"],
    ["tune{ratio=3E2}", "tune{ratio=300}"],
    ['tune{count="7"}', "tune{count=7}"],
    ['tune{label="\\u0041\\/"}', "tune{label=A/}"],
    ["tune{ratio=.5}", "tune{ratio=0.5}"],
    ["tune{ratio=2.50}", "tune{ratio=2.5}"],
    ['tune{label="plain"}', "tune{label=plain}"],
    ["tune{label=}", 'tune{label=""}'],
    ["   ", ""],
  ];
  for (const [text, canonical] of cases) {
    assert.equal(printPipeline(parsePipeline(text, registry)), canonical);
  }
});

Deno.test("pipeline: any string value round-trips through formatOptionValue and back", () => {
  const strings = [
    "",
    " ",
    "a}b, c",
    'say "hi"',
    "\\",
    '\\"',
    "}",
    "{",
    ",",
    "=",
    "a=b}",
    "tab\there\n",
    "é ü",
  ];
  for (const s of strings) {
    const text = `tune{label=${formatOptionValue(s)}}`;
    const p = parsePipeline(text, registry);
    assert.equal(p.entries[0].written.get("label"), s, text);
    assert.equal(printPipeline(p), text);
  }
});

Deno.test("pipeline: values are converted to their kinds; defaults fill the rest", () => {
  const p = parsePipeline('tune{count=7 verbose=true block=2x16 label="a b"}', registry);
  assert.equal(p.entries.length, 1);
  assert.equal(p.entries[0].pass, tune);
  assert.deepEqual([...p.entries[0].written], [["count", 7], ["verbose", true], ["block", [2, 16]], [
    "label",
    "a b",
  ]]);
  assert.deepEqual(entryOptions(p.entries[0]), {
    count: 7,
    ratio: 0.5,
    verbose: true,
    label: "a b",
    mode: "fast",
    block: [2, 16],
  });
  assert.deepEqual(entryOptions(parsePipeline("dce", registry).entries[0]), {});
});

Deno.test("pipeline: formatOptionValue quotes only what needs it", () => {
  assert.equal(formatOptionValue(3), "3");
  assert.equal(formatOptionValue(false), "false");
  assert.equal(formatOptionValue([1, 32]), "1x32");
  assert.equal(formatOptionValue("plain-text_1.2"), "plain-text_1.2");
  for (const s of ["a b", "a,b", "a{b", "a=b", 'a"b', ""]) {
    assert.equal(formatOptionValue(s), JSON.stringify(s), s);
  }
});

Deno.test("pipeline: an unknown pass names the closest one and lists every pass", () => {
  const e = parseError("dce,tnue{count=1}");
  assert.equal(e.col, 5);
  assert.equal(e.message, "unknown pass 'tnue' (did you mean 'tune'?); passes: dce, tune");
  const far = parseError("  zzzzzz");
  assert.equal(far.col, 3);
  assert.equal(far.message, "unknown pass 'zzzzzz'; passes: dce, tune");
});

Deno.test("pipeline: an unknown option names the closest one and lists the pass's options", () => {
  const e = parseError("tune{count=1 verbse=true}");
  assert.equal(e.col, 14);
  assert.equal(
    e.message,
    "unknown option 'verbse' of pass 'tune' (did you mean 'verbose'?); its options: count, ratio, verbose, label, mode, block",
  );
  const none = parseError("dce{aggressive=true}");
  assert.equal(none.col, 5);
  assert.equal(none.message, "unknown option 'aggressive' of pass 'dce'; it takes no options");
  // Keys are own options only, never inherited properties.
  assert.match(parseError("tune{constructor=1}").message, /unknown option 'constructor'/);
});

Deno.test("pipeline: bad values, per option kind, at the option's column", () => {
  const cases: [string, string][] = [
    ["count=1.5", "option 'count' of 'tune' must be an integer, got '1.5'"],
    ["count=ten", "option 'count' of 'tune' must be an integer, got 'ten'"],
    ["ratio=abc", "option 'ratio' of 'tune' must be a number, got 'abc'"],
    ["ratio=Infinity", "option 'ratio' of 'tune' must be a number, got 'Infinity'"],
    ["ratio=", "option 'ratio' of 'tune' must be a number, got ''"],
    ["verbose=yes", "option 'verbose' of 'tune' must be true or false, got 'yes'"],
    ["verbose=1", "option 'verbose' of 'tune' must be true or false, got '1'"],
    ["mode=medium", "option 'mode' of 'tune' must be one of fast, slow, got 'medium'"],
    ["block=32", "option 'block' of 'tune' must be a block shape RxC such as 1x32, got '32'"],
    ["block=0x32", "option 'block' of 'tune' must be a block shape RxC such as 1x32, got '0x32'"],
    ["block=1x", "option 'block' of 'tune' must be a block shape RxC such as 1x32, got '1x'"],
    ["ratio=0x10", "option 'ratio' of 'tune' must be a number, got '0x10'"],
    ["ratio=0b101", "option 'ratio' of 'tune' must be a number, got '0b101'"],
    ["ratio=1_000", "option 'ratio' of 'tune' must be a number, got '1_000'"],
    ["ratio=+1", "option 'ratio' of 'tune' must be a number, got '+1'"],
    ["ratio=1e", "option 'ratio' of 'tune' must be a number, got '1e'"],
    ["ratio=.", "option 'ratio' of 'tune' must be a number, got '.'"],
    ['ratio=" 1"', "option 'ratio' of 'tune' must be a number, got ' 1'"],
    ["ratio=1e999", "option 'ratio' of 'tune' is out of range, got '1e999'"],
    ["count=99999999999999999999", "option 'count' of 'tune' is out of range, got '99999999999999999999'"],
    ["count=9007199254740992", "option 'count' of 'tune' is out of range, got '9007199254740992'"],
    ["count=0x10", "option 'count' of 'tune' must be an integer, got '0x10'"],
    [
      "block=99999999999999999999x1",
      "option 'block' of 'tune' must be a block shape RxC such as 1x32, got '99999999999999999999x1'",
    ],
  ];
  for (const [option, message] of cases) {
    const e = parseError(`dce,tune{label=x ${option}}`);
    assert.equal(e.message, message, option);
    assert.equal(e.col, 18, option); // the column of the option's key
  }
});

Deno.test("pipeline: structural mistakes, with their columns", () => {
  const cases: [string, number, RegExp][] = [
    ["tune{count}", 6, /^option 'count' of 'tune' needs a value: count=\.\.\.$/],
    ["tune{count=1 count=2}", 14, /^option 'count' of 'tune' is given twice$/],
    ["tune{count=1", 13, /^missing '}' after the options of 'tune'$/],
    ["dce,", 4, /^expected a pass after ','$/],
    ["dce,  ", 4, /^expected a pass after ','$/],
    [",dce", 1, /^expected a pass name at ',dce'$/],
    ["dce,,dce", 5, /^expected a pass name at ',dce'$/],
    ["dce dce", 5, /^expected ',' between passes, found 'dce'$/],
    ["dce{}x", 6, /^expected ',' between passes, found 'x'$/],
    ["tune{count=1} dce", 15, /^expected ',' between passes, found 'dce'$/],
    ["dce}", 4, /^expected ',' between passes, found '}'$/],
    ["tune{count=1,dce}", 13, /^expected a space or '}' after option 'count' of 'tune', found ','$/],
    ['tune{label="a"b}', 15, /^expected a space or '}' after option 'label' of 'tune', found 'b'$/],
    ["tune{count=1 =2}", 14, /^expected an option of 'tune' or '}', found '='$/],
    ['tune{label="a}b"', 17, /^missing '}' after the options of 'tune'$/],
    ["dce,tune{", 10, /^missing '}' after the options of 'tune'$/],
    ['tune{label="abc', 12, /^unterminated string in option 'label' of 'tune'$/],
    ['tune{label="a\\"}', 12, /^unterminated string in option 'label' of 'tune'$/],
    ['dce,tune{count=1 label="x\\', 24, /^unterminated string in option 'label' of 'tune'$/],
    ['tune{label="a\\qb"}', 14, /^unknown escape '\\q' in option 'label' of 'tune'$/],
    ['tune{label="\\u12"}', 13, /^unknown escape '\\u' in option 'label' of 'tune'$/],
  ];
  for (const [text, col, message] of cases) {
    const e = parseError(text);
    assert.match(e.message, message, text);
    assert.equal(e.col, col, text);
  }
});

Deno.test("pipeline: a PipelineError is an Error with its column", () => {
  const e = parseError("nope");
  assert.ok(e instanceof Error);
  assert.equal(e.name, "PipelineError");
  assert.equal(e.col, 1);
});

/** A pass whose numeric options declare ranges. */
const ranged = definePass({
  name: "ranged",
  description: "Takes options with ranges.",
  options: {
    fraction: { type: "number", default: 0.5, min: 0, max: 1, maxExclusive: true, doc: "in [0, 1)" },
    count: { type: "int", default: 1, min: 1, doc: "at least 1" },
    step: { type: "number", default: 1, min: 0, minExclusive: true, doc: "greater than 0" },
    cap: { type: "int", default: 8, max: 8, doc: "at most 8" },
    block: { type: "block", default: [1, 1], min: 1, max: 64, doc: "each side in [1, 64]" },
  },
  runOnModule: () => "unchanged",
});

Deno.test("pipeline: values outside an option's range are refused at the option's column", () => {
  const ranges = new PassRegistry([ranged]);
  const error = (text: string) => {
    try {
      parsePipeline(text, ranges);
    } catch (e) {
      assert.ok(e instanceof PipelineError, `expected a PipelineError, got ${e}`);
      return `${e.col}: ${e.message}`;
    }
    assert.fail(`'${text}' parsed`);
  };
  assert.equal(error("ranged{fraction=1}"), "8: option 'fraction' of 'ranged' must be in [0, 1), got '1'");
  assert.equal(
    error("ranged{fraction=-0.1}"),
    "8: option 'fraction' of 'ranged' must be in [0, 1), got '-0.1'",
  );
  assert.equal(error("ranged{step=1 count=0}"), "15: option 'count' of 'ranged' must be at least 1, got '0'");
  assert.equal(error("ranged{step=0}"), "8: option 'step' of 'ranged' must be greater than 0, got '0'");
  assert.equal(error("ranged{cap=9}"), "8: option 'cap' of 'ranged' must be at most 8, got '9'");
  assert.equal(
    error("ranged{block=4x128}"),
    "8: option 'block' of 'ranged' must have each side in [1, 64], got '4x128'",
  );
  // The edges that are in range parse.
  const ok = parsePipeline("ranged{fraction=0 count=1 step=0.001 cap=8 block=64x1}", ranges);
  assert.equal(printPipeline(ok), "ranged{fraction=0 count=1 step=0.001 cap=8 block=64x1}");
});

Deno.test("pipeline: formatOptionRange says a range in words, and nothing without one", () => {
  const specs = ranged.options!;
  assert.equal(formatOptionRange(specs.fraction), "in [0, 1)");
  assert.equal(formatOptionRange(specs.count), "at least 1");
  assert.equal(formatOptionRange(specs.step), "greater than 0");
  assert.equal(formatOptionRange(specs.cap), "at most 8");
  assert.equal(formatOptionRange(tune.options!.ratio), undefined);
});
