/**
 * The artifact's manifest (`manifest.json`): the format version and, for every file of the
 * artifact, its size and SHA-256. The runtime reads nothing the manifest does not list, refuses a
 * name that is not a plain file name inside the folder, and checks each file's size and checksum
 * before using it, so a truncated or altered file is an error naming it.
 */

import { ArtifactError, isPlainFileName } from "./plan.ts";

/** The manifest's file name in an artifact folder. */
export const MANIFEST_FILE = "manifest.json";

/** One file of the artifact. */
export interface ManifestEntry {
  /** Its size in bytes. */
  bytes: number;
  /** Its SHA-256, lowercase hex. */
  sha256: string;
}

/** The manifest. */
export interface Manifest {
  /** Always "sparrow-artifact". */
  format: "sparrow-artifact";
  /** The format version. */
  version: 1;
  /** Every file of the artifact, by plain file name. */
  files: Record<string, ManifestEntry>;
}

/** Parses and checks manifest.json's text; throws ArtifactError naming `file` and the bad entry. */
export function parseManifest(file: string, text: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(text);
  } catch (e) {
    throw new ArtifactError(file, `not JSON: ${(e as Error).message}`);
  }
  const bad = (what: string) => new ArtifactError(file, `bad manifest: ${what}`);
  if (m?.format !== "sparrow-artifact") throw bad(`'format' must be "sparrow-artifact"`);
  if (m.version !== 1) throw bad(`unsupported version ${m.version}`);
  if (typeof m.files !== "object" || m.files === null || Array.isArray(m.files)) {
    throw bad("'files' must be an object");
  }
  for (const [name, e] of Object.entries(m.files)) {
    if (!isPlainFileName(name)) throw bad(`${JSON.stringify(name)} is not a file name inside the artifact`);
    if (!Number.isSafeInteger(e?.bytes) || e.bytes < 0) throw bad(`'${name}': bytes`);
    if (typeof e.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(e.sha256)) throw bad(`'${name}': sha256`);
  }
  return m;
}

/** The manifest's entry for `name`; throws when the manifest does not list it. */
export function listed(manifestFile: string, m: Manifest, name: string): ManifestEntry {
  if (!isPlainFileName(name)) {
    throw new ArtifactError(manifestFile, `${JSON.stringify(name)} is not a file name inside the artifact`);
  }
  const e = Object.hasOwn(m.files, name) ? m.files[name] : undefined;
  if (!e) throw new ArtifactError(manifestFile, `'${name}' is not listed`);
  return e;
}

/** Lowercase hex of a digest. */
export function hex(digest: ArrayBuffer | Uint8Array): string {
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Checks `bytes` (the file `file`) against its manifest entry: size, then SHA-256. */
export async function checkBytes(file: string, entry: ManifestEntry, bytes: Uint8Array): Promise<void> {
  if (bytes.length !== entry.bytes) {
    throw new ArtifactError(
      file,
      `has ${bytes.length} bytes, the manifest says ${entry.bytes} (truncated or altered)`,
    );
  }
  const digest = hex(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  if (digest !== entry.sha256) throw new ArtifactError(file, `checksum mismatch (the file was altered)`);
}
