/**
 * The contract between wasm kernel generators and the code that calls them.
 *
 * A kernel is one exported wasm function, specialized to static shapes (and anything else
 * known at compile time) but not to addresses: it takes the byte addresses of its buffers in
 * the single shared memory, then the thread id and the thread count. Each thread calls it with
 * the same addresses; the kernel does its own share of the work (`tid` of `nt`) and returns.
 * Kernels with equal names are identical, so a module holds each name once.
 */

import {
  block,
  br,
  br_if,
  type Code,
  f32Lit,
  func,
  type I32,
  i32,
  type Instr,
  type Local,
  local,
  loop,
} from "./wat.ts";

/** Code generation options every generator receives. */
export interface KernelTarget {
  /** Use relaxed-SIMD `f32x4.relaxed_madd` (FMA); else a separate mul and add. */
  relaxedSimd: boolean;
}

/** One generated kernel. */
export interface WasmKernel {
  /** The export name: unique per specialization, readable (e.g. `softmax_12x128x128_scaled`). */
  name: string;
  /** Names of its i32 byte-address parameters, in call order; `tid` and `nt` follow. */
  params: readonly string[];
  /** The function's WAT text: `(func $name (export "name") (param $p i32)... (param $tid i32) (param $nt i32) ...)`. */
  wat: string;
  /** Shared helper functions it calls (keys of `WASM_HELPERS` in math.ts), e.g. `exp_f32x4`. */
  uses: readonly string[];
}

/** The thread id and thread count, the last two params of every kernel. */
const tid = local.i32("tid");
const nt = local.i32("nt");

/**
 * The half-open range `[start, end)` of `count` work items that thread `tid` of `nt` owns: sets
 * the i32 locals `start` and `end` (declared by the caller). Items are split into `nt`
 * contiguous, nearly equal parts.
 */
export function threadRange(count: number, start: Local<"i32">, end: Local<"i32">): Instr[] {
  const share = (t: I32) => i32.div_u(i32.mul(t, i32.const(count)), local.get(nt));
  return [
    local.set(start, share(local.get(tid))),
    local.set(end, share(i32.add(local.get(tid), i32.const(1)))),
  ];
}

/** A loop, labelled `label`, running `body` for `i` = `start` … `end - 1` (i32 locals). */
export function forRange(
  i: Local<"i32">,
  start: Local<"i32">,
  end: Local<"i32">,
  label: string,
  body: Code,
): Instr[] {
  return [
    local.set(i, local.get(start)),
    block(
      "done",
      loop(
        label,
        br_if("done", i32.ge_u(local.get(i), local.get(end))),
        body,
        local.set(i, i32.add(local.get(i), i32.const(1))),
        br(label),
      ),
    ),
  ];
}

/** What `kernel` assembles into one exported kernel function. */
export interface KernelFunction {
  name: string;
  /** The i32 address parameters; `tid` and `nt` follow. */
  params: readonly Local<"i32">[];
  /** What the kernel computes, written as a `;;` comment under the signature. */
  comment?: string;
  locals: readonly Local[];
  /** Empty for a kernel with no work. */
  body: Code;
  /** Shared helper functions the body calls (keys of `WASM_HELPERS`). */
  uses?: readonly string[];
}

/** The kernel: its exported function's text (params, then `tid` and `nt`), param names and helpers. */
export function kernel(f: KernelFunction): WasmKernel {
  const wat = func(f.name, [...f.params, tid, nt], f.locals, f.body, { export: true, comment: f.comment });
  return { name: f.name, params: f.params.map((p) => p.name), wat, uses: f.uses ?? [] };
}

/** A number as it appears in a kernel name: `0.125` -> `0p125`, `-2` -> `m2`, `1e-12` -> `1em12`. */
export function nameNumber(v: number): string {
  return f32Lit(v).replace(/\./g, "p").replace(/-/g, "m").replace(/\+/g, "");
}
