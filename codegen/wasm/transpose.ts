/**
 * The transpose kernel: `out = x.transpose(perm)` (numpy semantics) for f32 arrays of rank 1..6.
 *
 * The permutation is first simplified: size-1 dims are dropped and output dims that stay
 * adjacent in x are merged, so e.g. [1, 128, 12, 64] by [0, 2, 1, 3] becomes [128, 12, 64] by
 * [1, 0, 2]. Then, by what is left:
 *
 * - nothing moves: a plain copy (`memory.copy`), split across threads in 64-byte chunks;
 * - the last axis stays last: runs of contiguous elements are copied with v128 loads and stores
 *   (`memory.copy` for runs over 64 bytes), threads splitting the runs;
 * - the last two output dims swap x's innermost dim with another ([B, P, Q] read from x's
 *   [B, Q, P]): 4×4 tiles, four v128 loads, a register transpose, four v128 stores, with the
 *   ragged edges done element by element; threads split the (b, 4-row) tiles;
 * - anything else: element by element along each output row (stores contiguous, loads strided),
 *   threads splitting the rows.
 */

import { threadRange, type WasmKernel } from "./kernel.ts";
import type { KernelTarget } from "./kernel.ts";
import { indent, memarg, rowMajorStrides, stridedOffset, vectorPass } from "./math.ts";

/** What a transpose kernel is specialized to. */
export interface TransposeSpec {
  /** Shape of x (rank 1..6). */
  shape: number[];
  /** Output dim i is x's dim `perm[i]`. */
  perm: number[];
}

/** Runs longer than this many bytes are copied with `memory.copy` (measured faster than v128 loops from 128 bytes). */
const MEMCOPY_BYTES = 64;

/** The output dims after dropping size-1 dims and merging dims adjacent in both x and out, with x's element steps. */
function simplify(shape: readonly number[], perm: readonly number[]): { dims: number[]; steps: number[] } {
  const xStrides = rowMajorStrides(shape);
  const dims: number[] = [];
  const steps: number[] = [];
  for (const p of perm) {
    if (shape[p] === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && steps[last] === xStrides[p] * shape[p]) {
      dims[last] *= shape[p];
      steps[last] = xStrides[p];
    } else {
      dims.push(shape[p]);
      steps.push(xStrides[p]);
    }
  }
  return { dims, steps };
}

/** `(local.set $name expr)` lines that compute the row's source and destination pointers. */
function rowPointers(src: string, dst: string): string[] {
  return [
    `(local.set $ps (i32.add (local.get $x) ${src}))`,
    `(local.set $pd (i32.add (local.get $out) ${dst}))`,
  ];
}

/** `threadRange(count)` as separate lines. */
function range(count: number): string[] {
  return threadRange(count).split("\n").map((l) => l.trim());
}

/** A loop over `$r` in [start, end) around `body`. */
function overRange(label: string, body: string[]): string[] {
  return [
    `(local.set $r (local.get $start))`,
    `(block $done`,
    `  (loop $${label}`,
    `    (br_if $done (i32.ge_u (local.get $r) (local.get $end)))`,
    ...indent(body, 2),
    `    (local.set $r (i32.add (local.get $r) (i32.const 1)))`,
    `    (br $${label})))`,
  ];
}

/**
 * Element-by-element copy of `count` elements from `$ps` (step `srcStep` bytes) to `$pd` (step 4
 * bytes): a loop of 4 per iteration with constant offsets, then the rest straight-line.
 */
function stridedRow(label: string, count: number, srcStep: number): string[] {
  const copy = (k: number) =>
    `(f32.store ${memarg(4 * k, "(local.get $pd)")} (f32.load ${memarg(srcStep * k, "(local.get $ps)")}))`;
  const out: string[] = [];
  const loops = Math.floor(count / 4);
  const group = [0, 1, 2, 3].map(copy);
  const advance = [
    `(local.set $ps (i32.add (local.get $ps) (i32.const ${4 * srcStep})))`,
    `(local.set $pd (i32.add (local.get $pd) (i32.const 16)))`,
  ];
  if (loops === 1) out.push(...group, ...advance);
  else if (loops > 1) {
    out.push(
      `(local.set $k (i32.const ${loops}))`,
      `(loop $${label}`,
      ...indent([...group, ...advance]),
      `  (local.set $k (i32.sub (local.get $k) (i32.const 1)))`,
      `  (br_if $${label} (local.get $k)))`,
    );
  }
  for (let k = 0; k < count % 4; k++) out.push(copy(k));
  return out;
}

// 4×4 transpose: rows a, b, c, d -> columns (a_i, b_i, c_i, d_i)
const LANES = (a: number, b: number, c: number, d: number) =>
  [a, b, c, d].flatMap((l) => [0, 1, 2, 3].map((k) => 4 * l + k)).join(" ");
const INTERLEAVE_LO = LANES(0, 4, 1, 5); // a0 b0 a1 b1
const INTERLEAVE_HI = LANES(2, 6, 3, 7); // a2 b2 a3 b3
const HALVES_LO = LANES(0, 1, 4, 5); // t0 t1 u0 u1
const HALVES_HI = LANES(2, 3, 6, 7); // t2 t3 u2 u3

/** The kernel copying x of `spec.shape` into `out` transposed by `spec.perm`. */
export function transposeKernel(spec: TransposeSpec, _target: KernelTarget): WasmKernel {
  const { shape, perm } = spec;
  const rank = shape.length;
  const isPerm = perm.length === rank && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
  if (rank < 1 || rank > 6 || !isPerm) throw new Error(`bad transpose: shape [${shape}], perm [${perm}]`);
  const name = `transpose_${shape.join("x")}_p${perm.join("")}`;
  const total = shape.reduce((a, b) => a * b, 1);
  const { dims, steps } = simplify(shape, perm);
  const k = dims.length - 1;

  let kind: string;
  let body: string[];
  const i32Locals = ["start", "end", "r", "ps", "pd", "o", "k"];
  const v128Locals: string[] = [];
  if (total === 0) {
    kind = "nothing to copy";
    body = [];
  } else if (k < 0 || (k === 0 && steps[0] === 1)) {
    kind = "a plain copy, threads split 64-byte chunks";
    const bytes = total * 4;
    body = [
      ...range(Math.ceil(bytes / 64)),
      `(local.set $start (i32.shl (local.get $start) (i32.const 6)))`,
      `(local.set $end (i32.shl (local.get $end) (i32.const 6)))`,
      `(if (i32.gt_u (local.get $end) (i32.const ${bytes})) (then (local.set $end (i32.const ${bytes}))))`,
      `(if (i32.lt_u (local.get $start) (local.get $end)) (then`,
      `  (memory.copy (i32.add (local.get $out) (local.get $start)) (i32.add (local.get $x) (local.get $start)) (i32.sub (local.get $end) (local.get $start)))))`,
    ];
  } else if (steps[k] === 1) {
    const run = dims[k];
    const runs = total / run;
    kind = `runs of ${run} contiguous elements, threads split the ${runs} runs`;
    const src = stridedOffset("(local.get $r)", dims.slice(0, k), steps.slice(0, k).map((s) => s * 4));
    const copy: string[] = [];
    if (run * 4 > MEMCOPY_BYTES) {
      copy.push(`(memory.copy (local.get $pd) (local.get $ps) (i32.const ${run * 4}))`);
    } else {
      copy.push(
        ...vectorPass(
          "run",
          Math.floor(run / 4),
          4,
          (at) => [`(v128.store ${at("$pd")} (v128.load ${at("$ps")}))`],
        ),
      );
      const base = Math.floor(run / 4) * 16;
      for (let j = 0; j < run % 4; j++) {
        copy.push(
          `(f32.store ${memarg(base + 4 * j, "(local.get $pd)")} (f32.load ${
            memarg(base + 4 * j, "(local.get $ps)")
          }))`,
        );
      }
    }
    body = [
      ...range(runs),
      ...overRange("runs", [...rowPointers(src, `(i32.mul (local.get $r) (i32.const ${run * 4}))`), ...copy]),
    ];
  } else if (k >= 1 && steps[k - 1] === 1 && dims[k - 1] >= 4 && dims[k] >= 4) {
    // out [B, P, Q] with out[b, p, q] = x[b·sB + p + q·sQ]
    const [P, Q, sQ] = [dims[k - 1], dims[k], steps[k]];
    const batch = total / (P * Q);
    const tilesP = Math.ceil(P / 4);
    const units = batch * tilesP;
    kind =
      `4×4 tiles of [${batch}, ${P}, ${Q}] read from [${batch}, ${Q}, ${P}], threads split the ${units} (batch, 4-row) tiles`;
    v128Locals.push("a", "b", "c", "d", "t0", "t1", "t2", "t3");
    i32Locals.push("bi", "row", ...(P % 4 ? ["bs", "bd"] : []));
    const bOff = stridedOffset(
      "(local.get $bi)",
      dims.slice(0, k - 1),
      steps.slice(0, k - 1).map((s) => s * 4),
    );
    const load = (j: number) => `(v128.load ${memarg(j * sQ * 4, "(local.get $ps)")})`;
    const store = (i: number, lanes: string, u: string, v: string) =>
      `(v128.store ${
        memarg(i * Q * 4, "(local.get $pd)")
      } (i8x16.shuffle ${lanes} (local.get ${u}) (local.get ${v})))`;
    const tile = [
      `(local.set $a ${load(0)})`,
      `(local.set $b ${load(1)})`,
      `(local.set $c ${load(2)})`,
      `(local.set $d ${load(3)})`,
      `(local.set $t0 (i8x16.shuffle ${INTERLEAVE_LO} (local.get $a) (local.get $b)))`,
      `(local.set $t1 (i8x16.shuffle ${INTERLEAVE_HI} (local.get $a) (local.get $b)))`,
      `(local.set $t2 (i8x16.shuffle ${INTERLEAVE_LO} (local.get $c) (local.get $d)))`,
      `(local.set $t3 (i8x16.shuffle ${INTERLEAVE_HI} (local.get $c) (local.get $d)))`,
      store(0, HALVES_LO, "$t0", "$t2"),
      store(1, HALVES_HI, "$t0", "$t2"),
      store(2, HALVES_LO, "$t1", "$t3"),
      store(3, HALVES_HI, "$t1", "$t3"),
      `(local.set $ps (i32.add (local.get $ps) (i32.const ${16 * sQ})))`,
      `(local.set $pd (i32.add (local.get $pd) (i32.const 16)))`,
    ];
    const fullQ = Math.floor(Q / 4);
    const full: string[] = [
      `(local.set $k (i32.const ${fullQ}))`,
      `(loop $tiles`,
      ...indent(tile),
      `  (local.set $k (i32.sub (local.get $k) (i32.const 1)))`,
      `  (br_if $tiles (local.get $k)))`,
    ];
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < Q % 4; j++) {
        full.push(
          `(f32.store ${memarg(i * Q * 4 + j * 4, "(local.get $pd)")} (f32.load ${
            memarg(i * 4 + j * sQ * 4, "(local.get $ps)")
          }))`,
        );
      }
    }
    const unit = [
      `;; b = r / ${tilesP}, rows p = 4·(r % ${tilesP}) .. +3`,
      `(local.set $bi (i32.div_u (local.get $r) (i32.const ${tilesP})))`,
      `(local.set $row (i32.add (i32.mul (local.get $bi) (i32.const ${P})) (i32.shl (i32.sub (local.get $r) (i32.mul (local.get $bi) (i32.const ${tilesP}))) (i32.const 2))))`,
      ...rowPointers(
        `(i32.add ${bOff} (i32.shl (i32.sub (local.get $row) (i32.mul (local.get $bi) (i32.const ${P}))) (i32.const 2)))`,
        `(i32.mul (local.get $row) (i32.const ${Q * 4}))`,
      ),
    ];
    if (P % 4 === 0) unit.push(...full);
    else {
      // the last row tile of each batch has P % 4 rows: element by element, from the tile's start
      const partial: string[] = [];
      for (let i = 0; i < P % 4; i++) {
        partial.push(
          i
            ? `(local.set $ps (i32.add (local.get $bs) (i32.const ${4 * i})))`
            : `(local.set $ps (local.get $bs))`,
          i
            ? `(local.set $pd (i32.add (local.get $bd) (i32.const ${i * Q * 4})))`
            : `(local.set $pd (local.get $bd))`,
          ...stridedRow(`part${i}`, Q, sQ * 4),
        );
      }
      unit.push(`(local.set $bs (local.get $ps))`, `(local.set $bd (local.get $pd))`);
      unit.push(
        `(if (i32.gt_u (i32.sub (i32.const ${P}) (i32.sub (local.get $row) (i32.mul (local.get $bi) (i32.const ${P})))) (i32.const 3))`,
        `  (then`,
        ...indent(full, 2),
        `  )`,
        `  (else`,
        ...indent(partial, 2),
        `  ))`,
      );
    }
    body = [...range(units), ...overRange("units", unit)];
  } else {
    const cols = dims[k];
    const rows = total / cols;
    kind = `element by element, ${rows} output rows of ${cols} (source step ${
      steps[k]
    }), threads split the rows`;
    const src = stridedOffset("(local.get $r)", dims.slice(0, k), steps.slice(0, k).map((s) => s * 4));
    body = [
      ...range(rows),
      ...overRange("rows", [
        ...rowPointers(src, `(i32.mul (local.get $r) (i32.const ${cols * 4}))`),
        ...stridedRow("cols", cols, steps[k] * 4),
      ]),
    ];
  }

  const params = ["x", "out"];
  const outShape = perm.map((p) => shape[p]);
  const wat = [
    `  (func $${name} (export "${name}") (param $x i32) (param $out i32) (param $tid i32) (param $nt i32)`,
    `    ;; out[${outShape.join(",")}] = x[${shape.join(",")}] transposed by [${perm.join(",")}]: ${kind}`,
    `    ${i32Locals.map((l) => `(local $${l} i32)`).join(" ")}`,
    ...(v128Locals.length ? [`    ${v128Locals.map((l) => `(local $${l} v128)`).join(" ")}`] : []),
    ...indent(body, 2),
    `  )`,
  ].join("\n");
  return { name, params, wat, uses: [] };
}
