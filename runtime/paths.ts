/** Path helpers the runtime uses (node:path, and file URLs for dynamic imports). */

export { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

/** The file URL of an absolute path. */
export const toFileUrl = (path: string): URL => pathToFileURL(path);
