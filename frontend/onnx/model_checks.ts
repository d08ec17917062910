/**
 * What the ONNX import checks of a decoded model before converting anything, so that a hostile
 * file ends in one `OnnxImportError` naming the file and the place, never in a crash, a hang or
 * an allocation it did not bound:
 *
 * - the default-domain opset is one the importer knows (7 to {@link ONNX_MAX_IMPORT_OPSET});
 * - subgraphs (`If` branches, ...) nest at most {@link MAX_SUBGRAPH_DEPTH} deep and the graph has
 *   at most `MAX_OPS` nodes, all subgraphs included (walked without recursion);
 * - every value is written once: no two nodes write one name, and no node output shadows a graph
 *   input or an initializer;
 * - external data (`readExternalData`) lies inside the model's folder (a relative location,
 *   no `..`, no link leading out), is a regular file, and its range fits the file and the
 *   tensor's declared size before a byte is read.
 */

import { isAbsolute, relative, resolve, sep } from "node:path";
import { MAX_OPS } from "../../ir/verifier.ts";
import { OnnxImportError } from "./node.ts";
import type { Onnx as OnnxTypes } from "./proto.ts";

type GraphProto = OnnxTypes.IGraphProto;

/** The newest default-domain opset the importer knows (opset 20's Gelu is the newest op form it reads). */
export const ONNX_MAX_IMPORT_OPSET = 20;

/** The oldest default-domain opset the importer takes. */
export const ONNX_MIN_IMPORT_OPSET = 7;

/** How deep subgraphs may nest (torch exports nest `If` branches one or two deep). */
export const MAX_SUBGRAPH_DEPTH = 16;

/** Checks a default-domain opset version; throws naming it and the versions known. */
export function checkOpset(version: number, source: string): void {
  const known = `opsets ${ONNX_MIN_IMPORT_OPSET} to ${ONNX_MAX_IMPORT_OPSET} are imported`;
  if (version < ONNX_MIN_IMPORT_OPSET) {
    throw new OnnxImportError(`${source}: opset ${version} is too old (${known}; 11 to 17 are tested)`);
  }
  if (version > ONNX_MAX_IMPORT_OPSET) {
    throw new OnnxImportError(
      `${source}: opset ${version} of the default domain is newer than Sparrow knows (${known})`,
    );
  }
}

/** The subgraphs held by a graph's nodes' attributes. */
function subgraphs(g: GraphProto): GraphProto[] {
  return (g.node ?? []).flatMap((n) =>
    (n.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])])
  );
}

/**
 * Checks the nesting of subgraphs and the number of nodes, without recursion: throws when
 * subgraphs nest deeper than MAX_SUBGRAPH_DEPTH or the nodes are more than MAX_OPS.
 */
export function checkGraphSize(g: GraphProto, source: string): void {
  const stack: [GraphProto, number][] = [[g, 0]];
  let nodes = 0;
  while (stack.length > 0) {
    const [graph, depth] = stack.pop()!;
    if (depth > MAX_SUBGRAPH_DEPTH) {
      throw new OnnxImportError(
        `${source}: subgraph '${graph.name ?? ""}' is nested ${depth} deep, more than ${MAX_SUBGRAPH_DEPTH}`,
      );
    }
    nodes += (graph.node ?? []).length;
    if (nodes > MAX_OPS) {
      throw new OnnxImportError(`${source}: the model has more than ${MAX_OPS} nodes (the limit)`);
    }
    for (const sub of subgraphs(graph)) stack.push([sub, depth + 1]);
  }
}

/**
 * Checks that each value of graph `g` is written once: by one node, and not also a graph input
 * or initializer (nor, for a subgraph, a value of the graph around it: `outer`).
 */
export function checkSingleWriters(
  g: GraphProto,
  source: string,
  outer: ReadonlySet<string> = new Set(),
): void {
  const given = new Map<string, string>();
  for (const t of g.initializer ?? []) given.set(t.name ?? "", "an initializer");
  for (const i of g.input ?? []) if (!given.has(i.name ?? "")) given.set(i.name ?? "", "a graph input");
  const writer = new Map<string, string>();
  (g.node ?? []).forEach((n, i) => {
    const label = n.name ? `node '${n.name}' (${n.opType})` : `node #${i} (${n.opType})`;
    for (const o of n.output ?? []) {
      if (!o) continue;
      const first = writer.get(o);
      if (first !== undefined) {
        throw new OnnxImportError(`${source}: ${label} writes '${o}', which ${first} writes too`);
      }
      const what = given.get(o) ?? (outer.has(o) ? "a value of the enclosing graph" : undefined);
      if (what !== undefined) {
        throw new OnnxImportError(`${source}: ${label} writes '${o}', which is ${what}`);
      }
      writer.set(o, label);
    }
  });
}

/** Reads `buf.length` bytes of `file` at `offset`; false when the file ends first. */
function readAt(file: Deno.FsFile, offset: number, buf: Uint8Array): boolean {
  file.seekSync(offset, Deno.SeekMode.Start);
  for (let done = 0; done < buf.length;) {
    const n = file.readSync(buf.subarray(done));
    if (n === null) return false;
    done += n;
  }
  return true;
}

/** A non-negative integer from an external data entry, or undefined when it is not one. */
function entryInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The bytes of a tensor stored as external data: `location` relative to `baseDir`, inside it
 * (also through links), a regular file, with `offset` and `length` (when given) within it and
 * `length` equal to `expected`, the tensor's size in bytes; checked before anything is read, and
 * only that range is read. `at` names the tensor in messages.
 */
export function readExternalData(
  entries: ReadonlyMap<string, string>,
  baseDir: string,
  expected: number,
  at: string,
): Uint8Array {
  const location = entries.get("location") ?? "";
  const shown = JSON.stringify(location.length > 80 ? `${location.slice(0, 77)}...` : location);
  const refuse = (why: string) => new OnnxImportError(`${at}: external data location ${shown} ${why}`);
  if (isAbsolute(location) || /^[A-Za-z]:/.test(location) || location.startsWith("\\")) {
    throw refuse("is an absolute path; it must lie inside the model's folder");
  }
  if (location.split(/[\\/]/).includes("..")) {
    throw refuse("goes up with '..'; it must lie inside the model's folder");
  }
  let root: string, file: string;
  try {
    root = Deno.realPathSync(baseDir);
    file = Deno.realPathSync(resolve(baseDir, location));
  } catch (e) {
    throw refuse(`cannot be read: ${(e as Error).message}`);
  }
  const rel = relative(root, file);
  if (rel === "" || rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel)) {
    throw refuse(`leads outside the model's folder (to ${file})`);
  }
  const info = Deno.statSync(file);
  if (!info.isFile) throw refuse("is not a regular file (a folder, FIFO or device)");
  const offset = entryInt(entries.get("offset") ?? "0");
  const length = entries.has("length") ? entryInt(entries.get("length")) : expected;
  if (offset === undefined || length === undefined) {
    throw refuse(`has a bad offset or length ('${entries.get("offset")}', '${entries.get("length")}')`);
  }
  if (length !== expected) throw refuse(`has length ${length}, but the tensor needs ${expected} bytes`);
  if (offset + length > info.size) {
    throw refuse(`range [${offset}, ${offset + length}) is outside the file (${info.size} bytes)`);
  }
  const bytes = new Uint8Array(length);
  using f = Deno.openSync(file, { read: true });
  if (!readAt(f, offset, bytes)) throw refuse("ended before the data did");
  return bytes;
}
