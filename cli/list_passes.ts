/**
 * The pass reference: every pass of a registry with its description and options (kind, default,
 * doc line). `deno task compile --list-passes` prints it as text; `deno task docs` writes it as
 * Markdown into docs/passes.md. Both read the registry through {@link passReference}, so the
 * two cannot disagree.
 */

import { formatOptionRange, formatOptionValue, type PassOptionSpec, type PassRegistry } from "../mod.ts";

/** One option of a pass, as the reference shows it. */
export interface OptionReference {
  /** The option's name in pipeline text. */
  readonly name: string;
  /** Its kind, or an enum's values joined with `|`. */
  readonly type: string;
  /** Its default, as pipeline text writes it. */
  readonly default: string;
  /** The values it allows (`in [0, 1)`, `at least 1`; for a block, each side), if its spec sets a range. */
  readonly range?: string;
  /** Its doc line. */
  readonly doc: string;
}

/** One pass, as the reference shows it. */
export interface PassReference {
  /** The pass's name in pipelines. */
  readonly name: string;
  /** Its one-line description. */
  readonly description: string;
  /** Its options, in declaration order. */
  readonly options: readonly OptionReference[];
}

/** Every pass of `registry`, by name, with its options. */
export function passReference(registry: PassRegistry): PassReference[] {
  return registry.names().map((name) => {
    const p = registry.get(name)!;
    const options = (Object.entries(p.options ?? {}) as [string, PassOptionSpec][]).map(([k, s]) => ({
      name: k,
      type: s.type === "enum" ? s.values!.join("|") : s.type,
      default: formatOptionValue(s.default),
      range: formatOptionRange(s) &&
        (s.type === "block" ? `each side ${formatOptionRange(s)}` : formatOptionRange(s)),
      doc: s.doc,
    }));
    return { name, description: p.description, options };
  });
}

/** The text `deno task compile --list-passes` prints. */
export function listPasses(registry: PassRegistry): string {
  return passReference(registry).map((p) => {
    const opts = p.options.map((o) =>
      `\n    ${o.name}=${o.type} (default ${o.default}${o.range ? `, ${o.range}` : ""}): ${o.doc}`
    );
    return `  ${p.name}: ${p.description}${opts.join("")}`;
  }).join("\n");
}

/** Text in a Markdown code span, safe inside a table cell (pipes escaped, backticks fenced). */
function code(text: string): string {
  const fence = text.includes("`") ? "``" : "`";
  const pad = text.startsWith("`") || text.endsWith("`") ? " " : "";
  return `${fence}${pad}${text.replaceAll("|", "\\|")}${pad}${fence}`;
}

/** Prose in a Markdown table cell. */
const cell = (text: string) => text.replaceAll("|", "\\|");

/**
 * The reference as Markdown: a summary table of the passes, then per pass its description and a
 * table of its options (name, type, default, range, doc).
 */
export function passesMarkdown(registry: PassRegistry): string {
  const passes = passReference(registry);
  const lines = [
    "| pass | what it does | options |",
    "| ---- | ------------ | ------: |",
    ...passes.map((p) => `| [${code(p.name)}](#${p.name}) | ${cell(p.description)} | ${p.options.length} |`),
  ];
  for (const p of passes) {
    lines.push("", `### ${p.name}`, "", p.description);
    if (p.options.length === 0) {
      lines.push("", "No options.");
      continue;
    }
    lines.push(
      "",
      "| option | type | default | range | what it sets |",
      "| ------ | ---- | ------- | ----- | ------------ |",
    );
    for (const o of p.options) {
      const range = o.range ? cell(o.range) : "";
      lines.push(`| ${code(o.name)} | ${code(o.type)} | ${code(o.default)} | ${range} | ${cell(o.doc)} |`);
    }
  }
  return lines.join("\n") + "\n";
}
