/**
 * `deno task docs [--check]`: writes the generated parts of docs/. Today that is the built-in
 * pass reference in docs/passes.md, between `<!-- passes:begin ... -->` and `<!-- passes:end -->`,
 * made from the same registry data `deno task compile --list-passes` prints. `--check` writes
 * nothing and exits 1 when the file is stale (tests/docs_test.ts does the same).
 */

import { fileURLToPath } from "node:url";
import { passRegistry } from "../mod.ts";
import { main, parseCli, UsageError } from "./common.ts";
import { replaceSection } from "./generated_section.ts";
import { passesMarkdown } from "./list_passes.ts";

/** The page holding the pass reference. */
export const PASSES_DOC: string = fileURLToPath(new URL("../docs/passes.md", import.meta.url));

/** The name of the generated section in docs/passes.md. */
export const PASSES_SECTION = "passes";

/** docs/passes.md as it should be: `text` with the built-in pass reference regenerated. */
export async function regeneratePassesDoc(text: string, file = PASSES_DOC): Promise<string> {
  const body = `\n${passesMarkdown(await passRegistry()).trim()}\n`;
  try {
    return replaceSection(text, PASSES_SECTION, body, file);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

if (import.meta.main) {
  main(async () => {
    const { values } = parseCli(Deno.args, {
      check: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    });
    if (values.help) return void console.log("usage: deno task docs [--check]");
    const text = await Deno.readTextFile(PASSES_DOC);
    const fresh = await regeneratePassesDoc(text);
    if (fresh === text) return void console.error("docs/passes.md is up to date");
    if (values.check) {
      console.error("docs/passes.md is stale: run deno task docs");
      return 1;
    }
    await Deno.writeTextFile(PASSES_DOC, fresh);
    console.error("wrote docs/passes.md");
  });
}
