/**
 * Test helper: runs a deno.json task (`compile`, `import`, `eval`, ...) exactly as deno.json
 * defines it (same flags and permissions), from the repository root, without a terminal.
 * Spawning needs `--allow-run`; tests check `CAN_RUN` and are ignored without it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** Whether this test run may spawn the CLI. */
export const CAN_RUN: boolean =
  Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";

/** A task's command line from deno.json, without the leading `deno`. */
export function taskCommand(task: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json")));
  const words = (config.tasks[task] as string).split(/\s+/);
  if (words[0] !== "deno") {
    throw new Error(`the ${task} task does not start with deno: ${config.tasks[task]}`);
  }
  return words.slice(1);
}

/** The compile task's command line. */
export const COMPILE_TASK: string[] = taskCommand("compile");

/** What a CLI run printed, and its exit code. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** `deno task <task> ...args`. */
export async function runTask(task: string, ...args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...taskCommand(task), ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** `deno task compile ...args`. */
export function compile(...args: string[]): Promise<Run> {
  return runTask("compile", ...args);
}

/** Asserts a one-line `error: ...` on stderr matching `pattern`, nothing on stdout, and the exit code. */
export function assertOneLineError(r: Run, code: number, pattern: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^error: [^\n]+\n$/);
  assert.match(r.stderr, pattern);
}
