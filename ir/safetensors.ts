/**
 * Reader and writer for the Hugging Face safetensors weight format.
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header (possibly padded with
 * trailing spaces), then the data buffer. The header maps each tensor name to
 * `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the data buffer) and may hold a
 * string-to-string `__metadata__` object. Every header is fully validated before any tensor is read,
 * and every error is a {@link SafetensorsError} naming the file and, where relevant, the tensor.
 *
 * Typed-array views assume a little-endian host, which covers every platform Deno runs on.
 */

/** Element types a safetensors file may hold (the subset of the spec this project supports). */
export type SafetensorsDType = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Location and type of one tensor inside a safetensors file. */
export interface TensorInfo {
  /** The tensor's name, its key in the header. */
  name: string;
  /** Element type. */
  dtype: SafetensorsDType;
  /** Dimensions; `[]` for a scalar. */
  shape: number[];
  /** Offset of the first byte, relative to the start of the data buffer. */
  byteOffset: number;
  /** Number of data bytes, `end - begin` of its `data_offsets`. */
  byteLength: number;
}

/** A validated safetensors header. */
export interface SafetensorsHeader {
  /** Length N of the JSON header in bytes; the data buffer starts at byte `8 + headerSize`. */
  headerSize: number;
  /** Tensors in header order. */
  tensors: Map<string, TensorInfo>;
  /** The `__metadata__` object, or `{}` when absent. */
  metadata: Record<string, string>;
}

/** A tensor to be written by {@link encodeSafetensors} or {@link writeSafetensors}. */
export interface TensorToWrite {
  /** The tensor's name, its key in the header. */
  name: string;
  /** Element type. */
  dtype: SafetensorsDType;
  /** Dimensions; `[]` for a scalar. */
  shape: number[];
  /** Little-endian element bytes; its byte length must equal product(shape) * dtype size. */
  data: ArrayBufferView;
}

/** Error for malformed safetensors files or invalid reads/writes; the message names the file and tensor. */
export class SafetensorsError extends Error {
  /** Builds `source: tensor 'name': detail` (the tensor part only when `tensor` is given). */
  constructor(readonly source: string, detail: string, readonly tensor?: string) {
    super(`${source}: ${tensor === undefined ? "" : `tensor '${tensor}': `}${detail}`);
    this.name = "SafetensorsError";
  }
}

const DTYPE_SIZES: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Upper bound on the JSON header length, so corrupt files cannot trigger huge allocations. */
const MAX_HEADER_SIZE = 100 * 1024 * 1024;

/** Size in bytes of one element of `dtype`. */
export function dtypeByteSize(dtype: SafetensorsDType): number {
  return DTYPE_SIZES[dtype];
}

function isDType(value: unknown): value is SafetensorsDType {
  return typeof value === "string" && Object.hasOwn(DTYPE_SIZES, value);
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((d) => Number.isSafeInteger(d) && d >= 0);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A header value for a message: its JSON cut to 80 characters (a value nested too deeply, said so). */
function brief(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    return "a value nested too deeply to show";
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function formatShape(shape: number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Expected byte length of a tensor; may exceed 2^53 (and then never matches a real length). */
function expectedByteLength(dtype: SafetensorsDType, shape: number[]): number {
  return shape.reduce((n, d) => n * d, DTYPE_SIZES[dtype]);
}

/** Validates the 8-byte length prefix against the file size and returns the header length N. */
function headerLength(prefix: Uint8Array, fileSize: number, source: string): number {
  if (fileSize < 8) {
    throw new SafetensorsError(source, `file is ${fileSize} bytes, too short for the 8-byte header length`);
  }
  if (prefix.length < 8) {
    throw new SafetensorsError(source, `need the 8-byte header length prefix, got ${prefix.length} bytes`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(fileSize - 8)) {
    throw new SafetensorsError(source, `header length ${n} exceeds the file size (${fileSize} bytes)`);
  }
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new SafetensorsError(source, `header length ${n} exceeds the ${MAX_HEADER_SIZE}-byte limit`);
  }
  return Number(n);
}

function parseTensorEntry(name: string, entry: unknown, dataSize: number, source: string): TensorInfo {
  const fail = (detail: string) => new SafetensorsError(source, detail, name);
  if (!isPlainObject(entry)) throw fail("entry is not an object");
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isDType(dtype)) throw fail(`unknown dtype ${brief(dtype)}`);
  if (!isShape(shape)) {
    throw fail(`shape must be an array of non-negative integers, got ${brief(shape)}`);
  }
  if (!isShape(offsets) || offsets.length !== 2 || offsets[0] > offsets[1]) {
    throw fail(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${brief(offsets)}`);
  }
  const [begin, end] = offsets;
  const expected = expectedByteLength(dtype, shape);
  if (end - begin !== expected) {
    throw fail(
      `data_offsets [${begin}, ${end}] do not match dtype ${dtype} and shape ${formatShape(shape)} ` +
        `(${expected} bytes)`,
    );
  }
  if (end > dataSize) {
    throw fail(`data_offsets [${begin}, ${end}] exceed the data buffer (${dataSize} bytes)`);
  }
  return { name, dtype, shape, byteOffset: begin, byteLength: end - begin };
}

function parseMetadata(value: unknown, source: string): Record<string, string> {
  if (!isPlainObject(value)) throw new SafetensorsError(source, "__metadata__ is not an object");
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(source, `__metadata__ key '${key}' has a non-string value`);
    }
  }
  return value as Record<string, string>;
}

/**
 * Checks that the tensors tile the data buffer: no overlaps, and (as the format requires) no holes
 * and nothing after the last tensor, so a file's size is its tensors' and a sparse file of a
 * terabyte with one small tensor is refused from its header, before it is read.
 */
function checkLayout(tensors: Iterable<TensorInfo>, dataSize: number, source: string): void {
  const sorted = [...tensors].filter((t) => t.byteLength > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  let end = 0;
  for (let i = 0; i < sorted.length; i++) {
    const prev = sorted[i - 1], cur = sorted[i];
    if (prev && cur.byteOffset < prev.byteOffset + prev.byteLength) {
      throw new SafetensorsError(
        source,
        `data_offsets [${cur.byteOffset}, ${cur.byteOffset + cur.byteLength}] overlap tensor ` +
          `'${prev.name}' [${prev.byteOffset}, ${prev.byteOffset + prev.byteLength}]`,
        cur.name,
      );
    }
    if (cur.byteOffset > end) {
      throw new SafetensorsError(
        source,
        `data_offsets [${cur.byteOffset}, ${cur.byteOffset + cur.byteLength}] leave a hole of ` +
          `${cur.byteOffset - end} bytes before it (the data buffer must hold only the tensors)`,
        cur.name,
      );
    }
    end = cur.byteOffset + cur.byteLength;
  }
  if (dataSize > end) {
    throw new SafetensorsError(
      source,
      `${dataSize - end} bytes follow the last tensor's data (the data buffer must hold only the tensors)`,
    );
  }
}

/**
 * Parses and validates a safetensors header.
 *
 * @param prefix the first bytes of the file: at least `8 + N` of them (the whole file works too)
 * @param fileSize total size of the file in bytes, used to bound the header and the tensor offsets
 * @param source name used in error messages, usually the file path
 * @throws SafetensorsError if the header is malformed in any way
 */
export function parseSafetensorsHeader(
  prefix: Uint8Array,
  fileSize: number,
  source: string,
): SafetensorsHeader {
  const headerSize = headerLength(prefix, fileSize, source);
  if (prefix.length < 8 + headerSize) {
    throw new SafetensorsError(source, `need ${8 + headerSize} header bytes, got ${prefix.length}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(prefix.subarray(8, 8 + headerSize)));
  } catch (e) {
    throw new SafetensorsError(source, `header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(json)) throw new SafetensorsError(source, "header is not a JSON object");

  const dataSize = fileSize - 8 - headerSize;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(json)) {
    if (name === "__metadata__") metadata = parseMetadata(entry, source);
    else tensors.set(name, parseTensorEntry(name, entry, dataSize, source));
  }
  checkLayout(tensors.values(), dataSize, source);
  return { headerSize, tensors, metadata };
}

async function readExactly(file: Deno.FsFile, buf: Uint8Array, source: string): Promise<void> {
  for (let done = 0; done < buf.length;) {
    const n = await file.read(buf.subarray(done));
    if (n === null) throw new SafetensorsError(source, "unexpected end of file while reading the header");
    done += n;
  }
}

/**
 * Reads and validates only the length prefix and JSON header of the file at `path`, not the tensor data.
 *
 * @throws SafetensorsError if the header is malformed; Deno errors if the file cannot be read
 */
export async function readSafetensorsHeader(path: string): Promise<SafetensorsHeader> {
  await requireRegularFile(path);
  using file = await Deno.open(path, { read: true });
  const fileSize = (await file.stat()).size;
  const lengthPrefix = new Uint8Array(Math.min(8, fileSize));
  await readExactly(file, lengthPrefix, path);
  const headerSize = headerLength(lengthPrefix, fileSize, path);
  const prefix = new Uint8Array(8 + headerSize);
  prefix.set(lengthPrefix);
  await readExactly(file, prefix.subarray(8), path);
  return parseSafetensorsHeader(prefix, fileSize, path);
}

/** A whole safetensors file held in memory, with typed accessors for its tensors. */
export class SafetensorsFile {
  /** Tensors in header order. */
  readonly tensors: Map<string, TensorInfo>;
  /** The `__metadata__` object, or `{}` when absent. */
  readonly metadata: Record<string, string>;
  /** Offset of the data buffer within `bytes`. */
  readonly dataStart: number;

  /**
   * Validates the header of `bytes` (a complete file).
   *
   * @throws SafetensorsError if the file is malformed
   */
  constructor(readonly bytes: Uint8Array, readonly source: string) {
    const header = parseSafetensorsHeader(bytes, bytes.length, source);
    this.tensors = header.tensors;
    this.metadata = header.metadata;
    this.dataStart = 8 + header.headerSize;
  }

  /** Header entry for `name`; throws SafetensorsError if there is no such tensor. */
  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.source, "no such tensor", name);
    return info;
  }

  /** The tensor's bytes as a view into `bytes` (no copy). */
  raw(name: string): Uint8Array {
    const { byteOffset, byteLength } = this.info(name);
    const start = this.dataStart + byteOffset;
    return this.bytes.subarray(start, start + byteLength);
  }

  /**
   * The tensor as float32 values. F32 is a zero-copy view when its absolute offset is 4-byte aligned
   * (otherwise a copy); F16, BF16 and F64 are converted into a new array.
   *
   * @throws SafetensorsError for unknown names and non-float dtypes
   */
  float32(name: string): Float32Array {
    const { dtype } = this.info(name);
    const raw = this.raw(name);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const count = raw.length / DTYPE_SIZES[dtype];
    switch (dtype) {
      case "F32":
        return raw.byteOffset % 4 === 0
          ? new Float32Array(raw.buffer, raw.byteOffset, count)
          : new Float32Array(raw.slice().buffer);
      case "F16": {
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getFloat16(2 * i, true);
        return out;
      }
      case "BF16": {
        const out = new Float32Array(count);
        const bits = new Uint32Array(out.buffer);
        for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
        return out;
      }
      case "F64": {
        const out = new Float32Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
        return out;
      }
      default:
        throw new SafetensorsError(this.source, `dtype ${dtype} cannot be read as float32`, name);
    }
  }

  /**
   * The tensor as int32 values. I32 is a zero-copy view when its absolute offset is 4-byte aligned
   * (otherwise a copy); I64, I16, I8, U8 and BOOL (as 0/1) are converted into a new array.
   *
   * @throws SafetensorsError for unknown names, float dtypes and I64 values outside the int32 range
   */
  int32(name: string): Int32Array {
    const { dtype } = this.info(name);
    const raw = this.raw(name);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const count = raw.length / DTYPE_SIZES[dtype];
    switch (dtype) {
      case "I32":
        return raw.byteOffset % 4 === 0
          ? new Int32Array(raw.buffer, raw.byteOffset, count)
          : new Int32Array(raw.slice().buffer);
      case "I64": {
        const out = new Int32Array(count);
        for (let i = 0; i < count; i++) {
          const v = view.getBigInt64(8 * i, true);
          if (v !== BigInt.asIntN(32, v)) {
            throw new SafetensorsError(
              this.source,
              `I64 value ${v} at index ${i} is outside the int32 range`,
              name,
            );
          }
          out[i] = Number(v);
        }
        return out;
      }
      case "I16": {
        const out = new Int32Array(count);
        for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, true);
        return out;
      }
      case "I8":
        return Int32Array.from(new Int8Array(raw.buffer, raw.byteOffset, count));
      case "U8":
        return Int32Array.from(raw);
      case "BOOL":
        return Int32Array.from(raw, (b) => (b === 0 ? 0 : 1));
      default:
        throw new SafetensorsError(this.source, `dtype ${dtype} cannot be read as int32`, name);
    }
  }
}

/**
 * Validates a complete in-memory safetensors file; tensor accessors return views into `bytes`.
 *
 * @param source name used in error messages, usually the file path
 * @throws SafetensorsError if the file is malformed
 */
export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  return new SafetensorsFile(bytes, source);
}

/**
 * Reads the whole file at `path` into memory and validates it.
 *
 * @throws SafetensorsError if the file is malformed; Deno errors if it cannot be read
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  await readSafetensorsHeader(path); // the header first: a file is read only when its tensors fill it
  return parseSafetensors(await Deno.readFile(path), path);
}

/**
 * Throws a SafetensorsError unless `path` is a regular file (through links): opening a FIFO would
 * wait for a writer forever, and a device has no end.
 */
async function requireRegularFile(path: string): Promise<void> {
  const info = await Deno.stat(path);
  if (!info.isFile) {
    throw new SafetensorsError(
      path,
      "not a regular file (a folder, FIFO or device); a weights file must be a file",
    );
  }
}

/**
 * Validates `tensors` and lays them out contiguously in the given order. Returns the length prefix
 * plus JSON header (space-padded so the data buffer starts 8-byte aligned) and each tensor's bytes.
 */
function layout(
  tensors: TensorToWrite[],
  metadata: Record<string, string> | undefined,
  source: string,
): { header: Uint8Array; chunks: Uint8Array[] } {
  const json: Record<string, unknown> = Object.create(null); // so a tensor may be named "__proto__"
  if (metadata !== undefined) json.__metadata__ = parseMetadata(metadata, source);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const { name, dtype, shape, data } of tensors) {
    const fail = (detail: string) => new SafetensorsError(source, detail, name);
    if (name === "__metadata__") throw fail("name is reserved");
    if (Object.hasOwn(json, name)) throw fail("duplicate tensor name");
    if (!isDType(dtype)) throw fail(`unknown dtype ${brief(dtype)}`);
    if (!isShape(shape)) {
      throw fail(`shape must be an array of non-negative integers, got ${brief(shape)}`);
    }
    const expected = expectedByteLength(dtype, shape);
    if (data.byteLength !== expected) {
      throw fail(
        `data has ${data.byteLength} bytes but dtype ${dtype} and shape ${
          formatShape(shape)
        } need ${expected}`,
      );
    }
    json[name] = { dtype, shape, data_offsets: [offset, offset + expected] };
    chunks.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    offset += expected;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const headerSize = Math.ceil(text.length / 8) * 8;
  const header = new Uint8Array(8 + headerSize).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(headerSize), true);
  header.set(text, 8);
  return { header, chunks };
}

/**
 * Encodes tensors (contiguous, in the given order) and optional metadata as a safetensors file in memory.
 *
 * @param source name used in error messages
 * @throws SafetensorsError on invalid dtypes or shapes, data length mismatches and duplicate names
 */
export function encodeSafetensors(
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
  source = "<memory>",
): Uint8Array {
  const { header, chunks } = layout(tensors, metadata, source);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, header.length));
  out.set(header);
  let offset = header.length;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}

/**
 * Writes tensors (contiguous, in the given order) and optional metadata to `path` atomically: the data
 * goes to a temporary file in the same directory, streamed tensor by tensor, which is then renamed over
 * `path`. On failure the temporary file is removed and `path` is left untouched.
 *
 * @throws SafetensorsError on invalid tensors (before any file is created); Deno errors on I/O failure
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const { header, chunks } = layout(tensors, metadata, path);
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    {
      using file = await Deno.open(tmp, { write: true, createNew: true });
      await writeAll(file, header);
      for (const chunk of chunks) await writeAll(file, chunk);
      await file.syncData();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
