/**
 * The machine the numbers come from: its CPU, memory and software, how much memory the loaded
 * contenders may take, and whether the optional peers can run.
 */

/**
 * Nudges V8 into a garbage collection, so that the wasm memories of closed models are freed
 * before more are loaded: allocating large (untouched, so free) ArrayBuffers raises its external
 * memory pressure. Dropping 2 GB of closed memories did not free them; this did, at once.
 */
export async function releaseMemory(): Promise<void> {
  for (let i = 0; i < 16; i++) {
    new ArrayBuffer(256 * 2 ** 20);
    await new Promise((ok) => setTimeout(ok, 5));
  }
}

/**
 * The text of a /proc file. Deno wants --allow-all to read /proc/cpuinfo and --allow-sys for
 * memory info, which the bench task does not grant; it may run programs, so `cat` reads them.
 */
async function procText(file: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(file);
  } catch {
    try {
      const r = await new Deno.Command("cat", { args: [file], stdout: "piped", stderr: "null" }).output();
      return r.success ? new TextDecoder().decode(r.stdout) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Total and available memory in bytes, from /proc/meminfo. */
async function memInfo(): Promise<{ total: number; available: number } | undefined> {
  const text = await procText("/proc/meminfo");
  const kb = (key: string) => Number(text?.match(new RegExp(`^${key}:\\s*(\\d+) kB`, "m"))?.[1]) * 1024;
  const total = kb("MemTotal"), available = kb("MemAvailable");
  return Number.isFinite(total) && Number.isFinite(available) ? { total, available } : undefined;
}

/**
 * How much memory the loaded contenders of one thread count may take: 60% of what is available,
 * once the memory of models closed before has been given back (it is freed some time after the
 * collection: this waits, up to 10 s, until the available memory has stopped growing).
 */
export async function memoryBudget(): Promise<number> {
  let available = (await memInfo())?.available;
  for (let i = 0, stable = 0; i < 25 && available !== undefined && stable < 3; i++) {
    await releaseMemory();
    await new Promise((ok) => setTimeout(ok, 400));
    const now = (await memInfo())?.available ?? 0;
    stable = now < available + 64 * 2 ** 20 ? stable + 1 : 0;
    available = Math.max(available, now);
  }
  return 0.6 * (available ?? 8 * 2 ** 30);
}

/** Whether `/usr/bin/python3` can import torch (for the PyTorch eager column). */
export async function torchAvailable(): Promise<boolean> {
  try {
    const r = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return r.success;
  } catch {
    return false;
  }
}

/** The machine and software the numbers come from. */
export async function machineInfo(): Promise<Record<string, unknown>> {
  const cpu = (await procText("/proc/cpuinfo"))?.match(/model name\s*:\s*(.*)/)?.[1] ?? "unknown";
  const mem = await memInfo();
  const memoryGiB = mem && Math.round((mem.total / 2 ** 30) * 10) / 10;
  let commit: string | undefined;
  try {
    const r = await new Deno.Command("git", {
      args: ["describe", "--always", "--dirty"],
      cwd: new URL("../..", import.meta.url),
      stdout: "piped",
      stderr: "null",
    }).output();
    if (r.success) commit = new TextDecoder().decode(r.stdout).trim();
  } catch { /* no git */ }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memoryGiB,
    os: `${Deno.build.os} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    commit,
    date: new Date().toISOString(),
  };
}
