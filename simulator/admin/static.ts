import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { BridgeError } from "../../src/util/errors.js";

/**
 * Headers on every answer of the admin server. The page's script is its only code: no inline
 * script or style, no other origin, no framing, no form posts, no referrer (the token lives in
 * the URL's fragment, which browsers never send, but a strict policy costs nothing).
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; " +
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; " +
    "frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

export interface StaticFile {
  readonly type: string;
  readonly body: Buffer;
}

export type StaticFiles = ReadonlyMap<string, StaticFile>;

const FILES: Readonly<Record<string, { file: string; type: string }>> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/index.html": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
  "/icon.svg": { file: "icon.svg", type: "image/svg+xml" },
};

/**
 * Where simulator/web/ is: beside this module when run from source (tsx), or in the package
 * root when run from the compiled dist/simulator/admin/ (tsc copies no assets).
 */
const CANDIDATES = ["../web/", "../../../simulator/web/"];

/** The page's files, read once at start: a fixed list, so no request names a path on disk. */
export async function staticFiles(): Promise<StaticFiles> {
  for (const dir of CANDIDATES) {
    const base = new URL(dir, import.meta.url);
    const files = new Map<string, StaticFile>();
    try {
      for (const [path, f] of Object.entries(FILES)) {
        files.set(path, {
          type: f.type,
          body: await readFile(fileURLToPath(new URL(f.file, base))),
        });
      }
      return files;
    } catch {
      continue;
    }
  }
  throw new BridgeError(
    "simulator-web-missing",
    `the simulator page's files (simulator/web/) are not installed beside ${fileURLToPath(import.meta.url)}`,
  );
}
