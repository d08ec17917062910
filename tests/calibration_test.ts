/**
 * The driver's side of calibration (`driver/calibration.ts`): `prepareSentences` reads the TSV a
 * pass declared with eval's reader, draws with the seeded choice and tokenizes with eval's
 * tokenizer (ids equal eval's), finds the model's tokenizer, and reports a missing file, a header
 * without a sentence column, a missing tokenizer and an empty file as one line naming the option;
 * `declaredReads` lists exactly the files the passes read. Also the sentence-only TSV reader.
 */

import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { CalibrationError, declaredReads, prepareSentences, seededChoice } from "../driver/calibration.ts";
import { EvalError, parseSentencesTsv, parseSst2Tsv } from "../frontend/sst2.ts";
import { loadTokenizer } from "../frontend/tokenizer.ts";
import { createPassRegistry } from "../passes/index.ts";
import { parsePipeline } from "../passes/pipeline.ts";

const SST2_MINI = new URL("../../shared/models/sst2-bert-mini", import.meta.url).pathname;

const ROWS = [
  "it 's a charming journey . ",
  "a dull , lifeless film ",
  "wonderful acting ",
  "flat ",
  "a gem ",
];

/** A temporary folder holding `cal.tsv` with `text`, for the duration of `body`. */
async function withTsv(
  text: string,
  body: (dir: string, tsv: string) => void | Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-calibration-" });
  try {
    const tsv = join(dir, "cal.tsv");
    await Deno.writeTextFile(tsv, text);
    await body(dir, tsv);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function pipeline(text: string) {
  return parsePipeline(text, createPassRegistry());
}

Deno.test("calibration: seeded choice of rows", () => {
  const a = seededChoice(1000, 10, 3);
  assert.equal(new Set(a).size, 10);
  assert.ok(a.every((i) => i >= 0 && i < 1000));
  assert.deepEqual(seededChoice(1000, 10, 3), a);
  assert.notDeepEqual(seededChoice(1000, 10, 4), a);
  assert.deepEqual(seededChoice(3, 10, 0).sort(), [0, 1, 2]);
  assert.deepEqual(seededChoice(3, 0, 0), []);
  assert.deepEqual(seededChoice(3, -2, 0), []);
});

Deno.test("calibration: the sentence-only TSV reader takes a 'text' header without labels; eval's still needs them", () => {
  assert.deepEqual(parseSentencesTsv("id\ttext\n1\tgood\n2\tbad\n", "a.tsv"), ["good", "bad"]);
  assert.deepEqual(parseSentencesTsv("sentence\tlabel\r\ngood\t1\r\n", "a.tsv"), ["good"]);
  assert.throws(() => parseSentencesTsv("words\tlabel\ngood\t1\n", "a.tsv"), {
    name: "EvalError",
    message: "a.tsv:1: the header must name a column 'sentence' (or 'text'), got 'words\tlabel'",
  });
  assert.throws(() => parseSentencesTsv("", "a.tsv"), /^EvalError: a\.tsv: empty \(expected a header naming/);
  assert.throws(
    () => parseSentencesTsv("text\tlabel\ngood\n", "a.tsv"),
    /a\.tsv:2: expected 2 tab-separated cells, got 1/,
  );
  assert.throws(
    () => parseSst2Tsv("text\ngood\n", "a.tsv"),
    (e: unknown) =>
      e instanceof EvalError &&
      e.message ===
        "a.tsv:1: the header must name the columns 'sentence' (or 'text') and 'label', got 'text'",
  );
});

Deno.test("calibration: prepareSentences draws with the seeded choice and tokenizes as eval does", async () => {
  await withTsv(`text\n${ROWS.join("\n")}\n`, async (dir, tsv) => {
    const p = pipeline(
      `canonicalize,prune-reconstruct{calibration=3 seed=5 calibration-data=${JSON.stringify(tsv)}},` +
        `prune-reconstruct{calibration-data=random}`,
    );
    // tokenizer="" : the first of the model folders that holds tokenizer.json.
    const prepared = await prepareSentences(p, [dir, SST2_MINI]);
    assert.deepEqual([...prepared.keys()], [p.entries[1]], "only the entry that asked for sentences");
    const s = prepared.get(p.entries[1])!;
    const tok = await loadTokenizer(SST2_MINI);
    assert.equal(s.source, tsv);
    assert.equal(s.available, 5);
    assert.deepEqual(s.ids, seededChoice(5, 3, 5).map((i) => tok.encode(ROWS[i])));
    assert.equal(s.sepId, tok.sepId);
    assert.equal(s.padId, tok.padId);
    assert.ok(s.ids.every((ids) => ids[0] === tok.clsId && ids.at(-1) === tok.sepId));
  });
});

Deno.test("calibration: more sentences asked for than the file has gives all of them", async () => {
  await withTsv(`sentence\tlabel\n${ROWS.map((r) => `${r}\t1`).join("\n")}\n`, async (_dir, tsv) => {
    const p = pipeline(`prune-reconstruct{calibration=50 calibration-data=${JSON.stringify(tsv)}}`);
    const s = (await prepareSentences(p, [SST2_MINI])).get(p.entries[0])!;
    assert.equal(s.available, 5);
    assert.equal(s.ids.length, 5);
    const tok = await loadTokenizer(SST2_MINI);
    assert.deepEqual(
      s.ids.map((ids) => JSON.stringify(ids)).sort(),
      ROWS.map((r) => JSON.stringify(tok.encode(r))).sort(),
    );
  });
});

Deno.test("calibration: errors are one line naming the option and the file", async () => {
  const fails = async (p: string, dirs: string[], re: RegExp) => {
    await assert.rejects(() => prepareSentences(pipeline(p), dirs), (e: unknown) => {
      assert.ok(e instanceof CalibrationError, String(e));
      assert.equal(e.pass, "prune-reconstruct");
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), e.message);
      return true;
    });
  };
  await withTsv("words\tlabel\ngood\t1\n", async (dir, tsv) => {
    const missing = join(dir, "missing.tsv");
    await fails(
      `prune-reconstruct{calibration-data=${JSON.stringify(missing)}}`,
      [SST2_MINI],
      new RegExp(`^option 'calibration-data': cannot read '${RegExp.escape(missing)}': `),
    );
    await fails(
      `prune-reconstruct{calibration-data=${JSON.stringify(tsv)}}`,
      [SST2_MINI],
      /^option 'calibration-data': .*cal\.tsv:1: the header must name a column 'sentence' \(or 'text'\)/,
    );
    await Deno.writeTextFile(tsv, "sentence\tlabel\n");
    await fails(
      `prune-reconstruct{calibration-data=${JSON.stringify(tsv)}}`,
      [SST2_MINI],
      /^option 'calibration-data': '.*cal\.tsv' has no rows$/,
    );
    await Deno.writeTextFile(tsv, "sentence\tlabel\ngood\t1\n");
    // A tokenizer folder without a tokenizer; the model's folders without one.
    await fails(
      `prune-reconstruct{calibration-data=${JSON.stringify(tsv)} tokenizer=${JSON.stringify(dir)}}`,
      [SST2_MINI],
      new RegExp(
        `^option 'tokenizer': ${RegExp.escape(dir)}: no tokenizer\\.json or vocab\\.txt \\(the tokenizer\\)$`,
      ),
    );
    await fails(
      `prune-reconstruct{calibration-data=${JSON.stringify(tsv)}}`,
      [dir],
      /^option 'tokenizer': .*: no tokenizer\.json or vocab\.txt \(the tokenizer\) \(set tokenizer=DIR, the folder with tokenizer\.json\)$/,
    );
    await fails(
      `prune-reconstruct{calibration-data=${JSON.stringify(tsv)}}`,
      [],
      /^option 'tokenizer': no model folder to look for a tokenizer in \(set tokenizer=DIR/,
    );
  });
});

Deno.test("calibration: declaredReads lists the TSV and the tokenizer files, nothing for random ids", async () => {
  await withTsv("sentence\tlabel\ngood\t1\n", (dir, tsv) => {
    const tokenizerFiles = (d: string) =>
      ["tokenizer.json", "tokenizer_config.json", "vocab.txt"].map((f) => resolve(d, f));
    const text = `prune-reconstruct{calibration-data=${JSON.stringify(tsv)}}`;
    // The model file's folder is looked in first, then the weights file's, which has it.
    assert.deepEqual(declaredReads(pipeline(text), [dir, SST2_MINI]), [
      resolve(tsv),
      resolve(dir, "tokenizer.json"),
      ...tokenizerFiles(SST2_MINI),
    ]);
    assert.deepEqual(declaredReads(pipeline(text), [SST2_MINI, dir]), [
      resolve(tsv),
      ...tokenizerFiles(SST2_MINI),
    ]);
    // No tokenizer.json in any model folder (or none this process may see): all their files.
    assert.deepEqual(declaredReads(pipeline(text), [dir]), [resolve(tsv), ...tokenizerFiles(dir)]);
    const weightsDir = join(dir, "weights");
    assert.deepEqual(declaredReads(pipeline(text), [dir, weightsDir]), [
      resolve(tsv),
      ...tokenizerFiles(dir),
      ...tokenizerFiles(weightsDir),
    ]);
    assert.deepEqual(
      declaredReads(pipeline(`prune-reconstruct{calibration-data=${JSON.stringify(tsv)} tokenizer=tok}`), [
        dir,
      ]),
      [resolve(tsv), ...tokenizerFiles("tok")],
    );
    // Two entries reading the same files list them once; passes that read nothing add nothing.
    assert.deepEqual(declaredReads(pipeline(`canonicalize,${text},${text}`), [SST2_MINI]), [
      resolve(tsv),
      ...tokenizerFiles(SST2_MINI),
    ]);
    assert.deepEqual(declaredReads(pipeline("prune-reconstruct{calibration-data=random},dce"), [dir]), []);
  });
});
