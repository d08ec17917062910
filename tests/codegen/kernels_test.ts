/**
 * Every kernel family's case table (tests/codegen/cases/) on every target the family has a kernel
 * for, against the IR reference interpreter (see kernel_runner.ts).
 */

import { BSR } from "./cases/bsr.ts";
import { CAST } from "./cases/cast.ts";
import { ELEMENTWISE } from "./cases/elementwise.ts";
import { GATHER } from "./cases/gather.ts";
import { GEMM } from "./cases/gemm.ts";
import { LAYER_NORM } from "./cases/layer_norm.ts";
import { MATH } from "./cases/math.ts";
import { SLICE } from "./cases/slice.ts";
import { SOFTMAX } from "./cases/softmax.ts";
import { TRANSPOSE } from "./cases/transpose.ts";
import { testFamily } from "./kernel_runner.ts";

testFamily(GEMM);
testFamily(BSR);
testFamily(SOFTMAX);
testFamily(LAYER_NORM);
testFamily(ELEMENTWISE);
testFamily(TRANSPOSE);
testFamily(MATH);
testFamily(SLICE);
testFamily(GATHER);
testFamily(CAST);
