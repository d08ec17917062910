/**
 * The generated parts of docs/ stay fresh: docs/passes.md's built-in pass reference is what
 * `deno task docs` would write now (regenerated in memory and compared), and it carries every
 * pass and option `deno task compile --list-passes` prints.
 */

import assert from "node:assert/strict";
import { passRegistry } from "../mod.ts";
import { PASSES_DOC, regeneratePassesDoc } from "../cli/docs.ts";
import { listPasses, passesMarkdown, passReference } from "../cli/list_passes.ts";

Deno.test("docs/passes.md: the built-in pass reference is fresh (else run deno task docs)", async () => {
  const text = await Deno.readTextFile(PASSES_DOC);
  const fresh = await regeneratePassesDoc(text);
  assert.ok(
    fresh === text,
    "docs/passes.md's generated section differs from the pass registry: run `deno task docs`",
  );
});

Deno.test("docs/passes.md: every pass and option --list-passes prints is in the reference", async () => {
  const registry = await passRegistry();
  const text = await Deno.readTextFile(PASSES_DOC);
  const section = /<!-- passes:begin[^>]*-->\n([\s\S]*)<!-- passes:end -->/.exec(text)?.[1] ?? "";
  const listed = listPasses(registry);
  for (const p of passReference(registry)) {
    assert.match(listed, new RegExp(`^  ${RegExp.escape(p.name)}: ${RegExp.escape(p.description)}$`, "m"));
    assert.ok(section.includes(`\n### ${p.name}\n\n${p.description}\n`), `pass ${p.name}`);
    for (const o of p.options) {
      const range = o.range ? `, ${o.range}` : "";
      assert.ok(
        listed.includes(`\n    ${o.name}=${o.type} (default ${o.default}${range}): ${o.doc}`),
        o.name,
      );
      const row = `| \`${o.name}\` | \`${o.type.replaceAll("|", "\\|")}\` |`;
      assert.ok(section.includes(row), `${p.name}: ${row}`);
    }
  }
});

Deno.test("passesMarkdown escapes pipes and backticks inside table cells", async () => {
  const registry = await passRegistry([{
    name: "odd-pass",
    description: "A | B.",
    options: {
      mode: { type: "enum", values: ["a", "b"], default: "a", doc: "x | y" },
      pattern: { type: "string", default: "`q`|r", doc: "ticks" },
      share: { type: "number", default: 0.5, min: 0, max: 1, maxExclusive: true, doc: "a fraction" },
    },
    runOnModule: () => "unchanged",
  }]);
  const md = passesMarkdown(registry);
  assert.match(md, /^\| \[`odd-pass`\]\(#odd-pass\) \| A \\\| B\. \| 3 \|$/m);
  assert.match(md, /^\| `mode` \| `a\\\|b` \| `a` \| {2}\| x \\\| y \|$/m);
  assert.match(md, /^\| `pattern` \| `string` \| `` `q`\\\|r `` \| {2}\| ticks \|$/m);
  assert.match(md, /^\| `share` \| `number` \| `0\.5` \| in \[0, 1\) \| a fraction \|$/m);
});

Deno.test("regeneratePassesDoc keeps the rest of the page, is idempotent and needs both markers", async () => {
  const page = "a\n<!-- passes:begin (generated) -->\nold\n<!-- passes:end -->\nb\n";
  const once = await regeneratePassesDoc(page, "p.md");
  assert.match(once, /^a\n<!-- passes:begin \(generated\) -->\n\n\| pass \|[^]*\n<!-- passes:end -->\nb\n$/);
  assert.doesNotMatch(once, /\nold\n/);
  assert.equal(await regeneratePassesDoc(once, "p.md"), once, "idempotent");
  await assert.rejects(
    () => regeneratePassesDoc("no markers\n", "p.md"),
    /p\.md: no generated section 'passes'/,
  );
});
