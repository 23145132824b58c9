import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MediaStore } from "../../../simulator/media/store.js";
import { DEFAULT_MEDIA_LIMITS } from "../../../src/interop/media/kinds.js";
import { downloadAndDecrypt } from "../../../src/interop/media/receive.js";
import { encryptAndUpload } from "../../../src/interop/media/send.js";
import { MediaTransferClient } from "../../../src/interop/media/transfer.js";
import { generatedStream, sha256OfStream, tempDir } from "./support.js";

const MB = 1024 * 1024;

// `npm test` runs this file in a mocha process of its own: memory growth measured in a process that
// has already run the whole suite (hundreds of servers, databases and caches) is noise, and the
// full-suite runs failed it.

/**
 * V8's collector, exposed at run time. Without it, buffers already released by the streams linger
 * as garbage (tens of MB for a plain file copy), which says nothing about what the code holds.
 * Collecting twice matters: array buffer memory is swept concurrently after a collection, and the
 * second collection waits for the first one's sweep.
 */
function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as unknown;
  assert.equal(typeof gc, "function", "gc could not be exposed");
  const collect = gc as () => void;
  return () => {
    collect();
    collect();
  };
}

const memory = (): number => {
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
};

describe("media at the document limit", () => {
  it("a 100 MB document streams through encryption, upload, download and verification without being held in memory", async function () {
    this.timeout(180_000);
    const total = 100_000_000; // blob 100 000 026 bytes, under max-document-bytes (104 857 600)
    const dir = await tempDir("media-large-");
    const store = await MediaStore.start({ dataDir: join(dir.path, "store") });
    const client = new MediaTransferClient({
      policy: () => ({ origins: [store.origin], limits: DEFAULT_MEDIA_LIMITS }),
      allowInsecureLoopback: true,
    });
    try {
      const gc = exposeGc();
      gc();
      const baseline = memory();
      // Live memory is sampled after a collection, while the transfer runs.
      let livePeak = 0;
      const sampler = setInterval(() => {
        gc();
        livePeak = Math.max(livePeak, memory() - baseline);
      }, 200);

      const sent = await encryptAndUpload(generatedStream(total, 11), {
        kind: "document",
        client,
        requestSlot: async (kind, size) =>
          store.createSlot({ kind, size, owner: "alice@matrix.bridge.example" }),
        workDir: dir.path,
      });
      const received = await downloadAndDecrypt(sent, {
        client,
        plaintextPath: join(dir.path, "received"),
      });

      clearInterval(sampler);
      gc();
      const retained = memory() - baseline;

      assert.equal(sent.blobLength, 100_000_026);
      assert.equal(received.size, total);
      assert.equal((await stat(received.path)).size, total);
      assert.deepEqual(received.sha256, await sha256OfStream(generatedStream(total, 11)));
      assert.deepEqual(
        (await readdir(dir.path)).sort(),
        ["received", "store"],
        "temporary blobs are removed",
      );
      assert.ok(
        livePeak < 32 * MB,
        `live heap + array buffers grew by ${(livePeak / MB).toFixed(1)} MB at peak`,
      );
      assert.ok(
        retained < 16 * MB,
        `heap + array buffers grew by ${(retained / MB).toFixed(1)} MB in the end`,
      );
    } finally {
      client.close();
      await store.close();
      await dir.cleanup();
    }
  });
});
