/**
 * The compiled artifact's plan (`plan.json`): what the runtime needs to execute a model and
 * nothing more. The codegen writes it; the runtime reads and checks it.
 */

/** Element types that cross the runtime's API. */
export type PlanDType = "f32" | "i32" | "i64";

/** Bytes per element of each plan dtype. */
export const PLAN_DTYPE_BYTES: Readonly<Record<PlanDType, number>> = { f32: 4, i32: 4, i64: 8 };

/** An input or output of the compiled function, at a fixed place in memory. */
export interface PlanTensor {
  /** The IR parameter or result name (without `%`). */
  name: string;
  /** Element type. */
  dtype: PlanDType;
  /** Static shape. */
  shape: number[];
  /** Byte address in the shared memory. */
  offset: number;
  /** For integer inputs used as indices: the valid range `[0, limit)`. */
  limit?: number;
}

/** One kernel call. Every thread makes it with the same arguments; a barrier follows. */
export interface PlanStep {
  /** The IR value it computes (e.g. `%l0.q`), for profiles and errors. */
  value: string;
  /** The IR op name (or names, `+`-joined, for fused chains). */
  op: string;
  /** Where the op is in the IR text, `file:line:col`. */
  loc: string;
  /** The kernel's export name, per wasm variant: `[relaxed-SIMD name, plain-SIMD name]`. */
  kernel: [string, string];
  /** Byte addresses (and integers) passed before `tid, nt`. */
  args: number[];
  /** Floating-point operations this step performs (0 when not counted). */
  flops: number;
}

/**
 * The model compiled for one shape. Buckets share the weights and the arena (one runs at a time);
 * each has its own inputs, outputs and kernel calls.
 */
export interface PlanBucket {
  /** Rows per run, when compiled for buckets (the inputs are `[batch, seq]`). */
  batch?: number;
  /** Tokens per row, when compiled for buckets. */
  seq?: number;
  /** Bytes of the arena this bucket uses (at most the plan's arena). */
  arenaBytes: number;
  /** The function's inputs, in order. */
  inputs: PlanTensor[];
  /** The function's outputs, in order. */
  outputs: PlanTensor[];
  /** The kernel calls of one run, in order. */
  steps: PlanStep[];
}

/** The whole plan. */
export interface Plan {
  /** Always "sparrow-plan". */
  format: "sparrow-plan";
  /** The format version: 3 (version 1 carried TypeScript kernels, version 2 one shape only). */
  version: 3;
  /** The model's name. */
  model: string;
  /** Memory layout: one shared wasm memory of `pages` 64 KiB pages. */
  memory: {
    pages: number;
    /** Bytes at address 0 reserved for thread synchronization. */
    control: number;
    /** The activation arena, reused by liveness. */
    arena: { offset: number; size: number };
    /** The weights region, loaded once from `file`, byte for byte. */
    weights: { offset: number; size: number; file: string };
  };
  /** The kernel modules: with relaxed SIMD and without. */
  wasm: { relaxed: string; simd: string };
  /** The shapes compiled, at least one; several share the weights and the arena. */
  buckets: PlanBucket[];
}

/** The most buckets a plan may hold. */
const MAX_BUCKETS = 64;

/** An artifact file that is missing, corrupt or not one this runtime can run; the message names the file. */
export class ArtifactError extends Error {
  /** `file: message`. */
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "ArtifactError";
  }
}

/** Inputs a compiled model cannot run on (missing, wrong length, index out of range). */
export class InputError extends Error {
  /** The error's name. */
  override name = "InputError";
}

/** Whether `name` is a plain file name: no folder part, not `.` or `..`, no odd characters. */
export function isPlainFileName(name: unknown): name is string {
  return typeof name === "string" && /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(name);
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Parses and checks plan.json's text; throws ArtifactError naming `file` and the bad field. */
export function parsePlan(file: string, text: string): Plan {
  let p: Plan;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw new ArtifactError(file, `not JSON: ${(e as Error).message}`);
  }
  const bad = (what: string) => new ArtifactError(file, `bad plan: ${what}`);
  if (p?.format !== "sparrow-plan") throw bad(`'format' must be "sparrow-plan"`);
  if (p.version !== 3) {
    throw bad(
      `unsupported version ${p.version}${
        p.version === 1 || p.version === 2 ? " (compile the model again)" : ""
      }`,
    );
  }
  const mem = p.memory;
  if (!mem || !isInt(mem.pages) || mem.pages < 1 || mem.pages > 65536) throw bad("memory.pages");
  if (!isInt(mem.control) || mem.control < 64) throw bad("memory.control");
  const limit = mem.pages * 65536;
  const inMemory = (offset: unknown, size: number) => isInt(offset) && offset + size <= limit;
  if (!inMemory(mem.arena?.offset, mem.arena?.size ?? 0)) throw bad("memory.arena is outside memory");
  if (!inMemory(mem.weights?.offset, mem.weights?.size ?? 0)) throw bad("memory.weights is outside memory");
  // Every file the plan names is a plain file name: it stays inside the artifact folder.
  const files: [string, unknown][] = [
    ["memory.weights.file", mem.weights.file],
    ["wasm.relaxed", p.wasm?.relaxed],
    ["wasm.simd", p.wasm?.simd],
  ];
  for (const [field, name] of files) {
    if (!isPlainFileName(name)) {
      throw bad(`${field} must name a file inside the artifact, got ${JSON.stringify(name)}`);
    }
  }
  if (!Array.isArray(p.buckets) || p.buckets.length < 1 || p.buckets.length > MAX_BUCKETS) {
    throw bad(`'buckets' must be a list of 1 to ${MAX_BUCKETS} buckets`);
  }
  const shapes = new Set<string>();
  p.buckets.forEach((b, k) => {
    const at = `buckets[${k}]`;
    if (typeof b !== "object" || b === null) throw bad(`${at} must be an object`);
    for (const dim of ["batch", "seq"] as const) {
      if (b[dim] !== undefined && !(isInt(b[dim]) && b[dim] >= 1)) throw bad(`${at}.${dim}`);
    }
    if ((b.batch === undefined) !== (b.seq === undefined)) throw bad(`${at}: batch and seq go together`);
    const shape = `${b.batch}x${b.seq}`;
    if (shapes.has(shape)) throw bad(`${at}: a second bucket of batch ${b.batch}, seq ${b.seq}`);
    shapes.add(shape);
    if (!isInt(b.arenaBytes) || b.arenaBytes > mem.arena.size) throw bad(`${at}.arenaBytes`);
    for (const [where, list] of [["inputs", b.inputs], ["outputs", b.outputs]] as const) {
      if (!Array.isArray(list)) throw bad(`${at}.${where} must be a list`);
      list.forEach((t, i) => {
        if (typeof t !== "object" || t === null) throw bad(`${at}.${where}[${i}]`);
        const size = (Array.isArray(t.shape) ? t.shape : []).reduce((a, d) => a * d, 1) *
          (PLAN_DTYPE_BYTES[t.dtype] ?? NaN);
        if (typeof t.name !== "string" || !Array.isArray(t.shape) || !t.shape.every(isInt)) {
          throw bad(`${at}.${where}[${i}]: name and shape`);
        }
        if (!Object.hasOwn(PLAN_DTYPE_BYTES, t.dtype)) throw bad(`${at}.${where}[${i}]: dtype '${t.dtype}'`);
        if (!inMemory(t.offset, size)) throw bad(`${at}.${where}[${i}] ('${t.name}') is outside memory`);
        if (t.limit !== undefined && !isInt(t.limit)) throw bad(`${at}.${where}[${i}].limit`);
      });
    }
    if (
      b.batch !== undefined &&
      !b.inputs.every((t) => t.shape.length === 2 && t.shape[0] === b.batch && t.shape[1] === b.seq)
    ) {
      throw bad(`${at}: its inputs must be [${b.batch}, ${b.seq}]`);
    }
    if (!Array.isArray(b.steps)) throw bad(`${at}.steps must be a list`);
    b.steps.forEach((s, i) => {
      const ok = typeof s === "object" && s !== null && Array.isArray(s.kernel) && s.kernel.length === 2 &&
        s.kernel.every((k) => typeof k === "string") && Array.isArray(s.args) && s.args.every(isInt);
      if (!ok) throw bad(`${at}.steps[${i}] (${s?.value ?? "?"})`);
      // Every argument is an address past the control block, inside memory.
      const stray = s.args.find((a) => a < mem.control || a >= limit);
      if (stray !== undefined) {
        throw bad(`${at}.steps[${i}] (${s.value}): address ${stray} is outside the arena and weights`);
      }
    });
  });
  return p;
}
