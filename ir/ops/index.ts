/**
 * The built-in ops of the IR, one file per op in this folder, and the registry holding them.
 */

import { type OpDef, OpRegistry } from "../registry.ts";
import { add } from "./add.ts";
import { addLayerNorm } from "./add_layer_norm.ts";
import { batchMatmul } from "./batch_matmul.ts";
import { bsrDense } from "./bsr_dense.ts";
import { bsrDenseGradW } from "./bsr_dense_grad_w.ts";
import { bsrDenseGradX } from "./bsr_dense_grad_x.ts";
import { cast } from "./cast.ts";
import { concat } from "./concat.ts";
import { constant } from "./constant.ts";
import { crossEntropy } from "./cross_entropy.ts";
import { crossEntropyGrad } from "./cross_entropy_grad.ts";
import { dense } from "./dense.ts";
import { div } from "./div.ts";
import { erf } from "./erf.ts";
import { exp } from "./exp.ts";
import { gather } from "./gather.ts";
import { gelu } from "./gelu.ts";
import { geluGrad } from "./gelu_grad.ts";
import { layerNorm } from "./layer_norm.ts";
import { layerNormGrad } from "./layer_norm_grad.ts";
import { log } from "./log.ts";
import { mul } from "./mul.ts";
import { pow } from "./pow.ts";
import { qdense } from "./qdense.ts";
import { qgather } from "./qgather.ts";
import { reduceMean } from "./reduce_mean.ts";
import { reduceSum } from "./reduce_sum.ts";
import { reshape } from "./reshape.ts";
import { scatterAdd } from "./scatter_add.ts";
import { slice } from "./slice.ts";
import { sliceGrad } from "./slice_grad.ts";
import { softmax } from "./softmax.ts";
import { softmaxGrad } from "./softmax_grad.ts";
import { sqrt } from "./sqrt.ts";
import { sub } from "./sub.ts";
import { tanh } from "./tanh.ts";
import { transpose } from "./transpose.ts";
import { where } from "./where.ts";

/** Every built-in op, sorted by name. */
export const builtinOps: readonly OpDef[] = [
  add,
  addLayerNorm,
  batchMatmul,
  bsrDense,
  bsrDenseGradW,
  bsrDenseGradX,
  cast,
  concat,
  constant,
  crossEntropy,
  crossEntropyGrad,
  dense,
  div,
  erf,
  exp,
  gather,
  gelu,
  geluGrad,
  layerNorm,
  layerNormGrad,
  log,
  mul,
  pow,
  qdense,
  qgather,
  reduceMean,
  reduceSum,
  reshape,
  scatterAdd,
  slice,
  sliceGrad,
  softmax,
  softmaxGrad,
  sqrt,
  sub,
  tanh,
  transpose,
  where,
];

/** A registry of the built-in ops; `clone()` it to add more. */
export const builtinRegistry: OpRegistry = new OpRegistry(builtinOps);
