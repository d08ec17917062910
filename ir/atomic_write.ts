/** Writing files so that readers never see half of one: a temp file beside it, then a rename. */

import { dirname } from "node:path";

/**
 * Writes `data` to `path` atomically, creating the folder if needed: the text or bytes go to a
 * temp file in the same folder, which is then renamed over `path`; on failure the temp file is
 * removed and `path` is left as it was.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${crypto.randomUUID()}`;
  try {
    if (typeof data === "string") await Deno.writeTextFile(tmp, data, { createNew: true });
    else await Deno.writeFile(tmp, data, { createNew: true });
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}
