/**
 * One ONNX node being imported, as the op handlers see it: `NodeCtx` (its inputs, typed
 * attributes and errors naming it), the `Handler` type, the `OnnxImportError` every problem is
 * reported with, the readable IR names of ONNX values, and the rank and axis helpers that
 * several op families share.
 */

import { normalizeAxis } from "../../ir/shape.ts";
import type { Tensor } from "../../ir/tensor.ts";
import { type Const, intsOf, isConst, type Known, typeOf } from "./fold_shapes.ts";
import type { Importer } from "./graph.ts";
import { type Onnx as OnnxTypes, onnx, toNumber as num } from "./proto.ts";

type NodeProto = OnnxTypes.INodeProto;
type AttributeProto = OnnxTypes.IAttributeProto;

/** A problem with the model: names the file and, where there is one, the node. */
export class OnnxImportError extends Error {
  /** Creates the error with its full message. */
  constructor(message: string) {
    super(message);
    this.name = "OnnxImportError";
  }
}

const AttributeType = onnx.AttributeProto.AttributeType;

/** The shortest decimal that is the same f32 as `v`. */
function shortestF32(v: number): number {
  const f = Math.fround(v);
  for (let p = 1; p < 17; p++) {
    const d = Number(v.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return v;
}

/**
 * A readable IR name for an ONNX value name: path separators and `::` become dots, a trailing
 * `_output_0` goes, other characters outside the IR's plain names become `_`.
 */
export function irName(onnxName: string): string {
  const s = onnxName
    .replace(/_output_0$/, "")
    .replace(/_output_(\d+)$/, ".$1")
    .replace(/::/g, ".")
    .replace(/\//g, ".")
    .replace(/[^A-Za-z0-9_.$-]/g, "_")
    .replace(/^\.+/, "")
    .replace(/\.{2,}/g, ".");
  return s === "" ? "v" : s;
}

/** One node being imported: its inputs, attributes and errors naming it. */
export class NodeCtx {
  /** The node's attributes, by name. */
  readonly attrs = new Map<string, AttributeProto>();

  /** The context of `node`, the i-th in the import order, imported by `imp`. */
  constructor(readonly imp: Importer, readonly node: NodeProto, readonly index: number) {
    for (const a of node.attribute ?? []) this.attrs.set(a.name ?? "", a);
  }

  /** The node's op type. */
  get op(): string {
    return this.node.opType ?? "";
  }

  /** The default-domain opset of the model. */
  get opset(): number {
    return this.imp.opset;
  }

  /** `node 'name' (Op)`, or `node #i (Op, output 'y')` for an unnamed node. */
  get label(): string {
    const domain = this.node.domain && this.node.domain !== "ai.onnx" ? `${this.node.domain}.` : "";
    const type = `${domain}${this.op}`;
    if (this.node.name) return `node '${this.node.name}' (${type})`;
    return `node #${this.index} (${type}, output '${this.node.output?.[0] ?? ""}')`;
  }

  /** An error naming the node. */
  fail(message: string): OnnxImportError {
    return new OnnxImportError(`${this.imp.source}: ${this.label}: ${message}`);
  }

  /** The ONNX name of output i. */
  outName(i = 0): string {
    return this.node.output?.[i] ?? `${this.node.name ?? this.op}_${i}`;
  }

  /** The IR name of output 0, with a suffix for the helper ops and constants of the node. */
  derived(suffix = ""): string {
    return irName(this.outName()) + suffix;
  }

  /** Whether input i is given (present and not the empty name). */
  has(i: number): boolean {
    return !!this.node.input?.[i];
  }

  /** Input i, which must be given. */
  input(i: number): Known {
    const name = this.node.input?.[i];
    if (!name) throw this.fail(`input ${i} is missing`);
    const k = this.imp.env.get(name);
    if (!k) throw this.fail(`input '${name}' is not defined`);
    return k;
  }

  /** Input i if given. */
  optional(i: number): Known | undefined {
    return this.has(i) ? this.input(i) : undefined;
  }

  /** Input i as a constant, for inputs that must be known at static shapes (shapes, axes). */
  constInput(i: number, what: string): Const {
    const k = this.input(i);
    if (!isConst(k)) {
      throw this.fail(
        `input ${i} ('${this.node.input![i]}', the ${what}) is not a constant: it depends on the ` +
          `model's inputs' values, not only on their static shapes`,
      );
    }
    return k;
  }

  /** Integer values of constant input i. */
  constInts(i: number, what: string): number[] {
    return intsOf(this.constInput(i, what).tensor);
  }

  private attr(name: string, types: readonly number[]): AttributeProto | undefined {
    const a = this.attrs.get(name);
    if (a && a.type !== undefined && a.type !== null && a.type !== 0 && !types.includes(a.type)) {
      throw this.fail(`attribute '${name}' has the wrong type`);
    }
    return a;
  }

  /** An int attribute, or `fallback` when absent. */
  int(name: string, fallback: number): number {
    const a = this.attr(name, [AttributeType.INT]);
    return a ? num(a.i) : fallback;
  }

  /** A float attribute (as the shortest decimal of its f32: 1e-12, not 9.99999996e-13), or `fallback`. */
  float(name: string, fallback: number): number {
    const a = this.attr(name, [AttributeType.FLOAT]);
    return a ? shortestF32(a.f ?? 0) : fallback;
  }

  /** An ints attribute, or undefined when absent. */
  ints(name: string): number[] | undefined {
    const a = this.attr(name, [AttributeType.INTS]);
    return a ? (a.ints ?? []).map(num) : undefined;
  }

  /** A tensor attribute, or undefined when absent. */
  tensor(name: string): Tensor | undefined {
    const a = this.attr(name, [AttributeType.TENSOR]);
    return a?.t ? this.imp.readTensor(a.t, `attribute '${name}' of ${this.label}`) : undefined;
  }

  /** Fails when the attribute is set to anything but one of the supported values. */
  requireAttr(name: string, supported: readonly number[], fallback: number, float = false): void {
    if (!this.attrs.has(name)) return;
    const v = float ? this.float(name, fallback) : this.int(name, fallback);
    if (!supported.includes(v)) {
      throw this.fail(`attribute '${name}' = ${v} is not supported (only ${supported.join(" or ")})`);
    }
  }

  /** Fails when an extra output (e.g. LayerNormalization's Mean) is used by the graph. */
  requireUnused(from: number): void {
    const outs = this.node.output ?? [];
    for (let i = from; i < outs.length; i++) {
      if (outs[i] && this.imp.used.has(outs[i])) {
        throw this.fail(`output ${i} ('${outs[i]}') is used, which is not supported`);
      }
    }
  }
}

/** An op handler: the value of the node's output, or of each of its outputs. */
export type Handler = (n: NodeCtx) => Known | Known[];

/** The rank of a known value. */
export function rankOf(k: Known): number {
  return typeOf(k).shape.length;
}

/** Positive axes of `axes` for a tensor of rank `rank`. */
export function axesOf(n: NodeCtx, axes: readonly number[], rank: number): number[] {
  try {
    return axes.map((a) => normalizeAxis(a, rank));
  } catch (e) {
    throw n.fail((e as Error).message);
  }
}
