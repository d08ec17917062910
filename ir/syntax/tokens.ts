/** Tokens and the lexer of the IR's text form. */

import { createToken, Lexer, type TokenType } from "npm:chevrotain@13.2.0";

/** Any bare word: identifiers and keywords alike (op names may be keywords, e.g. `dense`). */
export const Word = createToken({ name: "Word", pattern: Lexer.NA, label: "a name" });
export const Ident = createToken({
  name: "Ident",
  pattern: /[A-Za-z_][A-Za-z0-9_]*/,
  categories: [Word],
  label: "a name",
});

function keyword(word: string): TokenType {
  return createToken({
    name: `Kw_${word}`,
    pattern: new RegExp(word),
    longer_alt: Ident,
    categories: [Word],
    label: `'${word}'`,
  });
}

export const Module = keyword("module");
export const Attributes = keyword("attributes");
export const Weights = keyword("weights");
export const Func = keyword("func");
export const Return = keyword("return");
export const Tensor = keyword("tensor");
export const Dense = keyword("dense");
export const Bsr = keyword("bsr");

const NAME_BODY = String.raw`(?:[A-Za-z0-9_.$-]+|"(?:[^"\\\n]|\\.)*")`;
/** `%name`: an SSA value. */
export const LocalName = createToken({
  name: "LocalName",
  pattern: new RegExp(`%${NAME_BODY}`),
  label: "a %value",
});
/** `@name`: a weight or a function. */
export const GlobalName = createToken({
  name: "GlobalName",
  pattern: new RegExp(`@${NAME_BODY}`),
  label: "an @name",
});

/** `128x768xf32`: the dims and dtype of a tensor type (a scalar type is just a Word). */
export const DimsDtype = createToken({
  name: "DimsDtype",
  pattern: /\d+(?:x\d+)*x[A-Za-z_][A-Za-z0-9_]*/,
  label: "dims and a dtype such as 128x768xf32",
});
/** `1x32`: a block shape. */
export const BlockShape = createToken({
  name: "BlockShape",
  pattern: /\d+(?:x\d+)+/,
  label: "a block shape",
});
export const NumberLit = createToken({
  name: "NumberLit",
  pattern: /-?(?:\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|inf)|nan/,
  longer_alt: Ident,
  label: "a number",
});
export const StringLit = createToken({
  name: "StringLit",
  pattern: /"(?:[^"\\\n]|\\.)*"/,
  label: "a string",
});

export const Arrow = createToken({ name: "Arrow", pattern: /->/, label: "'->'" });
export const LBrace = createToken({ name: "LBrace", pattern: /{/, label: "'{'" });
export const RBrace = createToken({ name: "RBrace", pattern: /}/, label: "'}'" });
export const LParen = createToken({ name: "LParen", pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: "RParen", pattern: /\)/, label: "')'" });
export const LBracket = createToken({ name: "LBracket", pattern: /\[/, label: "'['" });
export const RBracket = createToken({ name: "RBracket", pattern: /]/, label: "']'" });
export const LAngle = createToken({ name: "LAngle", pattern: /</, label: "'<'" });
export const RAngle = createToken({ name: "RAngle", pattern: />/, label: "'>'" });
export const Comma = createToken({ name: "Comma", pattern: /,/, label: "','" });
export const Colon = createToken({ name: "Colon", pattern: /:/, label: "':'" });
export const Equals = createToken({ name: "Equals", pattern: /=/, label: "'='" });

export const Comment = createToken({ name: "Comment", pattern: /\/\/[^\n]*/, group: "comments" });
export const WhiteSpace = createToken({ name: "WhiteSpace", pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });

/** All tokens, in the order the lexer tries them. */
export const allTokens: TokenType[] = [
  WhiteSpace,
  Comment,
  LocalName,
  GlobalName,
  DimsDtype,
  BlockShape,
  NumberLit,
  StringLit,
  Arrow,
  Module,
  Attributes,
  Weights,
  Func,
  Return,
  Tensor,
  Dense,
  Bsr,
  Word,
  Ident,
  LBrace,
  RBrace,
  LParen,
  RParen,
  LBracket,
  RBracket,
  LAngle,
  RAngle,
  Comma,
  Colon,
  Equals,
];

/**
 * The lexer, built once. Only `\n` ends a line (chevrotain's default also counts a lone `\r`),
 * so token lines agree with the `split("\n")` that diagnostics and `parse` use.
 */
export const irLexer = new Lexer(allTokens, {
  ensureOptimizations: false,
  positionTracking: "full",
  lineTerminatorsPattern: /\n/g,
  lineTerminatorCharacters: ["\n"],
});
