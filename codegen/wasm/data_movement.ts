/**
 * Kernels for the cheap ops that move or convert data rather than compute: embedding lookup
 * (gather of table rows by run-time indices), dtype casts, and strided copies (slices that are not
 * views). Like every kernel they are specialized to their shapes and split their work between
 * threads; they replace the TypeScript kernels an artifact once carried, so an artifact holds no
 * code but wasm.
 */

import { forRange, kernel, threadRange, type WasmKernel } from "./kernel.ts";
import { stridedOffset } from "./rows.ts";
import { type Code, type F32, f32, i32, i64, ifResult, local, memory } from "./wat.ts";

/** The dtypes data-movement kernels read and write. */
export type DataDType = "f32" | "i32" | "i64";

const BYTES: Readonly<Record<DataDType, number>> = { f32: 4, i32: 4, i64: 8 };

const [start, end, i, row, src, dst] = ["start", "end", "i", "row", "src", "dst"].map(local.i32);
// `zero` is never set: wasm locals start at 0. `n` holds a row's length for the element loop.
const [a, b, zero, n] = ["a", "b", "zero", "n"].map(local.i32);

/** `base + i·bytes` as an i32 address expression. */
const at = (base: typeof start, index: typeof start, bytes: number) =>
  i32.add(local.get(base), i32.mul(local.get(index), i32.const(bytes)));

/**
 * gather along axis 0 of an f32 table `[rows, rowLen]` by `count` indices: out[i] = table[idx[i]].
 * Indices (i32, or i64 of which the low word is read) are checked against `rows` by the runtime
 * before a run (plan input limits).
 */
export function gatherKernel(count: number, rowLen: number, indexDtype: "i32" | "i64"): WasmKernel {
  const [table, indices, out] = ["table", "indices", "out"].map(local.i32);
  const rowBytes = rowLen * 4;
  const body: Code = [
    threadRange(count, start, end),
    forRange(i, start, end, "rows", [
      local.set(row, i32.load(at(indices, i, BYTES[indexDtype]))),
      memory.copy(at(out, i, rowBytes), at(table, row, rowBytes), i32.const(rowBytes)),
    ]),
  ];
  return kernel({
    name: `gather_${count}x${rowLen}_${indexDtype}`,
    params: [table, indices, out],
    comment: `out[i, :] = table[indices[i], :] for ${count} ${indexDtype} indices, rows of ${rowLen} f32`,
    locals: [start, end, i, row],
    body,
  });
}

/**
 * `qgather` (ir/ops/qgather.ts): rows of an int8 table `[rows, rowLen]` by `count` indices, each
 * element times its row's f32 scale: out[i, h] = f32(table[idx[i], h]) · scale[idx[i]], one f32
 * multiply, as the op defines it. Indices are checked by the runtime like `gather`'s.
 */
export function qgatherKernel(count: number, rowLen: number, indexDtype: "i32" | "i64"): WasmKernel {
  const [table, scales, indices, out, h, src, dst] = ["table", "scales", "indices", "out", "h", "src", "dst"]
    .map(local.i32);
  const scale = local.f32("scale");
  const body: Code = [
    threadRange(count, start, end),
    local.set(n, i32.const(rowLen)),
    forRange(i, start, end, "rows", [
      local.set(row, i32.load(at(indices, i, BYTES[indexDtype]))),
      local.set(scale, f32.load(at(scales, row, 4))),
      local.set(src, at(table, row, rowLen)),
      local.set(dst, at(out, i, rowLen * 4)),
      forRange(h, zero, n, "elements", [
        f32.store(
          at(dst, h, 4),
          f32.mul(f32.convert_i32_s(i32.load8_s(i32.add(local.get(src), local.get(h)))), local.get(scale)),
        ),
      ]),
    ]),
  ];
  return kernel({
    name: `qgather_${count}x${rowLen}_${indexDtype}`,
    params: [table, scales, indices, out],
    comment:
      `out[i, :] = f32(table[indices[i], :]) * scale[indices[i]] for ${count} ${indexDtype} indices, ` +
      `int8 rows of ${rowLen}`,
    locals: [start, end, i, row, n, zero, h, src, dst, scale],
    body,
  });
}

/** 1 when |x| ≥ 2^63 (infinities included), where a truncation to an integer wraps to 0. */
const huge = (x: F32) => f32.ge(f32.abs(x), f32.const(2 ** 63));

/**
 * Converts `count` elements between f32, i32 and i64 as the `cast` op does: integers to the nearest
 * f32; f32 to integers truncated toward zero and wrapped to the integer's width, NaN to 0. (An f32
 * of magnitude 2^63 or more, infinities included, is a multiple of 2^64 or not finite: 0.)
 */
export function castKernel(count: number, from: DataDType, to: DataDType): WasmKernel {
  const s = at(src, i, BYTES[from]);
  const d = at(dst, i, BYTES[to]);
  let store;
  if (to === "f32") {
    const v = from === "f32"
      ? f32.load(s)
      : from === "i32"
      ? f32.convert_i32_s(i32.load(s))
      : f32.convert_i64_s(i64.load(s));
    store = f32.store(d, v);
  } else if (to === "i32") {
    const v = from === "f32"
      ? ifResult("i32", huge(f32.load(s)), i32.const(0), i32.wrap_i64(i64.trunc_sat_f32_s(f32.load(s))))
      : from === "i32"
      ? i32.load(s)
      : i32.wrap_i64(i64.load(s));
    store = i32.store(d, v);
  } else {
    const v = from === "f32"
      ? ifResult("i64", huge(f32.load(s)), i64.const(0n), i64.trunc_sat_f32_s(f32.load(s)))
      : from === "i32"
      ? i64.extend_i32_s(i32.load(s))
      : i64.load(s);
    store = i64.store(d, v);
  }
  return kernel({
    name: `cast_${count}_${from}_to_${to}`,
    params: [src, dst],
    comment: `dst = cast<${to}>(src) over ${count} elements`,
    locals: [start, end, i],
    body: [threadRange(count, start, end), forRange(i, start, end, "elements", store)],
  });
}

/**
 * Copies a strided f32 region: for every index of `shape`, out[Σ i·outStrides] =
 * src[Σ i·srcStrides] (element units). Slices that are not views are made of it. Each thread
 * copies whole rows of the last dim; a row that is contiguous on both sides is one `memory.copy`.
 */
export function stridedCopyKernel(
  shape: readonly number[],
  srcStrides: readonly number[],
  outStrides: readonly number[],
): WasmKernel {
  const name = `copy_${shape.join("x")}_s${srcStrides.join("_")}_o${outStrides.join("_")}`;
  const inner = shape.length - 1;
  const outer = shape.slice(0, inner).reduce((a, b) => a * b, 1);
  const rowOffset = (strides: readonly number[]) =>
    stridedOffset(local.get(row), shape.slice(0, inner), strides.slice(0, inner).map((st) => st * 4));
  const base = (p: typeof src, strides: readonly number[]) => {
    const off = rowOffset(strides);
    return off ? i32.add(local.get(p), off) : local.get(p);
  };
  const len = shape[inner] ?? 1;
  const [ss, os] = [srcStrides[inner] ?? 1, outStrides[inner] ?? 1];
  const contiguous = ss === 1 && os === 1;
  const copyRow: Code = contiguous
    ? memory.copy(local.get(b), local.get(a), i32.const(len * 4))
    : forRange(i, zero, n, "elements", [f32.store(at(b, i, os * 4), f32.load(at(a, i, ss * 4)))]);
  const body: Code = [
    threadRange(outer, start, end),
    !contiguous && local.set(n, i32.const(len)),
    forRange(row, start, end, "rows", [
      local.set(a, base(src, srcStrides)),
      local.set(b, base(dst, outStrides)),
      copyRow,
    ]),
  ];
  return kernel({
    name,
    params: [src, dst],
    comment:
      `strided copy of a [${shape}] region (source strides [${srcStrides}], output strides [${outStrides}])`,
    locals: [start, end, row, a, b, ...(contiguous ? [] : [i, zero, n])],
    body,
  });
}
