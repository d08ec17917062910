/**
 * The adversarial suite's probe: runs a deno.json task on a hostile input exactly as a user
 * would, and checks what issue 17 asks of every case: a non-zero exit, a short error naming the
 * place and no stack trace, within a time bound, with the peak memory (resident set, sampled from
 * /proc while it runs) under a bound, and no output left behind.
 */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { ROOT, taskCommand } from "../compile_cli.ts";

/** One hostile case. */
export interface Probe {
  /** The deno.json task (`compile`, `run`, `import`, `eval`, `export`). */
  readonly task: string;
  /** Its arguments. */
  readonly args: readonly string[];
  /** What stderr must match: the file and the place, and why. */
  readonly error: RegExp;
  /** Paths that must not exist afterwards (outputs, staging folders). */
  readonly noOutput?: readonly string[];
  /** The time bound in seconds; 30 by default. */
  readonly seconds?: number;
  /** The peak resident set bound in MiB; 1024 by default. */
  readonly mib?: number;
  /** The expected exit code; any non-zero code by default. */
  readonly code?: number;
}

/** What a probe saw. */
export interface ProbeResult {
  readonly code: number;
  readonly stderr: string;
  readonly stdout: string;
  readonly seconds: number;
  readonly peakMib: number;
}

/** A stack frame line as V8 prints it. */
const STACK_FRAME = /^\s+at .+(:\d+:\d+\)?|<anonymous>|native)$/m;

/** The most lines of error output a probe accepts (the error, `nothing was written`, a caret block). */
const MAX_ERROR_LINES = 8;

/** Peak resident set of process `pid` and its children so far, in KiB (VmHWM; 0 when gone). */
function peakKib(pid: number): number {
  let total = 0;
  const visit = (p: number) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      total += Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const children = readFileSync(`/proc/${p}/task/${p}/children`, "utf8").trim();
      for (const c of children ? children.split(/\s+/) : []) visit(Number(c));
    } catch {
      // The process ended between reads.
    }
  };
  visit(pid);
  return total;
}

/** Runs the probe's task and returns what it saw; kills it at twice the time bound. */
export async function runProbe(p: Probe): Promise<ProbeResult> {
  const seconds = p.seconds ?? 30;
  const start = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [...taskCommand(p.task), ...p.args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peak = 0;
  const sampler = setInterval(() => peak = Math.max(peak, peakKib(child.pid)), 25);
  const killer = setTimeout(() => child.kill("SIGKILL"), seconds * 2000);
  const out = await child.output();
  clearInterval(sampler);
  clearTimeout(killer);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: text(out.stdout),
    stderr: text(out.stderr),
    seconds: (performance.now() - start) / 1000,
    peakMib: peak / 1024,
  };
}

/** Runs the probe and asserts every property issue 17 asks for. */
export async function assertProbe(p: Probe): Promise<ProbeResult> {
  const r = await runProbe(p);
  const what = `deno task ${p.task} ${p.args.join(" ")}\n--- stderr:\n${r.stderr}`;
  if (p.code !== undefined) assert.equal(r.code, p.code, what);
  else assert.notEqual(r.code, 0, `exit 0: ${what}`);
  assert.ok(r.code !== 137, `killed after ${r.seconds.toFixed(1)} s: ${what}`);
  assert.doesNotMatch(r.stderr, STACK_FRAME, `stack trace: ${what}`);
  assert.ok(r.stderr.trim().split("\n").length <= MAX_ERROR_LINES, `too many lines: ${what}`);
  assert.match(r.stderr, p.error, what);
  assert.ok(r.seconds <= (p.seconds ?? 30), `took ${r.seconds.toFixed(1)} s: ${what}`);
  assert.ok(r.peakMib <= (p.mib ?? 1024), `peak ${r.peakMib.toFixed(0)} MiB: ${what}`);
  for (const path of p.noOutput ?? []) assert.ok(!existsSync(path), `${path} was left behind: ${what}`);
  return r;
}
