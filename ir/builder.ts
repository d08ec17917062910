/**
 * The module builder: creates modules in code, inferring each op's result type from the
 * registry, so that frontends and passes never spell out types the ops can work out.
 *
 * ```ts
 * const b = new ModuleBuilder("tiny", { weightsFile: "tiny.safetensors" });
 * const w = b.weight("q.weight", tensorType([4, 4]));
 * const f = b.func("main", [["x", tensorType([2, 4])]]);
 * const y = f.op("dense", [f.params[0], w], { transpose_b: true });
 * f.ret(y);
 * const module = b.module;
 * ```
 */

import { type Attr, attrFromJs, type AttrJs, AttrReader } from "./attrs.ts";
import { type Comments, Func, Module, noComments, Op, Value, Weight } from "./module.ts";
import { builtinRegistry } from "./ops/index.ts";
import { OpError, type OpRegistry } from "./registry.ts";
import { formatType, type TensorType } from "./types.ts";

/** Module attributes as JS values: integers become ints, other numbers floats. */
export type ModuleAttrs = Record<string, number | boolean | string | readonly number[]>;

/** Options of a new module. */
export interface ModuleOptions {
  /** Path of the safetensors file, relative to where the IR file will be written. */
  readonly weightsFile?: string;
  /** Module attributes; none by default. */
  readonly attrs?: ModuleAttrs;
  /** Ops to build with; the built-in ops by default. */
  readonly registry?: OpRegistry;
}

function moduleAttr(v: ModuleAttrs[string]): Attr {
  if (typeof v === "number") {
    return Number.isInteger(v) ? { kind: "int", value: v } : { kind: "float", value: v };
  }
  if (typeof v === "boolean") return { kind: "bool", value: v };
  if (typeof v === "string") return { kind: "string", value: v };
  return { kind: "ints", value: [...v] };
}

/** Builds a module. */
export class ModuleBuilder {
  /** The module being built. */
  readonly module: Module;
  private readonly registry: OpRegistry;

  /** Starts an empty module with this name. */
  constructor(name: string, options: ModuleOptions = {}) {
    this.registry = options.registry ?? builtinRegistry;
    const attrs = new Map(Object.entries(options.attrs ?? {}).map(([k, v]) => [k, moduleAttr(v)]));
    this.module = new Module(name, attrs, options.weightsFile);
  }

  /** Declares a weight of the weights file; a comment goes before it, after a blank line. */
  weight(name: string, type: TensorType, comment?: string): Weight {
    if (this.module.weights.has(name)) throw new Error(`weight '@${name}' is declared twice`);
    const w = new Weight(name, type);
    if (comment) w.comments = { leading: [`// ${comment}`], blankLine: true };
    this.module.weights.set(name, w);
    return w;
  }

  /** Starts a function with named, typed parameters. */
  func(name: string, params: readonly (readonly [string, TensorType])[]): FuncBuilder {
    if (this.module.func(name)) throw new Error(`function '@${name}' is defined twice`);
    const f = new Func(name, params.map(([n, t]) => new Value(n, t, "arg")), [], [], []);
    this.module.funcs.push(f);
    return new FuncBuilder(f, this.registry);
  }
}

/** Options of one op. */
export interface OpOptions {
  /** The result's name; numbered when absent, suffixed when taken. */
  readonly name?: string;
  /** The result type, for ops that cannot infer it (reshape, cast, constant). */
  readonly type?: TensorType;
}

/** Appends ops to a function. */
export class FuncBuilder {
  private readonly names: NameScope;
  private pending: Comments = noComments();

  /** Appends to `func`, checking ops against `registry`; its parameter names are taken. */
  constructor(readonly func: Func, private readonly registry: OpRegistry) {
    this.names = new NameScope(func);
  }

  /** The function's parameters. */
  get params(): Value[] {
    return this.func.params;
  }

  /** Puts a comment line before the next op, after a blank line. */
  section(comment: string): void {
    this.pending.blankLine = true;
    this.pending.leading.push(`// ${comment}`);
  }

  /** Appends an op and returns its result. Throws when the op or its operands break a rule. */
  op(
    name: string,
    operands: readonly Value[],
    attrs: Record<string, AttrJs> = {},
    options: OpOptions = {},
  ): Value {
    const op = createOp(this.registry, name, operands, attrs, this.names.fresh(options.name), options.type);
    op.comments = this.pending;
    this.pending = noComments();
    this.func.body.push(op);
    return op.result;
  }

  /** Ends the function, returning these values; the signature follows their types. */
  ret(...values: Value[]): void {
    this.func.returns = values;
    this.func.resultTypes = values.map((v) => v.type);
  }
}

/** Hands out result names not yet used in a function. */
export class NameScope {
  private readonly taken = new Set<string>();
  private counter = 0;

  /** A scope holding the names `f` already defines. */
  constructor(f: Func) {
    for (const p of f.params) this.taken.add(p.name);
    for (const op of f.body) this.taken.add(op.result.name);
  }

  /** An unused name: `wanted`, suffixed `.N` when taken, or the next number. */
  fresh(wanted?: string): string {
    let name = wanted ?? String(this.counter++);
    while (this.taken.has(name)) name = wanted ? `${wanted}.${this.counter++}` : String(this.counter++);
    this.taken.add(name);
    return name;
  }
}

/**
 * Creates an op (not yet placed in a function), converting JS attribute values by the op's
 * schema and inferring its result type. Throws an Error naming the op when a rule is broken;
 * `type`, when given, must equal the inferred type (reshape, cast and constant need it).
 */
export function createOp(
  registry: OpRegistry,
  name: string,
  operands: readonly Value[],
  attrs: Readonly<Record<string, AttrJs>>,
  resultName: string,
  type?: TensorType,
): Op {
  const def = registry.get(name);
  if (!def) throw new Error(`unknown op '${name}'`);
  const written = new Map<string, Attr>();
  for (const [key, spec] of Object.entries(def.attrs)) {
    if (!(key in attrs)) continue;
    try {
      written.set(key, attrFromJs(spec, attrs[key]));
    } catch (e) {
      throw new Error(`'${name}': attribute '${key}' ${(e as Error).message}`);
    }
  }
  const unknown = Object.keys(attrs).filter((k) => !Object.hasOwn(def.attrs, k));
  if (unknown.length > 0) throw new Error(`'${name}': unknown attribute '${unknown[0]}'`);
  let inferred: TensorType;
  try {
    inferred = def.infer(operands.map((v) => v.type), new AttrReader(def.attrs, written), type);
  } catch (e) {
    throw new Error(`'${name}': ${e instanceof OpError ? e.message : e}`);
  }
  if (type && formatType(type) !== formatType(inferred)) {
    throw new Error(`'${name}': result is ${formatType(inferred)}, not the requested ${formatType(type)}`);
  }
  return new Op(name, [...operands], written, new Value(resultName, inferred, "result"));
}
