/**
 * Issue 17, hostile model files: each case spawns the real task (`run`, `compile`, `export`,
 * `import`, `eval`) on a file built here, in a temporary folder, and checks with the
 * adversarial probe that it ends in a short error naming the file and the place, a non-zero exit,
 * within seconds, with bounded memory and nothing written. Classes: BSR index arrays of a
 * weights file, size bombs, deep structures, ONNX semantics (single writers, opset) and the
 * confinement of ONNX external data. In-memory checks of the parser's and the ONNX import's
 * limits are at the end; the interpreter's, the tokenizer's and safetensors' are in their own tests.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeModel, onnx, tensorProto, valueInfo } from "../frontend/onnx/proto.ts";
import { onnxToModule } from "../frontend/onnx/import.ts";
import { MAX_SHARDS, readCheckpoint } from "../frontend/hf_checkpoint.ts";
import { bertConfig, writeSyntheticBert } from "../frontend/synthetic_bert.ts";
import { MAX_IR_BYTES } from "../ir/load.ts";
import { parse } from "../ir/parse.ts";
import { Random } from "../ir/random.ts";
import { encodeSafetensors, writeSafetensors } from "../ir/safetensors.ts";
import { MAX_TENSOR_ELEMENTS } from "../ir/tensor.ts";
import { MAX_OPS } from "../ir/verifier.ts";
import { assertProbe, runProbe } from "./adversarial/probe.ts";
import { CAN_RUN } from "./compile_cli.ts";

/** Runs `body` with a fresh temporary folder, removed afterwards. */
async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-adversarial-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Probes `task` on `args`: the error, nothing left at `out`, within 20 s and `mib` MiB. */
const probe = (task: string, args: string[], error: RegExp, out: string[] = [], mib = 600) =>
  assertProbe({ task, args, error, noOutput: out, seconds: 20, mib });

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

// --- BSR index arrays --------------------------------------------------------------------------

/** A 4x4 weight in 2x2 blocks (a 2x2 grid), nnz 2, with the given index arrays, and its IR. */
async function bsrModel(dir: string, name: string, indices: number[], indptr: number[]): Promise<string> {
  const rng = new Random(17);
  await writeSafetensors(join(dir, `${name}.safetensors`), [
    {
      name: "w.data",
      dtype: "F32",
      shape: [2, 2, 2],
      data: Float32Array.from({ length: 8 }, () => rng.normal()),
    },
    { name: "w.indices", dtype: "I32", shape: [indices.length], data: Int32Array.from(indices) },
    { name: "w.indptr", dtype: "I32", shape: [indptr.length], data: Int32Array.from(indptr) },
  ]);
  const path = join(dir, `${name}.sir`);
  await Deno.writeTextFile(
    path,
    `module @m {
  weights "${name}.safetensors" {
    @w : tensor<4x4xf32, bsr<2x2, nnz = 2>>
  }

  func @main(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>) {
    %y = bsr_dense %x, @w : tensor<2x4xf32>
    return %y
  }
}
`,
  );
  return path;
}

const BAD_BSR: [string, number[], number[], string][] = [
  ["column", [0, 7], [0, 1, 2], "block column 7 at 1 is outside 0..1"],
  ["negative", [-3, 1], [0, 1, 2], "block column -3 at 0 is outside 0..1"],
  ["decreasing", [0, 1], [0, 3, 2], "indptr decreases at block row 1"],
  ["end", [0, 1], [0, 1, 1], "indptr must have 3 entries, start at 0 and end at nnz 2"],
];

Deno.test("hostile: malformed BSR index arrays are an error at the weight in run, compile and export", {
  ignore: !CAN_RUN,
}, () =>
  withDir(async (dir) => {
    assert.equal(
      (await runProbe({ task: "run", args: [await bsrModel(dir, "ok", [0, 1], [0, 1, 2])], error: /./ }))
        .code,
      0,
    );
    for (const [name, indices, indptr, why] of BAD_BSR) {
      const path = await bsrModel(dir, name, indices, indptr);
      const error = new RegExp(
        `${escape(path)}:3:5: error: weight '@w' in .*${name}\\.safetensors: bad bsr index: ${escape(why)}`,
      );
      const out = join(dir, `out-${name}`);
      await probe("run", [path], error, [], 400);
      await probe("compile", [path, "-o", out], error, [out], 600);
      await probe("compile", [path, "-o", `${out}.sir`], error, [`${out}.sir`], 600);
      await probe("export", [path, "-o", `${out}.onnx`], error, [`${out}.onnx`], 400);
    }
  }));

Deno.test("hostile: a weights file of a terabyte (sparse on disk) is refused from its header, not read", {
  ignore: !CAN_RUN,
}, () =>
  withDir(async (dir) => {
    const path = await bsrModel(dir, "sparse", [0, 1], [0, 1, 2]);
    await Deno.truncate(join(dir, "sparse.safetensors"), 2 ** 40);
    const error = new RegExp(
      `${escape(path)}:1:8: error: .*sparse\\.safetensors: \\d+ bytes follow the last tensor's data`,
    );
    await probe("run", [path], error, [], 400);
    const out = join(dir, "out");
    await probe("compile", [path, "-o", out], error, [out], 600);
  }));

// --- ONNX models -------------------------------------------------------------------------------

type Node = { opType: string; input: string[]; output: string[]; name: string; attribute?: object[] };

/** A model of one f32 [2] input `x` and output `y`, from nodes and initializers. */
function onnxModel(nodes: Node[], init: object[] = [], opset = 17): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: opset }],
    graph: {
      name: "g",
      node: nodes,
      input: [valueInfo("x", { shape: [2], dtype: "f32" })],
      output: [valueInfo("y", { shape: [2], dtype: "f32" })],
      initializer: init,
    },
  });
}

/** `y = x + w`, `w` an initializer stored in external data. */
function externalModel(location: string, extra: Record<string, string> = {}, dims = [2]): Uint8Array {
  const entries = [
    { key: "location", value: location },
    ...Object.entries(extra).map(([key, value]) => ({ key, value })),
  ];
  const w = {
    name: "w",
    dims,
    dataType: onnx.TensorProto.DataType.FLOAT,
    dataLocation: 1,
    externalData: entries,
  };
  return onnxModel([{ opType: "Add", input: ["x", "w"], output: ["y"], name: "add" }], [w]);
}

const varint = (n: number): number[] => {
  const b: number[] = [];
  for (; n > 127; n = Math.floor(n / 128)) b.push((n & 127) | 128);
  return [...b, n];
};
const field = (f: number, bytes: number[]) => [...varint((f << 3) | 2), ...varint(bytes.length), ...bytes];
const str = (f: number, s: string) => field(f, [...new TextEncoder().encode(s)]);

/**
 * A model whose graph holds an `If` whose then-branch holds an `If`... `depth` deep, written as
 * protobuf wire bytes directly (protobufjs encodes by recursion, as it decodes).
 */
function nestedModel(depth: number): Uint8Array {
  const chunks: number[][] = [];
  let size = field(1, [...str(1, "x"), ...str(2, "y"), ...str(4, "Relu")]).length;
  const prefixes: number[][] = [];
  for (let i = 0; i < depth; i++) {
    const attrHead = [...str(1, "then_branch"), ...varint(20 << 3), 5];
    const gHead = [...varint((6 << 3) | 2), ...varint(size)];
    const attrLen = attrHead.length + gHead.length + size;
    const nodeHead = [
      ...str(1, "c"),
      ...str(2, "y"),
      ...str(4, "If"),
      ...varint((5 << 3) | 2),
      ...varint(attrLen),
    ];
    const nodeLen = nodeHead.length + attrLen;
    const prefix = [...varint((1 << 3) | 2), ...varint(nodeLen), ...nodeHead, ...attrHead, ...gHead];
    prefixes.push(prefix);
    size += prefix.length;
  }
  chunks.push(...prefixes.reverse(), field(1, [...str(1, "x"), ...str(2, "y"), ...str(4, "Relu")]));
  const head = encodeModel({ irVersion: 8, opsetImport: [{ domain: "", version: 17 }] });
  const graph = chunks.flat();
  return Uint8Array.from([...head, ...varint((7 << 3) | 2), ...varint(graph.length), ...graph]);
}

Deno.test("hostile ONNX: two writers of a value, shadowed inputs and new opsets are refused", {
  ignore: !CAN_RUN,
}, () =>
  withDir(async (dir) => {
    const cases: [string, Uint8Array, RegExp][] = [
      [
        "dup",
        onnxModel([
          { opType: "Add", input: ["x", "x"], output: ["y"], name: "a" },
          { opType: "Mul", input: ["x", "x"], output: ["y"], name: "b" },
        ]),
        /node 'b' \(Mul\) writes 'y', which node 'a' \(Add\) writes too/,
      ],
      [
        "shadow",
        onnxModel([
          { opType: "Add", input: ["x", "x"], output: ["x"], name: "a" },
          { opType: "Mul", input: ["x", "x"], output: ["y"], name: "b" },
        ]),
        /node 'a' \(Add\) writes 'x', which is a graph input/,
      ],
      [
        "opset",
        onnxModel([{ opType: "Add", input: ["x", "x"], output: ["y"], name: "a" }], [], 99),
        /opset 99 of the default domain is newer than Sparrow knows \(opsets 7 to 20/,
      ],
    ];
    for (const [name, bytes, why] of cases) {
      const path = join(dir, `${name}.onnx`);
      await Deno.writeFile(path, bytes);
      const error = new RegExp(`${escape(path)}: ${why.source}`);
      const out = join(dir, `${name}-out`);
      await probe("import", [path, "-o", `${out}.sir`], error, [`${out}.sir`, `${out}.safetensors`], 400);
      await probe("compile", [path, "-o", out], error, [out], 600);
    }
  }));

Deno.test(
  "hostile ONNX: external data outside the model's folder, too long, or of absurd dims is refused before reading",
  {
    ignore: !CAN_RUN,
  },
  () =>
    withDir(async (dir) => {
      const model = join(dir, "model");
      await Deno.mkdir(model);
      await Deno.writeTextFile(join(dir, "secret.bin"), "12345678");
      await Deno.writeFile(join(model, "w.bin"), new Uint8Array(8));
      await Deno.symlink(join(dir, "secret.bin"), join(model, "link.bin"));
      const cases: [string, Uint8Array, string][] = [
        ["ok", externalModel("w.bin"), ""],
        [
          "absolute",
          externalModel(join(dir, "secret.bin")),
          "is an absolute path; it must lie inside the model's folder",
        ],
        [
          "dotdot",
          externalModel("../secret.bin"),
          "goes up with '..'; it must lie inside the model's folder",
        ],
        ["link", externalModel("link.bin"), "leads outside the model's folder"],
        [
          "length",
          externalModel("w.bin", { length: "1000000000000000" }),
          "has length 1000000000000000, but the tensor needs 8 bytes",
        ],
        [
          "offset",
          externalModel("w.bin", { offset: "4" }),
          "range \\[4, 12\\) is outside the file \\(8 bytes\\)",
        ],
      ];
      for (const [name, bytes, why] of cases) {
        const path = join(model, `${name}.onnx`);
        await Deno.writeFile(path, bytes);
        const out = join(dir, `${name}-out.sir`);
        if (name === "ok") {
          assert.equal((await runProbe({ task: "import", args: [path, "-o", out], error: /./ })).code, 0);
          continue;
        }
        const error = new RegExp(`${escape(path)}: initializer 'w': external data location ".*" ${why}`);
        await probe("import", [path, "-o", out], error, [out], 400);
      }
      const dims = join(model, "dims.onnx");
      await Deno.writeFile(dims, externalModel("w.bin", {}, [4294967296, 4294967296]));
      await probe(
        "import",
        [dims, "-o", join(dir, "dims.sir")],
        new RegExp(
          `${
            escape(dims)
          }: initializer 'w': dims \\[4294967296,4294967296\\] has \\d+ elements, over the limit of ${MAX_TENSOR_ELEMENTS}`,
        ),
        [join(dir, "dims.sir")],
        400,
      );
      // The compile sandbox reads only the model's folder; the confinement check comes first.
      const link = join(model, "link.onnx");
      await probe(
        "compile",
        [link, "-o", join(dir, "link-art")],
        new RegExp(
          `${escape(link)}: initializer 'w': external data location "link.bin" leads outside`,
        ),
        [join(dir, "link-art")],
        600,
      );
    }),
);

Deno.test(
  "hostile ONNX: subgraphs nested 17 or 100,000 deep are refused",
  { ignore: !CAN_RUN },
  () =>
    withDir(async (dir) => {
      for (
        const [depth, why] of [[17, "subgraph '' is nested 17 deep, more than 16"], [
          100_000,
          "not an ONNX model: its messages nest too deeply to decode",
        ]] as const
      ) {
        const path = join(dir, `nested${depth}.onnx`);
        await Deno.writeFile(path, nestedModel(depth));
        const out = join(dir, `nested${depth}.sir`);
        await probe("import", [path, "-o", out], new RegExp(`${escape(path)}: ${why}`), [out], 500);
      }
    }),
);

// --- IR files: long chains, deep literals, size bombs -------------------------------------------

/** An IR function of `n` chained adds. */
function chain(n: number): string {
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push(`    %a${i} = add ${i === 0 ? "%x" : `%a${i - 1}`}, %x : tensor<2xf32>`);
  }
  return `module @m {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n${
    lines.join("\n")
  }\n    return %a${n - 1}\n  }\n}\n`;
}

Deno.test("hostile IR: 200,000 ops, a literal nested 100,000 deep and huge splat constants end in an error", {
  ignore: !CAN_RUN,
}, () =>
  withDir(async (dir) => {
    const long = join(dir, "chain.sir");
    await Deno.writeTextFile(long, chain(200_000));
    const tooMany = new RegExp(
      `${escape(long)}:${MAX_OPS + 3}:5: error: the module has more than ${MAX_OPS} ops`,
    );
    await probe("run", [long], tooMany, [], 1024);
    await probe("compile", [long, "--passes", "canonicalize,cse,dce", "-o", join(dir, "c.sir")], tooMany, [
      join(dir, "c.sir"),
    ], 1536);
    await probe("export", [long, "-o", join(dir, "c.onnx")], tooMany, [join(dir, "c.onnx")], 1024);

    const deep = join(dir, "deep.sir");
    const literal = `${"[".repeat(100_000)}1${"]".repeat(100_000)}`;
    await Deno.writeTextFile(
      deep,
      `module @m attributes {a = ${literal}} {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    return %x\n  }\n}\n`,
    );
    await probe(
      "run",
      [deep],
      new RegExp(`${escape(deep)}:1:\\d+: error: lists nest too deeply \\(more than 64 levels\\)`),
      [],
      600,
    );

    // 20000x20000 = 4e8 elements: the verifier takes the type, the interpreter and codegen's folding do not.
    const splat = join(dir, "splat.sir");
    await Deno.writeTextFile(
      splat,
      `module @m {
  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {
    %c = constant {value = dense<1.0>} : tensor<20000x20000xf32>
    %d = add %c, %c : tensor<20000x20000xf32>
    %e = slice %d {starts = [0, 0], ends = [1, 2], axes = [0, 1]} : tensor<1x2xf32>
    %f = reshape %e : tensor<2xf32>
    %y = add %x, %f : tensor<2xf32>
    return %y
  }
}
`,
    );
    const huge = new RegExp(
      `${escape(splat)}:3:5: .*400000000 elements, over the limit of ${MAX_TENSOR_ELEMENTS}`,
    );
    await probe("compile", [splat, "-o", join(dir, "splat-art")], huge, [join(dir, "splat-art")], 600);
    // `run` refuses it before allocating, in time and memory: one line naming the place.
    await assertProbe({ task: "run", args: [splat], error: huge, seconds: 20, mib: 400, code: 1 });
  }));

Deno.test("hostile IR and ONNX paths: a FIFO or an IR file over 16 MiB is refused before reading", {
  ignore: !CAN_RUN,
}, () =>
  withDir(async (dir) => {
    const fifo = join(dir, "fifo.sir"), onnxFifo = join(dir, "fifo.onnx");
    for (const f of [fifo, onnxFifo]) {
      assert.equal((await new Deno.Command("mkfifo", { args: [f] }).output()).code, 0);
    }
    const special = new RegExp(
      `${escape(fifo)}:1:1: error: not a regular file \\(a folder, FIFO or device\\)`,
    );
    await probe("run", [fifo], special, [], 400);
    await probe("export", [fifo, "-o", join(dir, "f.onnx")], special, [join(dir, "f.onnx")], 400);
    await probe(
      "import",
      [onnxFifo, "-o", join(dir, "f.sir")],
      new RegExp(`${escape(onnxFifo)}: not a regular file`),
      [join(dir, "f.sir")],
      400,
    );
    // compile too: its launcher looks into the model (and the tokenizer beside it) before the job.
    await probe("compile", [fifo, "-o", join(dir, "f-art")], special, [join(dir, "f-art")], 400);
    await probe(
      "compile",
      [onnxFifo, "-o", join(dir, "o-art")],
      new RegExp(`${escape(onnxFifo)}: not a regular file`),
      [join(dir, "o-art")],
      400,
    );
    const beside = join(dir, "beside");
    await Deno.mkdir(beside);
    const model = join(beside, "m.sir");
    await Deno.writeTextFile(
      model,
      `module @m {\n  func @main(%x: tensor<2xf32>) -> (tensor<2xf32>) {\n    %y = add %x, %x : tensor<2xf32>\n    return %y\n  }\n}\n`,
    );
    assert.equal(
      (await new Deno.Command("mkfifo", { args: [join(beside, "tokenizer.json")] }).output()).code,
      0,
    );
    await probe(
      "compile",
      [model, "-o", join(dir, "t-art")],
      new RegExp(`${escape(join(beside, "tokenizer.json"))}: not a regular file`),
      [join(dir, "t-art")],
      400,
    );
    const big = join(dir, "big.sir");
    await Deno.writeTextFile(big, `// ${"x".repeat(MAX_IR_BYTES)}\nmodule @m {\n}\n`);
    await probe(
      "run",
      [big],
      new RegExp(
        `${escape(big)}:1:1: error: the file is \\d+ bytes, over the ${MAX_IR_BYTES}-byte limit`,
      ),
      [],
      400,
    );
  }));

// --- Hugging Face folders ----------------------------------------------------------------------

const CONFIG = {
  architectures: ["BertForSequenceClassification"],
  model_type: "bert",
  vocab_size: 64,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  max_position_embeddings: 32,
  type_vocab_size: 2,
};

Deno.test("hostile Hugging Face folders: absurd sizes and deep JSON are refused from config.json", {
  ignore: !CAN_RUN,
}, () =>
  withDir(async (dir) => {
    const cases: [string, string, string][] = [
      [
        "vocab",
        JSON.stringify({ ...CONFIG, vocab_size: 1e12 }),
        "vocab x hidden is 16000000000000 elements, over the IR's limit",
      ],
      [
        "hidden",
        JSON.stringify({ ...CONFIG, hidden_size: 1e9, num_attention_heads: 1 }),
        "vocab x hidden is 64000000000 elements",
      ],
      [
        "layers",
        JSON.stringify({ ...CONFIG, num_hidden_layers: 1e9 }),
        "num_hidden_layers 1000000000 is more than the 512 Sparrow takes",
      ],
      [
        "typevocab",
        JSON.stringify({ ...CONFIG, type_vocab_size: 1e12 }),
        "type_vocab_size x hidden_size is 16000000000000 elements",
      ],
      [
        "deep",
        `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
        "nests deeper than 64 levels at \\[0\\]\\[0\\]",
      ],
      [
        "deeparch",
        JSON.stringify({ ...CONFIG, architectures: [1] }).replace(
          "[1]",
          `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
        ),
        "nests deeper than 64 levels at architectures",
      ],
    ];
    for (const [name, config, why] of cases) {
      const folder = join(dir, name);
      await Deno.mkdir(folder);
      await Deno.writeTextFile(join(folder, "config.json"), config);
      await writeSafetensors(join(folder, "model.safetensors"), []);
      const error = new RegExp(`${escape(join(folder, "config.json"))}: ${why}`);
      const out = join(dir, `${name}.sir`);
      await probe("import", [folder, "-o", out], error, [out], 400);
      if (name === "layers" || name === "deep") {
        await probe(
          "compile",
          [folder, "-o", join(dir, `${name}-art`)],
          error,
          [join(dir, `${name}-art`)],
          600,
        );
      }
    }
    // A tokenizer.json nested 100,000 deep (eval of an IR file with --tokenizer).
    const tok = join(dir, "tok");
    await Deno.mkdir(tok);
    await Deno.writeTextFile(
      join(tok, "tokenizer.json"),
      `{"normalizer": ${'{"type": "Sequence", "normalizers": ['.repeat(100_000)}${"]}".repeat(100_000)}}`,
    );
    const ir = join(dir, "tiny.sir");
    await writeSyntheticBert(bertConfig("bert-tiny", { vocab: 64, maxPositions: 16, seq: 8 }), ir);
    const tsv = join(dir, "dev.tsv");
    await Deno.writeTextFile(tsv, "sentence\tlabel\na fine film .\t1\n");
    await probe(
      "eval",
      [ir, "--task", "sst2", "--data", tsv, "--tokenizer", tok],
      new RegExp(`${escape(join(tok, "tokenizer.json"))}: nests deeper than 64 levels at normalizer`),
      [],
      600,
    );
  }));

// --- Unit checks -------------------------------------------------------------------------------

Deno.test("parse: a module over MAX_OPS ops is refused at the first op past the limit, before building", () => {
  const r = parse(chain(MAX_OPS + 1), { file: "long.sir" });
  assert.equal(r.module, undefined);
  assert.deepEqual(r.diagnostics.map((d) => [d.loc.line, d.message]), [
    [MAX_OPS + 3, `the module has more than ${MAX_OPS} ops (the limit); op ${MAX_OPS + 1} is here`],
  ]);
});

Deno.test("onnx import: nesting, single writers and opsets are checked in memory too", () => {
  assert.throws(
    () => onnxToModule(nestedModel(17), { source: "n.onnx" }),
    /n\.onnx: subgraph '' is nested 17 deep/,
  );
  assert.throws(
    () => onnxToModule(onnxModel([{ opType: "Add", input: ["x", "x"], output: ["y"], name: "a" }], [], 21)),
    /model\.onnx: opset 21 of the default domain is newer than Sparrow knows/,
  );
  const big = {
    name: "w",
    dims: [65536, 65536],
    dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(8),
  };
  assert.throws(
    () => onnxToModule(onnxModel([{ opType: "Add", input: ["x", "w"], output: ["y"], name: "a" }], [big])),
    /initializer 'w': dims \[65536,65536\] has 4294967296 elements, over the limit/,
  );
  const shape = tensorProto("s", { shape: [2], dtype: "i64" }, [100_000, 100_000]);
  const fill = [{
    name: "value",
    type: onnx.AttributeProto.AttributeType.TENSOR,
    t: tensorProto("v", { shape: [1], dtype: "f32" }, [1]),
  }];
  assert.throws(
    () =>
      onnxToModule(
        onnxModel([
          { opType: "ConstantOfShape", input: ["s"], output: ["c"], name: "cos", attribute: fill },
          { opType: "Add", input: ["x", "c"], output: ["y"], name: "add" },
        ], [shape]),
        { source: "c.onnx" },
      ),
    /c\.onnx: node 'cos' \(ConstantOfShape\): a tensor has 10000000000 elements, over the limit of 268435456/,
  );
  const nodes = Array.from({ length: MAX_OPS + 1 }, (_, i) => ({
    opType: "Add",
    input: [i === 0 ? "x" : `a${i - 1}`, "x"],
    output: [i === MAX_OPS ? "y" : `a${i}`],
    name: `n${i}`,
  }));
  assert.throws(
    () => onnxToModule(onnxModel(nodes), { source: "long.onnx" }),
    new RegExp(`long\\.onnx: the model has more than ${MAX_OPS} nodes`),
  );
});

Deno.test("hf checkpoint: an index naming more than MAX_SHARDS shards is refused at the first one past it", () =>
  withDir(async (dir) => {
    const map: Record<string, string> = {};
    for (let i = 0; i <= MAX_SHARDS; i++) {
      map[`t${i}`] = `s${i}.safetensors`;
      if (i < MAX_SHARDS) {
        await Deno.writeFile(
          join(dir, `s${i}.safetensors`),
          encodeSafetensors([{ name: `t${i}`, dtype: "F32", shape: [], data: new Float32Array(1) }]),
        );
      }
    }
    await Deno.writeTextFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: map }));
    await assert.rejects(
      readCheckpoint(dir),
      new RegExp(`model\\.safetensors\\.index\\.json: weight_map names more than ${MAX_SHARDS} shards`),
    );
  }));
