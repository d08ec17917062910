/**
 * Handlers of the elementwise ONNX ops: the binary arithmetic (Add, Sub, Mul, Div, Pow), the
 * unary functions (Sqrt, Erf, Tanh, Neg, Gelu), Cast, Where, and Identity and Dropout, which
 * pass their input through.
 */

import { formatType } from "../../../ir/types.ts";
import { castConst, constOf, isConst, type Known, splatTensor, typeOf } from "../fold_shapes.ts";
import type { Handler, NodeCtx } from "../node.ts";
import { dtypeOfElemType, elemTypeName } from "../proto.ts";

/** A binary elementwise node; Pow's exponent is cast to the base's dtype when they differ. */
function binary(ir: string): Handler {
  return (n) => {
    const a = n.input(0);
    let b = n.input(1);
    const [ta, tb] = [typeOf(a), typeOf(b)];
    if (ta.dtype !== tb.dtype) {
      if (n.op !== "Pow") {
        throw n.fail(`operands have different dtypes: ${formatType(ta)} and ${formatType(tb)}`);
      }
      b = isConst(b)
        ? constOf(castConst(b.tensor, ta.dtype), b.name)
        : n.imp.emit(n, "cast", [b], {}, { type: { shape: [...tb.shape], dtype: ta.dtype }, suffix: ".exp" });
    }
    return n.imp.emit(n, ir, [a, b]);
  };
}

function unary(ir: string): Handler {
  return (n) => n.imp.emit(n, ir, [n.input(0)]);
}

function identity(n: NodeCtx): Known {
  n.requireUnused(1);
  return n.input(0);
}

/** Handlers of the elementwise ops, by ONNX op type. */
export const MATH_HANDLERS: Readonly<Record<string, Handler>> = {
  Add: binary("add"),
  Sub: binary("sub"),
  Mul: binary("mul"),
  Div: binary("div"),
  Pow: binary("pow"),
  Sqrt: unary("sqrt"),
  Erf: unary("erf"),
  Tanh: unary("tanh"),
  Identity: identity,
  Dropout: identity,
  Neg(n) {
    const x = n.input(0);
    const zero = constOf(splatTensor({ shape: [], dtype: typeOf(x).dtype }, 0), n.derived(".zero"));
    return n.imp.emit(n, "sub", [zero, x]);
  },

  Cast(n) {
    const x = n.input(0);
    const to = n.int("to", 0);
    const dtype = dtypeOfElemType(to);
    if (!dtype) throw n.fail(`casting to ${elemTypeName(to)} is not supported`);
    const t = typeOf(x);
    if (t.dtype === dtype) return x;
    return n.imp.emit(n, "cast", [x], {}, { type: { shape: [...t.shape], dtype } });
  },

  Where(n) {
    const c = n.input(0), x = n.input(1), y = n.input(2);
    return n.imp.emit(n, "where", [c, x, y]);
  },

  // Opset 20's Gelu, for models exported past the supported range.
  Gelu(n) {
    const a = n.attrs.get("approximate");
    const approximation = a?.s ? new TextDecoder().decode(a.s) : "none";
    if (approximation !== "none" && approximation !== "tanh") {
      throw n.fail(`attribute 'approximate' = '${approximation}' is not supported (only none or tanh)`);
    }
    return n.imp.emit(n, "gelu", [n.input(0)], { approximation: approximation === "tanh" ? "tanh" : "erf" });
  },
};
