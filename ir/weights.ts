/**
 * Weight stores: where the interpreter gets each declared weight's data. Backed by a
 * safetensors file (zero-copy where the file allows) or by tensors in memory; and the writer
 * that stores a module's weights, BSR ones included, as safetensors.
 */

import type { Module, Weight } from "./module.ts";
import {
  type SafetensorsDType,
  type SafetensorsFile,
  type TensorToWrite,
  writeSafetensors,
} from "./safetensors.ts";
import { BsrTensor, Tensor } from "./tensor.ts";
import { bsrGrid, type TensorType } from "./types.ts";
import { bsrArrays, type WeightEntry } from "./verifier.ts";

/** Gives the data of declared weights. */
export interface WeightStore {
  /** The entries the store holds, for `verify`. */
  entries(): ReadonlyMap<string, WeightEntry>;
  /** The data of a declared weight, of exactly its type. Throws when it is missing or malformed. */
  get(w: Weight): Tensor;
}

/**
 * What is wrong with the BSR index arrays of a weight of type `type` (SciPy's layout: `indptr`
 * starts at 0, never decreases and ends at nnz; every block column is inside the grid), or
 * undefined when they are well formed.
 */
export function bsrIndexProblem(
  type: TensorType,
  indices: ArrayLike<number>,
  indptr: ArrayLike<number>,
): string | undefined {
  const s = type.sparse!;
  const [rows, cols] = bsrGrid(type.shape, s.block);
  if (indptr.length !== rows + 1 || indptr[0] !== 0 || indptr[rows] !== s.nnzBlocks) {
    return `indptr must have ${rows + 1} entries, start at 0 and end at nnz ${s.nnzBlocks}`;
  }
  if (indices.length !== s.nnzBlocks) {
    return `indices must have nnz ${s.nnzBlocks} entries, has ${indices.length}`;
  }
  for (let r = 0; r < rows; r++) {
    if (indptr[r + 1] < indptr[r]) {
      return `indptr decreases at block row ${r} (${indptr[r]} then ${indptr[r + 1]})`;
    }
  }
  for (let k = 0; k < indices.length; k++) {
    if (indices[k] < 0 || indices[k] >= cols) {
      return `block column ${indices[k]} at ${k} is outside 0..${cols - 1}`;
    }
  }
  return undefined;
}

/** Checks the BSR index arrays of weight `name`; throws an Error naming it when malformed. */
export function checkBsrIndex(name: string, t: BsrTensor): void {
  const problem = bsrIndexProblem(t.sparseType, t.indices, t.indptr);
  if (problem) throw new Error(`weight '@${name}': bad bsr index: ${problem}`);
}

/** A store over a parsed safetensors file. */
export function safetensorsStore(file: SafetensorsFile): WeightStore {
  return {
    entries: () => file.tensors,
    get(w: Weight): Tensor {
      const t = w.type;
      if (t.sparse) {
        const data = t.dtype === "i8"
          ? Int8Array.from(file.int32(`${w.name}.data`))
          : file.float32(`${w.name}.data`);
        const bsr = new BsrTensor(t, data, file.int32(`${w.name}.indices`), file.int32(`${w.name}.indptr`));
        checkBsrIndex(w.name, bsr);
        return bsr;
      }
      if (t.dtype === "i32") return new Tensor(t, file.int32(w.name));
      if (t.dtype === "i8") return new Tensor(t, Int8Array.from(file.int32(w.name)));
      if (t.dtype === "i64") return new Tensor(t, Float64Array.from(file.int32(w.name)));
      if (t.dtype === "f64") return new Tensor(t, Float64Array.from(file.float32(w.name)));
      return new Tensor(t, file.float32(w.name));
    },
  };
}

function entriesOf(tensors: Iterable<readonly [string, Tensor]>): [string, WeightEntry][] {
  return [...tensors].flatMap(([name, t]) =>
    t instanceof BsrTensor
      ? bsrArrays(name, t.sparseType).map((a) => [a.name, a] as [string, WeightEntry])
      : [[name, { dtype: t.dtype.toUpperCase(), shape: t.shape }] as [string, WeightEntry]]
  );
}

/**
 * A store that starts as `base` and takes replacement data by weight name, as passes change
 * weights; `changes` holds what was replaced. The base is never written.
 */
export class OverlayStore implements WeightStore {
  /** Replaced weights, by name. */
  readonly changes: Map<string, Tensor> = new Map();
  /** Counts replacements, so a caller can tell whether any happened. */
  version = 0;

  /** An overlay over `base`. */
  constructor(private readonly base: WeightStore) {}

  /** Replaces the data of weight `name`. */
  set(name: string, data: Tensor): void {
    this.changes.set(name, data);
    this.version++;
  }

  /** The entries of the base, with replaced weights' entries swapped for the new ones. */
  entries(): ReadonlyMap<string, WeightEntry> {
    const replaced = new Set(
      [...this.changes.keys()].flatMap((n) => [n, `${n}.data`, `${n}.indices`, `${n}.indptr`]),
    );
    const kept = [...this.base.entries()].filter(([name]) => !replaced.has(name));
    return new Map([...kept, ...entriesOf(this.changes)]);
  }

  /** The replaced data of a weight, or the base's. */
  get(w: Weight): Tensor {
    return this.changes.get(w.name) ?? this.base.get(w);
  }
}

/** A store over tensors in memory, keyed by weight name; BSR weights as BsrTensor. */
export function memoryStore(tensors: ReadonlyMap<string, Tensor>): WeightStore {
  return {
    entries: () => new Map(entriesOf(tensors)),
    get(w: Weight): Tensor {
      const t = tensors.get(w.name);
      if (!t) throw new Error(`weight '@${w.name}' is not in the store`);
      if (t instanceof BsrTensor) checkBsrIndex(w.name, t);
      return t;
    },
  };
}

/**
 * The tensors that store `m`'s weights from `store`, as safetensors holds them (the writer beside
 * {@link safetensorsStore}, which reads them back): a BSR weight as `<name>.data`, `<name>.indices`
 * and `<name>.indptr`, every other weight under its own name.
 */
export function weightTensors(m: Module, store: WeightStore): TensorToWrite[] {
  return [...m.weights.values()].flatMap((w): TensorToWrite[] => {
    const t = store.get(w);
    const dtype = w.type.dtype.toUpperCase() as SafetensorsDType;
    if (t instanceof BsrTensor) {
      return [
        { name: `${w.name}.data`, dtype, shape: [...t.shape], data: t.data },
        { name: `${w.name}.indices`, dtype: "I32", shape: [t.indices.length], data: t.indices },
        { name: `${w.name}.indptr`, dtype: "I32", shape: [t.indptr.length], data: t.indptr },
      ];
    }
    const data = w.type.dtype === "i64" ? BigInt64Array.from(t.data, (v) => BigInt(v)) : t.data;
    return [{ name: w.name, dtype, shape: [...t.shape], data }];
  });
}

/** Writes `m`'s weights from `store` as one safetensors file (atomically; see `writeSafetensors`). */
export async function writeWeights(path: string, m: Module, store: WeightStore): Promise<void> {
  await writeSafetensors(path, weightTensors(m, store));
}
