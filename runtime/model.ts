/**
 * The runtime's core, the same in every host: a compiled model in one wasm memory holding the
 * weights (checked against the artifact's manifest) and the activation arena, run by the calling
 * thread and `threads - 1` workers together over it (shared; one thread runs on a plain memory). How files are read and how worker threads
 * start is the host's (`runtime/compiled.ts` for Deno, `runtime/node.ts` for Node); nothing here
 * touches a Deno or Node global.
 */

import { awaitCount, bindSteps, type BoundStep, CONTROL, type KernelTable, runSteps } from "./executor.ts";
import { checkBytes, listed, MANIFEST_FILE, type ManifestEntry, parseManifest } from "./manifest.ts";
import {
  ArtifactError,
  InputError,
  parsePlan,
  type Plan,
  PLAN_DTYPE_BYTES,
  type PlanTensor,
} from "./plan.ts";
import type { WorkerInit } from "./worker.ts";
import type { BertTokenizer } from "./tokenizer.ts";
import {
  type Classification,
  classifyBatches,
  type ClassifyOptions,
  type ShapeOf,
  shapeOf,
  TEXT_FILES,
  type TextFiles,
  type TextModel,
  textModel,
} from "./classify.ts";

/** A started worker thread. */
export interface WorkerHandle {
  /** Stops it. */
  terminate(): void;
}

/** What the runtime needs from its host. */
export interface RuntimeHost {
  /** The default thread count: the machine's cores. */
  readonly cores: number;
  /** Starts a runtime worker thread with `init` (runtime/worker.ts); resolves once it is ready. */
  startWorker(init: WorkerInit): Promise<WorkerHandle>;
  /**
   * Runs `compile` (the kernels' `WebAssembly.compile`) so that the engine compiles them to
   * optimized code at once rather than as they run (runtime/tiering.ts); absent where the host
   * cannot (a browser).
   */
  compileOptimized?<T>(compile: () => Promise<T>): Promise<T>;
}

/** How to read a size limit: a file must have exactly, or at most, so many bytes. */
export type SizeCheck = { readonly exactly: number } | { readonly atMost: number };

/** Reads the files of one artifact, by name; a host gives one per kind of place (a folder, a URL). */
export interface ArtifactReader {
  /** Where file `name` is, for messages (`""`: the artifact itself). */
  where(name: string): string;
  /** The bytes of file `name`, a regular file of the artifact of the size `size` allows; else an ArtifactError naming it. */
  read(name: string, size: SizeCheck): Promise<Uint8Array>;
  /** Fills `into` with weights file `name`, checking its size and SHA-256 against `entry` as it goes. */
  fillWeights(name: string, entry: ManifestEntry, into: Uint8Array): Promise<void>;
}

/**
 * Loads a compiled artifact for `host`: a place `readerOf` reads (a folder, a URL), or one held in
 * memory. Throws an ArtifactError naming the file that is missing, truncated, altered or malformed.
 */
export function loadWith(
  host: RuntimeHost,
  readerOf: (place: string) => ArtifactReader,
  source: string | ArtifactData,
  options: LoadOptions = {},
): Promise<CompiledModel> {
  return typeof source === "string"
    ? CompiledModel.load(readerOf(source), host, options)
    : CompiledModel.fromArtifact(source, host, options);
}

/** The largest manifest read (a manifest lists a handful of files). */
const MAX_MANIFEST_BYTES = 1 << 20;

/** Input data for one tensor: numbers (or bigints for i64) in row-major order. */
export type InputData = ArrayLike<number> | BigInt64Array;

/** Options of `loadCompiled`. */
export interface LoadOptions {
  /** Threads to run on, the caller's included; default: the number of cores. */
  threads?: number;
  /** Force the plain-SIMD kernels even where relaxed SIMD is available. */
  noRelaxedSimd?: boolean;
  /**
   * Leave the engine's dynamic tiering on: the kernels load on baseline code and are optimized
   * as they run (a faster load, slower first runs). By default Deno and Node compile them
   * optimized at load (runtime/tiering.ts); a browser always tiers up as it runs.
   */
  dynamicTiering?: boolean;
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
  private readonly runs: number[];
  private readonly profileTimes: Float64Array[];

  private constructor(
    /** The artifact's plan. */
    readonly plan: Plan,
    /** The memory holding weights and activations (shared between the threads when there are several). */
    readonly memory: WebAssembly.Memory,
    private readonly steps: BoundStep[][],
    /** One chunk counter per step and thread (executor.ts `runSteps`), shared with the workers. */
    private readonly claims: Int32Array,
    private readonly workers: WorkerHandle[],
    /** Threads that run each step. */
    readonly threads: number,
    /** Whether the relaxed-SIMD kernels are in use. */
    readonly relaxedSimd: boolean,
    /** Where the artifact was loaded from (its folder), for messages. */
    readonly dir: string,
    private readonly text: TextModel | undefined,
  ) {
    this.ctl = new Int32Array(memory.buffer, 0, 16);
    this.profileTimes = plan.buckets.map((b) => new Float64Array(b.steps.length));
    this.runs = plan.buckets.map(() => 0);
  }

  /**
   * Loads the artifact `reader` reads. Only files its manifest lists are read, each a regular file
   * of the artifact whose size and SHA-256 match the manifest; throws an ArtifactError naming the
   * file when one is missing, truncated, altered or malformed.
   */
  static async load(
    reader: ArtifactReader,
    host: RuntimeHost,
    options: LoadOptions = {},
  ): Promise<CompiledModel> {
    const manifestFile = reader.where(MANIFEST_FILE);
    const manifestText = new TextDecoder().decode(
      await reader.read(MANIFEST_FILE, { atMost: MAX_MANIFEST_BYTES }),
    );
    const manifest = parseManifest(manifestFile, manifestText);
    const read = async (name: string) => {
      const entry = listed(manifestFile, manifest, name);
      const bytes = await reader.read(name, { exactly: entry.bytes });
      await checkBytes(reader.where(name), entry, bytes);
      return bytes;
    };
    const plan = parsePlan(reader.where("plan.json"), new TextDecoder().decode(await read("plan.json")));
    checkThreads(host, options);
    // Relaxed SIMD is used where the engine validates the relaxed module; else plain SIMD.
    const relaxed = await read(plan.wasm.relaxed);
    const useRelaxed = !options.noRelaxedSimd && WebAssembly.validate(relaxed as BufferSource);
    const simd = useRelaxed ? relaxed : await read(plan.wasm.simd);
    const weights = plan.memory.weights;
    const weightsEntry = listed(manifestFile, manifest, weights.file);
    const optional = async (name: string) =>
      Object.hasOwn(manifest.files, name) ? new TextDecoder().decode(await read(name)) : undefined;
    const tokenizer = await optional(TEXT_FILES.tokenizer);
    const text = tokenizer === undefined ? undefined : textModel(
      {
        tokenizer,
        tokenizerConfig: await optional(TEXT_FILES.tokenizerConfig),
        labels: await optional(TEXT_FILES.labels),
      },
      plan,
      (name) => reader.where(name),
    );
    return await CompiledModel.start(plan, host, {
      wasm: { relaxed, simd },
      weights: (memory) =>
        reader.fillWeights(
          weights.file,
          weightsEntry,
          new Uint8Array(memory.buffer, weights.offset, weights.size),
        ),
      where: (file) => reader.where(file),
      name: reader.where(""),
      text,
    }, options);
  }

  /**
   * Loads a compiled artifact held in memory (what `compile` returns), without touching the disk;
   * throws an Error naming the part that is malformed.
   */
  static async fromArtifact(
    artifact: ArtifactData,
    host: RuntimeHost,
    options: LoadOptions = {},
  ): Promise<CompiledModel> {
    const plan = parsePlan("plan.json", JSON.stringify(artifact.plan));
    checkThreads(host, options);
    const region = plan.memory.weights;
    if (artifact.weights.length !== region.size) {
      throw new ArtifactError(
        region.file,
        `the weights have ${artifact.weights.length} bytes, the plan expects ${region.size}`,
      );
    }
    return await CompiledModel.start(plan, host, {
      wasm: artifact.wasm,
      weights: (memory) => new Uint8Array(memory.buffer, region.offset, region.size).set(artifact.weights),
      where: (file) => file,
      name: "(in memory)",
      text: artifact.text && textModel(artifact.text, plan, (file) => file),
    }, options);
  }

  /** Instantiates the kernels over a new memory (shared when threads > 1) holding the weights, and starts the workers. */
  private static async start(
    plan: Plan,
    host: RuntimeHost,
    source: {
      wasm: { relaxed: Uint8Array; simd: Uint8Array };
      weights: (memory: WebAssembly.Memory) => void | Promise<void>;
      where: (file: string) => string;
      name: string;
      text: TextModel | undefined;
    },
    options: LoadOptions,
  ): Promise<CompiledModel> {
    const threads = options.threads ?? host.cores;
    const relaxed = !options.noRelaxedSimd && WebAssembly.validate(source.wasm.relaxed as BufferSource);
    const wasmFile = source.where(relaxed ? plan.wasm.relaxed : plan.wasm.simd);
    // One thread needs no shared memory, which a browser page that is not cross-origin isolated
    // may lack: then the memory is plain and the module's memory import says so.
    const shared = threads > 1;
    const kernels = relaxed ? source.wasm.relaxed : source.wasm.simd;
    const bytes = shared ? kernels : unsharedMemoryImport(wasmFile, kernels);
    const compileKernels = () => WebAssembly.compile(bytes as BufferSource);
    const optimized = options.dynamicTiering ? undefined : host.compileOptimized?.bind(host);
    const module = await (optimized ? optimized(compileKernels) : compileKernels()).catch((e) => {
      throw new ArtifactError(wasmFile, `not a valid kernel module: ${(e as Error).message}`);
    });
    const { pages } = plan.memory;
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
    await source.weights(memory);
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const variant = relaxed ? 0 : 1;
    let steps;
    const planFile = source.where("plan.json");
    try {
      steps = plan.buckets.map((b, k) =>
        bindSteps(b.steps, instance.exports as KernelTable, variant, `buckets[${k}].steps`)
      );
    } catch (e) {
      throw e instanceof ArtifactError
        ? new ArtifactError(planFile, e.message.replace(/^plan\.json: /, ""))
        : e;
    }
    const stepsMax = Math.max(1, ...plan.buckets.map((b) => b.steps.length));
    const claims = new Int32Array(
      threads > 1 ? new SharedArrayBuffer(4 * stepsMax * threads) : new ArrayBuffer(4 * stepsMax),
    );
    const workers = await Promise.all(
      Array.from(
        { length: threads - 1 },
        (_, i) =>
          host.startWorker({
            module,
            memory,
            buckets: plan.buckets.map((b) => b.steps),
            variant,
            tid: i + 1,
            nt: threads,
            claims,
          }),
      ),
    );
    return new CompiledModel(
      plan,
      memory,
      steps,
      claims,
      workers,
      threads,
      relaxed,
      source.name,
      source.text,
    );
  }

  /** The shapes the model was compiled for, in plan order (batch and sequence length). */
  get buckets(): ShapeOf[] {
    return this.plan.buckets.map(shapeOf);
  }

  /**
   * Runs the model on `inputs` (by input name) and returns copies of the outputs by name. With
   * several buckets, `bucket` says which shape the inputs have (else the one bucket whose inputs
   * have as many values). Throws when an input is missing, has the wrong length or holds an
   * index out of range.
   */
  run(
    inputs: Readonly<Record<string, InputData>>,
    options: { profile?: boolean; bucket?: ShapeOf } = {},
  ): Record<string, Float32Array> {
    const k = this.bucketIndex(inputs, options.bucket);
    const bucket = this.plan.buckets[k];
    for (const t of bucket.inputs) writeInput(this.memory, t, inputs[t.name]);
    Atomics.store(this.ctl, CONTROL.failed, 0);
    Atomics.store(this.ctl, CONTROL.bucket, k);
    // The workers left the last run (below), so no one touches the counters while they are reset.
    this.claims.fill(0);
    Atomics.store(this.ctl, CONTROL.finished, 0);
    Atomics.store(this.ctl, CONTROL.exited, 0);
    Atomics.add(this.ctl, CONTROL.start, 1);
    Atomics.notify(this.ctl, CONTROL.start);
    const failure = runSteps(
      this.steps[k],
      this.ctl,
      this.claims,
      0,
      this.threads,
      options.profile ? this.profileTimes[k] : undefined,
    );
    if (this.threads > 1) awaitCount(this.ctl, CONTROL.exited, this.threads - 1);
    if (options.profile) this.runs[k]++;
    if (Atomics.load(this.ctl, CONTROL.failed)) {
      throw new ArtifactError(
        this.dir,
        `the run failed: ${failure ?? "on a worker thread (its message is above)"}`,
      );
    }
    const out: Record<string, Float32Array> = {};
    for (const t of bucket.outputs) {
      out[t.name] = new Float32Array(this.memory.buffer, t.offset, t.shape.reduce((a, b) => a * b, 1))
        .slice();
    }
    return out;
  }

  /** The index of the bucket a run uses: the one asked for, the only one, or the one the inputs' sizes fit. */
  private bucketIndex(inputs: Readonly<Record<string, InputData>>, asked: ShapeOf | undefined): number {
    const shapes = this.buckets;
    const list = () => shapes.map((s) => `${s.batch}x${s.seq}`).join(", ");
    if (asked) {
      const k = shapes.findIndex((s) => s.batch === asked.batch && s.seq === asked.seq);
      if (k < 0) {
        throw new InputError(`no bucket of batch ${asked.batch}, seq ${asked.seq}; the model has ${list()}`);
      }
      return k;
    }
    if (shapes.length === 1) return 0;
    const fits = this.plan.buckets.flatMap((b, k) =>
      b.inputs.every((t) => inputs[t.name]?.length === t.shape.reduce((a, d) => a * d, 1)) ? [k] : []
    );
    if (fits.length !== 1) {
      throw new InputError(
        `${fits.length === 0 ? "no bucket fits" : "several buckets fit"} these inputs; pass the bucket ` +
          `({batch, seq}); the model has ${list()}`,
      );
    }
    return fits[0];
  }

  /** The tokenizer the artifact carries (checked against its manifest), if any. */
  get tokenizer(): BertTokenizer | undefined {
    return this.text?.tokenizer;
  }

  /** The label names, in output order, when the artifact carries its tokenizer (else undefined). */
  get labels(): readonly string[] | undefined {
    return this.text?.labels;
  }

  /**
   * Classifies sentences with the artifact's tokenizer and labels. Sentences are sorted by length
   * and run in batches (up to `options.batch` rows, default the largest compiled batch), each in
   * the smallest bucket that fits its longest sentence; results come back in the input order: the
   * label, the probabilities, and whether a sentence was cut to the longest compiled length
   * (`long: "refuse"` makes that an InputError instead). Throws when the artifact carries no
   * tokenizer.
   */
  classify(sentences: readonly string[], options: ClassifyOptions = {}): Classification[] {
    if (!this.text) {
      throw new InputError(`${this.dir} carries no tokenizer.json: compile it from a checkpoint with one`);
    }
    const text = this.text;
    return classifyBatches(
      text,
      this.buckets,
      sentences,
      options,
      (inputs, bucket) => this.run(inputs, { bucket })[this.plan.buckets[0].outputs[0].name],
    );
  }

  /** The per-step profile of the runs made with `profile` on (of bucket `bucket`, by default the first): mean ms per run. */
  profile(bucket: ShapeOf = this.buckets[0]): StepProfile[] {
    const k = this.buckets.findIndex((s) => s.batch === bucket.batch && s.seq === bucket.seq);
    if (k < 0) throw new InputError(`no bucket of batch ${bucket.batch}, seq ${bucket.seq}`);
    const runs = this.runs[k];
    return this.plan.buckets[k].steps.map((s, i) => ({
      value: s.value,
      op: s.op,
      kernel: s.kernel[this.relaxedSimd ? 0 : 1],
      ms: runs ? this.profileTimes[k][i] / runs : 0,
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

/** A compiled artifact in memory: what its folder holds, as `compile` produces it. */
export interface ArtifactData {
  /** The plan (`plan.json`). */
  readonly plan: Plan;
  /** The kernel modules, with and without relaxed SIMD. */
  readonly wasm: { readonly relaxed: Uint8Array; readonly simd: Uint8Array };
  /** The weights region, byte for byte. */
  readonly weights: Uint8Array;
  /** The checkpoint's tokenizer and label names, for `classify`, if it had a tokenizer. */
  readonly text?: TextFiles;
}

/**
 * A copy of kernel module `bytes` (file `file`) whose imported memory is declared unshared: the
 * limits' shared flag (0x02) cleared, the same length. Walks the import section only.
 */
function unsharedMemoryImport(file: string, bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  let p = 8;
  const byte = () => {
    if (p >= out.length) throw new ArtifactError(file, "not a valid kernel module: truncated");
    return out[p++];
  };
  const leb = () => {
    let v = 0;
    for (let shift = 0, b = 0x80; b & 0x80; shift += 7) v += ((b = byte()) & 0x7f) * 2 ** shift;
    return v;
  };
  const skipName = () => {
    const length = leb();
    p += length;
  };
  const limits = () => {
    const flags = byte();
    leb();
    if (flags & 1) leb();
  };
  while (p < out.length) {
    const id = byte();
    const end = leb() + p;
    if (id !== 2) {
      p = end;
      continue;
    }
    for (let n = leb(); n > 0; n--) {
      skipName(); // the module
      skipName(); // the field
      const kind = byte();
      if (kind === 0) leb();
      else if (kind === 1) {
        byte();
        limits();
      } else if (kind === 2) {
        const at = p;
        limits();
        out[at] &= ~2;
      } else if (kind === 3) p += 2;
      else throw new ArtifactError(file, `not a valid kernel module: import kind ${kind}`);
    }
    break;
  }
  return out;
}

/** Checks the thread count asked for. */
function checkThreads(host: RuntimeHost, options: LoadOptions): void {
  const threads = options.threads ?? host.cores;
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new Error(`threads must be an integer from 1 to 256, got ${threads}`);
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
