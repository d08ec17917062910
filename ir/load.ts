/**
 * Reading IR files from disk: the text, its weights file (resolved relative to the IR file),
 * parse and verify in one step, with every problem as a diagnostic.
 */

import { dirname, resolve } from "node:path";
import type { Diagnostic } from "./diagnostics.ts";
import type { Module } from "./module.ts";
import { parse } from "./parse.ts";
import type { OpRegistry } from "./registry.ts";
import {
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
  type SafetensorsHeader,
} from "./safetensors.ts";
import { verify } from "./verifier.ts";
import { bsrIndexProblem, safetensorsStore, type WeightStore } from "./weights.ts";

/**
 * The largest IR file read: 16 MiB (BERT-large's IR is some 200 KB; weights live in safetensors).
 * Lexing costs about 30 times the text in memory, so the bound is also one on memory.
 */
export const MAX_IR_BYTES = 16 * 1024 * 1024;

/** What `loadModule` returns: the text, and the module when there were no diagnostics. */
export interface LoadResult {
  /** The file's text; `""` when it could not be read. */
  readonly text: string;
  /** The verified module; absent when there are diagnostics. */
  readonly module?: Module;
  /** Problems found reading, parsing or verifying; empty on success. */
  readonly diagnostics: readonly Diagnostic[];
}

/** Path of a module's weights file, relative paths taken from the IR file's folder. */
export function weightsPath(m: Module, irPath: string): string | undefined {
  return m.weightsFile === undefined ? undefined : resolve(dirname(irPath), m.weightsFile);
}

/**
 * Reads, parses and verifies an IR file, checking its weight declarations against the
 * weights file's header, and the index arrays (`indptr`, `indices`) of its BSR weights: in
 * range and monotone (no other weight data is read).
 */
export async function loadModule(path: string, registry?: OpRegistry): Promise<LoadResult> {
  const at = { file: path, line: 1, col: 1 };
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) {
      return {
        text: "",
        diagnostics: [{ loc: at, message: "not a regular file (a folder, FIFO or device)" }],
      };
    }
    if (info.size > MAX_IR_BYTES) {
      const message = `the file is ${info.size} bytes, over the ${MAX_IR_BYTES}-byte limit of an IR file`;
      return { text: "", diagnostics: [{ loc: at, message }] };
    }
    text = await Deno.readTextFile(path);
  } catch (e) {
    return { text: "", diagnostics: [{ loc: at, message: `cannot read the file: ${(e as Error).message}` }] };
  }
  const parsed = parse(text, { file: path });
  const m = parsed.module;
  if (!m) return { text, diagnostics: parsed.diagnostics };
  const wp = weightsPath(m, path);
  let header: SafetensorsHeader | undefined;
  if (wp !== undefined) {
    try {
      header = await readSafetensorsHeader(wp);
    } catch (e) {
      const why = e instanceof SafetensorsError
        ? e.message
        : e instanceof Deno.errors.NotFound
        ? `weights file '${m.weightsFile}' not found (looked for ${wp})`
        : `cannot read weights file ${wp}: ${(e as Error).message}`;
      return { text, diagnostics: [{ loc: m.loc ?? at, message: why }] };
    }
  }
  const diagnostics = verify(m, { registry, weights: header?.tensors, weightsSource: m.weightsFile });
  if (diagnostics.length === 0 && header && wp !== undefined) {
    try {
      diagnostics.push(...await checkBsrIndexArrays(m, wp, header));
    } catch (e) {
      diagnostics.push({
        loc: m.loc ?? at,
        message: `cannot read the bsr index arrays of ${wp}: ${(e as Error).message}`,
      });
    }
  }
  return diagnostics.length > 0 ? { text, diagnostics } : { text, module: m, diagnostics };
}

/**
 * Reads the index arrays of every BSR weight of `m` from its (verified) weights file and
 * checks them; one diagnostic, at the declaration, per malformed weight.
 */
async function checkBsrIndexArrays(m: Module, wp: string, header: SafetensorsHeader): Promise<Diagnostic[]> {
  const sparse = [...m.weights.values()].filter((w) => w.type.sparse);
  if (sparse.length === 0) return [];
  const diagnostics: Diagnostic[] = [];
  using file = await Deno.open(wp, { read: true });
  const read = async (name: string): Promise<Int32Array> => {
    const info = header.tensors.get(name)!; // I32, of the declared length: the verifier checked
    const bytes = new Uint8Array(info.byteLength);
    await file.seek(8 + header.headerSize + info.byteOffset, Deno.SeekMode.Start);
    for (let done = 0; done < bytes.length;) {
      const n = await file.read(bytes.subarray(done));
      if (n === null) throw new SafetensorsError(wp, "unexpected end of file", name);
      done += n;
    }
    return new Int32Array(bytes.buffer);
  };
  for (const w of sparse) {
    const problem = bsrIndexProblem(w.type, await read(`${w.name}.indices`), await read(`${w.name}.indptr`));
    if (problem) {
      diagnostics.push({
        loc: w.loc ?? m.loc ?? { file: wp, line: 1, col: 1 },
        message: `weight '@${w.name}' in ${wp}: bad bsr index: ${problem}`,
      });
    }
  }
  return diagnostics;
}

/** Opens the weights of a loaded module; a module without a weights file gets an empty store. */
export async function loadWeights(m: Module, irPath: string): Promise<WeightStore> {
  const wp = weightsPath(m, irPath);
  if (wp === undefined) {
    return {
      entries: () => new Map(),
      get: (w) => {
        throw new Error(`no weights file for '@${w.name}'`);
      },
    };
  }
  return safetensorsStore(await readSafetensors(wp));
}
