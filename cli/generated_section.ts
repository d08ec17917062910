/**
 * Generated sections of Markdown files, between `<!-- NAME:begin ... -->` and `<!-- NAME:end -->`:
 * a benchmark's results in docs/results.md, the pass reference in docs/passes.md, so what they say
 * is what the code computed. The file is then formatted with `deno fmt`, as the repository's check expects,
 * unless the formatter's configuration excludes it (as it excludes docs/): then it stays as written.
 */

/** Replaces the body of section `name` in `text`; throws when the markers are missing or out of order. */
export function replaceSection(text: string, name: string, body: string, file = "docs/results.md"): string {
  const begin = new RegExp(`<!-- ${name}:begin[^>]*-->\\n`).exec(text);
  const endMarker = `<!-- ${name}:end -->`;
  const end = begin ? text.indexOf(endMarker, begin.index + begin[0].length) : -1;
  if (!begin || end < 0) {
    throw new Error(
      `${file}: no generated section '${name}' (a line '<!-- ${name}:begin -->', later '${endMarker}')`,
    );
  }
  return text.slice(0, begin.index + begin[0].length) + body.trimEnd() + "\n" + text.slice(end);
}

/**
 * Rewrites section `name` of the Markdown file `path` with `body` and formats the file, unless
 * `deno fmt` excludes it (`--permit-no-files`: an excluded path is no error, and is left as written).
 */
export async function writeSection(path: string, name: string, body: string): Promise<void> {
  const text = replaceSection(await Deno.readTextFile(path), name, body, path);
  await Deno.writeTextFile(path, text);
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", "--permit-no-files", path],
    stderr: "piped",
  })
    .output();
  if (code !== 0) throw new Error(`deno fmt ${path}: ${new TextDecoder().decode(stderr).trim()}`);
}
