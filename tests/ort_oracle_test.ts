/**
 * The oracle: Sparrow's reference interpreter against onnxruntime on the same model. Each case
 * is exported with `exportOnnx`, run by onnxruntime-node on the interpreter's inputs (seeded,
 * i64 as BigInt64Array), and every output must agree within a max abs difference: 1e-4 for the
 * small synthetic BERTs (tiny, mini; with and without head; erf and tanh GELU; after `fuse`;
 * pruned to BSR), 1e-3 for BERT-base at S=128, 1e-5 for the backward functions `grad` builds for
 * bert-tiny (loss and gradients, which are at most about 0.5), and per op for one-op modules of
 * every IR op (random shapes, broadcasting, several dtypes). The measured differences are printed.
 *
 * onnxruntime-node is a native addon, which Deno loads only with `--allow-ffi` (`deno task test`
 * grants it); without it these tests are ignored.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { exportOnnx, type ExportOptions, ORT_KERNEL_DTYPES } from "../frontend/onnx/export.ts";
import { decodeModel } from "../frontend/onnx/proto.ts";
import {
  type BertConfig,
  bertConfig,
  buildBertModule,
  syntheticBertWeights,
  writeSyntheticBert,
} from "../frontend/synthetic_bert.ts";
import { seededInputs, seededWeights } from "../ir/inputs.ts";
import { Random } from "../ir/random.ts";
import {
  BsrTensor,
  builtinOps,
  createPassRegistry,
  type DType,
  type FuncBuilder,
  grad,
  interpret,
  isFloat,
  loadModule,
  loadWeights,
  memoryStore,
  type Module,
  ModuleBuilder,
  parsePipeline,
  runPipeline,
  Tensor,
  type TensorType,
  tensorType,
  type Value,
  verify,
  Weight,
  type WeightStore,
  withCrossEntropyLoss,
} from "../mod.ts";
import { formatDiagnostics } from "../ir/diagnostics.ts";

// ---------------------------------------------------------------------------------------------
// onnxruntime

/** One model for onnxruntime with its named inputs; it gives the outputs in graph order. */
interface OrtJob {
  readonly model: Uint8Array;
  readonly feeds: readonly (readonly [string, Tensor])[];
}

/** Whether onnxruntime can run here: it needs `--allow-ffi`. */
const CAN_ORT = Deno.permissions.querySync({ name: "ffi" }).state === "granted";

type Ort = typeof import("onnxruntime-node");
type OrtTensor = InstanceType<Ort["Tensor"]>;

/** onnxruntime-node's tensor type names; f16 and bf16 cannot cross its JS boundary in Deno. */
const ORT_TYPES: Partial<Record<DType, string>> = {
  f32: "float32",
  f64: "float64",
  i64: "int64",
  i32: "int32",
  i8: "int8",
  u8: "uint8",
  bool: "bool",
};

/** An IR tensor as an onnxruntime tensor (i64 as BigInt64Array). */
function toOrt(ort: Ort, t: Tensor): OrtTensor {
  const type = ORT_TYPES[t.dtype];
  if (!type) throw new Error(`onnxruntime-node takes no ${t.dtype} tensors from JS; cast in the model`);
  const data = t.dtype === "i64"
    ? BigInt64Array.from(t.data, (v) => BigInt(v))
    : t.dtype === "f32"
    ? Float32Array.from(t.data)
    : t.data;
  return new ort.Tensor(type as "float32", data as Float32Array, [...t.shape]);
}

/** An onnxruntime tensor as an IR tensor. */
function fromOrt(t: OrtTensor): Tensor {
  const entry = Object.entries(ORT_TYPES).find(([, name]) => name === t.type);
  if (!entry) throw new Error(`onnxruntime returned a ${t.type} tensor`);
  const dtype = entry[0] as DType;
  const data = t.data as ArrayLike<number | bigint>;
  return Tensor.from([...t.dims], dtype, Array.from(data, Number));
}

/** Runs the jobs with onnxruntime in this process. */
async function runInProcess(jobs: readonly OrtJob[]): Promise<Tensor[][]> {
  const ort: Ort = await import("onnxruntime-node");
  const results: Tensor[][] = [];
  for (const job of jobs) {
    const session = await ort.InferenceSession.create(job.model, { logSeverityLevel: 3 });
    const feeds = Object.fromEntries(job.feeds.map(([name, t]) => [name, toOrt(ort, t)]));
    const out = await session.run(feeds);
    results.push(session.outputNames.map((name) => fromOrt(out[name])));
    await session.release();
  }
  return results;
}

/** Runs the jobs with onnxruntime. */
const runOrt = runInProcess;

// ---------------------------------------------------------------------------------------------
// Comparing the interpreter with onnxruntime

/** One model run by both. */
interface OracleCase {
  readonly label: string;
  readonly module: Module;
  readonly weights: WeightStore;
  /** The max abs difference allowed per output. */
  readonly tol: number;
  /** Inputs; seeded from `seed` (default 0) when absent. */
  readonly inputs?: readonly Tensor[];
  readonly seed?: number;
  readonly options?: ExportOptions;
}

/** The max abs difference of two tensors of one type; NaN in both counts as equal. */
function maxDiff(ours: Tensor, theirs: Tensor, what: string): number {
  assert.equal(theirs.dtype, ours.dtype, `${what}: dtype`);
  assert.deepEqual([...theirs.shape], [...ours.shape], `${what}: shape`);
  let max = 0;
  for (let i = 0; i < ours.data.length; i++) {
    const a = ours.data[i], b = theirs.data[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    const d = Math.abs(a - b);
    max = Number.isNaN(d) ? Infinity : Math.max(max, d);
  }
  return max;
}

/**
 * Exports each case, runs the interpreter and onnxruntime on the same inputs, prints the max
 * abs difference per case and fails listing every case over its tolerance.
 */
async function checkOracle(cases: readonly OracleCase[]): Promise<Map<string, number>> {
  const jobs: OrtJob[] = [];
  const expected: Tensor[][] = [];
  for (const c of cases) {
    const ds = verify(c.module, { weights: c.weights.entries() });
    assert.equal(ds.length, 0, `${c.label}: ${formatDiagnostics(ds)}`);
    const func = c.options?.func ?? "main";
    const f = c.module.func(func)!;
    const inputs = c.inputs ?? seededInputs(f, c.seed ?? 0);
    expected.push(interpret(c.module, inputs, c.weights, { func }));
    const { bytes } = exportOnnx(c.module, c.weights, c.options);
    jobs.push({ model: bytes, feeds: f.params.map((p, i) => [p.name, inputs[i]] as const) });
  }
  const actual = await runOrt(jobs);
  const diffs = new Map<string, number>();
  const failures: string[] = [];
  cases.forEach((c, i) => {
    assert.equal(actual[i].length, expected[i].length, `${c.label}: output count`);
    const diff = Math.max(...expected[i].map((t, j) => maxDiff(t, actual[i][j], `${c.label} output ${j}`)));
    diffs.set(c.label, diff);
    const line = `${c.label.padEnd(48)} max |Δ| = ${diff.toExponential(2)} (tol ${c.tol.toExponential(0)})`;
    console.log(`  ${line}`);
    if (!(diff <= c.tol)) failures.push(line);
  });
  assert.deepEqual(failures, [], "the interpreter and onnxruntime disagree");
  return diffs;
}

// ---------------------------------------------------------------------------------------------
// Whole models

/** The synthetic weights of a config, in memory. */
function bertWeights(c: BertConfig): WeightStore {
  return memoryStore(
    new Map(
      syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
    ),
  );
}

/** A synthetic BERT case. */
function bertCase(label: string, c: BertConfig, tol: number, options?: ExportOptions): OracleCase {
  return { label, module: buildBertModule(c, "w.safetensors"), weights: bertWeights(c), tol, options };
}

/** `m` after the `fuse` pass, which must have fused something. */
function fused(m: Module, weights: WeightStore): Module {
  const out = runPipeline(m, parsePipeline("fuse", createPassRegistry()), { weights }).module;
  const ops = out.funcs[0].body.map((op) => op.name);
  assert.ok(ops.includes("add_layer_norm"), "fuse made add_layer_norm");
  assert.ok(out.funcs[0].body.some((op) => op.attrs.get("activation")), "fuse folded an activation");
  return out;
}

/**
 * Magnitude-prunes a dense `[N, K]` matrix to BSR with `block`, keeping the blocks with the
 * largest L2 norm (a fraction `1 - sparsity` of the grid).
 */
function pruneToBsr(
  data: ArrayLike<number>,
  n: number,
  k: number,
  block: [number, number],
  sparsity: number,
) {
  const [r, c] = block;
  const rows = Math.ceil(n / r), cols = Math.ceil(k / c);
  const norms: [number, number][] = [];
  for (let br = 0; br < rows; br++) {
    for (let bc = 0; bc < cols; bc++) {
      let s = 0;
      for (let i = br * r; i < Math.min(n, br * r + r); i++) {
        for (let j = bc * c; j < Math.min(k, bc * c + c); j++) s += data[i * k + j] ** 2;
      }
      norms.push([s, br * cols + bc]);
    }
  }
  const keep = Math.max(1, Math.round(rows * cols * (1 - sparsity)));
  const kept = new Set(norms.sort((a, b) => b[0] - a[0]).slice(0, keep).map(([, id]) => id));
  const blocks: number[] = [], indices: number[] = [], indptr = [0];
  for (let br = 0; br < rows; br++) {
    for (let bc = 0; bc < cols; bc++) {
      if (!kept.has(br * cols + bc)) continue;
      indices.push(bc);
      for (let i = 0; i < r; i++) {
        for (let j = 0; j < c; j++) {
          const [y, x] = [br * r + i, bc * c + j];
          blocks.push(y < n && x < k ? data[y * k + x] : 0);
        }
      }
    }
    indptr.push(indices.length);
  }
  const type: TensorType = {
    shape: [n, k],
    dtype: "f32",
    sparse: { kind: "bsr", block, nnzBlocks: indices.length },
  };
  return new BsrTensor(type, Float32Array.from(blocks), Int32Array.from(indices), Int32Array.from(indptr));
}

/**
 * bert-tiny with every encoder Linear turned into `bsr_dense` over its magnitude-pruned weight:
 * q, k, v with 1x32 blocks, the attention output with 4x4, the FFN with 32x1 and 1x32; 80% of
 * the blocks are zero.
 */
function prunedBertTiny(c: BertConfig): { module: Module; weights: WeightStore } {
  const m = buildBertModule(c, "w.safetensors");
  const tensors = new Map(
    syntheticBertWeights(c).map((t) => [t.name, new Tensor(tensorType(t.shape), t.data as Float32Array)]),
  );
  const blockOf = (name: string): [number, number] =>
    /attention\.output/.test(name) ? [4, 4] : /intermediate/.test(name) ? [32, 1] : [1, 32];
  for (const op of m.funcs[0].body) {
    const w = op.operands[1];
    if (op.name !== "dense" || !w.name.includes("encoder.layer")) continue;
    const [n, k] = w.type.shape;
    const bsr = pruneToBsr(tensors.get(w.name)!.data, n, k, blockOf(w.name), 0.8);
    const sparse = new Weight(w.name, bsr.sparseType);
    m.weights.set(w.name, sparse);
    tensors.set(w.name, bsr);
    op.name = "bsr_dense";
    op.attrs = new Map();
    op.operands[1] = sparse;
  }
  return { module: m, weights: memoryStore(tensors) };
}

const TINY = bertConfig("bert-tiny");
const MINI = bertConfig("bert-mini");

Deno.test({
  name: "oracle: synthetic bert-tiny and bert-mini match onnxruntime within 1e-4",
  ignore: !CAN_ORT,
  async fn() {
    const cases: OracleCase[] = [];
    for (const [name, base] of [["bert-tiny", TINY], ["bert-mini", MINI]] as const) {
      for (const head of [true, false]) {
        for (const act of ["erf", "tanh"] as const) {
          const c = { ...base, head, act };
          cases.push(bertCase(`${name} ${head ? "head" : "no head"}, ${act}`, c, 1e-4));
        }
      }
      const c = bertCase(`${name} head, erf, fused`, base, 1e-4);
      cases.push({ ...c, module: fused(c.module, c.weights) });
    }
    const tanh = bertCase("bert-tiny no head, tanh, fused", { ...TINY, head: false, act: "tanh" }, 1e-4);
    cases.push({ ...tanh, module: fused(tanh.module, tanh.weights) });
    cases.push(bertCase("bert-tiny head, pre-transposed weights", TINY, 1e-4, { pretransposeWeights: true }));
    cases.push({ ...bertCase("bert-tiny head, other inputs (seed 7)", TINY, 1e-4), seed: 7 });
    // Padding: the last 40 positions masked out, and a second segment of token type 1.
    const padded = bertCase(
      "bert-tiny no head, padded (mask 0s, token type 1s)",
      { ...TINY, head: false },
      1e-4,
    );
    const [ids, types, mask] = seededInputs(padded.module.funcs[0], 3);
    for (let i = 50; i < TINY.seq; i++) types.data[i] = 1;
    for (let i = TINY.seq - 40; i < TINY.seq; i++) mask.data[i] = 0;
    cases.push({ ...padded, inputs: [ids, types, mask] });
    await checkOracle(cases);
  },
});

Deno.test({
  name: "oracle: a model loaded from its files (as the CLI does) matches onnxruntime",
  ignore: !CAN_ORT,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sparrow-oracle-" });
    try {
      const path = join(dir, "tiny.sir");
      await writeSyntheticBert({ ...TINY, seq: 32, layers: 1 }, path);
      const { module, diagnostics } = await loadModule(path);
      assert.deepEqual(diagnostics, []);
      await checkOracle([{
        label: "bert-tiny (1 layer, S=32) from disk",
        module: module!,
        weights: await loadWeights(module!, path),
        tol: 1e-4,
      }]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "oracle: a pruned bert-tiny with bsr_dense weights (densified in ONNX) matches onnxruntime",
  ignore: !CAN_ORT,
  async fn() {
    const fusedTiny = prunedBertTiny(TINY);
    const base = prunedBertTiny(TINY);
    await checkOracle([
      { label: "pruned bert-tiny (80% zero blocks)", ...base, tol: 1e-4 },
      { label: "pruned bert-tiny no head", ...prunedBertTiny({ ...TINY, head: false }), tol: 1e-4 },
      {
        label: "pruned bert-tiny, pre-transposed",
        ...base,
        tol: 1e-4,
        options: { pretransposeWeights: true },
      },
      {
        label: "pruned bert-tiny, fused",
        module: fused(fusedTiny.module, fusedTiny.weights),
        weights: fusedTiny.weights,
        tol: 1e-4,
      },
    ]);
  },
});

Deno.test({
  name: "oracle: BERT-base at S=128 matches onnxruntime within 1e-3",
  ignore: !CAN_ORT,
  async fn() {
    // The logits, and the last hidden state too (values of order 1, where differences show).
    const c = bertCase(
      "bert-base head, erf, S=128: logits and last hidden state",
      bertConfig("bert-base"),
      1e-3,
    );
    const f = c.module.funcs[0];
    const hidden = f.body.find((op) => op.result.name === "l11.ln2")!.result;
    f.returns.push(hidden);
    f.resultTypes.push(hidden.type);
    await checkOracle([c]);
  },
});

Deno.test({
  name:
    "oracle: the backward functions grad builds for bert-tiny (dense, and pruned to BSR) match onnxruntime",
  ignore: !CAN_ORT,
  async fn() {
    const config = bertConfig("bert-tiny", { seq: 8, vocab: 40, maxPositions: 16 });
    const inputs = [
      Tensor.from([1, 8], "i64", [1, 7, 12, 3, 30, 2, 0, 0]),
      Tensor.from([1, 8], "i64", [0, 0, 0, 0, 1, 1, 1, 1]),
      Tensor.from([1, 8], "i64", [1, 1, 1, 1, 1, 1, 0, 0]),
      Tensor.from([1], "i64", [1]),
    ];
    const ops = new Set<string>();
    const backward = (label: string, passes: string, act: "erf" | "tanh"): OracleCase => {
      const c = { ...config, act };
      const r = runPipeline(
        buildBertModule(c, "w.safetensors"),
        parsePipeline(passes, createPassRegistry()),
        {
          weights: bertWeights(c),
          log: () => {},
        },
      );
      const info = grad(r.module, withCrossEntropyLoss(r.module, "main"));
      r.module.func(info.func)!.body.forEach((op) => ops.add(op.name));
      const what = `${label}: loss and ${info.grads.length} gradients`;
      return {
        label: what,
        module: r.module,
        weights: r.weights,
        inputs,
        tol: 1e-5,
        options: { func: info.func },
      };
    };
    const cases = [
      backward("bert-tiny, erf", "", "erf"),
      backward("bert-tiny, tanh, fused", "fuse", "tanh"),
      backward("bert-tiny pruned to 4x4 BSR", "prune{sparsity=0.8 block=4x4},bsr-lower{block=4x4}", "erf"),
    ];
    const gradOps = ["cross_entropy", "cross_entropy_grad", "reduce_sum", "scatter_add", "slice_grad"];
    gradOps.push("softmax_grad", "layer_norm_grad", "gelu_grad", "bsr_dense_grad_x", "bsr_dense_grad_w");
    assert.deepEqual(gradOps.filter((n) => !ops.has(n)), [], "ops the backward functions should use");
    await checkOracle(cases);
  },
});

// ---------------------------------------------------------------------------------------------
// One op at a time

/** How to fill one parameter, by dtype; floats are seeded normals by default. */
type Fill = (rng: Random, i: number) => number;

/** A one-op (or few-op) module: parameters, weights (seeded), the body, and input fills. */
interface OpCase {
  readonly label: string;
  readonly params: readonly (readonly [string, TensorType])[];
  readonly weights?: readonly (readonly [string, TensorType])[];
  readonly body: (f: FuncBuilder, args: Value[], weights: Weight[]) => Value | Value[];
  readonly fills?: Readonly<Record<string, Fill>>;
  readonly tol?: number;
}

const ty = (shape: number[], dtype: DType = "f32"): TensorType => ({ shape, dtype });
const normal: Fill = (rng) => rng.normal();
const ints = (lo: number, hi: number): Fill => (rng) => lo + rng.int(hi - lo + 1);
const nonZero = (lo: number, hi: number): Fill => (rng) => {
  const v = lo + rng.int(hi - lo + 1);
  return v === 0 ? 1 : v;
};
const positive: Fill = (rng) => 0.1 + Math.abs(rng.normal()) * 2;

/** Builds the module and the oracle case of an op case. */
function opModule(c: OpCase, seed: number): OracleCase {
  const b = new ModuleBuilder("op");
  const ws = (c.weights ?? []).map(([name, t]) => b.weight(name, t));
  const f = b.func("main", c.params);
  const out = c.body(f, f.params, ws);
  f.ret(...(Array.isArray(out) ? out : [out]));
  const m = b.module;
  const rng = new Random(seed);
  const inputs = c.params.map(([name, t]) => {
    const fill = c.fills?.[name] ?? (isFloat(t.dtype) ? normal : ints(0, 1));
    const x = Tensor.zeros(t);
    for (let i = 0; i < x.data.length; i++) x.data[i] = fill(rng, i);
    return x;
  });
  const exact = m.funcs[0].returns.every((v) => !isFloat(v.type.dtype));
  const tol = c.tol ?? (exact ? 0 : 1e-5);
  return { label: c.label, module: m, weights: seededWeights(m, seed + 1), inputs, tol };
}

/** A random shape of rank 1..4 with dims 1..5. */
function randomShape(rng: Random): number[] {
  return Array.from({ length: 1 + rng.int(4) }, () => 1 + rng.int(5));
}

/** Two shapes that broadcast to `out`: leading dims dropped and dims set to 1 at random. */
function broadcastPair(rng: Random, out: number[]): [number[], number[]] {
  const side = () => out.slice(rng.int(out.length)).map((d) => rng.next() < 0.3 ? 1 : d);
  return rng.next() < 0.5 ? [out, side()] : [side(), out];
}

const binaryCases = (): OpCase[] => {
  const rng = new Random(42);
  const cases: OpCase[] = [];
  for (const op of ["add", "sub", "mul", "div", "pow"]) {
    for (let k = 0; k < 3; k++) {
      const [a, b] = broadcastPair(rng, randomShape(rng));
      const fills: Record<string, Fill> = op === "pow"
        ? { a: positive }
        : op === "div"
        ? { b: positive }
        : {};
      cases.push({
        label: `${op} f32 [${a}] [${b}]`,
        params: [["a", ty(a)], ["b", ty(b)]],
        body: (f, [x, y]) => f.op(op, [x, y]),
        fills,
      });
    }
  }
  const intFills = {
    i64: [ints(-1000, 1000), nonZero(-40, 40)],
    i32: [ints(-1000, 1000), nonZero(-40, 40)],
    i8: [ints(-120, 120), nonZero(-9, 9)],
    u8: [ints(0, 255), nonZero(1, 20)],
  } as const;
  for (const [dtype, [big, small]] of Object.entries(intFills)) {
    for (const op of ["add", "sub", "mul", "div"]) {
      cases.push({
        label: `${op} ${dtype} [2,3,4] [3,1] (wraps, truncates)`,
        params: [["a", ty([2, 3, 4], dtype as DType)], ["b", ty([3, 1], dtype as DType)]],
        body: (f, [x, y]) => f.op(op, [x, y]),
        fills: { a: big, b: small },
      });
    }
  }
  for (const dtype of ["i64", "i32"] as const) {
    cases.push({
      label: `pow ${dtype} [5] [1]`,
      params: [["a", ty([5], dtype)], ["b", ty([1], dtype)]],
      body: (f, [x, y]) => f.op("pow", [x, y]),
      fills: { a: ints(-6, 6), b: ints(0, 5) },
    });
  }
  for (const op of ["add", "mul", "div"]) {
    cases.push({
      label: `${op} f64 [3,4] [4]`,
      params: [["a", ty([3, 4], "f64")], ["b", ty([4], "f64")]],
      body: (f, [x, y]) => f.op(op, [x, y]),
      fills: { b: positive },
    });
  }
  return cases;
};

/** x: f32 param cast to f16 (or bf16), `body`, and cast back to f32: ORT-node takes no f16 inputs. */
function viaHalf(
  dtype: "f16" | "bf16",
  label: string,
  shapes: number[][],
  body: (f: FuncBuilder, xs: Value[]) => Value,
  fills?: Record<string, Fill>,
): OpCase {
  return {
    label,
    params: shapes.map((s, i) => [`x${i}`, ty(s)] as const),
    body(f, xs) {
      const halves = xs.map((x) => f.op("cast", [x], {}, { type: ty([...x.type.shape], dtype) }));
      const y = body(f, halves);
      return f.op("cast", [y], {}, { type: ty([...y.type.shape], "f32") });
    },
    fills,
    tol: dtype === "f16" ? 4e-3 : 3e-2,
  };
}

const unaryCases = (): OpCase[] => [
  ...["tanh", "erf", "sqrt"].map((op): OpCase => ({
    label: `${op} f32 [2,3,5]`,
    params: [["x", ty([2, 3, 5])]],
    body: (f, [x]) => f.op(op, [x]),
    fills: op === "sqrt" ? { x: positive } : undefined,
  })),
  ...["tanh", "sqrt"].map((op): OpCase => ({
    label: `${op} f64 [7]`,
    params: [["x", ty([7], "f64")]],
    body: (f, [x]) => f.op(op, [x]),
    fills: op === "sqrt" ? { x: positive } : undefined,
  })),
  ...["erf", "tanh"].map((approximation): OpCase => ({
    label: `gelu ${approximation} f32 [4,6]`,
    params: [["x", ty([4, 6])]],
    body: (f, [x]) => f.op("gelu", [x], { approximation }),
    fills: { x: (rng) => rng.normal(0, 3) },
  })),
  viaHalf("f16", "erf, tanh, sqrt, gelu f16 (via casts) [3,8]", [[3, 8]], (f, [x]) => {
    const s = f.op("sqrt", [f.op("mul", [x, x])]);
    return f.op("add", [f.op("gelu", [f.op("tanh", [f.op("erf", [x])])]), s]);
  }),
];

const matmulCases = (): OpCase[] => [
  {
    label: "dense f32 x[2,3,5] w[5,4] + bias",
    params: [["x", ty([2, 3, 5])]],
    weights: [["w", ty([5, 4])], ["b", ty([4])]],
    body: (f, [x], [w, b]) => f.op("dense", [x, w, b]),
  },
  {
    label: "dense f32 transpose_b, gelu (erf) activation",
    params: [["x", ty([1, 6, 8])]],
    weights: [["w", ty([5, 8])], ["b", ty([5])]],
    body: (f, [x], [w, b]) => f.op("dense", [x, w, b], { transpose_b: true, activation: "gelu" }),
  },
  {
    label: "dense f32 transpose_a, gelu_tanh, no bias",
    params: [["x", ty([2, 8, 3])]],
    weights: [["w", ty([8, 5])]],
    body: (f, [x], [w]) => f.op("dense", [x, w], { transpose_a: true, activation: "gelu_tanh" }),
  },
  {
    label: "dense f32 rank-1 x, tanh activation",
    params: [["x", ty([6])]],
    weights: [["w", ty([6, 3])], ["b", ty([3])]],
    body: (f, [x], [w, b]) => f.op("dense", [x, w, b], { activation: "tanh" }),
  },
  {
    label: "dense f32 w a parameter, transpose_b",
    params: [["x", ty([3, 4])], ["w", ty([2, 4])]],
    body: (f, [x, w]) => f.op("dense", [x, w], { transpose_b: true }),
  },
  {
    label: "dense f64 transpose_b + bias",
    params: [["x", ty([3, 4], "f64")]],
    weights: [["w", ty([2, 4], "f64")], ["b", ty([2], "f64")]],
    body: (f, [x], [w, b]) => f.op("dense", [x, w, b], { transpose_b: true }),
  },
  {
    label: "bsr_dense f32 1x4 blocks, bias, gelu",
    params: [["x", ty([2, 3, 12])]],
    weights: [["w", { shape: [6, 12], dtype: "f32", sparse: { kind: "bsr", block: [1, 4], nnzBlocks: 7 } }], [
      "b",
      ty([6]),
    ]],
    body: (f, [x], [w, b]) => f.op("bsr_dense", [x, w, b], { activation: "gelu" }),
  },
  {
    label: "bsr_dense f32 3x5 blocks, padded edges, no bias",
    params: [["x", ty([4, 7])]],
    weights: [["w", { shape: [5, 7], dtype: "f32", sparse: { kind: "bsr", block: [3, 5], nnzBlocks: 3 } }]],
    body: (f, [x], [w]) => f.op("bsr_dense", [x, w]),
  },
  {
    label: "qdense dynamic scale, bias, gelu",
    params: [["x", ty([2, 3, 12])]],
    weights: [["wq", ty([6, 12], "i8")], ["s", ty([6])], ["b", ty([6])]],
    body: (f, [x], [wq, s, b]) => f.op("qdense", [x, wq, s, b], { activation: "gelu" }),
  },
  {
    label: "qdense static act_scale, act_max 127, no bias",
    params: [["x", ty([4, 7])]],
    weights: [["wq", ty([5, 7], "i8")], ["s", ty([5])]],
    body: (f, [x], [wq, s]) => f.op("qdense", [x, wq, s], { act_max: 127, act_scale: 0.02 }),
  },
  {
    label: "batch_matmul f32 [2,1,3,4]·[5,4,6] (broadcast)",
    params: [["a", ty([2, 1, 3, 4])], ["b", ty([5, 4, 6])]],
    body: (f, [a, b]) => f.op("batch_matmul", [a, b]),
  },
  {
    label: "batch_matmul f32 transpose_a, transpose_b",
    params: [["a", ty([3, 4, 2])], ["b", ty([1, 5, 4])]],
    body: (f, [a, b]) => f.op("batch_matmul", [a, b], { transpose_a: true, transpose_b: true }),
  },
  {
    label: "batch_matmul f64 [2,3,4]·[2,4,2]",
    params: [["a", ty([2, 3, 4], "f64")], ["b", ty([2, 4, 2], "f64")]],
    body: (f, [a, b]) => f.op("batch_matmul", [a, b]),
  },
  viaHalf(
    "f16",
    "batch_matmul f16 (via casts)",
    [[2, 3, 8], [2, 8, 4]],
    (f, [x, y]) => f.op("batch_matmul", [x, y]),
  ),
  viaHalf(
    "f16",
    "dense f16 transpose_b, gelu_tanh (via casts)",
    [[2, 3, 8], [5, 8], [5]],
    (f, [x, w, b]) => f.op("dense", [x, w, b], { transpose_b: true, activation: "gelu_tanh" }),
  ),
];

const shapeCases = (): OpCase[] => [
  {
    label: "reshape f32 [2,3,4] -> [4,6]",
    params: [["x", ty([2, 3, 4])]],
    body: (f, [x]) => f.op("reshape", [x], {}, { type: ty([4, 6]) }),
  },
  {
    label: "reshape i64 [1,1] -> scalar",
    params: [["x", ty([1, 1], "i64")]],
    body: (f, [x]) => f.op("reshape", [x], {}, { type: ty([], "i64") }),
    fills: { x: ints(-5, 5) },
  },
  {
    label: "reshape f32 [0,3] -> [3,0] (empty)",
    params: [["x", ty([0, 3])]],
    body: (f, [x]) => f.op("reshape", [x], {}, { type: ty([3, 0]) }),
  },
  {
    label: "transpose f32 [2,3,4] perm [2,0,1]",
    params: [["x", ty([2, 3, 4])]],
    body: (f, [x]) => f.op("transpose", [x], { perm: [2, 0, 1] }),
  },
  {
    label: "transpose bool [2,3] perm [1,0]",
    params: [["x", ty([2, 3], "bool")]],
    body: (f, [x]) => f.op("transpose", [x], { perm: [1, 0] }),
  },
  {
    label: "slice f32 negative bounds, steps, axes",
    params: [["x", ty([4, 5, 6])]],
    body: (f, [x]) => f.op("slice", [x], { starts: [-4, 1], ends: [100, -1], axes: [2, 0], steps: [2, 1] }),
  },
  {
    label: "slice i32 default axes and steps",
    params: [["x", ty([3, 4], "i32")]],
    body: (f, [x]) => f.op("slice", [x], { starts: [1, 0], ends: [3, 3] }),
    fills: { x: ints(-9, 9) },
  },
  {
    label: "concat f32 3 inputs axis 1",
    params: [["a", ty([2, 1, 3])], ["b", ty([2, 4, 3])], ["c", ty([2, 2, 3])]],
    body: (f, xs) => f.op("concat", xs, { axis: 1 }),
  },
  {
    label: "concat i64 axis -1",
    params: [["a", ty([2, 2], "i64")], ["b", ty([2, 3], "i64")]],
    body: (f, xs) => f.op("concat", xs, { axis: -1 }),
    fills: { a: ints(-9, 9), b: ints(-9, 9) },
  },
  {
    label: "gather f32 table[10,4] indices i64 [2,3] axis 0",
    params: [["ids", ty([2, 3], "i64")]],
    weights: [["table", ty([10, 4])]],
    body: (f, [ids], [table]) => f.op("gather", [table, ids]),
    fills: { ids: ints(-10, 9) },
  },
  {
    label: "gather f32 table[3,6,2] indices i32 [4] axis 1",
    params: [["ids", ty([4], "i32")]],
    weights: [["table", ty([3, 6, 2])]],
    body: (f, [ids], [table]) => f.op("gather", [table, ids], { axis: 1 }),
    fills: { ids: ints(-6, 5) },
  },
  {
    label: "gather i64 table (weight) by i64 indices",
    params: [["ids", ty([5], "i64")]],
    weights: [["table", ty([4, 2], "i64")]],
    body: (f, [ids], [table]) => f.op("gather", [table, ids]),
    fills: { ids: ints(0, 3) },
  },
];

const normCases = (): OpCase[] => [
  {
    label: "softmax f32 axis -1 with mask [1,1,5]",
    params: [["x", ty([2, 3, 5])], ["mask", ty([1, 1, 5])]],
    body: (f, [x, m]) => f.op("softmax", [x, m]),
    fills: { mask: (rng) => rng.next() < 0.3 ? -10000 : 0 },
  },
  {
    label: "softmax f32 axis 1, no mask",
    params: [["x", ty([2, 4, 3])]],
    body: (f, [x]) => f.op("softmax", [x], { axis: 1 }),
  },
  {
    label: "softmax f64 axis 0",
    params: [["x", ty([3, 2], "f64")]],
    body: (f, [x]) => f.op("softmax", [x], { axis: 0 }),
  },
  {
    label: "layer_norm f32 axis -1, beta, eps 1e-12",
    params: [["x", ty([2, 3, 8])]],
    weights: [["g", ty([8])], ["b", ty([8])]],
    body: (f, [x], [g, b]) => f.op("layer_norm", [x, g, b]),
  },
  {
    label: "layer_norm f32 axis 1 (two dims), no beta, eps 1e-5",
    params: [["x", ty([2, 3, 4])]],
    weights: [["g", ty([3, 4])]],
    body: (f, [x], [g]) => f.op("layer_norm", [x, g], { axis: 1, epsilon: 1e-5 }),
  },
  {
    label: "layer_norm f64",
    params: [["x", ty([3, 5], "f64")]],
    weights: [["g", ty([5], "f64")], ["b", ty([5], "f64")]],
    body: (f, [x], [g, b]) => f.op("layer_norm", [x, g, b], { epsilon: 1e-6 }),
  },
  {
    label: "add_layer_norm f32",
    params: [["x", ty([2, 6])], ["r", ty([2, 6])]],
    weights: [["g", ty([6])], ["b", ty([6])]],
    body: (f, [x, r], [g, b]) => f.op("add_layer_norm", [x, r, g, b]),
  },
  viaHalf("f16", "softmax + layer_norm f16 (via casts)", [[2, 8], [8]], (f, [x, g]) => {
    return f.op("layer_norm", [f.op("softmax", [x]), g], { epsilon: 1e-5 });
  }),
  viaHalf("bf16", "layer_norm bf16 (via casts)", [[2, 8], [8]], (f, [x, g]) => {
    return f.op("layer_norm", [f.op("transpose", [x], { perm: [0, 1] }), g], { epsilon: 1e-5 });
  }),
  {
    label: "reduce_mean f32 axes [0,2] keepdims",
    params: [["x", ty([3, 4, 5])]],
    body: (f, [x]) => f.op("reduce_mean", [x], { axes: [0, 2] }),
  },
  {
    label: "reduce_mean f32 axes [-1] no keepdims",
    params: [["x", ty([3, 4])]],
    body: (f, [x]) => f.op("reduce_mean", [x], { axes: [-1], keepdims: false }),
  },
];

const miscCases = (): OpCase[] => [
  {
    label: "constant f32 literal, added to x",
    params: [["x", ty([2, 2])]],
    body: (f, [x]) => {
      const c = f.op("constant", [], { value: { shape: [2, 2], values: [1, -2, 3.5, 0.25], float: true } }, {
        type: ty([2, 2]),
      });
      return f.op("add", [x, c]);
    },
  },
  {
    label: "constant splats returned directly (i64, bool, f32)",
    params: [["x", ty([1])]],
    body: (f) => [
      f.op("constant", [], { value: { shape: [], values: [7], float: false } }, { type: ty([2, 3], "i64") }),
      f.op("constant", [], { value: { shape: [], values: [1], float: false } }, { type: ty([2], "bool") }),
      f.op("constant", [], { value: { shape: [], values: [0.5], float: true } }, { type: ty([]) }),
    ],
  },
  {
    label: "a parameter returned twice, and a weight returned",
    params: [["x", ty([3])]],
    weights: [["w", ty([2])]],
    body: (_f, [x], [w]) => [x, x, w],
  },
  ...([
    ["i32", ty([3, 4], "i32")],
    ["i64", ty([3, 4], "i64")],
    ["bool", ty([3, 4], "bool")],
    [
      "u8",
      ty([3, 4], "u8"),
    ],
    ["f64", ty([3, 4], "f64")],
    ["f16", ty([3, 4], "f16")],
  ] as const).map(([name, t]): OpCase => ({
    label: `cast f32 -> ${name}${name === "f16" ? " -> f32" : ""}`,
    params: [["x", ty([3, 4])]],
    body: (f, [x]) => {
      const y = f.op("cast", [x], {}, { type: t });
      return name === "f16" ? f.op("cast", [y], {}, { type: ty([3, 4]) }) : y;
    },
    fills: {
      x: name === "u8"
        ? (rng) => rng.next() * 200
        : name === "bool"
        ? (rng, i) => i % 3 === 0 ? 0 : rng.normal() * 5
        : (rng) => rng.normal() * 50,
    },
  })),
  {
    label: "cast i64 -> f32, bool -> f32, f32 -> bf16 -> f32",
    params: [["a", ty([4], "i64")], ["b", ty([4], "bool")], ["c", ty([4])]],
    body: (f, [a, b, c]) => [
      f.op("cast", [a], {}, { type: ty([4]) }),
      f.op("cast", [b], {}, { type: ty([4]) }),
      f.op("cast", [f.op("cast", [c], {}, { type: ty([4], "bf16") })], {}, { type: ty([4]) }),
    ],
    fills: { a: ints(-100000, 100000) },
  },
  {
    label: "where bool cond [3,1], f32 x [1,4], y [3,4]",
    params: [["c", ty([3, 1], "bool")], ["x", ty([1, 4])], ["y", ty([3, 4])]],
    body: (f, [c, x, y]) => f.op("where", [c, x, y]),
  },
  {
    label: "where u8 cond, i64 x, y scalar",
    params: [["c", ty([2, 3], "u8")], ["x", ty([2, 3], "i64")], ["y", ty([], "i64")]],
    body: (f, [c, x, y]) => f.op("where", [c, x, y]),
    fills: { c: ints(0, 3), x: ints(-9, 9), y: ints(-9, 9) },
  },
];

const bsrType = (shape: number[], block: [number, number], nnzBlocks: number): TensorType => ({
  shape,
  dtype: "f32",
  sparse: { kind: "bsr", block, nnzBlocks },
});

/** The ops autodiff adds (docs/autodiff.md) and qgather. */
const gradCases = (): OpCase[] => [
  ...(["f32", "f64"] as const).flatMap((d): OpCase[] => [
    { label: `exp ${d} [2,3,4]`, params: [["x", ty([2, 3, 4], d)]], body: (f, [x]) => f.op("exp", [x]) },
    {
      label: `log ${d} [5,3] (positive)`,
      params: [["x", ty([5, 3], d)]],
      body: (f, [x]) => f.op("log", [x]),
      fills: { x: positive },
    },
  ]),
  {
    label: "reduce_sum f32 axes [0,2] keepdims",
    params: [["x", ty([3, 4, 5])]],
    body: (f, [x]) => f.op("reduce_sum", [x], { axes: [0, 2] }),
  },
  {
    label: "reduce_sum f32 axes [-1] no keepdims",
    params: [["x", ty([3, 4])]],
    body: (f, [x]) => f.op("reduce_sum", [x], { axes: [-1], keepdims: false }),
  },
  {
    label: "reduce_sum f64 axes [1, 0] no keepdims",
    params: [["x", ty([3, 4, 2], "f64")]],
    body: (f, [x]) => f.op("reduce_sum", [x], { axes: [1, 0], keepdims: false }),
  },
  ...([["f32", "i64", 4, 5], ["f32", "i32", 3, 2], ["f64", "i64", 2, 7]] as const).flatMap((
    [d, li, B, C],
  ): OpCase[] => [
    {
      label: `cross_entropy ${d} [${B},${C}] labels ${li}`,
      params: [["logits", ty([B, C], d)], ["labels", ty([B], li)]],
      body: (f, [x, l]) => f.op("cross_entropy", [x, l]),
      fills: { logits: (rng) => rng.normal(0, 3), labels: ints(0, C - 1) },
    },
    {
      label: `cross_entropy_grad ${d} [${B},${C}] labels ${li}`,
      params: [["dy", ty([], d)], ["logits", ty([B, C], d)], ["labels", ty([B], li)]],
      body: (f, [dy, x, l]) => f.op("cross_entropy_grad", [dy, x, l]),
      fills: { logits: (rng) => rng.normal(0, 3), labels: ints(0, C - 1) },
    },
  ]),
  {
    label: "scatter_add f32 [6,4] axis 0, i64 indices [2,3] (negative, repeated)",
    params: [["u", ty([2, 3, 4])], ["ids", ty([2, 3], "i64")]],
    body: (f, [u, ids]) => f.op("scatter_add", [u, ids], {}, { type: ty([6, 4]) }),
    // -1 twice, and -6 and 0 the same row: repeated indices add up.
    fills: { ids: (_rng, i) => [-1, 5, 2, -1, 0, -6][i] },
  },
  {
    label: "scatter_add f32 [3,5,2] axis 1, i32 indices [4]",
    params: [["u", ty([3, 4, 2])], ["ids", ty([4], "i32")]],
    body: (f, [u, ids]) => f.op("scatter_add", [u, ids], { axis: 1 }, { type: ty([3, 5, 2]) }),
    fills: { ids: ints(-5, 4) },
  },
  {
    label: "scatter_add f64 [2,4] axis -1, i64 indices [2,3]",
    params: [["u", ty([2, 2, 3], "f64")], ["ids", ty([2, 3], "i64")]],
    body: (f, [u, ids]) => f.op("scatter_add", [u, ids], { axis: -1 }, { type: ty([2, 4], "f64") }),
    fills: { ids: ints(-4, 3) },
  },
  {
    label: "slice_grad f32 unit steps (Pad) [4,5,6]",
    params: [["dy", ty([2, 5, 4])]],
    body: (f, [dy]) =>
      f.op("slice_grad", [dy], { starts: [1, -4], ends: [3, 100], axes: [0, 2] }, { type: ty([4, 5, 6]) }),
  },
  {
    label: "slice_grad f32 strided (ScatterND) [4,5,6]",
    params: [["dy", ty([2, 5, 2])]],
    body: (f, [dy]) =>
      f.op("slice_grad", [dy], { starts: [-4, 1], ends: [100, -1], axes: [2, 0], steps: [2, 1] }, {
        type: ty([4, 5, 6]),
      }),
  },
  {
    label: "slice_grad f64 [CLS] row [1,6,3]",
    params: [["dy", ty([1, 1, 3], "f64")]],
    body: (f, [dy]) =>
      f.op("slice_grad", [dy], { starts: [0], ends: [1], axes: [1] }, { type: ty([1, 6, 3], "f64") }),
  },
  {
    label: "softmax_grad f32 axis -1 [2,3,5]",
    params: [["dy", ty([2, 3, 5])], ["y", ty([2, 3, 5])]],
    body: (f, [dy, y]) => f.op("softmax_grad", [dy, y]),
  },
  {
    label: "softmax_grad f64 axis 1 [2,4,3]",
    params: [["dy", ty([2, 4, 3], "f64")], ["y", ty([2, 4, 3], "f64")]],
    body: (f, [dy, y]) => f.op("softmax_grad", [dy, y], { axis: 1 }),
  },
  {
    label: "layer_norm_grad f32 axis -1, eps 1e-12",
    params: [["dy", ty([2, 3, 8])], ["x", ty([2, 3, 8])]],
    weights: [["g", ty([8])]],
    body: (f, [dy, x], [g]) => f.op("layer_norm_grad", [dy, x, g]),
  },
  {
    label: "layer_norm_grad f32 axis 1 (two dims), eps 1e-5",
    params: [["dy", ty([2, 3, 4])], ["x", ty([2, 3, 4])]],
    weights: [["g", ty([3, 4])]],
    body: (f, [dy, x], [g]) => f.op("layer_norm_grad", [dy, x, g], { axis: 1, epsilon: 1e-5 }),
  },
  {
    label: "layer_norm_grad f64",
    params: [["dy", ty([3, 5], "f64")], ["x", ty([3, 5], "f64")]],
    weights: [["g", ty([5], "f64")]],
    body: (f, [dy, x], [g]) => f.op("layer_norm_grad", [dy, x, g], { epsilon: 1e-6 }),
  },
  ...([["erf", "f32"], ["tanh", "f32"], ["tanh", "f64"]] as const).map(([approximation, d]): OpCase => ({
    label: `gelu_grad ${approximation} ${d} [4,6]`,
    params: [["dy", ty([4, 6], d)], ["x", ty([4, 6], d)]],
    body: (f, [dy, x]) => f.op("gelu_grad", [dy, x], { approximation }),
    fills: { x: (rng) => rng.normal(0, 3) },
  })),
  {
    label: "bsr_dense_grad_x f32 1x4 blocks",
    params: [["dy", ty([2, 3, 6])]],
    weights: [["w", bsrType([6, 12], [1, 4], 7)]],
    body: (f, [dy], [w]) => f.op("bsr_dense_grad_x", [dy, w]),
  },
  {
    label: "bsr_dense_grad_x f32 3x5 blocks, padded edges",
    params: [["dy", ty([4, 5])]],
    weights: [["w", bsrType([5, 7], [3, 5], 3)]],
    body: (f, [dy], [w]) => f.op("bsr_dense_grad_x", [dy, w]),
  },
  {
    label: "bsr_dense_grad_w f32 1x4 blocks",
    params: [["dy", ty([2, 3, 6])], ["x", ty([2, 3, 12])]],
    weights: [["w", bsrType([6, 12], [1, 4], 7)]],
    body: (f, [dy, x], [w]) => f.op("bsr_dense_grad_w", [dy, x, w]),
  },
  {
    label: "bsr_dense_grad_w f32 3x5 blocks, padded edges (0 there)",
    params: [["dy", ty([4, 5])], ["x", ty([4, 7])]],
    weights: [["w", bsrType([5, 7], [3, 5], 3)]],
    body: (f, [dy, x], [w]) => f.op("bsr_dense_grad_w", [dy, x, w]),
  },
  {
    label: "bsr_dense_grad_x and _w of one weight, with bsr_dense",
    params: [["x", ty([3, 12])], ["dy", ty([3, 6])]],
    weights: [["w", bsrType([6, 12], [2, 4], 4)]],
    body: (f, [x, dy], [w]) => [
      f.op("bsr_dense", [x, w]),
      f.op("bsr_dense_grad_x", [dy, w]),
      f.op("bsr_dense_grad_w", [dy, x, w]),
    ],
  },
  {
    label: "qgather i8 table [10,4], i64 ids [2,3] (negative)",
    params: [["table", ty([10, 4], "i8")], ["ids", ty([2, 3], "i64")]],
    weights: [["scale", ty([10])]],
    body: (f, [table, ids], [scale]) => f.op("qgather", [table, scale, ids]),
    fills: { table: ints(-127, 127), ids: (rng, i) => i % 2 === 0 ? rng.int(10) : -1 - rng.int(10) },
    tol: 0,
  },
  {
    label: "qgather i8 table [5,3], i32 ids [4] (negative)",
    params: [["table", ty([5, 3], "i8")], ["ids", ty([4], "i32")]],
    weights: [["scale", ty([5])]],
    body: (f, [table, ids], [scale]) => f.op("qgather", [table, scale, ids]),
    fills: { table: ints(-128, 127), ids: (_rng, i) => [4, -5, -1, 0][i] },
    tol: 0,
  },
];

/** Every op case, checking that together they cover every IR op. */
function allOpCases(): OpCase[] {
  return [
    ...binaryCases(),
    ...unaryCases(),
    ...matmulCases(),
    ...shapeCases(),
    ...normCases(),
    ...miscCases(),
    ...gradCases(),
  ];
}

Deno.test({
  name: "oracle: every IR op, one at a time, matches onnxruntime",
  ignore: !CAN_ORT,
  async fn() {
    const cases = allOpCases().map((c, i) => opModule(c, 100 + i));
    const covered = new Set(cases.flatMap((c) => c.module.funcs[0].body.map((op) => op.name)));
    assert.deepEqual(
      builtinOps.map((d) => d.name).filter((n) => !covered.has(n)),
      [],
      "ops without an oracle case",
    );
    // Every ONNX op the exporters write has its onnxruntime kernel dtypes listed (so refused when wrong).
    const written = new Set(cases.flatMap((c) => {
      const { graph } = decodeModel(exportOnnx(c.module, c.weights, c.options).bytes);
      return graph!.node!.map((n) => n.opType!);
    }));
    assert.deepEqual(
      [...written].filter((t) => !Object.hasOwn(ORT_KERNEL_DTYPES, t)).sort(),
      [],
      "ONNX ops missing from ORT_KERNEL_DTYPES",
    );
    await checkOracle(cases);
  },
});
