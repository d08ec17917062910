/** The built-in passes, registered explicitly from one list. */

import type { AnyPass } from "./pass.ts";
import { dce } from "./dce.ts";
import { PassRegistry } from "./registry.ts";

/** Every built-in pass. */
export const builtinPasses: readonly AnyPass[] = [dce];

/** A fresh registry with the built-in passes; plugins register into it. */
export function createPassRegistry(): PassRegistry {
  return new PassRegistry(builtinPasses);
}
