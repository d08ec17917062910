/**
 * Turns the concrete syntax tree of a well-formed parse into a Module: resolves value and
 * weight names, converts literals and types, attaches comments and source locations.
 * Naming problems (unknown values, redefinitions, bad literals) become diagnostics; type and
 * op rules are left to the verifier.
 */

import type { CstNode, IToken } from "npm:chevrotain@13.2.0";
import type { Attr } from "../attrs.ts";
import { type Diagnostic, didYouMean } from "../diagnostics.ts";
import { type Comments, Func, type Loc, Module, Op, quoteName, Value, Weight } from "../module.ts";
import { DTYPES, isDType, type TensorType } from "../types.ts";

type Children = Record<string, (CstNode | IToken)[] | undefined>;

function nodes(c: Children, key: string): CstNode[] {
  return (c[key] ?? []) as CstNode[];
}
function tokens(c: Children, key: string): IToken[] {
  return (c[key] ?? []) as IToken[];
}
function token(c: Children, key: string): IToken | undefined {
  return tokens(c, key)[0];
}
function kids(n: CstNode): Children {
  return n.children as Children;
}

/** Hands out comment tokens in source order, as leading or end-of-line comments of items. */
class CommentQueue {
  private next = 0;
  private lastLine = 0;

  constructor(private readonly comments: IToken[]) {}

  /**
   * Comments before `offset`, and whether a blank line comes before them (or the item). The
   * first item of a block never has one: the printer has no blank line to keep there.
   */
  leading(offset: number, itemLine: number, first = false): Comments {
    const leading: string[] = [];
    let firstLine = itemLine;
    while (this.next < this.comments.length && this.comments[this.next].startOffset < offset) {
      const c = this.comments[this.next++];
      if (leading.length === 0) firstLine = c.startLine!;
      leading.push(c.image.trimEnd());
    }
    const blankLine = !first && this.lastLine > 0 && firstLine > this.lastLine + 1;
    return blankLine ? { leading, blankLine } : { leading };
  }

  /** Comment lines before `offset`, for the end of a block. */
  rest(offset: number): string[] {
    return this.leading(offset, Number.MAX_SAFE_INTEGER).leading;
  }

  /** The comment on `line` after the item that ends there, if any; records the line. */
  trailing(line: number): string | undefined {
    this.lastLine = line;
    const c = this.comments[this.next];
    if (c && c.startLine === line) {
      this.next++;
      return c.image.trimEnd();
    }
    return undefined;
  }
}

/** Builds a module from a CST; one instance per parse. */
class CstToModule {
  readonly diagnostics: Diagnostic[] = [];
  private module!: Module;
  private scope = new Map<string, Value>();
  private readonly comments: CommentQueue;

  constructor(private readonly file: string, commentTokens: IToken[]) {
    this.comments = new CommentQueue(commentTokens);
  }

  private loc(t: IToken): Loc {
    return { file: this.file, line: t.startLine ?? 1, col: t.startColumn ?? 1 };
  }

  private error(t: IToken, message: string): void {
    this.diagnostics.push({ loc: this.loc(t), message });
  }

  /** The name in a `%name` or `@name` token, unquoted. */
  private name(t: IToken): string {
    const body = t.image.slice(1);
    if (!body.startsWith('"')) return body;
    try {
      return JSON.parse(body);
    } catch {
      this.error(t, `bad escape in quoted name ${t.image}`);
      return body;
    }
  }

  /** Comments before a closing brace, with one at the end of its line moved before it. */
  private closing(close: IToken): string[] {
    const before = this.comments.rest(close.startOffset);
    const after = this.comments.trailing(close.startLine!);
    return after === undefined ? before : [...before, after];
  }

  private lastLineOf(n: CstNode): number {
    return n.location?.endLine ?? 0;
  }

  build(root: CstNode): Module {
    const c = kids(root);
    const nameTok = token(c, "GlobalName")!;
    const m = new Module(this.name(nameTok));
    this.module = m;
    m.loc = this.loc(nameTok);
    const kw = token(c, "Kw_module")!;
    m.comments = this.comments.leading(kw.startOffset, kw.startLine!);
    const attrs = nodes(c, "attrDict")[0];
    if (attrs) m.attrs = this.attrDict(attrs);
    m.comments.trailing = this.comments.trailing(token(c, "LBrace")!.startLine!);
    const weights = nodes(c, "weightsBlock")[0];
    if (weights) this.weightsBlock(weights);
    for (const f of nodes(c, "func")) this.func(f);
    const close = token(c, "RBrace")!;
    m.endComments = this.closing(close);
    m.fileEndComments = this.comments.rest(Number.MAX_SAFE_INTEGER);
    return m;
  }

  private weightsBlock(n: CstNode): void {
    const c = kids(n);
    const kw = token(c, "Kw_weights")!;
    const file = token(c, "StringLit");
    if (file) this.module.weightsFile = this.string(file);
    this.module.weightsComments = this.comments.leading(kw.startOffset, kw.startLine!, true);
    this.module.weightsComments.trailing = this.comments.trailing(token(c, "LBrace")!.startLine!);
    for (const [i, d] of nodes(c, "weightDecl").entries()) {
      const dc = kids(d);
      const t = token(dc, "GlobalName")!;
      const comments = this.comments.leading(t.startOffset, t.startLine!, i === 0);
      const name = this.name(t);
      const type = this.type(nodes(dc, "type")[0]);
      const prior = this.module.weights.get(name);
      if (prior) {
        const first = `first declared at line ${prior.loc?.line}`;
        this.error(t, `redefinition of weight '@${quoteName(name)}' (${first})`);
        continue;
      }
      const w = new Weight(name, type, this.loc(t));
      w.comments = comments;
      w.comments.trailing = this.comments.trailing(this.lastLineOf(d));
      this.module.weights.set(name, w);
    }
    const close = token(c, "RBrace")!;
    this.module.weightsEndComments = this.closing(close);
  }

  private func(n: CstNode): void {
    const c = kids(n);
    const kw = token(c, "Kw_func")!;
    const nameTok = token(c, "GlobalName")!;
    // Functions are always printed one blank line apart, so none is recorded.
    const comments = this.comments.leading(kw.startOffset, kw.startLine!, true);
    const name = this.name(nameTok);
    if (this.module.func(name)) this.error(nameTok, `redefinition of function '@${quoteName(name)}'`);
    this.scope = new Map();
    const params = nodes(c, "param").map((p) => {
      const pc = kids(p);
      return this.define(token(pc, "LocalName")!, this.type(nodes(pc, "type")[0]), "arg");
    });
    const f = new Func(name, params, nodes(c, "type").map((t) => this.type(t)), [], [], this.loc(nameTok));
    f.comments = comments;
    f.comments.trailing = this.comments.trailing(token(c, "LBrace")!.startLine!);
    const ops = nodes(c, "op");
    ops.forEach((o, i) => {
      const op = this.op(o, i === 0);
      if (op) f.body.push(op);
    });
    const ret = nodes(c, "returnStmt")[0];
    const rc = kids(ret);
    const retTok = token(rc, "Kw_return")!;
    f.returnComments = this.comments.leading(retTok.startOffset, retTok.startLine!, ops.length === 0);
    f.returnLoc = this.loc(retTok);
    const retOperands = nodes(rc, "operands")[0];
    f.returns = retOperands ? this.operands(retOperands) ?? [] : [];
    f.returnComments.trailing = this.comments.trailing(this.lastLineOf(ret));
    const close = token(c, "RBrace")!;
    f.endComments = this.closing(close);
    this.module.funcs.push(f);
  }

  private define(t: IToken, type: TensorType, kind: "arg" | "result"): Value {
    const name = this.name(t);
    const prior = this.scope.get(name);
    if (prior) {
      const where = prior.loc ? ` (first defined at line ${prior.loc.line}:${prior.loc.col})` : "";
      this.error(t, `redefinition of '%${quoteName(name)}'${where}`);
    }
    const v = new Value(name, type, kind, this.loc(t));
    this.scope.set(name, v);
    return v;
  }

  private op(n: CstNode, first: boolean): Op | undefined {
    const c = kids(n);
    const resTok = token(c, "LocalName")!;
    const comments = this.comments.leading(resTok.startOffset, resTok.startLine!, first);
    const opName = token(c, "Word")!.image;
    const operandNode = nodes(c, "operands")[0];
    const operands = operandNode ? this.operands(operandNode) : [];
    const attrNode = nodes(c, "attrDict")[0];
    const attrs = attrNode ? this.attrDict(attrNode) : new Map<string, Attr>();
    const result = this.define(resTok, this.type(nodes(c, "type")[0]), "result");
    const trailing = this.comments.trailing(this.lastLineOf(n));
    if (!operands) return undefined;
    const op = new Op(opName, operands, attrs, result, this.loc(resTok));
    op.comments = { ...comments, trailing };
    if (trailing === undefined) delete op.comments.trailing;
    return op;
  }

  /** Resolves operand names; undefined when one is unknown (already reported). */
  private operands(n: CstNode): Value[] | undefined {
    const out: Value[] = [];
    let ok = true;
    for (const o of nodes(kids(n), "operand")) {
      const oc = kids(o);
      const local = token(oc, "LocalName");
      const t = local ?? token(oc, "GlobalName")!;
      const name = this.name(t);
      const v = local ? this.scope.get(name) : this.module.weights.get(name);
      if (v) {
        out.push(v);
        continue;
      }
      ok = false;
      const candidates = local ? this.scope.keys() : this.module.weights.keys();
      const sigil = local ? "%" : "@";
      const hint = didYouMean(name, candidates).replace(/'(.*)'/, (_, n) => `'${sigil}${quoteName(n)}'`);
      this.error(t, `unknown ${local ? "value" : "weight"} '${t.image}'${hint}`);
    }
    return ok ? out : undefined;
  }

  private attrDict(n: CstNode): Map<string, Attr> {
    const out = new Map<string, Attr>();
    for (const e of nodes(kids(n), "attrEntry")) {
      const ec = kids(e);
      const key = token(ec, "Word")!;
      const value = this.attrValue(nodes(ec, "attrValue")[0]);
      if (out.has(key.image)) this.error(key, `attribute '${key.image}' is given twice`);
      else if (value) out.set(key.image, value);
    }
    return out;
  }

  private attrValue(n: CstNode): Attr | undefined {
    const c = kids(n);
    const dense = nodes(c, "denseLiteral")[0];
    if (dense) return this.dense(dense);
    const list = nodes(c, "intList")[0];
    if (list) {
      const values = tokens(kids(list), "NumberLit").map((t) => this.int(t));
      return values.every((v) => v !== undefined) ? { kind: "ints", value: values as number[] } : undefined;
    }
    const num = token(c, "NumberLit");
    if (num) return this.number(num);
    const str = token(c, "StringLit");
    if (str) return { kind: "string", value: this.string(str) };
    const block = token(c, "BlockShape");
    if (block) {
      const dims = block.image.split("x").map(Number);
      if (dims.length === 2 && dims.every(Number.isSafeInteger)) {
        return { kind: "block", value: [dims[0], dims[1]] };
      }
      this.error(block, `a block shape has two dims (rows x cols), got '${block.image}'`);
      return undefined;
    }
    const word = token(c, "Word")!.image;
    if (word === "true" || word === "false") return { kind: "bool", value: word === "true" };
    return { kind: "enum", value: word };
  }

  private number(t: IToken): Attr | undefined {
    if (/^-?\d+$/.test(t.image)) {
      const v = this.int(t);
      return v === undefined ? undefined : { kind: "int", value: v };
    }
    return { kind: "float", value: parseFloatLiteral(t.image) };
  }

  private int(t: IToken): number | undefined {
    if (!/^-?\d+$/.test(t.image)) {
      this.error(t, `expected an integer, found '${t.image}'`);
      return undefined;
    }
    const v = Number(t.image) + 0; // no -0 among ints
    if (Number.isSafeInteger(v)) return v;
    this.error(t, `integer ${t.image} is too large`);
    return undefined;
  }

  private string(t: IToken): string {
    try {
      return JSON.parse(t.image);
    } catch {
      this.error(t, `bad escape in string ${t.image}`);
      return t.image.slice(1, -1);
    }
  }

  private dense(n: CstNode): Attr | undefined {
    const c = kids(n);
    const scalar = token(c, "NumberLit");
    const values: number[] = [];
    let float = false;
    let ok = true;
    const push = (t: IToken) => {
      const isInt = /^-?\d+$/.test(t.image);
      float ||= !isInt;
      // Integers print back as written only while exact (1e21 and up print with an exponent).
      if (isInt && !Number.isSafeInteger(Number(t.image))) {
        this.error(t, `integer ${t.image} is too large`);
        ok = false;
      }
      values.push(parseFloatLiteral(t.image));
    };
    if (scalar) {
      push(scalar);
      return ok ? { kind: "dense", value: { shape: [], values, float } } : undefined;
    }
    // Walks the nesting; each level must be rectangular, and numbers all at one depth.
    let leafDepth: number | undefined;
    const shapeOf = (list: CstNode, depth: number, shape: number[]): boolean => {
      const lc = kids(list);
      const nums = tokens(lc, "NumberLit");
      const subs = nodes(lc, "nestedList");
      if (nums.length > 0 && subs.length > 0) return false;
      const len = nums.length + subs.length;
      if (shape.length === depth) shape.push(len);
      else if (shape[depth] !== len) return false;
      if (nums.length > 0) {
        leafDepth ??= depth;
        if (shape.length !== depth + 1 || leafDepth !== depth) return false;
        nums.forEach(push);
        return true;
      }
      if (subs.length > 0 && leafDepth !== undefined && depth >= leafDepth) return false;
      return subs.every((s) => shapeOf(s, depth + 1, shape));
    };
    const shape: number[] = [];
    const top = nodes(c, "nestedList")[0];
    if (!shapeOf(top, 0, shape)) {
      this.error(token(c, "Kw_dense")!, "tensor literal is ragged: every row must have the same length");
      return undefined;
    }
    return ok ? { kind: "dense", value: { shape, values, float } } : undefined;
  }

  private type(n: CstNode): TensorType {
    const c = kids(n);
    const body = token(c, "DimsDtype") ?? token(c, "Word")!;
    const match = /^((?:\d+x)*)(\w+)$/.exec(body.image)!;
    const shape = match[1] ? match[1].slice(0, -1).split("x").map(Number) : [];
    let dtype = match[2];
    if (!isDType(dtype)) {
      this.error(body, `unknown dtype '${dtype}'${didYouMean(dtype, DTYPES)}`);
      dtype = "f32";
    }
    if (!shape.every(Number.isSafeInteger)) this.error(body, `dimension too large in '${body.image}'`);
    const blockTok = token(c, "BlockShape");
    if (!blockTok) return { shape, dtype: dtype as TensorType["dtype"] };
    const block = blockTok.image.split("x").map(Number);
    if (block.length !== 2) {
      this.error(blockTok, `a block shape has two dims (rows x cols), got '${blockTok.image}'`);
    }
    const key = tokens(c, "Word").at(-1)!;
    if (key.image !== "nnz") this.error(key, `expected 'nnz', found '${key.image}'`);
    const nnz = this.int(token(c, "NumberLit")!) ?? 0;
    return {
      shape,
      dtype: dtype as TensorType["dtype"],
      sparse: { kind: "bsr", block: [block[0], block[1]], nnzBlocks: nnz },
    };
  }
}

function parseFloatLiteral(image: string): number {
  if (image === "nan") return NaN;
  if (image === "inf") return Infinity;
  if (image === "-inf") return -Infinity;
  return Number(image);
}

/** Builds a module from a CST the parser produced without errors. */
export function buildModule(
  cst: CstNode,
  file: string,
  commentTokens: IToken[],
): { module: Module; diagnostics: Diagnostic[] } {
  const b = new CstToModule(file, commentTokens);
  const module = b.build(cst);
  return { module, diagnostics: b.diagnostics };
}
