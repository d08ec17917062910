/** The compiler fingerprint that keys benchmark caches (bench/fingerprint.ts). */

import assert from "node:assert/strict";
import { join } from "node:path";
import { compilerFingerprint, sourceFingerprint } from "../bench/fingerprint.ts";

Deno.test("sourceFingerprint changes with any .ts file's text or name, and only those", async () => {
  const root = await Deno.makeTempDir({ prefix: "sparrow-fp-" });
  try {
    await Deno.mkdir(join(root, "a", "deep"), { recursive: true });
    await Deno.mkdir(join(root, "b"));
    await Deno.writeTextFile(join(root, "a", "x.ts"), "export const x = 1;\n");
    await Deno.writeTextFile(join(root, "a", "deep", "y.ts"), "export const y = 2;\n");
    const fp = () => sourceFingerprint(root, ["a", "b"]);
    const first = await fp();
    assert.match(first, /^[0-9a-f]{16}$/);
    assert.equal(await fp(), first, "stable");
    await Deno.writeTextFile(join(root, "a", "notes.md"), "not code");
    assert.equal(await fp(), first, "other files do not count");
    await Deno.writeTextFile(join(root, "a", "deep", "y.ts"), "export const y = 3;\n");
    const edited = await fp();
    assert.notEqual(edited, first, "an edit in a subfolder");
    await Deno.rename(join(root, "a", "x.ts"), join(root, "b", "x.ts"));
    assert.notEqual(await fp(), edited, "a move");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("compilerFingerprint covers this checkout and is computed once", async () => {
  const a = compilerFingerprint(), b = compilerFingerprint();
  assert.equal(a, b);
  assert.match(await a, /^[0-9a-f]{16}$/);
});
