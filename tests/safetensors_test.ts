import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  dtypeByteSize,
  encodeSafetensors,
  parseSafetensors,
  parseSafetensorsHeader,
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
  type TensorToWrite,
  writeSafetensors,
} from "../ir/safetensors.ts";

const MODEL_PATH = fileURLToPath(
  new URL("../../shared/models/sst2-bert-mini/model.safetensors", import.meta.url),
);
const modelExists = (() => {
  try {
    return Deno.statSync(MODEL_PATH).isFile;
  } catch {
    return false;
  }
})();

/** Builds a file from a literal header string, an explicit length prefix and `dataLength` zero bytes. */
function rawFile(header: string, dataLength = 0, length?: bigint): Uint8Array {
  const text = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + text.length + dataLength);
  new DataView(bytes.buffer).setBigUint64(0, length ?? BigInt(text.length), true);
  bytes.set(text, 8);
  return bytes;
}

/** Builds a file whose header is `JSON.stringify(header)`. */
function jsonFile(header: unknown, dataLength = 0): Uint8Array {
  return rawFile(JSON.stringify(header), dataLength);
}

function u16(...values: number[]): Uint8Array {
  return new Uint8Array(new Uint16Array(values).buffer);
}

/** Asserts that `fn` throws a SafetensorsError naming `source` and containing `fragment`. */
function assertSafetensorsError(fn: () => unknown, fragment: string, source = "bad.safetensors"): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
    assert.ok(e.message.startsWith(`${source}: `), e.message);
    assert.ok(e.message.includes(fragment), `'${e.message}' lacks '${fragment}'`);
    return true;
  });
}

function assertCorrupt(bytes: Uint8Array, fragment: string): void {
  assertSafetensorsError(() => parseSafetensors(bytes, "bad.safetensors"), fragment);
}

const SAMPLE: TensorToWrite[] = [
  { name: "f32", dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, 1e-3, -1e6]) },
  { name: "f16", dtype: "F16", shape: [3], data: u16(0x3c00, 0xc000, 0x3800) },
  { name: "bf16", dtype: "BF16", shape: [2], data: u16(0x3f80, 0xc040) },
  { name: "i32", dtype: "I32", shape: [4], data: new Int32Array([1, -1, 2147483647, -2147483648]) },
  { name: "i64", dtype: "I64", shape: [2, 1], data: new BigInt64Array([5n, -7n]) },
  { name: "empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  { name: "scalar", dtype: "F32", shape: [], data: new Float32Array([42]) },
];

function checkSample(bytes: Uint8Array, source: string): void {
  const file = parseSafetensors(bytes, source);
  assert.deepEqual([...file.tensors.keys()], SAMPLE.map((t) => t.name));
  assert.deepEqual(file.metadata, { format: "pt" });
  for (const t of SAMPLE) {
    const info = file.tensors.get(t.name)!;
    assert.equal(info.dtype, t.dtype);
    assert.deepEqual(info.shape, t.shape);
    assert.deepEqual(file.raw(t.name), new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  assert.deepEqual(file.float32("f32"), SAMPLE[0].data);
  assert.deepEqual(file.float32("f16"), new Float32Array([1, -2, 0.5]));
  assert.deepEqual(file.float32("bf16"), new Float32Array([1, -3]));
  assert.deepEqual(file.int32("i32"), SAMPLE[3].data);
  assert.deepEqual(file.int32("i64"), new Int32Array([5, -7]));
  assert.deepEqual(file.float32("empty"), new Float32Array(0));
  assert.deepEqual(file.float32("scalar"), new Float32Array([42]));
}

Deno.test("dtypeByteSize covers every dtype", () => {
  const sizes = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"] as const;
  assert.deepEqual(sizes.map(dtypeByteSize), [4, 2, 2, 8, 8, 4, 2, 1, 1, 1]);
});

Deno.test("encode/parse round trip of F32, F16, BF16, I32, I64, zero-size and scalar tensors", () => {
  const bytes = encodeSafetensors(SAMPLE, { format: "pt" });
  const headerSize = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerSize) % 8, 0, "data buffer is 8-byte aligned");
  checkSample(bytes, "mem");
  const header = parseSafetensorsHeader(bytes, bytes.length, "mem");
  assert.equal(header.headerSize, headerSize);
  assert.deepEqual(header.tensors.get("i32"), {
    name: "i32",
    dtype: "I32",
    shape: [4],
    byteOffset: 24 + 6 + 4,
    byteLength: 16,
  });
  const proto = parseSafetensors(
    encodeSafetensors([{ name: "__proto__", dtype: "U8", shape: [1], data: new Uint8Array([7]) }]),
    "mem",
  );
  assert.deepEqual(proto.int32("__proto__"), new Int32Array([7]));
});

Deno.test("writeSafetensors/readSafetensors round trip leaves no temp file behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "model.safetensors");
    await writeSafetensors(path, SAMPLE, { format: "pt" });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["model.safetensors"]);
    assert.deepEqual(await Deno.readFile(path), encodeSafetensors(SAMPLE, { format: "pt" }));
    const file = await readSafetensors(path);
    checkSample(file.bytes, path);
    const header = await readSafetensorsHeader(path);
    assert.deepEqual(header.tensors, file.tensors);
    assert.deepEqual(header.metadata, file.metadata);
    // Overwriting an existing file works.
    await writeSafetensors(path, [SAMPLE[6]]);
    assert.deepEqual([...(await readSafetensorsHeader(path)).tensors.keys()], ["scalar"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeSafetensors failures leave nothing behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "bad.safetensors");
    const bad = [{ name: "a", dtype: "F32" as const, shape: [2], data: new Float32Array(3) }];
    await assert.rejects(writeSafetensors(path, bad), SafetensorsError);
    // The rename fails because the target is a directory: the temp file must be removed.
    await Deno.mkdir(path);
    await assert.rejects(writeSafetensors(path, SAMPLE));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["bad.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeSafetensors validates its input", () => {
  const f32 = (name: string, shape: number[], n: number): TensorToWrite => ({
    name,
    dtype: "F32",
    shape,
    data: new Float32Array(n),
  });
  const encode = (tensors: TensorToWrite[], metadata?: Record<string, string>) => () =>
    encodeSafetensors(tensors, metadata, "out.safetensors");
  assertSafetensorsError(
    encode([f32("a.weight", [2, 3], 3)]),
    "tensor 'a.weight': data has 12 bytes but dtype F32 and shape [2, 3] need 24",
    "out.safetensors",
  );
  assertSafetensorsError(
    encode([f32("a", [1], 1), f32("a", [1], 1)]),
    "tensor 'a': duplicate",
    "out.safetensors",
  );
  assertSafetensorsError(encode([f32("__metadata__", [1], 1)]), "reserved", "out.safetensors");
  assertSafetensorsError(encode([f32("a", [-1], 0)]), "tensor 'a': shape", "out.safetensors");
  assertSafetensorsError(encode([f32("a", [1.5], 0)]), "tensor 'a': shape", "out.safetensors");
  assertSafetensorsError(
    encode([{ name: "a", dtype: "F8" as "F32", shape: [1], data: new Uint8Array(1) }]),
    "unknown dtype",
    "out.safetensors",
  );
  assertSafetensorsError(
    encode([], { k: 1 as unknown as string }),
    "__metadata__ key 'k'",
    "out.safetensors",
  );
});

Deno.test("F32 and I32 are zero-copy views when aligned, copies when not", () => {
  const tensors: TensorToWrite[] = [
    { name: "w", dtype: "F32", shape: [3], data: new Float32Array([1, 2, 3]) },
    { name: "i", dtype: "I32", shape: [2], data: new Int32Array([-4, 5]) },
  ];
  const bytes = encodeSafetensors(tensors);
  const file = parseSafetensors(bytes, "mem");
  const w = file.float32("w");
  assert.equal(w.buffer, bytes.buffer);
  w[0] = 9; // a view: writes show through to the file bytes
  assert.equal(file.float32("w")[0], 9);
  assert.equal(file.int32("i").buffer, bytes.buffer);
  assert.equal(file.raw("w").buffer, bytes.buffer);

  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  const misaligned = parseSafetensors(shifted.subarray(1), "mem");
  const copy = misaligned.float32("w");
  assert.notEqual(copy.buffer, shifted.buffer);
  assert.deepEqual(copy, new Float32Array([9, 2, 3]));
  assert.deepEqual(misaligned.int32("i"), new Int32Array([-4, 5]));
});

Deno.test("F16, BF16 and F64 convert to float32 exactly", () => {
  const f16 = [0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x8000, 0x7c00, 0xfc00];
  const bf16 = [0x3f80, 0xc040, 0x4049, 0x0000, 0x8000, 0x7f80, 0xff80, 0x3c00];
  const file = parseSafetensors(
    encodeSafetensors([
      { name: "h", dtype: "F16", shape: [8], data: u16(...f16) },
      { name: "b", dtype: "BF16", shape: [8], data: u16(...bf16) },
      { name: "d", dtype: "F64", shape: [3], data: new Float64Array([0.1, -2.5, 1e300]) },
    ]),
    "mem",
  );
  assert.deepEqual(
    file.float32("h"),
    new Float32Array([1, -2, 0.333251953125, 65504, 2 ** -24, -0, Infinity, -Infinity]),
  );
  assert.ok(Object.is(file.float32("h")[5], -0));
  assert.deepEqual(
    file.float32("b"),
    new Float32Array([1, -3, 3.140625, 0, -0, Infinity, -Infinity, 2 ** -7]),
  );
  assert.ok(Object.is(file.float32("b")[4], -0));
  assert.deepEqual(file.float32("d"), new Float32Array([0.1, -2.5, Infinity]));
  const nan = parseSafetensors(
    encodeSafetensors([{ name: "n", dtype: "BF16", shape: [1], data: u16(0x7fc0) }]),
    "mem",
  );
  assert.ok(Number.isNaN(nan.float32("n")[0]));
});

Deno.test("integer dtypes convert to int32; out-of-range I64 throws", () => {
  const file = parseSafetensors(
    encodeSafetensors([
      { name: "l", dtype: "I64", shape: [3], data: new BigInt64Array([2147483647n, -2147483648n, 0n]) },
      { name: "s", dtype: "I16", shape: [2], data: new Int16Array([-32768, 32767]) },
      { name: "c", dtype: "I8", shape: [2], data: new Int8Array([-128, 127]) },
      { name: "u", dtype: "U8", shape: [2], data: new Uint8Array([0, 255]) },
      { name: "t", dtype: "BOOL", shape: [3], data: new Uint8Array([0, 1, 2]) },
      { name: "big", dtype: "I64", shape: [2], data: new BigInt64Array([1n, 2147483648n]) },
    ]),
    "ids.safetensors",
  );
  assert.deepEqual(file.int32("l"), new Int32Array([2147483647, -2147483648, 0]));
  assert.deepEqual(file.int32("s"), new Int32Array([-32768, 32767]));
  assert.deepEqual(file.int32("c"), new Int32Array([-128, 127]));
  assert.deepEqual(file.int32("u"), new Int32Array([0, 255]));
  assert.deepEqual(file.int32("t"), new Int32Array([0, 1, 1]));
  assertSafetensorsError(() => file.int32("big"), "tensor 'big': I64 value 2147483648", "ids.safetensors");
});

Deno.test("accessors reject unknown names and wrong dtype families", () => {
  const file = parseSafetensors(encodeSafetensors(SAMPLE), "m.safetensors");
  assertSafetensorsError(() => file.raw("nope"), "tensor 'nope': no such tensor", "m.safetensors");
  assertSafetensorsError(() => file.float32("nope"), "tensor 'nope'", "m.safetensors");
  assertSafetensorsError(
    () => file.float32("i32"),
    "tensor 'i32': dtype I32 cannot be read as float32",
    "m.safetensors",
  );
  assertSafetensorsError(
    () => file.int32("f16"),
    "tensor 'f16': dtype F16 cannot be read as int32",
    "m.safetensors",
  );
});

Deno.test({
  name: "reads the real sst2-bert-mini model",
  ignore: !modelExists,
  async fn() {
    const file = await readSafetensors(MODEL_PATH);
    assert.equal(file.tensors.size, 73);
    assert.deepEqual(file.metadata, { format: "pt" });
    const emb = file.tensors.get("bert.embeddings.word_embeddings.weight")!;
    assert.equal(emb.dtype, "F32");
    assert.deepEqual(emb.shape, [30522, 256]);
    const values = file.float32("bert.embeddings.word_embeddings.weight");
    assert.equal(values.length, 30522 * 256);
    assert.equal(values.buffer, file.bytes.buffer);
    assert.ok(values.every(Number.isFinite));
    const header = await readSafetensorsHeader(MODEL_PATH);
    assert.deepEqual(header.tensors, file.tensors);
    assert.deepEqual(header.metadata, file.metadata);
  },
});

Deno.test("corrupt: file shorter than 8 bytes", async () => {
  assertCorrupt(new Uint8Array(5), "file is 5 bytes, too short");
  assertCorrupt(new Uint8Array(0), "file is 0 bytes");
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "short.safetensors");
    await Deno.writeFile(path, new Uint8Array(3));
    await assert.rejects(readSafetensorsHeader(path), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError);
      assert.equal(e.message, `${path}: file is 3 bytes, too short for the 8-byte header length`);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("corrupt: header length larger than the file", () => {
  assertCorrupt(rawFile("{}", 0, 3n), "header length 3 exceeds the file size (10 bytes)");
  assertCorrupt(rawFile("", 0, 1n), "header length 1 exceeds the file size (8 bytes)");
});

Deno.test("corrupt: huge header lengths are rejected without allocating", async () => {
  assertCorrupt(rawFile("{}", 0, 2n ** 60n), `header length ${2n ** 60n} exceeds the file size`);
  assertCorrupt(rawFile("{}", 0, 2n ** 64n - 1n), "exceeds the file size");
  // A header longer than the cap is refused even when the (claimed) file is big enough.
  assertSafetensorsError(
    () => parseSafetensorsHeader(rawFile("{}", 0, 200_000_000n), 1e12, "bad.safetensors"),
    "header length 200000000 exceeds the 104857600-byte limit",
  );
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "huge.safetensors");
    await Deno.writeFile(path, rawFile("{}", 100, 2n ** 60n));
    await assert.rejects(readSafetensorsHeader(path), SafetensorsError);
    await assert.rejects(readSafetensors(path), SafetensorsError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("corrupt: prefix passed to parseSafetensorsHeader is too short", () => {
  const bytes = jsonFile({});
  assertSafetensorsError(
    () => parseSafetensorsHeader(bytes.subarray(0, 9), bytes.length, "bad.safetensors"),
    "need 10",
  );
});

Deno.test("corrupt: malformed JSON or invalid UTF-8", () => {
  assertCorrupt(rawFile('{"a": {'), "header is not valid UTF-8 JSON");
  assertCorrupt(rawFile(""), "header is not valid UTF-8 JSON");
  const bytes = rawFile('{"x":1}');
  bytes[10] = 0xff;
  assertCorrupt(bytes, "header is not valid UTF-8 JSON");
});

Deno.test("corrupt: JSON that is not an object", () => {
  for (const header of ["[]", "null", "42", '"str"']) {
    assertCorrupt(rawFile(header), "header is not a JSON object");
  }
});

Deno.test("corrupt: entries with a bad dtype", () => {
  assertCorrupt(jsonFile({ a: 3 }), "tensor 'a': entry is not an object");
  assertCorrupt(
    jsonFile({ a: { dtype: "F8", shape: [], data_offsets: [0, 1] } }, 1),
    `tensor 'a': unknown dtype "F8"`,
  );
  assertCorrupt(
    jsonFile({ a: { shape: [], data_offsets: [0, 4] } }, 4),
    "tensor 'a': unknown dtype undefined",
  );
  assertCorrupt(jsonFile({ a: { dtype: "toString", shape: [], data_offsets: [0, 4] } }, 4), "unknown dtype");
});

Deno.test("corrupt: negative, fractional or non-array shapes", () => {
  for (const shape of [[-1], [1.5], ["2"], 4, null, [2 ** 60]]) {
    assertCorrupt(
      jsonFile({ a: { dtype: "F32", shape, data_offsets: [0, 4] } }, 4),
      "tensor 'a': shape must be",
    );
  }
});

Deno.test("corrupt: malformed data_offsets", () => {
  for (const offsets of [[0], [0, 4, 8], [-4, 0], [0.5, 4], [8, 4], null, "0,4"]) {
    assertCorrupt(
      jsonFile({ a: { dtype: "F32", shape: [1], data_offsets: offsets } }, 8),
      "tensor 'a': data_offsets must be [begin, end]",
    );
  }
});

Deno.test("corrupt: data_offsets out of range", () => {
  assertCorrupt(
    jsonFile({ a: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, 8),
    "tensor 'a': data_offsets [4, 12] exceed the data buffer (8 bytes)",
  );
  assertCorrupt(
    jsonFile({ a: { dtype: "F32", shape: [0], data_offsets: [9, 9] } }, 8),
    "data_offsets [9, 9] exceed the data buffer",
  );
});

Deno.test("corrupt: overlapping tensors (zero-length tensors may share offsets)", () => {
  assertCorrupt(
    jsonFile({
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    }, 12),
    "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]",
  );
  assertCorrupt(
    jsonFile({
      a: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
      b: { dtype: "F32", shape: [3], data_offsets: [0, 12] },
    }, 12),
    "overlap",
  );
  const ok = parseSafetensors(
    jsonFile({
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
      z: { dtype: "F32", shape: [0], data_offsets: [2, 2] },
      y: { dtype: "I8", shape: [0, 3], data_offsets: [4, 4] },
      b: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    }, 8),
    "ok.safetensors",
  );
  assert.deepEqual([...ok.tensors.keys()], ["a", "z", "y", "b"]);
  assert.deepEqual(ok.float32("z"), new Float32Array(0));
});

Deno.test("corrupt: byte length does not match dtype and shape", () => {
  assertSafetensorsError(
    () =>
      parseSafetensors(
        jsonFile({ "a.weight": { dtype: "F32", shape: [2, 3], data_offsets: [0, 12] } }, 24),
        "model.safetensors",
      ),
    "model.safetensors: tensor 'a.weight': data_offsets [0, 12] do not match dtype F32 and shape [2, 3] (24 bytes)",
    "model.safetensors",
  );
  assertCorrupt(
    jsonFile({ a: { dtype: "F32", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 0] } }),
    "do not match dtype F32",
  );
});

Deno.test("corrupt: bad __metadata__", () => {
  assertCorrupt(jsonFile({ __metadata__: "pt" }), "__metadata__ is not an object");
  assertCorrupt(jsonFile({ __metadata__: ["pt"] }), "__metadata__ is not an object");
  assertCorrupt(
    jsonFile({ __metadata__: { format: 1 } }),
    "__metadata__ key 'format' has a non-string value",
  );
});

Deno.test("header padded with trailing spaces parses", () => {
  const file = parseSafetensors(
    rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}     `, 4),
    "pad.safetensors",
  );
  assert.deepEqual(file.float32("a"), new Float32Array([0]));
});

Deno.test("a FIFO, device or folder in place of a weights file is an error naming it, never a hang", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparrow-st-special-" });
  try {
    const fifo = join(dir, "w.safetensors");
    assert.ok((await new Deno.Command("mkfifo", { args: [fifo] }).output()).success, "mkfifo");
    for (const path of [fifo, "/dev/zero", dir]) {
      const t0 = performance.now();
      await assert.rejects(() => readSafetensorsHeader(path), /not a regular file/);
      await assert.rejects(() => readSafetensors(path), /not a regular file/);
      assert.ok(performance.now() - t0 < 5000, path);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("corrupt: a deep or long header value is quoted in at most 80 characters", () => {
  const header = (value: string) => {
    const json = new TextEncoder().encode(`{"w":{"dtype":"F32","shape":${value},"data_offsets":[0,8]}}`);
    const bytes = new Uint8Array(8 + json.length + 8);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    return bytes;
  };
  for (const value of [`${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}`, `[${"-1,".repeat(10_000)}-1]`]) {
    const bytes = header(value);
    assert.throws(() => parseSafetensorsHeader(bytes, bytes.length, "deep.safetensors"), (e: Error) => {
      assert.match(
        e.message,
        /^deep\.safetensors: tensor 'w': shape must be an array of non-negative integers, got .{1,80}$/,
      );
      return true;
    });
  }
});

Deno.test("corrupt: holes and bytes after the last tensor are refused from the header (a sparse terabyte is never read)", async () => {
  const one = encodeSafetensors([{ name: "a", dtype: "F32", shape: [2], data: new Float32Array(2) }]);
  const trailing = new Uint8Array(one.length + 5);
  trailing.set(one);
  assert.throws(
    () => parseSafetensors(trailing, "t.safetensors"),
    /^SafetensorsError: t\.safetensors: 5 bytes follow the last tensor's data/,
  );
  const headerOf = (json: string, data: number) => {
    const text = new TextEncoder().encode(json);
    const bytes = new Uint8Array(8 + text.length + data);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(text.length), true);
    bytes.set(text, 8);
    return bytes;
  };
  const hole = headerOf('{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', 12);
  assert.throws(
    () => parseSafetensorsHeader(hole, hole.length, "h.safetensors"),
    /h\.safetensors: tensor 'a': data_offsets \[8, 12\] leave a hole of 8 bytes before it/,
  );
  const dir = await Deno.makeTempDir({ prefix: "sparrow-st-sparse-" });
  try {
    const path = join(dir, "sparse.safetensors");
    await Deno.writeFile(path, one);
    await Deno.truncate(path, 2 ** 40); // a terabyte, sparse on disk
    await assert.rejects(readSafetensors(path), /bytes follow the last tensor's data/);
    await assert.rejects(readSafetensorsHeader(path), /bytes follow the last tensor's data/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
