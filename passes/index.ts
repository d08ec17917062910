/** The built-in passes, registered explicitly from one list. */

import type { AnyPass } from "./pass.ts";
import { bsrLower } from "./bsr_lower.ts";
import { canonicalize } from "./canonicalize.ts";
import { cse } from "./cse.ts";
import { dce } from "./dce.ts";
import { dedupPatterns } from "./dedup_patterns.ts";
import { fuse } from "./fuse.ts";
import { gradPass } from "./grad.ts";
import { prune } from "./prune.ts";
import { pruneReconstruct } from "./prune_reconstruct.ts";
import { quantize } from "./quantize.ts";
import { recognize } from "./recognize.ts";
import { PassRegistry } from "./registry.ts";

/** Every built-in pass, sorted by name. */
export const builtinPasses: readonly AnyPass[] = [
  bsrLower,
  canonicalize,
  cse,
  dce,
  dedupPatterns,
  fuse,
  gradPass,
  prune,
  pruneReconstruct,
  quantize,
  recognize,
];

/** A fresh registry with the built-in passes; plugins register into it. */
export function createPassRegistry(): PassRegistry {
  return new PassRegistry(builtinPasses);
}
