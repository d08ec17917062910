/**
 * What every op lowering works with: compile-time values, runtime buffers (with aliases for
 * views such as reshape), the weights region, and the steps emitted so far.
 */

import { AttrReader } from "../../ir/attrs.ts";
import type { Loc, Op, Value } from "../../ir/module.ts";
import { builtinRegistry } from "../../ir/ops/index.ts";
import type { Tensor } from "../../ir/tensor.ts";
import type { DType } from "../../ir/types.ts";
import { numel } from "../../ir/types.ts";
import type { KernelTarget, WasmKernel } from "../wasm/kernel.ts";
import type { BsrSpec, BsrVariant } from "../wasm/bsr.ts";
import { defaultBsrVariant } from "../wasm/bsr_cost.ts";

/** A buffer that exists only at run time: an IR value, or a temporary the lowering needed. */
export type RuntimeBuffer = Value | { temp: string; bytes: number };

/** A kernel argument before memory planning. */
export type Arg =
  | { buffer: RuntimeBuffer; byteOffset?: number }
  | { constant: number }
  | { int: number };

/** A data block of the weights region: a weight as stored, or a layout made from it. */
export interface ConstantEntry {
  /** What it holds, e.g. `@bert.encoder.layer.0.attention.self.query.weight (packed)`. */
  label: string;
  data: Float32Array | Int32Array;
}

/** A kernel call, before memory planning. */
export interface LoweredStep {
  op: Op;
  /** The IR op names it covers (more than one for fused chains). */
  ops: string[];
  /** The wasm kernel for a target. */
  wasm: (target: KernelTarget) => WasmKernel;
  args: Arg[];
  flops: number;
}

/**
 * The schedule of one sparse product and what explains its speed: how often each loaded
 * activation vector and each loaded weight is reused by FMAs in registers (the kernels are
 * bound by loads, so more reuse is faster), and the padding of the token tiles.
 */
export interface SparseSchedule {
  /** The IR value computed. */
  value: string;
  /** The BSR weight. */
  weight: string;
  /** The variant's key (`variantKey`). */
  variant: string;
  /** Why it was chosen (cost model or tuning log). */
  why: string;
  /** Stored elements / all elements of the weight. */
  density: number;
  /** FMAs per loaded xᵀ vector: the block rows held in registers (1 for 1xC blocks). */
  fmaPerXLoad: number;
  /** FMAs per loaded (splatted) weight: the token vectors of a tile. */
  fmaPerWeightLoad: number;
  /** Padded tokens / tokens (1 = no waste). */
  tokenPadding: number;
}

/** A failure to generate code for an op: names the op's place. */
export class CodegenError extends Error {
  /** `file:line:col: error: message` when the op has a location. */
  constructor(loc: Loc | undefined, message: string) {
    super(loc ? `${loc.file}:${loc.line}:${loc.col}: error: ${message}` : `error: ${message}`);
    this.name = "CodegenError";
  }
}

/** Bytes per element of the dtypes codegen supports at run time. */
const RUNTIME_BYTES: Partial<Record<DType, number>> = { f32: 4, i32: 4, i64: 8 };

/** The state of lowering one function. */
export class LowerContext {
  /** Values known at compile time (weights, constants, and ops folded over them). */
  readonly known = new Map<Value, Tensor>();
  /** Views: a value stored inside another buffer at a byte offset. */
  readonly aliases = new Map<Value, { of: RuntimeBuffer; byteOffset: number }>();
  readonly constants: ConstantEntry[] = [];
  readonly steps: LoweredStep[] = [];
  /** Ops folded into a later op's kernel (fused chains), skipped when reached. */
  readonly fused = new Set<Op>();
  /** The schedule chosen for each sparse product, for the report. */
  readonly schedules: SparseSchedule[] = [];
  /** Picks the schedule of a sparse product (set by the compiler: tuning log or cost model). */
  chooseBsr: (spec: BsrSpec, op: Op) => { variant: BsrVariant; why: string } = (spec) =>
    defaultBsrVariant(spec);
  /** Scratch buffers holding a prepared (transposed) input, by input and prepare kernel. */
  readonly preparedInputs = new Map<string, RuntimeBuffer>();
  /** Integer inputs used as indices, and the bound each must stay under. */
  readonly limits = new Map<Value, number>();
  private readonly constantIds = new Map<string, number>();
  private temps = 0;

  /** Creates a context; `uses` counts each value's uses (operands and returns), `users` lists the ops. */
  constructor(readonly uses: ReadonlyMap<Value, number>, readonly users: ReadonlyMap<Value, readonly Op[]>) {}

  /** The compile-time value of `v`, if it has one. */
  knownValue(v: Value): Tensor | undefined {
    return this.known.get(v);
  }

  /** An argument for a compile-time f32/i32 block, stored once per `key` in the weights region. */
  constant(key: string, label: string, make: () => Float32Array | Int32Array): Arg {
    let id = this.constantIds.get(key);
    if (id === undefined) {
      id = this.constants.length;
      this.constants.push({ label, data: make() });
      this.constantIds.set(key, id);
    }
    return { constant: id };
  }

  /** An argument for operand `v` as stored: a runtime buffer, or its compile-time data. */
  operand(op: Op, v: Value): Arg {
    const t = this.known.get(v);
    if (!t) return { buffer: this.bufferOf(op, v) };
    if (t.dtype !== "f32" && t.dtype !== "i32") {
      throw new CodegenError(
        op.loc,
        `constant operand ${v.ref} has dtype ${t.dtype}; codegen supports f32 and i32`,
      );
    }
    return this.constant(`raw:${v.kind}:${v.name}`, v.ref, () => t.data as Float32Array | Int32Array);
  }

  /** The runtime buffer of `v` (checking its dtype is one codegen supports). */
  bufferOf(op: Op | undefined, v: Value): RuntimeBuffer {
    if (RUNTIME_BYTES[v.type.dtype] === undefined) {
      throw new CodegenError(
        op?.loc ?? v.loc,
        `${v.ref} has dtype ${v.type.dtype}; compiled code supports f32, i32 and i64 tensors`,
      );
    }
    return v;
  }

  /** A fresh temporary buffer of `bytes` bytes. */
  temp(bytes: number): RuntimeBuffer {
    return { temp: `tmp${this.temps++}`, bytes };
  }

  /** Records that `v` is stored in `of`'s buffer at `byteOffset` (no copy). */
  alias(v: Value, of: Value, byteOffset = 0): void {
    const base = this.aliases.get(of);
    this.aliases.set(
      v,
      base ? { of: base.of, byteOffset: base.byteOffset + byteOffset } : { of, byteOffset },
    );
  }

  /** Appends a step. */
  emit(step: LoweredStep): void {
    this.steps.push(step);
  }
}

/** Bytes a runtime value occupies. */
export function valueBytes(v: Value): number {
  return numel(v.type.shape) * elementBytes(v.type.dtype);
}

/** Bytes per element of a dtype at run time (f32, i32: 4, i64: 8). */
export function elementBytes(dtype: DType): number {
  return RUNTIME_BYTES[dtype] ?? 4;
}

/** Lowers one op (not known at compile time) into steps. */
export type Lowering = (op: Op, ctx: LowerContext) => void;

/** The attributes of a built-in op, with defaults filled in. */
export function attrsOf(op: Op): AttrReader {
  const def = builtinRegistry.get(op.name);
  if (!def) throw new CodegenError(op.loc, `'${op.name}' is not a built-in op; codegen has no kernel for it`);
  return new AttrReader(def.attrs, op.attrs);
}
