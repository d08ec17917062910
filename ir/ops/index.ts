/**
 * The built-in ops of the IR, one file per op in this folder, and the registry holding them.
 */

import { type OpDef, OpRegistry } from "../registry.ts";
import { add } from "./add.ts";
import { addLayerNorm } from "./add_layer_norm.ts";
import { batchMatmul } from "./batch_matmul.ts";
import { bsrDense } from "./bsr_dense.ts";
import { cast } from "./cast.ts";
import { concat } from "./concat.ts";
import { constant } from "./constant.ts";
import { dense } from "./dense.ts";
import { div } from "./div.ts";
import { erf } from "./erf.ts";
import { gather } from "./gather.ts";
import { gelu } from "./gelu.ts";
import { layerNorm } from "./layer_norm.ts";
import { mul } from "./mul.ts";
import { pow } from "./pow.ts";
import { qdense } from "./qdense.ts";
import { reduceMean } from "./reduce_mean.ts";
import { reshape } from "./reshape.ts";
import { slice } from "./slice.ts";
import { softmax } from "./softmax.ts";
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
  cast,
  concat,
  constant,
  dense,
  div,
  erf,
  gather,
  gelu,
  layerNorm,
  mul,
  pow,
  qdense,
  reduceMean,
  reshape,
  slice,
  softmax,
  sqrt,
  sub,
  tanh,
  transpose,
  where,
];

/** A registry of the built-in ops; `clone()` it to add more. */
export const builtinRegistry: OpRegistry = new OpRegistry(builtinOps);
