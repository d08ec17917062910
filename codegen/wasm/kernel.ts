/**
 * The contract between wasm kernel generators and the code that calls them.
 *
 * A kernel is one exported wasm function, specialized to static shapes (and anything else
 * known at compile time) but not to addresses: it takes the byte addresses of its buffers in
 * the single shared memory, then the thread id and the thread count. Each thread calls it with
 * the same addresses; the kernel does its own share of the work (`tid` of `nt`) and returns.
 * Kernels with equal names are identical, so a module holds each name once.
 */

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

/** `a * b + c` on f32x4 WAT expressions, fused when the target has relaxed SIMD. */
export function fma(target: KernelTarget, a: string, b: string, c: string): string {
  return target.relaxedSimd
    ? `(f32x4.relaxed_madd ${a} ${b} ${c})`
    : `(f32x4.add (f32x4.mul ${a} ${b}) ${c})`;
}

/**
 * The half-open range `[start, end)` of `count` work items that thread `tid` of `nt` owns, as a
 * WAT snippet that sets locals `$start` and `$end` (both i32, declared by the caller). Items
 * are split into `nt` contiguous, nearly equal parts.
 */
export function threadRange(count: number): string {
  return `(local.set $start (i32.div_u (i32.mul (local.get $tid) (i32.const ${count})) (local.get $nt)))
    (local.set $end (i32.div_u (i32.mul (i32.add (local.get $tid) (i32.const 1)) (i32.const ${count})) (local.get $nt)))`;
}

/** What `kernelFunctionWat` assembles into one exported kernel function. */
export interface KernelFunction {
  name: string;
  /** The i32 address parameters; `$tid` and `$nt` follow. */
  params: readonly string[];
  /** One line saying what the kernel computes, written as a `;;` comment. */
  comment: string;
  i32Locals: readonly string[];
  v128Locals: readonly string[];
  /** The body's lines (unindented); empty for a kernel with no work. */
  body: readonly string[];
}

/** The WAT text of an exported kernel function: signature, comment, locals, then the body. */
export function kernelFunctionWat(f: KernelFunction): string {
  const params = [...f.params, "tid", "nt"].map((p) => `(param $${p} i32)`).join(" ");
  const locals = (type: string, names: readonly string[]) =>
    names.length ? [`    ${names.map((l) => `(local $${l} ${type})`).join(" ")}`] : [];
  return [
    `  (func $${f.name} (export "${f.name}") ${params}`,
    `    ;; ${f.comment}`,
    ...locals("i32", f.i32Locals),
    ...locals("v128", f.v128Locals),
    ...f.body.map((l) => `    ${l}`),
    `  )`,
  ].join("\n");
}
