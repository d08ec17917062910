/**
 * `quantize`: INT8 quantization of the weights of `dense` and `bsr_dense` ops (issue 18). Each
 * target `dense x, @w, bias {transpose_b = true}` (or `bsr_dense x, @w, bias`) becomes
 * `qdense x, @w.q, @w.scale, bias {act_max, act_scale, activation}` (the op is defined, with its
 * exact f32 semantics, in ir/ops/qdense.ts).
 *
 * **Which ops.** A `dense` whose w is a declared weight (not computed, not a `constant`), dense
 * (not BSR), 2-D and f32, used with `transpose_b = true` and `transpose_a = false` on an f32 x,
 * whose name matches `weights` (a regex, searched, matched in linear time as `prune`'s `target`;
 * by default every encoder dense weight, so the pooler and the classifier head stay f32) and
 * whose K (its in-features) is at least `min-in` (default 64, a choice: it keeps small
 * projections, where the per-row quantization is a large share of the work, in f32). A weight used by several such ops is quantized once. A `bsr_dense` over an
 * f32 BSR weight (any block shape) matching `weights` and `min-in` becomes a `qdense` over an i8
 * BSR weight with the same blocks, `indices` and `indptr`, quantized exactly as its densified
 * matrix would be (zeros outside the blocks change no row's maximum), so `bsr-lower` then
 * `quantize` computes what `quantize` then `bsr-lower` would, had bsr-lower known int8.
 *
 * **Weights.** Symmetric, per output channel: for row n of W `[N, K]`,
 * `w_scale[n] = fround(max_k |W[n, k]| / 127)` (1 for a row of zeros) and
 * `wq[n, k] = clamp(roundHalfEven(fround(W[n, k] / w_scale[n])), -127, 127)`, stored as new
 * weights `@<name>.q` (i8 `[N, K]`) and `@<name>.scale` (f32 `[N]`), declared where `@<name>`
 * was; `@<name>` itself is dropped when nothing uses it any more. A weight holding NaN or ±inf
 * is an error naming it.
 *
 * **Activations.** `activations = dynamic` (the default) leaves `act_scale = 0.0`: each row of x
 * gets its own scale max|x| / act-max when the op runs. `activations = static` computes one
 * scale per op from calibration data: the f32 model runs over `calibration` sentences (drawn and
 * tokenized by the driver exactly as `prune-reconstruct` gets them: `calibration-data`,
 * `tokenizer`, `seed`; `random` for seeded random token ids), and
 * `act_scale = fround(max |x| / act-max)` over every real-token row of the op's input (pad rows
 * left out; 1 when that max is 0). Static scales need `@main` to take `input_ids` `[1, S]`, and
 * only ops of `@main` are quantized then.
 *
 * **act-max** (default 63) is the op's `act_max`: 63 keeps quantized activations in 7 bits,
 * which the relaxed-SIMD kernel needs (docs/int8.md).
 *
 * **Embeddings.** With `embeddings = true` (the default), a `gather` on axis 0 from a declared f32
 * `[V, H]` weight (an embedding table; `weights` does not apply) becomes
 * `qgather @<name>.q, @<name>.scale, ids`: the table quantized per row exactly as a dense weight is
 * per output channel (so a table also used by a `dense` is quantized once), looked up in int8 and
 * scaled to f32 (ir/ops/qgather.ts). On BERT the word embeddings are most of the weights a dense
 * quantization leaves in f32.
 *
 * **Output.** A log line per weight (shape, largest scale, mean |W − w_scale·wq| relative to mean
 * |W|) and per static scale; statistics `weights`, `ops` and `skipped`.
 */

import { AttrReader } from "../ir/attrs.ts";
import type { Func, Module, Op, Value } from "../ir/module.ts";
import { Weight } from "../ir/module.ts";
import { ACT_MAX_LIMIT, roundHalfEven } from "../ir/ops/qdense.ts";
import { BsrTensor, Tensor } from "../ir/tensor.ts";
import { isFloat } from "../ir/types.ts";
import { definePass, type NameRegex, nameRegex, type PassContext } from "./pass.ts";
import { DEFAULT_PRUNE_TARGET } from "./prune.ts";
import { DEFAULT_CALIBRATION_DATA } from "./prune_reconstruct.ts";
import { fitSentences, randomSamples, type Sample, sampleInputs } from "./reconstruct/calibration.ts";
import { Stepper } from "./reconstruct/stepper.ts";
import { rewrite } from "./rewrite.ts";

const options = {
  "act-max": {
    type: "int",
    default: 63,
    min: 1,
    max: ACT_MAX_LIMIT,
    doc: "largest quantized activation magnitude (qdense act_max); 63 = 7-bit activations",
  },
  activations: {
    type: "enum",
    values: ["dynamic", "static"],
    default: "dynamic",
    doc: "activation scale per row at run time, or one per op from calibration sentences",
  },
  weights: {
    type: "string",
    default: DEFAULT_PRUNE_TARGET,
    doc: "regex over the names of dense weights to quantize (default: the encoder's)",
  },
  embeddings: {
    type: "bool",
    default: true,
    doc: "also int8 embedding tables: gather by run-time ids from an f32 [V, H] weight becomes qgather",
  },
  "min-in": { type: "int", default: 64, min: 0, doc: "leave weights with fewer in-features (K) in f32" },
  calibration: { type: "int", default: 128, min: 1, doc: "calibration sentences (activations=static)" },
  seed: { type: "int", default: 0, min: 0, doc: "seed of the choice of calibration sentences" },
  "calibration-data": {
    type: "string",
    default: DEFAULT_CALIBRATION_DATA,
    doc: "TSV of sentences (column 'sentence' or 'text'), or 'random' (activations=static)",
  },
  tokenizer: {
    type: "string",
    default: "",
    doc: "folder with tokenizer.json; default the model file's folder, else its weights file's",
  },
} as const;

const statistics = {
  weights: "weights quantized",
  ops: "dense and bsr_dense ops rewritten to qdense",
  skipped: "dense and bsr_dense ops left in f32 (not a target)",
  tables: "gather ops from embedding tables rewritten to qgather",
} as const;

type Ctx = PassContext<typeof options>;

/** Quantizes W `[N, K]` (f32) per row; undefined when a value is not finite. */
export function quantizeWeight(
  w: ArrayLike<number>,
  n: number,
  k: number,
): { wq: Int8Array; scale: Float32Array } | undefined {
  const wq = new Int8Array(n * k), scale = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let m = 0;
    for (let j = 0; j < k; j++) {
      const v = w[r * k + j];
      if (!Number.isFinite(v)) return undefined;
      m = Math.max(m, Math.abs(v));
    }
    const s = m === 0 ? 1 : Math.fround(m / 127);
    scale[r] = s;
    for (let j = 0; j < k; j++) {
      wq[r * k + j] = Math.max(-127, Math.min(127, roundHalfEven(Math.fround(w[r * k + j] / s))));
    }
  }
  return { wq, scale };
}

/** Whether `op` is a dense or bsr_dense the pass can rewrite, and why not when it cannot. */
function eligible(m: Module, op: Op, ctx: Ctx, target: NameRegex): string | undefined {
  const [x, w] = op.operands;
  if (w.kind !== "weight" || !m.weights.has(w.name)) return "w is not a declared weight";
  if (!target.test(w.name)) return "not matched by 'weights'";
  if (w.type.shape.length !== 2 || w.type.dtype !== "f32") return "w is not an f32 matrix";
  if (op.name === "dense") {
    const a = new AttrReader(ctx.registry.get("dense")!.attrs, op.attrs);
    if (w.type.sparse) return "w is sparse";
    if (!a.bool("transpose_b") || a.bool("transpose_a")) return "not transpose_b = true, transpose_a = false";
  }
  if (x.type.dtype !== "f32") return "x is not f32";
  if (w.type.shape[1] < ctx.options["min-in"]) return `K = ${w.type.shape[1]} is below min-in`;
  return undefined;
}

/** Whether `op` is a `gather` on axis 0 from a declared dense f32 `[V, H]` weight (an embedding table). */
function embeddingTable(m: Module, op: Op, ctx: Ctx): boolean {
  if (op.name !== "gather") return false;
  const [table] = op.operands;
  if (table.kind !== "weight" || !m.weights.has(table.name)) return false;
  if (table.type.shape.length !== 2 || table.type.dtype !== "f32" || table.type.sparse) return false;
  const axis = new AttrReader(ctx.registry.get("gather")!.attrs, op.attrs).int("axis");
  return axis === 0 || axis === -2;
}

/** The logical `[N, K]` matrix of a BSR weight (f32). */
function densify(w: BsrTensor): Float32Array {
  const [N, K] = w.sparseType.shape;
  const [R, C] = w.sparseType.sparse!.block;
  const out = new Float32Array(N * K);
  for (let br = 0; br + 1 < w.indptr.length; br++) {
    for (let b = w.indptr[br]; b < w.indptr[br + 1]; b++) {
      const col0 = w.indices[b] * C;
      for (let i = 0; i < R && br * R + i < N; i++) {
        for (let j = 0; j < C && col0 + j < K; j++) {
          out[(br * R + i) * K + col0 + j] = w.data[(b * R + i) * C + j];
        }
      }
    }
  }
  return out;
}

/** The int8 `[N, K]` matrix `wq` cut into the blocks of BSR weight `w` (its padding stays 0). */
function bsrBlocks(w: BsrTensor, wq: Int8Array): Int8Array {
  const [N, K] = w.sparseType.shape;
  const [R, C] = w.sparseType.sparse!.block;
  const blocks = new Int8Array(w.data.length);
  for (let br = 0; br + 1 < w.indptr.length; br++) {
    for (let b = w.indptr[br]; b < w.indptr[br + 1]; b++) {
      const col0 = w.indices[b] * C;
      for (let i = 0; i < R && br * R + i < N; i++) {
        for (let j = 0; j < C && col0 + j < K; j++) {
          blocks[(b * R + i) * C + j] = wq[(br * R + i) * K + col0 + j];
        }
      }
    }
  }
  return blocks;
}

/** The calibration samples at length `seq` (as prune-reconstruct draws them). */
function samples(f: Func, ctx: Ctx, seq: number): Sample[] {
  const o = ctx.options;
  if (o["calibration-data"] === "random") return randomSamples(f, o.calibration, o.seed, seq);
  const s = ctx.sentences;
  if (!s) {
    throw ctx.error(
      undefined,
      `calibration sentences were not prepared: run the pass through compile() / the compile CLI, ` +
        `or pass RunOptions.sentences`,
    );
  }
  return fitSentences(s, seq);
}

/** max |x| over the real-token rows of value `x` in each calibration run. */
function maxAbs(ts: Tensor[], ss: readonly Sample[], seq: number): number {
  const k = ts[0].shape[ts[0].shape.length - 1] || 1;
  const perSample = ts[0].data.length / k;
  const positional = perSample % seq === 0;
  let m = 0;
  ts.forEach((t, si) => {
    for (let r = 0; r < perSample; r++) {
      if (positional && r % seq >= ss[si].length) continue;
      for (let c = 0; c < k; c++) m = Math.max(m, Math.abs(t.data[r * k + c]));
    }
  });
  return m;
}

/** Static activation scales of the target ops of `@main`, from a calibration run of the f32 model. */
function staticScales(m: Module, ops: Set<Op>, ctx: Ctx): Map<Op, number> {
  const f = m.func("main");
  if (!f) throw ctx.error(undefined, `activations=static needs a @main to run calibration data through`);
  const ids = f.params.find((p) => p.name === "input_ids");
  if (!ids || ids.type.shape.length !== 2 || ids.type.shape[0] !== 1 || isFloat(ids.type.dtype)) {
    throw ctx.error(f.loc, `activations=static needs @main to take integer input_ids of shape [1, S]`);
  }
  const seq = ids.type.shape[1];
  const ss = samples(f, ctx, seq);
  const stepper = new Stepper(m, f, ctx as unknown as PassContext, sampleInputs(f, ss));
  ctx.log(`calibration: ${ss.length} sentences, ${ss.reduce((n, s) => n + s.length, 0)} tokens`);
  const scales = new Map<Op, number>();
  const seen = new Map<Value, number>();
  f.body.forEach((op, i) => {
    if (!ops.has(op)) return;
    stepper.runTo(i);
    const x = op.operands[0];
    if (!seen.has(x)) seen.set(x, maxAbs(stepper.values(x), ss, seq));
    const a = seen.get(x)!;
    const s = a === 0 || !Number.isFinite(a) ? 1 : Math.fround(a / ctx.options["act-max"]);
    ctx.log(`${op.result.ref}: act_scale ${s} (max |x| ${a})`);
    scales.set(op, s);
  });
  return scales;
}

/** The INT8 quantization pass. */
export const quantize = definePass({
  name: "quantize",
  description:
    "INT8: dense and bsr_dense ops over f32 [out, in] weights become qdense with per-channel int8 weights.",
  options,
  statistics,
  filter: { ops: ["dense", "bsr_dense", "gather"] },
  inputs(o) {
    const data = o["calibration-data"];
    if (o.activations !== "static" || data === "random" || data === "") return {};
    return { sentences: { data, tokenizer: o.tokenizer, count: o.calibration, seed: o.seed } };
  },
  runOnModule(m, ctx) {
    const o = ctx.options;
    let target: NameRegex;
    try {
      target = nameRegex(o.weights);
    } catch (e) {
      throw ctx.error(
        undefined,
        `option 'weights' is not a valid regex: ${e instanceof Error ? e.message : e}`,
      );
    }
    if (o.activations === "static" && o["calibration-data"] === "") {
      throw ctx.error(undefined, `option 'calibration-data' is empty: give a TSV file or 'random'`);
    }
    const main = m.func("main");
    const ops = new Set<Op>();
    for (const f of m.funcs) {
      for (const op of f.body) {
        if (op.name !== "dense" && op.name !== "bsr_dense") continue;
        const why = eligible(m, op, ctx, target) ??
          (o.activations === "static" && f !== main ? "static scales only in @main" : undefined);
        if (why === undefined) ops.add(op);
        else ctx.stat("skipped");
      }
    }
    const tables = new Set<Op>();
    if (o.embeddings) {
      for (const f of m.funcs) for (const op of f.body) if (embeddingTable(m, op, ctx)) tables.add(op);
    }
    if (ops.size === 0 && tables.size === 0) return "unchanged";
    const scales = o.activations === "static" ? staticScales(m, ops, ctx) : undefined;

    // The new weights, declared right after the weight they come from.
    const made = new Map<string, [Weight, Weight]>();
    for (const op of [...ops, ...tables]) {
      const w = m.weights.get(op.operands[op.name === "gather" ? 0 : 1].name)!;
      if (made.has(w.name)) continue;
      const [n, k] = w.type.shape;
      for (const name of [`${w.name}.q`, `${w.name}.scale`]) {
        if (m.weights.has(name)) throw ctx.error(op, `cannot quantize @${w.name}: weight @${name} exists`);
      }
      const t = ctx.weights.get(w);
      const data = t instanceof BsrTensor ? densify(t) : t.data;
      const q = quantizeWeight(data, n, k);
      if (!q) throw ctx.error(op, `cannot quantize @${w.name}: it holds NaN or infinity`);
      const sparse = w.type.sparse ? { sparse: w.type.sparse } : {};
      const wq = new Weight(`${w.name}.q`, { shape: [n, k], dtype: "i8", ...sparse });
      const ws = new Weight(`${w.name}.scale`, { shape: [n], dtype: "f32" });
      const qt = t instanceof BsrTensor
        ? new BsrTensor(wq.type, bsrBlocks(t, q.wq), t.indices, t.indptr)
        : new Tensor(wq.type, q.wq);
      ctx.weights.set(wq.name, qt);
      ctx.weights.set(ws.name, new Tensor(ws.type, q.scale));
      made.set(w.name, [wq, ws]);
      let err = 0, mag = 0;
      for (let i = 0; i < n * k; i++) {
        err += Math.abs(data[i] - q.scale[Math.floor(i / k)] * q.wq[i]);
        mag += Math.abs(data[i]);
      }
      ctx.log(
        `@${w.name} [${n}x${k}] -> int8, largest scale ${Math.max(...q.scale)}, ` +
          `mean |W - scale·q| / mean |W| = ${(mag === 0 ? 0 : err / mag).toFixed(5)}`,
      );
      ctx.stat("weights");
    }

    for (const f of m.funcs) {
      rewrite(f, ctx, [{
        match: ["dense", "bsr_dense"],
        where: (op) => ops.has(op),
        rewrite(op, rw) {
          const [x, w, bias] = op.operands;
          const [wq, ws] = made.get(w.name)!;
          const a = new AttrReader(ctx.registry.get(op.name)!.attrs, op.attrs);
          rw.replace(
            op,
            rw.create("qdense", bias ? [x, wq, ws, bias] : [x, wq, ws], {
              act_max: o["act-max"],
              act_scale: scales?.get(op) ?? 0,
              activation: a.string("activation"),
            }),
          );
          ctx.stat("ops");
        },
      }, {
        match: "gather",
        where: (op) => tables.has(op),
        rewrite(op, rw) {
          const [table, ids] = op.operands;
          const [wq, ws] = made.get(table.name)!;
          rw.replace(op, rw.create("qgather", [wq, ws, ids], {}));
          ctx.stat("tables");
        },
      }]);
    }

    // Declarations: each int8 pair where its source was; a source nothing reads any more is dropped.
    const used = new Set<string>();
    for (const f of m.funcs) {
      for (const v of [...f.returns, ...f.body.flatMap((op) => op.operands)]) {
        if (v.kind === "weight") used.add(v.name);
      }
    }
    const declared = [...m.weights.entries()];
    m.weights.clear();
    for (const [name, w] of declared) {
      const pair = made.get(name);
      if (!pair || used.has(name)) m.weights.set(name, w);
      else pair[0].comments = w.comments; // the dropped declaration's comments stay with its int8 form
      for (const q of pair ?? []) m.weights.set(q.name, q);
    }
    return "changed";
  },
});
