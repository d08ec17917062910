/** `deno task bench compare`: compiled artifacts timed side by side; bad input is one line. */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CAN_RUN, runTask } from "./compile_cli.ts";

Deno.test({
  name: "bench compare times two artifacts and reports medians and ratios; a missing folder is one line",
  ignore: !CAN_RUN,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-compare-" });
    try {
      const sir = join(dir, "tiny.sir");
      assert.equal((await runTask("import", "synthetic:bert-tiny", "-o", sir, "--seq", "16")).code, 0);
      const a = join(dir, "a"), b = join(dir, "b");
      for (const out of [a, b]) assert.equal((await runTask("compile", sir, "-o", out)).code, 0);
      const r = await runTask("bench", "compare", a, b, "--threads", "2", "--repeat", "4", "--pause", "0");
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^2 threads, 4 interleaved rounds, 0 ms pause before each run \(ms\)$/m);
      const rows = r.stdout.trim().split("\n").slice(-2);
      assert.match(rows[0], /\/a +median [\d.]+ +min [\d.]+ +max [\d.]+ +x1\.000$/);
      assert.match(rows[1], /\/b +median [\d.]+ +min [\d.]+ +max [\d.]+ +x[\d.]+$/);

      const bad = await runTask("bench", "compare", join(dir, "missing"));
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^bench compare: .*missing.*manifest\.json: cannot read/m);
      assert.doesNotMatch(bad.stderr, /\n\s+at /, "no stack trace");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
