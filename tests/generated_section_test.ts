/** Generated sections of the results page (cli/generated_section.ts). */

import assert from "node:assert/strict";
import { join } from "node:path";
import { replaceSection, writeSection } from "../cli/generated_section.ts";

Deno.test("replaceSection rewrites the body between the markers and keeps the rest", () => {
  const text = "a\n<!-- t:begin (generated) -->\nold\nlines\n<!-- t:end -->\nb\n";
  assert.equal(
    replaceSection(text, "t", "new\n\n"),
    "a\n<!-- t:begin (generated) -->\nnew\n<!-- t:end -->\nb\n",
  );
  // Idempotent: a second write gives the same text.
  const once = replaceSection(text, "t", "new");
  assert.equal(replaceSection(once, "t", "new"), once);
});

Deno.test("replaceSection names the file and the markers it needs", () => {
  assert.throws(
    () => replaceSection("no markers\n", "table2", "x", "docs/R.md"),
    /docs\/R\.md: no generated section 'table2'/,
  );
  assert.throws(
    () => replaceSection("<!-- t:end -->\n<!-- t:begin -->\n", "t", "x"),
    /no generated section 't'/,
  );
});

Deno.test("writeSection formats the file unless deno fmt excludes it, and then writes the body as it is", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-section-" });
  try {
    // As in the repository: docs/ is excluded from formatting.
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify({ fmt: { exclude: ["docs/"] } }));
    await Deno.mkdir(join(dir, "docs"));
    const page = "# r\n\n<!-- t:begin -->\n<!-- t:end -->\n";
    const body = "| a | b |\n|---|---:|\n| 1 | 22 |\n*  x\n";
    const excluded = join(dir, "docs", "results.md"), formatted = join(dir, "results.md");
    for (const f of [excluded, formatted]) {
      await Deno.writeTextFile(f, page);
      await writeSection(f, "t", body);
    }
    assert.equal(await Deno.readTextFile(excluded), `# r\n\n<!-- t:begin -->\n${body}<!-- t:end -->\n`);
    const text = await Deno.readTextFile(formatted);
    assert.match(text, /^\| a \| {1,2}b \|$/m, "the table aligned");
    assert.match(text, /^- x$/m, "the list normalized");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
