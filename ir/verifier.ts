/**
 * `verify`: checks a module against the rules of the IR and of each op, and its weight
 * declarations against the weights file. Returns every problem found, each at a place.
 *
 * Checked: types are well formed; SSA (each value defined once, before use, in its
 * function); ops exist, with the right operand count, no sparse operand where the op takes
 * none, known attributes of the right kinds; each op's own rules and inferred result type
 * against the declared one; returns against the signature; weights present in the file with
 * the same shape and dtype (BSR weights as their `.data`, `.indices` and `.indptr` arrays).
 */

import { AttrReader, checkAttr, describeAttrType } from "./attrs.ts";
import { type Diagnostic, didYouMean } from "./diagnostics.ts";
import type { Func, Loc, Module, Op, Value } from "./module.ts";
import { builtinRegistry } from "./ops/index.ts";
import { OpError, type OpRegistry } from "./registry.ts";
import { bsrGrid, formatShape, formatType, numel, sameShape, type TensorType } from "./types.ts";

/** The largest tensor the IR accepts, in elements. */
export const MAX_ELEMENTS = 2 ** 31 - 1;

/**
 * The most ops a module may have, all functions together (BERT-large built here has 570 ops a
 * function; imported from ONNX, some 2,500 nodes before folding): the parser refuses a longer file
 * before building it, the verifier a larger module, the ONNX import a larger graph. Some passes
 * (`recognize`) take time quadratic in a function's length, so the bound is also one on time.
 */
export const MAX_OPS = 20_000;

/** Shape and dtype of one entry of the weights file; dtype as safetensors writes it (`F32`). */
export interface WeightEntry {
  /** Element type as safetensors spells it, e.g. `F32`. */
  readonly dtype: string;
  /** Dimensions of the stored tensor. */
  readonly shape: readonly number[];
}

/** Options of `verify`. */
export interface VerifyOptions {
  /** The ops to check against; the built-in ops by default. */
  readonly registry?: OpRegistry;
  /** The weights file's entries by name; when given, declarations are checked against it. */
  readonly weights?: ReadonlyMap<string, WeightEntry>;
  /** Name of the weights file, for messages. */
  readonly weightsSource?: string;
}

/** Describes what is wrong with a type, or undefined when it is well formed. */
export function typeProblem(t: TensorType): string | undefined {
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    return `dimensions must be non-negative integers, got ${formatShape(t.shape)}`;
  }
  if (numel(t.shape) > MAX_ELEMENTS) return `${formatType(t)} has more than ${MAX_ELEMENTS} elements`;
  const s = t.sparse;
  if (!s) return undefined;
  if (t.shape.length !== 2) return `a bsr tensor must be 2-D, got ${formatType(t)}`;
  if (!["f32", "f16", "bf16", "i8"].includes(t.dtype)) {
    return `a bsr tensor must hold f32, f16, bf16 or i8, got ${t.dtype}`;
  }
  if (!s.block.every((d) => Number.isSafeInteger(d) && d > 0)) {
    return `bsr block dims must be positive, got ${formatShape(s.block)}`;
  }
  const [r, c] = bsrGrid(t.shape, s.block);
  if (!Number.isSafeInteger(s.nnzBlocks) || s.nnzBlocks < 0 || s.nnzBlocks > r * c) {
    return `bsr nnz must be between 0 and ${r * c} (the ${r}x${c} block grid), got ${s.nnzBlocks}`;
  }
  return undefined;
}

/** The arrays a BSR weight `name` is stored as, with their shapes, dtype as the data's. */
export function bsrArrays(name: string, t: TensorType): { name: string; dtype: string; shape: number[] }[] {
  const s = t.sparse!;
  const [rows] = bsrGrid(t.shape, s.block);
  return [
    { name: `${name}.data`, dtype: t.dtype.toUpperCase(), shape: [s.nnzBlocks, s.block[0], s.block[1]] },
    { name: `${name}.indices`, dtype: "I32", shape: [s.nnzBlocks] },
    { name: `${name}.indptr`, dtype: "I32", shape: [rows + 1] },
  ];
}

/** Verifies a module; returns its problems in source order (none when valid). */
export function verify(m: Module, options: VerifyOptions = {}): Diagnostic[] {
  return new Verifier(m, options.registry ?? builtinRegistry, options).run();
}

class Verifier {
  private readonly diagnostics: Diagnostic[] = [];
  private readonly fallback: Loc;

  constructor(
    private readonly m: Module,
    private readonly registry: OpRegistry,
    private readonly options: VerifyOptions,
  ) {
    this.fallback = m.loc ?? { file: "<module>", line: 1, col: 1 };
  }

  private error(loc: Loc | undefined, message: string): void {
    this.diagnostics.push({ loc: loc ?? this.fallback, message });
  }

  private checkType(v: Value): void {
    const problem = typeProblem(v.type);
    if (problem) this.error(v.loc, `type of '${v.ref}': ${problem}`);
  }

  run(): Diagnostic[] {
    for (const w of this.m.weights.values()) {
      this.checkType(w);
      if (this.options.weights) this.checkWeight(w);
    }
    const ops = this.m.funcs.reduce((n, f) => n + f.body.length, 0);
    if (ops > MAX_OPS) {
      this.error(this.m.loc, `the module has ${ops} ops, more than the limit of ${MAX_OPS}`);
      return this.diagnostics;
    }
    const names = new Set<string>();
    for (const f of this.m.funcs) {
      if (names.has(f.name)) this.error(f.loc, `redefinition of function '@${f.name}'`);
      names.add(f.name);
      this.checkFunc(f);
    }
    return this.diagnostics.sort((a, b) => a.loc.line - b.loc.line || a.loc.col - b.loc.col);
  }

  private checkWeight(w: Value): void {
    const file = this.options.weights!;
    const source = this.options.weightsSource ?? "the weights file";
    const expected = w.type.sparse
      ? bsrArrays(w.name, w.type)
      : [{ name: w.name, dtype: w.type.dtype.toUpperCase(), shape: [...w.type.shape] }];
    for (const e of expected) {
      const found = file.get(e.name);
      if (!found) {
        const hint = didYouMean(e.name, file.keys());
        this.error(w.loc, `weight '@${e.name}' is missing from ${source}${hint}`);
      } else if (found.dtype !== e.dtype || !sameShape(found.shape, e.shape)) {
        const want = `${formatShape(e.shape)} ${e.dtype.toLowerCase()}`;
        const got = `${formatShape(found.shape)} ${found.dtype.toLowerCase()}`;
        this.error(w.loc, `weight '@${e.name}' is declared as ${want} but ${source} has ${got}`);
      }
    }
  }

  private checkFunc(f: Func): void {
    const defined = new Map<string, Value>();
    const define = (v: Value) => {
      this.checkType(v);
      if (defined.has(v.name)) this.error(v.loc, `redefinition of '${v.ref}'`);
      defined.set(v.name, v);
    };
    const usable = (v: Value, loc: Loc | undefined): boolean => {
      const ok = v.kind === "weight" ? this.m.weights.get(v.name) === v : defined.get(v.name) === v;
      if (!ok) {
        const what = v.kind === "weight" ? "is not declared in the module" : "is used before it is defined";
        this.error(loc, `'${v.ref}' ${what}`);
      }
      return ok;
    };
    f.params.forEach(define);
    for (const op of f.body) {
      const operandsOk = op.operands.map((v) => usable(v, op.loc)).every(Boolean);
      if (operandsOk) this.checkOp(op);
      define(op.result);
    }
    const loc = f.returnLoc ?? f.loc;
    f.returns.forEach((v) => usable(v, loc));
    f.resultTypes.forEach((t, i) => {
      const problem = typeProblem(t);
      if (problem) this.error(f.loc, `result ${i} of '@${f.name}': ${problem}`);
    });
    if (f.returns.length !== f.resultTypes.length) {
      const n = f.returns.length;
      const values = `${n} value${n === 1 ? "" : "s"}`;
      this.error(loc, `'@${f.name}' returns ${values} but its signature has ${f.resultTypes.length}`);
      return;
    }
    f.returns.forEach((v, i) => {
      const want = formatType(f.resultTypes[i]);
      if (formatType(v.type) !== want) {
        this.error(
          loc,
          `return value ${i} '${v.ref}' has type ${formatType(v.type)}, the signature says ${want}`,
        );
      }
    });
  }

  private checkOp(op: Op): void {
    const def = this.registry.get(op.name);
    if (!def) {
      this.error(op.loc, `unknown op '${op.name}'${didYouMean(op.name, this.registry.names())}`);
      return;
    }
    const specs = def.operands;
    const required = specs.filter((s) => !s.optional).length;
    const variadic = specs.at(-1)?.variadic === true;
    const n = op.operands.length;
    if (n < required || (!variadic && n > specs.length)) {
      const range = variadic
        ? `at least ${required}`
        : required === specs.length
        ? `${required}`
        : `${required} to ${specs.length}`;
      const names = specs.length > 0 ? ` (${specs.map((s) => s.name).join(", ")})` : "";
      const plural = range === "1" || range === "at least 1" ? "" : "s";
      this.error(op.loc, `'${op.name}' takes ${range} operand${plural}${names}, got ${n}`);
      return;
    }
    // An operand whose type is malformed was reported where it was defined.
    if (op.operands.some((v) => typeProblem(v.type))) return;
    let ok = true;
    op.operands.forEach((v, i) => {
      const spec = specs[Math.min(i, specs.length - 1)];
      if (v.type.sparse && !spec.sparse) {
        this.error(op.loc, `'${op.name}': operand '${spec.name}' cannot be a bsr tensor (${v.ref})`);
        ok = false;
      }
    });
    for (const [key, value] of op.attrs) {
      // Own keys only: `constructor` or `toString` must not find Object.prototype's.
      const spec = Object.hasOwn(def.attrs, key) ? def.attrs[key] : undefined;
      if (!spec) {
        const known = Object.keys(def.attrs);
        const hint = didYouMean(key, known) ||
          (known.length ? ` (it takes ${known.join(", ")})` : " (it takes no attributes)");
        this.error(op.loc, `unknown attribute '${key}' for '${op.name}'${hint}`);
        ok = false;
        continue;
      }
      const problem = checkAttr(spec, value);
      if (problem) {
        this.error(op.loc, `attribute '${key}' of '${op.name}' ${problem}`);
        ok = false;
      }
    }
    for (const [key, spec] of Object.entries(def.attrs)) {
      if (spec.default === undefined && !spec.optional && !op.attrs.has(key)) {
        this.error(op.loc, `'${op.name}' needs attribute '${key}' (${describeAttrType(spec)})`);
        ok = false;
      }
    }
    if (ok) this.checkResult(op);
  }

  private checkResult(op: Op): void {
    const def = this.registry.get(op.name)!;
    const declared = op.result.type;
    let inferred: TensorType;
    try {
      inferred = def.infer(op.operands.map((v) => v.type), new AttrReader(def.attrs, op.attrs), declared);
    } catch (e) {
      const why = e instanceof OpError ? e.message : `internal error in its type rule: ${e}`;
      this.error(op.loc, `'${op.name}': ${why}`);
      return;
    }
    if (inferred.dtype !== declared.dtype) {
      this.error(
        op.loc,
        `result dtype mismatch: '${op.name}' gives ${inferred.dtype}, declared ${declared.dtype}`,
      );
    } else if (formatType(inferred) !== formatType(declared)) {
      const what = sameShape(inferred.shape, declared.shape) ? "type" : "shape";
      this.error(
        op.loc,
        `result ${what} mismatch: '${op.name}' gives ${formatType(inferred)}, declared ${
          formatType(declared)
        }`,
      );
    }
  }
}
