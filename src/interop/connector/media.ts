import { createReadStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import type { MediaOpener } from "../convert/index.js";
import type { ProviderMedia } from "../provider/media.js";

/**
 * Opens received media lazily (§14.4): each `open()` downloads, verifies and decrypts the blob
 * into a fresh temporary file under `workDir` and streams it; the file is removed once the stream
 * ends or is abandoned. Nothing is fetched for media the core never opens.
 */
export function mediaOpener(media: ProviderMedia, workDir: string): MediaOpener {
  return (item) => async () => {
    const dir = await mkdtemp(path.join(workDir, "wa-media-"));
    const file = path.join(dir, "plain");
    try {
      await media.download(item, file);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return streamThenRemove(file, dir);
  };
}

async function* streamThenRemove(file: string, dir: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of createReadStream(file)) yield chunk as Buffer;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
