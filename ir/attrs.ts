/**
 * Op attributes: their values, their schema, how they print, and a typed reader that fills in
 * defaults from the schema.
 *
 * Text forms: `42`, `1.0e-12`, `true`, `"text"`, `[0, 2, 1, 3]`, a block shape `1x32`, an enum
 * value `tanh`, and a small tensor literal `dense<[[1.0, 2.0]]>` (or a splat, `dense<0.5>`).
 */

/** An attribute value as written in the IR. */
export type Attr =
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "ints"; readonly value: readonly number[] }
  | { readonly kind: "block"; readonly value: readonly [number, number] }
  | { readonly kind: "enum"; readonly value: string }
  | { readonly kind: "dense"; readonly value: DenseLiteral };

/**
 * A tensor literal. `shape` is the nesting of the brackets as written (`[]` for a splat);
 * `values` are the elements in row-major order; `float` says whether they print as floats.
 */
export interface DenseLiteral {
  /** Bracket nesting as written; `[]` for a splat. */
  readonly shape: readonly number[];
  /** Elements in row-major order. */
  readonly values: readonly number[];
  /** Whether the elements print as floats. */
  readonly float: boolean;
}

/** The kinds an attribute schema can ask for. `shape` is a list of non-negative ints. */
export type AttrType = "int" | "float" | "bool" | "string" | "ints" | "shape" | "block" | "enum" | "dense";

/** JS value of an attribute, as op code reads it. */
export type AttrJs = number | boolean | string | readonly number[] | DenseLiteral;

/** Schema of one attribute of an op. An attribute with neither a default nor `optional` is required. */
export interface AttrSpec {
  /** The kind of value the attribute takes. */
  readonly type: AttrType;
  /** One line for the op reference. */
  readonly doc: string;
  /** Allowed values of an enum. */
  readonly values?: readonly string[];
  /** Value used when the attribute is left out. */
  readonly default?: AttrJs;
  /** The attribute may be left out although it has no default; the op reads `has()`. */
  readonly optional?: boolean;
}

/** Formats a float so that it reads back as a float: always with a `.` or an exponent. */
export function formatFloat(v: number): string {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (Object.is(v, -0)) return "-0.0";
  const s = String(v);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

function formatDense(d: DenseLiteral): string {
  const fmt = (v: number) => d.float ? formatFloat(v) : String(v);
  if (d.shape.length === 0) return `dense<${fmt(d.values[0])}>`;
  let pos = 0;
  const nest = (dim: number): string => {
    const parts: string[] = [];
    for (let i = 0; i < d.shape[dim]; i++) {
      parts.push(dim === d.shape.length - 1 ? fmt(d.values[pos++]) : nest(dim + 1));
    }
    return `[${parts.join(", ")}]`;
  };
  return `dense<${nest(0)}>`;
}

/** Formats an attribute value in the IR's text form. */
export function formatAttr(a: Attr): string {
  switch (a.kind) {
    case "int":
      return String(a.value);
    case "float":
      return formatFloat(a.value);
    case "bool":
      return String(a.value);
    case "string":
      return JSON.stringify(a.value);
    case "ints":
      return `[${a.value.join(", ")}]`;
    case "block":
      return `${a.value[0]}x${a.value[1]}`;
    case "enum":
      return a.value;
    case "dense":
      return formatDense(a.value);
  }
}

/** The name of an attribute kind, for messages. */
const KIND_NAMES: Record<AttrType, string> = {
  int: "an int",
  float: "a float",
  bool: "a bool",
  string: "a string",
  ints: "an int list",
  shape: "a shape (a list of non-negative ints)",
  block: "a block shape such as 1x32",
  enum: "an enum value",
  dense: "a tensor literal dense<...>",
};

/** Describes what a schema type expects, for messages. */
export function describeAttrType(spec: AttrSpec): string {
  if (spec.type === "enum" && spec.values) return `one of ${spec.values.join(", ")}`;
  return KIND_NAMES[spec.type];
}

/**
 * Checks a written attribute against its schema. Returns a message, or undefined when it fits.
 * An int is accepted where a float is asked for.
 */
export function checkAttr(spec: AttrSpec, a: Attr): string | undefined {
  const bad = () => `must be ${describeAttrType(spec)}, got ${formatAttr(a)}`;
  switch (spec.type) {
    case "float":
      return a.kind === "float" || a.kind === "int" ? undefined : bad();
    case "shape":
      return a.kind === "ints" && a.value.every((d) => d >= 0) ? undefined : bad();
    case "block":
      return a.kind === "block" && a.value[0] > 0 && a.value[1] > 0 ? undefined : bad();
    case "enum":
      return a.kind === "enum" && (!spec.values || spec.values.includes(a.value)) ? undefined : bad();
    default:
      return a.kind === spec.type ? undefined : bad();
  }
}

/**
 * Converts a JS value to an attribute of the schema's type, for the module builder.
 * Throws a TypeError when the value does not fit.
 */
export function attrFromJs(spec: AttrSpec, v: AttrJs): Attr {
  const a = jsToAttr(spec.type, v);
  const problem = a && checkAttr(spec, a);
  if (!a || problem) throw new TypeError(problem ?? `must be ${describeAttrType(spec)}`);
  return a;
}

function jsToAttr(type: AttrType, v: AttrJs): Attr | undefined {
  switch (type) {
    case "int":
      return typeof v === "number" && Number.isSafeInteger(v) ? { kind: "int", value: v } : undefined;
    case "float":
      return typeof v === "number" ? { kind: "float", value: v } : undefined;
    case "bool":
      return typeof v === "boolean" ? { kind: "bool", value: v } : undefined;
    case "string":
      return typeof v === "string" ? { kind: "string", value: v } : undefined;
    case "enum":
      return typeof v === "string" ? { kind: "enum", value: v } : undefined;
    case "ints":
    case "shape":
      return Array.isArray(v) && v.every(Number.isSafeInteger) ? { kind: "ints", value: [...v] } : undefined;
    case "block":
      return Array.isArray(v) && v.length === 2 && v.every(Number.isSafeInteger)
        ? { kind: "block", value: [v[0], v[1]] }
        : undefined;
    case "dense":
      return typeof v === "object" && "values" in v ? { kind: "dense", value: v as DenseLiteral } : undefined;
  }
}

/** The JS value of an attribute. */
export function attrToJs(a: Attr): AttrJs {
  return a.value;
}

/**
 * Typed access to an op's attributes, with schema defaults filled in. Op definitions read
 * their attributes through this; the verifier has already checked kinds.
 */
export class AttrReader {
  /** Reads `attrs`, taking defaults from `specs`. */
  constructor(
    private readonly specs: Readonly<Record<string, AttrSpec>>,
    private readonly attrs: ReadonlyMap<string, Attr>,
  ) {}

  /** The written value, else the schema default; throws when there is neither. */
  private get(name: string): AttrJs {
    const a = this.attrs.get(name);
    if (a) return attrToJs(a);
    const d = this.specs[name]?.default;
    if (d === undefined) throw new Error(`attribute '${name}' is missing and has no default`);
    return d;
  }

  /** Whether the attribute was written (defaults do not count). */
  has(name: string): boolean {
    return this.attrs.has(name);
  }

  /** An int attribute. */
  int(name: string): number {
    return this.get(name) as number;
  }

  /** A float attribute. */
  float(name: string): number {
    return this.get(name) as number;
  }

  /** A bool attribute. */
  bool(name: string): boolean {
    return this.get(name) as boolean;
  }

  /** A string or enum attribute. */
  string(name: string): string {
    return this.get(name) as string;
  }

  /** An int list, shape or block attribute. */
  ints(name: string): readonly number[] {
    return this.get(name) as readonly number[];
  }

  /** A tensor literal attribute. */
  dense(name: string): DenseLiteral {
    return this.get(name) as DenseLiteral;
  }
}
