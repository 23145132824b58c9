import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { request, type IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";

/** A fresh temporary directory, removed by the returned cleanup. */
export async function tempDir(
  prefix = "media-test-",
): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** `total` pseudo-random bytes in chunks of awkward sizes, generated lazily (never one buffer). */
export function generatedStream(total: number, seed = 1, chunkSize = 65_537): Readable {
  const blocks: Buffer[] = [];
  let block = createHash("sha512").update(`seed-${seed}`).digest();
  for (let i = 0; i < 4096; i++) {
    block = createHash("sha512").update(block).digest();
    blocks.push(block);
  }
  const pattern = Buffer.concat(blocks); // 256 KiB
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(chunkSize, total - sent);
      const start = (sent * 7) % (pattern.length - chunkSize);
      sent += n;
      this.push(Buffer.from(pattern.subarray(start, start + n)));
    },
  });
}

export async function sha256OfStream(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest();
}

export const randomData = (n: number): Buffer => randomBytes(n);

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A plain HTTP exchange, to test the store's wire behaviour without the client's checks. */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: options.method ?? "GET",
      headers: options.headers ?? {},
      agent: false,
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.end(options.body);
  });
}
