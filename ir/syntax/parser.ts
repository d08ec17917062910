/**
 * The grammar of the IR's text form, as a chevrotain CST parser with error recovery.
 * One instance is built at load time and reused for every parse.
 *
 * ```
 * module    := 'module' @name ('attributes' attrDict)? '{' weights? func* '}'
 * weights   := 'weights' string? '{' (@name ':' type)* '}'
 * func      := 'func' @name '(' (param (',' param)*)? ')' '->' '(' (type (',' type)*)? ')'
 *              '{' op* 'return' operands? '}'
 * op        := %name '=' word operands? attrDict? ':' type
 * attrDict  := '{' (word '=' attrValue (',' word '=' attrValue)*)? '}'
 * type      := 'tensor' '<' (dimsDtype | word) (',' 'bsr' '<' blockShape ',' word '=' number '>')? '>'
 * ```
 */

import { CstParser, type IParserErrorMessageProvider, type TokenType } from "npm:chevrotain@13.2.0";
import * as T from "./tokens.ts";

const label = (t: TokenType) => t.LABEL ?? t.name;
const found = (image: string) => image === "" ? "the end of the file" : `'${image}'`;

/** What a rule with alternatives expects, in words. */
const RULE_EXPECTS: Record<string, string> = {
  attrValue: "an attribute value (number, string, list, block shape, name or dense<...>)",
  operand: "a %value or an @weight",
  type: "dims and a dtype, such as 128x768xf32",
  denseLiteral: "a number or a list",
  nestedList: "a number or a list",
};

/** Messages in the form `expected X, found 'y'`. */
const errorMessages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, actual }) =>
    `expected ${label(expected)}, found ${found(actual.image)}`,
  buildNotAllInputParsedMessage: ({ firstRedundant }) =>
    `unexpected ${found(firstRedundant.image)} after the end of the module`,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, actual, ruleName }) => {
    const firsts = new Set(expectedPathsPerAlt.flat().map((path) => label(path[0])));
    const what = RULE_EXPECTS[ruleName] ?? [...firsts].join(" or ");
    return `expected ${what}, found ${found(actual[0].image)}`;
  },
  buildEarlyExitMessage: ({ expectedIterationPaths, actual, ruleName }) => {
    const firsts = new Set(expectedIterationPaths.map((path) => label(path[0])));
    return `expected at least one ${[...firsts].join(" or ")} in ${ruleName}, found ${
      found(actual[0].image)
    }`;
  },
};

/** The IR grammar. */
class IrParser extends CstParser {
  constructor() {
    super(T.allTokens, {
      recoveryEnabled: true,
      errorMessageProvider: errorMessages,
      maxLookahead: 3,
      nodeLocationTracking: "full",
    });
    this.performSelfAnalysis();
  }

  module = this.RULE("module", () => {
    this.CONSUME(T.Module);
    this.CONSUME(T.GlobalName);
    this.OPTION(() => {
      this.CONSUME(T.Attributes);
      this.SUBRULE(this.attrDict);
    });
    this.CONSUME(T.LBrace);
    this.OPTION2(() => this.SUBRULE(this.weightsBlock));
    this.MANY(() => this.SUBRULE(this.func));
    this.CONSUME(T.RBrace);
  });

  weightsBlock = this.RULE("weightsBlock", () => {
    this.CONSUME(T.Weights);
    this.OPTION(() => this.CONSUME(T.StringLit));
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.weightDecl));
    this.CONSUME(T.RBrace);
  });

  weightDecl = this.RULE("weightDecl", () => {
    this.CONSUME(T.GlobalName);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.type);
  });

  func = this.RULE("func", () => {
    this.CONSUME(T.Func);
    this.CONSUME(T.GlobalName);
    this.CONSUME(T.LParen);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.param) });
    this.CONSUME(T.RParen);
    this.CONSUME(T.Arrow);
    this.CONSUME2(T.LParen);
    this.MANY_SEP2({ SEP: T.Comma, DEF: () => this.SUBRULE(this.type) });
    this.CONSUME2(T.RParen);
    this.CONSUME(T.LBrace);
    this.MANY(() => this.SUBRULE(this.op));
    this.SUBRULE(this.returnStmt);
    this.CONSUME(T.RBrace);
  });

  param = this.RULE("param", () => {
    this.CONSUME(T.LocalName);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.type);
  });

  op = this.RULE("op", () => {
    this.CONSUME(T.LocalName);
    this.CONSUME(T.Equals);
    this.CONSUME(T.Word);
    this.OPTION(() => this.SUBRULE(this.operands));
    this.OPTION2(() => this.SUBRULE(this.attrDict));
    this.CONSUME(T.Colon);
    this.SUBRULE(this.type);
  });

  returnStmt = this.RULE("returnStmt", () => {
    this.CONSUME(T.Return);
    this.OPTION(() => this.SUBRULE(this.operands));
  });

  operands = this.RULE("operands", () => {
    this.AT_LEAST_ONE_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.operand) });
  });

  operand = this.RULE("operand", () => {
    this.OR([
      { ALT: () => this.CONSUME(T.LocalName) },
      { ALT: () => this.CONSUME(T.GlobalName) },
    ]);
  });

  attrDict = this.RULE("attrDict", () => {
    this.CONSUME(T.LBrace);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.SUBRULE(this.attrEntry) });
    this.CONSUME(T.RBrace);
  });

  attrEntry = this.RULE("attrEntry", () => {
    this.CONSUME(T.Word);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.attrValue);
  });

  attrValue = this.RULE("attrValue", () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.denseLiteral) },
      { ALT: () => this.SUBRULE(this.intList) },
      { ALT: () => this.CONSUME(T.NumberLit) },
      { ALT: () => this.CONSUME(T.StringLit) },
      { ALT: () => this.CONSUME(T.BlockShape) },
      { ALT: () => this.CONSUME(T.Word) },
    ]);
  });

  intList = this.RULE("intList", () => {
    this.CONSUME(T.LBracket);
    this.MANY_SEP({ SEP: T.Comma, DEF: () => this.CONSUME(T.NumberLit) });
    this.CONSUME(T.RBracket);
  });

  denseLiteral = this.RULE("denseLiteral", () => {
    this.CONSUME(T.Dense);
    this.CONSUME(T.LAngle);
    this.OR([
      { ALT: () => this.CONSUME(T.NumberLit) },
      { ALT: () => this.SUBRULE(this.nestedList) },
    ]);
    this.CONSUME(T.RAngle);
  });

  nestedList = this.RULE("nestedList", () => {
    this.CONSUME(T.LBracket);
    this.MANY_SEP({
      SEP: T.Comma,
      DEF: () =>
        this.OR([
          { ALT: () => this.CONSUME(T.NumberLit) },
          { ALT: () => this.SUBRULE(this.nestedList) },
        ]),
    });
    this.CONSUME(T.RBracket);
  });

  type = this.RULE("type", () => {
    this.CONSUME(T.Tensor);
    this.CONSUME(T.LAngle);
    this.OR([
      { ALT: () => this.CONSUME(T.DimsDtype) },
      { ALT: () => this.CONSUME(T.Word) },
    ]);
    this.OPTION(() => {
      this.CONSUME(T.Comma);
      this.CONSUME(T.Bsr);
      this.CONSUME2(T.LAngle);
      this.CONSUME(T.BlockShape);
      this.CONSUME2(T.Comma);
      this.CONSUME2(T.Word);
      this.CONSUME(T.Equals);
      this.CONSUME(T.NumberLit);
      this.CONSUME(T.RAngle);
    });
    this.CONSUME2(T.RAngle);
  });
}

/** The single, reused parser instance. */
export const irParser = new IrParser();
