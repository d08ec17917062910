/**
 * Run-time packing of a GEMM's B operand into the panel layout of codegen/pack.ts, for matrices
 * that are only known at run time: a weight passed as an argument (a training step's weights
 * change every step) and the activations a weight gradient multiplies. The GEMM reads a packed B
 * as one contiguous stream per 8-column panel, where a row-major B costs a strided load per K step;
 * packing is one pass over B, small beside the product's K·N·M multiply-adds.
 */

import { PACK_WIDTH, packedLength } from "../pack.ts";
import { kernel, threadRange, type WasmKernel } from "./kernel.ts";
import type { Code, I32 } from "./wat.ts";
import { block, br, br_if, f32, i32, if_, local, loop } from "./wat.ts";

/**
 * Packs B `[K, N]` (row-major; or stored as `[N, K]` when `transposed`, a PyTorch Linear weight)
 * into `packedLength(K, N)` f32: element (k, n) at `floor(n/8)·K·8 + k·8 + n%8`, the last panel's
 * missing columns 0. Threads split the (panel, k) rows of the output.
 */
export function packKernel(K: number, N: number, transposed: boolean): WasmKernel {
  const W = PACK_WIDTH;
  const full = Math.floor(N / W);
  const rest = N % W;
  const panels = Math.ceil(N / W);
  const units = panels * K;
  const [src, out, start, end, u, p, k, po] = ["src", "out", "start", "end", "u", "p", "k", "po"].map(
    local.i32,
  );
  const c = (v: number): I32 => i32.const(v);
  // the address of B(k, p·8 + j)
  const at = (j: number): I32 =>
    transposed
      ? i32.add(
        local.get(src),
        i32.mul(i32.add(i32.mul(i32.add(i32.mul(local.get(p), c(W)), c(j)), c(K)), local.get(k)), c(4)),
      )
      : i32.add(
        local.get(src),
        i32.mul(i32.add(i32.mul(local.get(k), c(N)), i32.add(i32.mul(local.get(p), c(W)), c(j))), c(4)),
      );
  const copy = (width: number): Code =>
    Array.from(
      { length: W },
      (_, j) => f32.store(local.get(po), j < width ? f32.load(at(j)) : f32.const(0), { offset: 4 * j }),
    );
  const body: Code = [
    threadRange(units, start, end),
    local.set(u, local.get(start)),
    block(
      "units_done",
      loop(
        "units",
        br_if("units_done", i32.ge_u(local.get(u), local.get(end))),
        local.set(p, i32.div_u(local.get(u), c(K))),
        local.set(k, i32.rem_u(local.get(u), c(K))),
        local.set(po, i32.add(local.get(out), i32.mul(local.get(u), c(W * 4)))),
        rest === 0
          ? copy(W)
          : full === 0
          ? copy(rest)
          : if_(i32.lt_u(local.get(p), c(full)), copy(W), copy(rest)),
        local.set(u, i32.add(local.get(u), c(1))),
        br("units"),
      ),
    ),
  ];
  return kernel({
    name: `pack_b_k${K}_n${N}${transposed ? "_t" : ""}`,
    params: [src, out],
    comment: `packs B [${K}, ${N}]${transposed ? ` (stored [${N}, ${K}])` : ""} into ${panels} panels of ` +
      `${W} columns (${packedLength(K, N)} f32); threads split the panel rows`,
    locals: [start, end, u, p, k, po],
    body: units === 0 ? [] : body,
  });
}
