/** Generated README sections (bench/readme_section.ts). */

import assert from "node:assert/strict";
import { replaceSection } from "../bench/readme_section.ts";

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
