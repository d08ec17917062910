/**
 * Test helper: runs `deno task compile` exactly as deno.json defines it (same flags and
 * permissions), from the repository root, without a terminal. Spawning needs `--allow-run`;
 * tests check `CAN_RUN` and are ignored without it.
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** Whether this test run may spawn the CLI. */
export const CAN_RUN: boolean =
  Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";

/** The compile task's command line from deno.json, without the leading `deno`. */
export const COMPILE_TASK: string[] = (() => {
  const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
  const words = (config.tasks.compile as string).split(/\s+/);
  if (words[0] !== "deno") {
    throw new Error(`the compile task does not start with deno: ${config.tasks.compile}`);
  }
  return words.slice(1);
})();

/** What a CLI run printed, and its exit code. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `deno task compile ...args`. */
export async function compile(...args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...COMPILE_TASK, ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}
