/**
 * README's layout table, enforced: dependencies point one way. ir/ imports nothing else in the
 * project; frontend/ builds on ir/ (and the tokenizer an artifact carries, so evaluation and the
 * runtime tokenize alike); passes/ on ir/ alone; codegen/ on ir/ and the artifact format;
 * runtime/ knows only the compiled artifact (nothing from the compiler); driver/ ties the compiler
 * together; examples and cli/ import only mod.ts (cli/ never bench/); mod.ts exports the library,
 * not its callers.
 */

import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { ROOT } from "./compile_cli.ts";

/** The project's own files each TypeScript file under `dir` imports, statically or dynamically, as paths from the root. */
async function importsUnder(dir: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(join(ROOT, d))) {
      const path = join(d, e.name);
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) out.set(path, await projectImports(path));
    }
  };
  if (dir.endsWith(".ts")) out.set(dir, await projectImports(dir));
  else await walk(dir);
  return out;
}

/** The relative imports of one file, resolved to paths from the root. */
async function projectImports(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(join(ROOT, file));
  const specifiers = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.[^"']+)["']/g)]
    .map((m) => m[1]);
  return specifiers.map((s) => relative(ROOT, resolve(ROOT, dirname(file), s)));
}

/** Asserts every import of the files under `dir` (except `skip`ped files) satisfies `allowed`. */
async function assertImports(
  dir: string,
  allowed: (target: string) => boolean,
  rule: string,
  skip: (file: string) => boolean = () => false,
): Promise<void> {
  const bad: string[] = [];
  for (const [file, targets] of await importsUnder(dir)) {
    if (skip(file)) continue;
    for (const t of targets) if (!allowed(t)) bad.push(`${file} imports ${t}`);
  }
  assert.deepEqual(bad, [], `${rule}:\n${bad.join("\n")}`);
}

const under = (...dirs: string[]) => (t: string) => dirs.some((d) => t.startsWith(`${d}/`));

Deno.test("ir/ imports nothing else in the project", async () => {
  await assertImports("ir", under("ir"), "ir/ must stand alone");
});

Deno.test("frontend/ builds on ir/ (and the artifact's tokenizer); passes/ on ir/ alone", async () => {
  await assertImports(
    "frontend",
    (t) => under("frontend", "ir")(t) || t === "runtime/tokenizer.ts",
    "frontend/ may import only ir/ and runtime/tokenizer.ts",
  );
  await assertImports("passes", under("passes", "ir"), "passes/ may import only ir/");
});

Deno.test("codegen/ builds on ir/ and the artifact format (the runtime's plan and manifest)", async () => {
  await assertImports(
    "codegen",
    (t) => under("codegen", "ir")(t) || t === "runtime/plan.ts" || t === "runtime/manifest.ts",
    "codegen/ may import ir/, runtime/plan.ts and runtime/manifest.ts",
  );
});

Deno.test("runtime/ imports nothing from the compiler", async () => {
  await assertImports("runtime", under("runtime"), "runtime/ knows only the artifact");
});

Deno.test("driver/ and mod.ts do not import their callers", async () => {
  const library = (t: string) =>
    t === "mod.ts" || under("ir", "frontend", "passes", "codegen", "runtime", "driver", "train")(t);
  await assertImports("driver", library, "driver/ is library code");
  await assertImports("mod.ts", library, "mod.ts exports the library");
});

Deno.test("train/ builds on ir/, frontend/, passes/ and driver/; its compiled steps on codegen/ and runtime/", async () => {
  const compiled = (file: string) => file === "train/compiled.ts";
  await assertImports(
    "train",
    under("train", "ir", "frontend", "passes", "driver"),
    "train/ may import only ir/, frontend/, passes/ and driver/",
    compiled,
  );
  // Training steps run as compiled artifacts: codegen compiles the backward function, the runtime runs it.
  await assertImports(
    "train",
    under("train", "ir", "frontend", "passes", "driver", "codegen", "runtime"),
    "train/compiled.ts may also import codegen/ and runtime/ (it compiles and runs training steps)",
    (file) => !compiled(file),
  );
});

Deno.test("examples import only mod.ts; cli/ is a thin caller of mod.ts (and never imports bench/)", async () => {
  await assertImports(
    "examples",
    (t) => t === "mod.ts",
    "an example uses the public API",
    (file) => file.endsWith("_test.ts"),
  );
  await assertImports(
    "cli",
    (t) => t === "mod.ts" || under("cli")(t),
    "cli/ may import only mod.ts and cli/",
  );
});

Deno.test("the import scanner sees static, dynamic and side-effect imports", async () => {
  const dir = await Deno.makeTempDir({ dir: ROOT, prefix: ".layout-probe-" });
  try {
    const file = join(dir, "probe.ts");
    await Deno.writeTextFile(
      file,
      `import { a } from "../ir/module.ts";\nimport "./side.ts";\nconst m = await import("../bench/cli.ts");\n`,
    );
    const found = await projectImports(relative(ROOT, file));
    const base = relative(ROOT, dir);
    assert.deepEqual(found.sort(), ["bench/cli.ts", "ir/module.ts", `${base}/side.ts`].sort());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
