/**
 * The package publishes: `deno publish --dry-run` accepts it (a license, no global type directives
 * in what mod.ts exports, every exported type documented and reachable).
 */

import assert from "node:assert/strict";
import { CAN_RUN, ROOT } from "./compile_cli.ts";

Deno.test({
  name: "deno publish --dry-run accepts the package",
  ignore: !CAN_RUN,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["publish", "--dry-run", "--allow-dirty"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /Dry run complete/);
    assert.doesNotMatch(text, /^error/m);
  },
});
