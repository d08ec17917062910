/**
 * Loads a compiled artifact directory and runs it: one shared wasm memory holding the weights
 * (read once from the artifact, byte for byte) and the activation arena; the calling thread
 * and `threads - 1` workers run every step together.
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { checkBytes, listed, MANIFEST_FILE, type ManifestEntry, parseManifest } from "./manifest.ts";
import { bindSteps, type BoundStep, CONTROL, type KernelTable, runSteps } from "./executor.ts";
import {
  ArtifactError,
  InputError,
  parsePlan,
  type Plan,
  PLAN_DTYPE_BYTES,
  type PlanTensor,
} from "./plan.ts";
import type { WorkerInit } from "./worker.ts";

/** Input data for one tensor: numbers (or bigints for i64) in row-major order. */
export type InputData = ArrayLike<number> | BigInt64Array;

/** Options of `loadCompiled`. */
export interface LoadOptions {
  /** Threads to run on, the caller's included; default: the number of cores. */
  threads?: number;
  /** Force the plain-SIMD kernels even where relaxed SIMD is available. */
  noRelaxedSimd?: boolean;
}

/** A per-step profile: wall time summed over the runs made with `profile` on. */
export interface StepProfile {
  /** The IR value the step computes. */
  value: string;
  /** The IR op(s) it covers. */
  op: string;
  /** The kernel it calls. */
  kernel: string;
  /** Mean wall time per profiled run, ms (thread 0, barrier wait included). */
  ms: number;
  /** FLOPs per run. */
  flops: number;
}

/** A compiled model, loaded and ready to run. */
export class CompiledModel {
  private readonly ctl: Int32Array;
  private runs = 0;
  private profileTimes: Float64Array;

  private constructor(
    /** The artifact's plan. */
    readonly plan: Plan,
    /** The shared memory holding weights and activations. */
    readonly memory: WebAssembly.Memory,
    private readonly steps: BoundStep[],
    private readonly workers: Worker[],
    /** Threads that run each step. */
    readonly threads: number,
    /** Whether the relaxed-SIMD kernels are in use. */
    readonly relaxedSimd: boolean,
    /** The artifact's folder. */
    readonly dir: string,
  ) {
    this.ctl = new Int32Array(memory.buffer, 0, 16);
    this.profileTimes = new Float64Array(plan.steps.length);
  }

  /**
   * Loads the artifact in `dir`. Only files its manifest lists are read, each a regular file inside
   * the folder whose size and SHA-256 match the manifest; throws an ArtifactError naming the file
   * when one is missing, truncated, altered or malformed.
   */
  static async load(dir: string, options: LoadOptions = {}): Promise<CompiledModel> {
    const manifestFile = join(dir, MANIFEST_FILE);
    const manifestText = new TextDecoder().decode(await readRegularFile(manifestFile, MAX_MANIFEST_BYTES));
    const manifest = parseManifest(manifestFile, manifestText);
    const read = async (name: string) => {
      const entry = listed(manifestFile, manifest, name);
      const file = join(dir, name);
      const bytes = await readRegularFile(file, entry.bytes);
      await checkBytes(file, entry, bytes);
      return bytes;
    };
    const planFile = join(dir, "plan.json");
    const plan = parsePlan(planFile, new TextDecoder().decode(await read("plan.json")));
    checkThreads(options);
    // Relaxed SIMD is used where the engine validates the relaxed module; else plain SIMD.
    const relaxed = await read(plan.wasm.relaxed);
    const useRelaxed = !options.noRelaxedSimd && WebAssembly.validate(relaxed);
    const simd = useRelaxed ? relaxed : await read(plan.wasm.simd);
    const weights = plan.memory.weights;
    const weightsEntry = listed(manifestFile, manifest, weights.file);
    return await CompiledModel.start(plan, {
      wasm: { relaxed, simd },
      weights: (memory) => readWeights(join(dir, weights.file), weightsEntry, memory, weights),
      where: (file) => join(dir, file),
      dir,
    }, options);
  }

  /**
   * Loads a compiled artifact held in memory (what `compile` returns), without touching the disk;
   * throws an Error naming the part that is malformed.
   */
  static async fromArtifact(artifact: ArtifactData, options: LoadOptions = {}): Promise<CompiledModel> {
    const plan = parsePlan("plan.json", JSON.stringify(artifact.plan));
    checkThreads(options);
    const region = plan.memory.weights;
    if (artifact.weights.length !== region.size) {
      throw new ArtifactError(
        region.file,
        `the weights have ${artifact.weights.length} bytes, the plan expects ${region.size}`,
      );
    }
    return await CompiledModel.start(plan, {
      wasm: artifact.wasm,
      weights: (memory) => new Uint8Array(memory.buffer, region.offset, region.size).set(artifact.weights),
      where: (file) => file,
      dir: "(in memory)",
    }, options);
  }

  /** Instantiates the kernels over a new shared memory holding the weights, and starts the workers. */
  private static async start(
    plan: Plan,
    source: {
      wasm: { relaxed: Uint8Array; simd: Uint8Array };
      weights: (memory: WebAssembly.Memory) => void | Promise<void>;
      where: (file: string) => string;
      dir: string;
    },
    options: LoadOptions,
  ): Promise<CompiledModel> {
    const threads = options.threads ?? navigator.hardwareConcurrency;
    const relaxed = !options.noRelaxedSimd && WebAssembly.validate(source.wasm.relaxed as BufferSource);
    const wasmFile = source.where(relaxed ? plan.wasm.relaxed : plan.wasm.simd);
    const bytes = relaxed ? source.wasm.relaxed : source.wasm.simd;
    const module = await WebAssembly.compile(bytes as BufferSource).catch((e) => {
      throw new ArtifactError(wasmFile, `not a valid kernel module: ${(e as Error).message}`);
    });
    const { pages } = plan.memory;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    await source.weights(memory);
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const variant = relaxed ? 0 : 1;
    let steps;
    const planFile = source.where("plan.json");
    try {
      steps = bindSteps(plan.steps, instance.exports as KernelTable, variant);
    } catch (e) {
      throw e instanceof ArtifactError
        ? new ArtifactError(planFile, e.message.replace(/^plan\.json: /, ""))
        : e;
    }
    const workers = await Promise.all(
      Array.from(
        { length: threads - 1 },
        (_, i) => startWorker({ module, memory, steps: plan.steps, variant, tid: i + 1, nt: threads }),
      ),
    );
    return new CompiledModel(plan, memory, steps, workers, threads, relaxed, source.dir);
  }

  /**
   * Runs the model on `inputs` (by input name) and returns copies of the outputs by name.
   * Throws when an input is missing, has the wrong length or holds an index out of range.
   */
  run(
    inputs: Readonly<Record<string, InputData>>,
    options: { profile?: boolean } = {},
  ): Record<string, Float32Array> {
    for (const t of this.plan.inputs) writeInput(this.memory, t, inputs[t.name]);
    Atomics.store(this.ctl, CONTROL.failed, 0);
    Atomics.add(this.ctl, CONTROL.start, 1);
    Atomics.notify(this.ctl, CONTROL.start);
    const failure = runSteps(
      this.steps,
      this.ctl,
      0,
      this.threads,
      options.profile ? this.profileTimes : undefined,
    );
    if (options.profile) this.runs++;
    if (Atomics.load(this.ctl, CONTROL.failed)) {
      throw new ArtifactError(
        this.dir,
        `the run failed: ${failure ?? "on a worker thread (its message is above)"}`,
      );
    }
    const out: Record<string, Float32Array> = {};
    for (const t of this.plan.outputs) {
      out[t.name] = new Float32Array(this.memory.buffer, t.offset, t.shape.reduce((a, b) => a * b, 1))
        .slice();
    }
    return out;
  }

  /** The per-step profile of the runs made with `profile` on: mean ms per run. */
  profile(): StepProfile[] {
    return this.plan.steps.map((s, i) => ({
      value: s.value,
      op: s.op,
      kernel: s.kernel[this.relaxedSimd ? 0 : 1],
      ms: this.runs ? this.profileTimes[i] / this.runs : 0,
      flops: s.flops,
    }));
  }

  /** Stops the worker threads. The model cannot run afterwards. */
  close(): void {
    Atomics.store(this.ctl, CONTROL.shutdown, 1);
    Atomics.add(this.ctl, CONTROL.start, 1);
    Atomics.notify(this.ctl, CONTROL.start);
    for (const w of this.workers) w.terminate();
  }
}

/**
 * Loads a compiled artifact: a folder written by `writeArtifact` (see `CompiledModel.load`) or one
 * held in memory, as `compile` returns it (see `CompiledModel.fromArtifact`).
 */
export function loadCompiled(
  source: string | ArtifactData,
  options: LoadOptions = {},
): Promise<CompiledModel> {
  return typeof source === "string"
    ? CompiledModel.load(source, options)
    : CompiledModel.fromArtifact(source, options);
}

/** A compiled artifact in memory: what its folder holds, as `compile` produces it. */
export interface ArtifactData {
  /** The plan (`plan.json`). */
  readonly plan: Plan;
  /** The kernel modules, with and without relaxed SIMD. */
  readonly wasm: { readonly relaxed: Uint8Array; readonly simd: Uint8Array };
  /** The weights region, byte for byte. */
  readonly weights: Uint8Array;
}

/** Checks the thread count asked for. */
function checkThreads(options: LoadOptions): void {
  const threads = options.threads ?? navigator.hardwareConcurrency;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new Error(`threads must be an integer from 1 to 256, got ${threads}`);
  }
}

/** The largest manifest read (a manifest lists a handful of files). */
const MAX_MANIFEST_BYTES = 1 << 20;

/**
 * Reads a regular file of the artifact (never a link, folder, FIFO or device) of at most, for the
 * manifest, or exactly, for a listed file, `bytes` bytes; the error names it.
 */
async function readRegularFile(file: string, bytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const info = await Deno.lstat(file).catch((e) => {
    throw new ArtifactError(file, `cannot read: ${(e as Error).message}`);
  });
  if (!info.isFile) throw new ArtifactError(file, "not a regular file inside the artifact");
  const limit = file.endsWith(MANIFEST_FILE) ? info.size <= bytes : info.size === bytes;
  if (!limit) {
    throw new ArtifactError(
      file,
      `has ${info.size} bytes, the manifest says ${bytes} (truncated or altered)`,
    );
  }
  return await Deno.readFile(file).catch((e) => {
    throw new ArtifactError(file, `cannot read: ${(e as Error).message}`);
  });
}

/** Starts a worker and waits until it is ready. */
function startWorker(init: WorkerInit): Promise<Worker> {
  const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
  return new Promise((ready, fail) => {
    w.onmessage = () => ready(w);
    w.onerror = (e) => {
      e.preventDefault();
      fail(new Error(`runtime worker ${init.tid} failed to start: ${e.message}`));
    };
    w.postMessage(init);
  });
}

/**
 * Reads the weights file into its region, checking its size against the plan and the manifest and
 * its SHA-256 as it streams (the shared memory cannot be hashed in place).
 */
async function readWeights(
  file: string,
  entry: ManifestEntry,
  memory: WebAssembly.Memory,
  region: Plan["memory"]["weights"],
) {
  const info = await Deno.lstat(file).catch((e) => {
    throw new ArtifactError(file, `cannot open the weights: ${(e as Error).message}`);
  });
  if (!info.isFile) throw new ArtifactError(file, "not a regular file inside the artifact");
  if (info.size !== region.size) {
    throw new ArtifactError(file, `the weights file has ${info.size} bytes, the plan expects ${region.size}`);
  }
  if (info.size !== entry.bytes) {
    throw new ArtifactError(
      file,
      `has ${info.size} bytes, the manifest says ${entry.bytes} (truncated or altered)`,
    );
  }
  const f = await Deno.open(file).catch((e) => {
    throw new ArtifactError(file, `cannot open the weights: ${(e as Error).message}`);
  });
  const hash = createHash("sha256");
  try {
    const view = new Uint8Array(memory.buffer, region.offset, region.size);
    const chunk = new Uint8Array(1 << 22);
    for (let n = 0; n < view.length;) {
      const r = await f.read(chunk.subarray(0, Math.min(chunk.length, view.length - n)));
      if (r === null) throw new ArtifactError(file, "the weights file ended early");
      hash.update(chunk.subarray(0, r));
      view.set(chunk.subarray(0, r), n);
      n += r;
    }
  } finally {
    f.close();
  }
  if (hash.digest("hex") !== entry.sha256) {
    throw new ArtifactError(file, "checksum mismatch (the file was altered)");
  }
}

/** Writes one input into its place, converting to its dtype and checking length and index range. */
function writeInput(memory: WebAssembly.Memory, t: PlanTensor, data: InputData | undefined): void {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (data === undefined) throw new InputError(`input '${t.name}' is missing`);
  if (data.length !== n) {
    throw new InputError(`input '${t.name}' needs ${n} values ([${t.shape}]), got ${data.length}`);
  }
  const bytes = PLAN_DTYPE_BYTES[t.dtype];
  if (t.dtype === "f32") {
    return void new Float32Array(memory.buffer, t.offset, n).set(data as ArrayLike<number>);
  }
  const words = new Int32Array(memory.buffer, t.offset, (n * bytes) / 4);
  for (let i = 0; i < n; i++) {
    const v = Number(data[i]);
    if (!Number.isInteger(v) || (t.limit !== undefined && (v < 0 || v >= t.limit))) {
      throw new InputError(
        `input '${t.name}'[${i}] = ${data[i]} is out of range${
          t.limit !== undefined ? ` [0, ${t.limit})` : ""
        }`,
      );
    }
    if (t.dtype === "i32") words[i] = v;
    else {
      words[2 * i] = v | 0;
      words[2 * i + 1] = Math.floor(v / 4294967296);
    }
  }
}
