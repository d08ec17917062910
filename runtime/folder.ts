/**
 * Reading an artifact from a folder, with `node:fs` and `node:crypto` (which Deno and Node both
 * provide): only regular files directly in the folder (never a link, FIFO or device), of the size
 * the manifest gives, the weights hashed as they stream into the shared memory.
 */

import { lstat, open, readFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { ManifestEntry } from "./manifest.ts";
import type { ArtifactReader, SizeCheck } from "./model.ts";
import { ArtifactError } from "./plan.ts";

/** A reader of the artifact in folder `dir`. */
export function folderReader(dir: string): ArtifactReader {
  const where = (name: string) => name === "" ? dir : join(dir, name);
  /** The size of regular file `name`; the error names it. */
  const sizeOf = async (name: string, what: string) => {
    const info = await lstat(where(name)).catch((e) => {
      throw new ArtifactError(where(name), `cannot ${what}: ${(e as Error).message}`);
    });
    if (!info.isFile()) throw new ArtifactError(where(name), "not a regular file inside the artifact");
    return info.size;
  };
  const mismatch = (name: string, size: number, bytes: number) =>
    new ArtifactError(where(name), `has ${size} bytes, the manifest says ${bytes} (truncated or altered)`);
  return {
    where,
    async read(name: string, check: SizeCheck): Promise<Uint8Array> {
      const size = await sizeOf(name, "read");
      if ("exactly" in check ? size !== check.exactly : size > check.atMost) {
        throw mismatch(name, size, "exactly" in check ? check.exactly : check.atMost);
      }
      return new Uint8Array(
        await readFile(where(name)).catch((e) => {
          throw new ArtifactError(where(name), `cannot read: ${(e as Error).message}`);
        }),
      );
    },
    async fillWeights(name: string, entry: ManifestEntry, into: Uint8Array): Promise<void> {
      const file = where(name);
      const size = await sizeOf(name, "open the weights");
      if (size !== into.length) {
        throw new ArtifactError(file, `the weights file has ${size} bytes, the plan expects ${into.length}`);
      }
      if (size !== entry.bytes) throw mismatch(name, size, entry.bytes);
      const f = await open(file, "r").catch((e) => {
        throw new ArtifactError(file, `cannot open the weights: ${(e as Error).message}`);
      });
      // The shared memory cannot be hashed in place: hash each chunk on its way in.
      const hash = createHash("sha256");
      try {
        const chunk = new Uint8Array(1 << 22);
        for (let n = 0; n < into.length;) {
          const { bytesRead } = await f.read(chunk, 0, Math.min(chunk.length, into.length - n), n);
          if (bytesRead === 0) throw new ArtifactError(file, "the weights file ended early");
          hash.update(chunk.subarray(0, bytesRead));
          into.set(chunk.subarray(0, bytesRead), n);
          n += bytesRead;
        }
      } finally {
        await f.close();
      }
      if (hash.digest("hex") !== entry.sha256) {
        throw new ArtifactError(file, "checksum mismatch (the file was altered)");
      }
    },
  };
}
