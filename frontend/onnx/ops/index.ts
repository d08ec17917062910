/**
 * The op handler table of the ONNX import: the handlers of every op family, by ONNX op type
 * (default domain only).
 */

import type { Handler } from "../node.ts";
import { CONSTANT_HANDLERS } from "./constant.ts";
import { CONTROL_HANDLERS } from "./control.ts";
import { MATH_HANDLERS } from "./math.ts";
import { MATMUL_HANDLERS } from "./matmul.ts";
import { NORM_HANDLERS } from "./norm.ts";
import { SHAPE_HANDLERS } from "./shape.ts";

/** Every supported op's handler, by ONNX op type. */
export const HANDLERS: Readonly<Record<string, Handler>> = {
  ...MATH_HANDLERS,
  ...MATMUL_HANDLERS,
  ...NORM_HANDLERS,
  ...SHAPE_HANDLERS,
  ...CONSTANT_HANDLERS,
  ...CONTROL_HANDLERS,
};
