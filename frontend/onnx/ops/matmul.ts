/**
 * Handlers of the matrix products: MatMul (`dense` with a constant 2-D right operand, else
 * `batch_matmul` with numpy's rules for 1-D operands) and Gemm (`dense` with its bias).
 */

import type { AttrJs } from "../../../ir/attrs.ts";
import { formatType, numel, sameShape } from "../../../ir/types.ts";
import { isConst, type Known, typeOf } from "../fold_shapes.ts";
import { type Handler, rankOf } from "../node.ts";

/** Handlers of the matrix products, by ONNX op type. */
export const MATMUL_HANDLERS: Readonly<Record<string, Handler>> = {
  MatMul(n) {
    const a = n.input(0), b = n.input(1);
    const [ra, rb] = [rankOf(a), rankOf(b)];
    if (ra === 0 || rb === 0) throw n.fail("MatMul operands must have rank 1 or more");
    if (isConst(b) && rb === 2 && !isConst(a)) {
      // MatMul(x, Transpose(W)) is the [out, in] weight W with transpose_b.
      if (b.transposeOf) return n.imp.emit(n, "dense", [a, b.transposeOf], { transpose_b: true });
      return n.imp.emit(n, "dense", [a, b]);
    }
    // numpy matmul: a 1-D operand gets a unit dim, removed again from the result.
    const ta = typeOf(a).shape, tb = typeOf(b).shape;
    if (ra > 1 && rb > 1) return n.imp.emit(n, "batch_matmul", [a, b]);
    const a2 = ra === 1 ? n.imp.reshape(n, a, [1, ta[0]], ".a") : a;
    const b2 = rb === 1 ? n.imp.reshape(n, b, [tb[0], 1], ".b") : b;
    const product = n.imp.emit(n, "batch_matmul", [a2, b2], {}, { suffix: ".mm" });
    const shape = [...typeOf(product).shape];
    if (rb === 1) shape.splice(-1, 1);
    if (ra === 1) shape.splice(rb === 1 ? -1 : -2, 1);
    return n.imp.reshape(n, product, shape);
  },

  Gemm(n) {
    n.requireAttr("alpha", [1], 1, true);
    const a = n.input(0), c = n.optional(2);
    let b = n.input(1);
    if (c) n.requireAttr("beta", [1], 1, true);
    if (rankOf(a) !== 2 || rankOf(b) !== 2) {
      throw n.fail(`A and B must be 2-D, got ${formatType(typeOf(a))} and ${formatType(typeOf(b))}`);
    }
    const transA = n.int("transA", 0) !== 0;
    let transB = n.int("transB", 0) !== 0;
    if (isConst(b) && b.transposeOf && !isConst(a)) {
      b = b.transposeOf;
      transB = !transB;
    }
    const attrs: Record<string, AttrJs> = {};
    if (transA) attrs.transpose_a = true;
    if (transB) attrs.transpose_b = true;
    const N = typeOf(b).shape[transB ? 0 : 1];
    if (isConst(b) && !isConst(a)) {
      let bias: Known | undefined;
      const ct = c && typeOf(c).shape;
      if (c && ct && (sameShape(ct, [N]) || isConst(c) && numel(ct) === N && ct.at(-1) === N)) {
        bias = n.imp.reshape(n, c, [N], ".bias");
      }
      const y = n.imp.emit(n, "dense", bias ? [a, b, bias] : [a, b], attrs, {
        suffix: c && !bias ? ".mm" : "",
      });
      return c && !bias ? n.imp.emit(n, "add", [y, c]) : y;
    }
    const y = n.imp.emit(n, "batch_matmul", [a, b], attrs, { suffix: c ? ".mm" : "" });
    return c ? n.imp.emit(n, "add", [y, c]) : y;
  },
};
