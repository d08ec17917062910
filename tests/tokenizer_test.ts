/**
 * The BERT tokenizer (`frontend/tokenizer.ts`): ids equal the golden `input_ids` of sst2-bert-mini
 * on every SST-2 dev row, from `tokenizer.json` and from `vocab.txt` alone (ignored when
 * `../shared` is absent); missing files are one-line errors.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readSst2Tsv } from "../frontend/sst2.ts";
import { jsonTooDeep, loadTokenizer, readBoundedText, TokenizerError } from "../frontend/tokenizer.ts";

const SHARED = fileURLToPath(new URL("../../shared/", import.meta.url));
const MODEL = join(SHARED, "models/sst2-bert-mini");
const DEV = join(SHARED, "data/sst2/dev.tsv");

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const HAVE = [
  "tokenizer.json",
  "vocab.txt",
  "tokenizer_config.json",
  "golden_dev.jsonl",
].every((f) => exists(join(MODEL, f))) && exists(DEV);

interface Golden {
  idx: number;
  input_ids: number[];
  logits: number[];
  pred: number;
  label: number;
  sentence: string;
}

async function golden(): Promise<Golden[]> {
  const text = await Deno.readTextFile(join(MODEL, "golden_dev.jsonl"));
  return text.split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
}

/** Compares a tokenizer with the golden ids on all dev rows, reporting the first mismatches. */
async function checkAll(dir: string): Promise<void> {
  const tok = await loadTokenizer(dir);
  const rows = await readSst2Tsv(DEV);
  const gold = await golden();
  assert.equal(rows.length, 872);
  assert.equal(gold.length, rows.length);
  const bad: string[] = [];
  rows.forEach((row, i) => {
    assert.equal(row.sentence, gold[i].sentence, `row ${i}: the TSV and golden sentences differ`);
    assert.equal(row.label, gold[i].label);
    const ids = tok.encode(row.sentence);
    if (JSON.stringify(ids) !== JSON.stringify(gold[i].input_ids)) {
      bad.push(`row ${i} '${row.sentence}': ${JSON.stringify(ids)} vs ${JSON.stringify(gold[i].input_ids)}`);
    }
  });
  assert.deepEqual(bad.slice(0, 5), [], `${bad.length} of ${rows.length} rows differ`);
}

Deno.test({
  name: "tokenizer: tokenizer.json gives the golden ids on all 872 SST-2 dev rows",
  ignore: !HAVE,
  fn: () => checkAll(MODEL),
});

Deno.test({
  name: "tokenizer: vocab.txt alone gives the same ids on all 872 rows",
  ignore: !HAVE,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-tok-" });
    try {
      for (const f of ["vocab.txt", "tokenizer_config.json"]) {
        await Deno.copyFile(join(MODEL, f), join(dir, f));
      }
      const tok = await loadTokenizer(dir);
      assert.equal(tok.source, join(dir, "vocab.txt"));
      await checkAll(dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "tokenizer: special ids, accents, CJK, punctuation and over-long words",
  ignore: !HAVE,
  fn: async () => {
    const tok = await loadTokenizer(MODEL);
    assert.deepEqual([tok.clsId, tok.sepId, tok.padId], [101, 102, 0]);
    assert.deepEqual(tok.encode(""), [101, 102]);
    // Lower-cased and accents stripped: "Café" is "cafe".
    assert.deepEqual(tok.encode("Café"), tok.encode("cafe"));
    // Punctuation is split off, CJK characters stand alone.
    assert.deepEqual(tok.encode("good!"), tok.encode("good !"));
    assert.deepEqual(tok.encode("中文"), tok.encode("中 文"));
    // A word of more than 100 characters is [UNK].
    assert.deepEqual(tok.encode("a".repeat(101)), [101, 100, 102]);
  },
});

Deno.test("tokenizer: a folder without tokenizer.json or vocab.txt is a one-line error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-tok-" });
  try {
    await assert.rejects(
      () => loadTokenizer(dir),
      (e) => e instanceof TokenizerError && /no tokenizer\.json or vocab\.txt/.test(e.message),
    );
    await Deno.writeTextFile(join(dir, "vocab.txt"), "[PAD]\nhello\n");
    await assert.rejects(
      () => loadTokenizer(dir),
      (e) => e instanceof TokenizerError && /has no \[UNK\] token/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizer files: nesting is measured without recursion; deep, special or oversized files are refused", async () => {
  let deep: unknown = 1;
  for (let i = 0; i < 200_000; i++) deep = [deep];
  assert.equal(jsonTooDeep({ a: [[1]] }), undefined);
  assert.match(jsonTooDeep({ a: deep })!, /^a\[0\]\[0\]/);
  assert.ok(jsonTooDeep({ a: deep })!.length <= 60);
  const dir = await Deno.makeTempDir({ prefix: "sparrow-tok-" });
  try {
    const file = join(dir, "tokenizer.json");
    await Deno.writeTextFile(file, `{"model": ${"[".repeat(1000)}${"]".repeat(1000)}}`);
    await assert.rejects(loadTokenizer(dir), /tokenizer\.json: nests deeper than 64 levels at model\[0\]/);
    await Deno.remove(file);
    await Deno.mkdir(file);
    await assert.rejects(loadTokenizer(dir), /tokenizer\.json: not a regular file/);
    const error = (m: string) => new TokenizerError(m);
    await Deno.writeTextFile(join(dir, "big.json"), "x".repeat(2000));
    await assert.rejects(
      readBoundedText(join(dir, "big.json"), 1000, error),
      /big\.json: 2000 bytes, over the 1000-byte limit/,
    );
    assert.equal(await readBoundedText(join(dir, "none.json"), 1000, error), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
