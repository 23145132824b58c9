import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { MediaStore } from "../../../simulator/media/store.js";
import {
  MediaIntegrityError,
  MediaTooLargeError,
  MediaTransferError,
  MediaUrlError,
} from "../../../src/interop/media/errors.js";
import {
  DEFAULT_MEDIA_LIMITS,
  type MediaKind,
  type MediaLimits,
} from "../../../src/interop/media/kinds.js";
import { encryptMediaBuffer } from "../../../src/interop/media/memory.js";
import type { UploadSlot } from "../../../src/interop/media/origin.js";
import { downloadAndDecrypt, type MediaReference } from "../../../src/interop/media/receive.js";
import { encryptAndUpload } from "../../../src/interop/media/send.js";
import { MediaTransferClient, type TransferOptions } from "../../../src/interop/media/transfer.js";
import { startTestServer, type TestServer } from "./servers.js";
import { tempDir } from "./support.js";

const STORE_LIMITS: MediaLimits = { image: 4096, video: 4096, audio: 4096, document: 1_000_000 };

const withCode = (code: string) => (err: unknown) =>
  err instanceof MediaTransferError && err.code === code;

describe("media transfer client against the simulator store (§14.2, §14.4)", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let store: MediaStore;
  let storeNow: number;
  let extra: TestServer[];
  let clients: MediaTransferClient[];
  let slotsRequested: number;

  const client = (
    over: Partial<TransferOptions> & { origins?: string[]; limits?: MediaLimits } = {},
  ) => {
    const { origins, limits, ...rest } = over;
    const c = new MediaTransferClient({
      policy: () => ({ origins: origins ?? [store.origin], limits: limits ?? STORE_LIMITS }),
      allowInsecureLoopback: true,
      retryDelayMs: 5,
      ...rest,
    });
    clients.push(c);
    return c;
  };
  const requestSlot = async (kind: MediaKind, blobLength: number): Promise<UploadSlot> => {
    slotsRequested++;
    return store.createSlot({ kind, size: blobLength, owner: "alice@matrix.bridge.example" });
  };
  const server = async (handler: Parameters<typeof startTestServer>[0]) => {
    const s = await startTestServer(handler);
    extra.push(s);
    return s;
  };
  /** A media reference as a `<media>` element would carry it, for a blob served from `url`. */
  const referenceFor = (
    url: string,
    plaintext: Buffer,
    kind: MediaKind = "document",
  ): MediaReference & { blob: Buffer } => {
    const enc = encryptMediaBuffer(plaintext, kind);
    return { ...enc, url };
  };

  beforeEach(async () => {
    dir = await tempDir("media-transfer-");
    storeNow = Date.now();
    store = await MediaStore.start({
      dataDir: join(dir.path, "store"),
      now: () => storeNow,
      limits: { maxBytes: STORE_LIMITS },
    });
    extra = [];
    clients = [];
    slotsRequested = 0;
  });

  afterEach(async () => {
    for (const c of clients) c.close();
    for (const s of extra) await s.close();
    await store.close();
    await dir.cleanup();
  });

  it("uploads an encrypted file and downloads it back to the same plaintext, leaving no temp files", async () => {
    const plaintext = randomBytes(300_001);
    const c = client();
    const sent = await encryptAndUpload(
      Readable.from([plaintext.subarray(0, 1000), plaintext.subarray(1000)]),
      {
        kind: "document",
        client: c,
        requestSlot,
        workDir: dir.path,
      },
    );
    assert.equal(sent.size, plaintext.length);
    assert.ok(sent.url.startsWith(`${store.origin}/media/b/`));
    const out = join(dir.path, "received.bin");
    const got = await downloadAndDecrypt(sent, { client: c, plaintextPath: out });
    assert.deepEqual(await readFile(got.path), plaintext);
    assert.deepEqual((await readdir(dir.path)).sort(), ["received.bin", "store"]);
  });

  it("sends exactly the slot's headers plus Content-Type and Content-Length", async () => {
    let seen: Record<string, string | string[] | undefined> = {};
    const s = await server((req, res) => {
      seen = req.headers;
      req.resume();
      req.on("end", () => res.writeHead(201).end());
    });
    const slot = {
      putUrl: `${s.origin}/up/1`,
      getUrl: `${s.origin}/b/1`,
      headers: [{ name: "Cookie", value: "c=1" }],
    };
    await client({ origins: [s.origin] }).upload(slot, "image", 26, () =>
      Readable.from([Buffer.alloc(26)]),
    );
    assert.equal(seen.cookie, "c=1");
    assert.equal(seen["content-type"], "application/octet-stream");
    assert.equal(seen["content-length"], "26");
    assert.equal(seen.authorization, undefined);
    const names = Object.keys(seen).sort();
    assert.deepEqual(names, ["connection", "content-length", "content-type", "cookie", "host"]);
  });

  describe("refusals before any request", () => {
    it("a slot at an origin that was not announced is refused and never contacted", async () => {
      const other = await server((_req, res) => res.writeHead(201).end());
      const slot = { putUrl: `${other.origin}/up/1`, getUrl: `${other.origin}/b/1`, headers: [] };
      await assert.rejects(
        client().upload(slot, "image", 26, () => Readable.from([Buffer.alloc(26)])),
        (err: unknown) => err instanceof MediaUrlError && err.refusal === "origin",
      );
      assert.equal(other.hits(), 0);
    });

    it("a download from an origin that was not announced is refused and never contacted", async () => {
      const other = await server((_req, res) => res.writeHead(200).end());
      const ref = referenceFor(`${other.origin}/media/b/x`, Buffer.from("hi"));
      await assert.rejects(
        downloadAndDecrypt(ref, { client: client(), plaintextPath: join(dir.path, "p") }),
        (err: unknown) => err instanceof MediaUrlError && err.refusal === "origin",
      );
      assert.equal(other.hits(), 0);
    });

    it("URLs with userinfo are refused", async () => {
      const url = store.origin.replace("http://", "http://user:pw@");
      const ref = referenceFor(`${url}/media/b/x`, Buffer.from("hi"));
      await assert.rejects(
        downloadAndDecrypt(ref, { client: client(), plaintextPath: join(dir.path, "p") }),
        (err: unknown) => err instanceof MediaUrlError && err.refusal === "userinfo",
      );
    });

    it("plain http is refused off loopback, and on loopback unless allowed", async () => {
      const ref = referenceFor("http://wa.example/media/b/x", Buffer.from("hi"));
      const c = client({ origins: ["http://wa.example"] });
      await assert.rejects(
        downloadAndDecrypt(ref, { client: c, plaintextPath: join(dir.path, "p") }),
        (err: unknown) => err instanceof MediaUrlError && err.refusal === "insecure",
      );
      const strict = client({ allowInsecureLoopback: false });
      await assert.rejects(
        downloadAndDecrypt(referenceFor(`${store.origin}/media/b/x`, Buffer.from("hi")), {
          client: strict,
          plaintextPath: join(dir.path, "p"),
        }),
        (err: unknown) => err instanceof MediaUrlError && err.refusal === "insecure",
      );
    });

    it("oversize media is refused with the limit before a slot is requested or the source is read", async () => {
      let read = false;
      const source = new Readable({
        read() {
          read = true;
          this.push(null);
        },
      });
      await assert.rejects(
        encryptAndUpload(source, {
          kind: "image",
          client: client(),
          requestSlot,
          workDir: dir.path,
          knownSize: 5000,
        }),
        (err: unknown) =>
          err instanceof MediaTooLargeError && err.code === "media-too-large" && err.limit === 4096,
      );
      assert.equal(read, false);
      await assert.rejects(
        encryptAndUpload(Readable.from([randomBytes(5000)]), {
          kind: "image",
          client: client(),
          requestSlot,
          workDir: dir.path,
        }),
        (err: unknown) => err instanceof MediaTooLargeError && err.limit === 4096,
      );
      assert.equal(slotsRequested, 0);
      assert.deepEqual(await readdir(dir.path), ["store"]);
    });

    it("a received size whose blob exceeds the kind's limit is refused before the GET", async () => {
      const s = await server((_req, res) => res.writeHead(200).end());
      const ref = { ...referenceFor(`${s.origin}/b/1`, Buffer.from("x"), "image"), size: 4096 };
      await assert.rejects(
        downloadAndDecrypt(ref, {
          client: client({ origins: [s.origin] }),
          plaintextPath: join(dir.path, "p"),
        }),
        (err: unknown) => err instanceof MediaTooLargeError && err.limit === 4096,
      );
      assert.equal(s.hits(), 0);
    });
  });

  describe("redirects", () => {
    it("a 302 on GET is not followed", async () => {
      const target = await server((_req, res) => res.writeHead(200).end("blob"));
      const redirector = await server((_req, res) =>
        res.writeHead(302, { Location: `${target.origin}/b/1` }).end(),
      );
      const c = client({ origins: [redirector.origin, target.origin] });
      await assert.rejects(
        c.download(`${redirector.origin}/b/1`, 1000, async () => undefined),
        withCode("media-redirect-refused"),
      );
      assert.equal(redirector.hits(), 1, "not retried either");
      assert.equal(target.hits(), 0);
    });

    it("a 307 on PUT is not followed", async () => {
      const target = await server((_req, res) => res.writeHead(201).end());
      const redirector = await server((req, res) => {
        req.resume();
        res.writeHead(307, { Location: `${target.origin}/up/1` }).end();
      });
      const c = client({ origins: [redirector.origin, target.origin] });
      const slot = {
        putUrl: `${redirector.origin}/up/1`,
        getUrl: `${target.origin}/b/1`,
        headers: [],
      };
      await assert.rejects(
        c.upload(slot, "image", 26, () => Readable.from([Buffer.alloc(26)])),
        withCode("media-redirect-refused"),
      );
      assert.equal(target.hits(), 0);
    });
  });

  describe("store answers", () => {
    const blob = (n: number) => () => Readable.from([randomBytes(n)]);

    it("a second upload into the same slot is media-already-uploaded (409)", async () => {
      const c = client();
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      await c.upload(slot, "image", 42, blob(42));
      await assert.rejects(
        c.upload(slot, "image", 42, blob(42)),
        (err: unknown) =>
          withCode("media-already-uploaded")(err) && (err as MediaTransferError).status === 409,
      );
    });

    it("an upload after the store's slot expiry is media-expired (410)", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      storeNow += 300_000;
      await assert.rejects(client().upload(slot, "image", 42, blob(42)), withCode("media-expired"));
    });

    it("a slot the client already knows to be expired is refused without a request", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      const late = client({ now: () => new Date(slot.expires.getTime() + 1) });
      await assert.rejects(late.upload(slot, "image", 42, blob(42)), withCode("media-expired"));
      await client().upload(slot, "image", 42, blob(42));
    });

    it("a body above the store's limit is media-too-large (413)", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      const lenient = client({ limits: { ...DEFAULT_MEDIA_LIMITS } });
      await assert.rejects(
        lenient.upload(slot, "image", 5000, blob(5000)),
        (err: unknown) => err instanceof MediaTooLargeError && err.limit === undefined,
      );
    });

    it("a length other than the slot's is media-bad-length (400), a wrong token media-unauthorized (403)", async () => {
      const c = client();
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      await assert.rejects(c.upload(slot, "image", 41, blob(41)), withCode("media-bad-length"));
      const forged = { ...slot, headers: [{ name: "Authorization", value: "Bearer forged" }] };
      await assert.rejects(
        c.upload(forged, "image", 42, blob(42)),
        (err: unknown) =>
          withCode("media-unauthorized")(err) && (err as MediaTransferError).status === 403,
      );
    });

    it("GET of an unknown blob is media-not-found, of an expired one media-expired", async () => {
      const c = client();
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      await assert.rejects(
        c.download(slot.getUrl, 42, async () => undefined),
        withCode("media-not-found"),
      );
      await c.upload(slot, "image", 42, blob(42));
      storeNow += 2_592_000_000;
      await assert.rejects(
        c.download(slot.getUrl, 42, async () => undefined),
        withCode("media-expired"),
      );
    });
  });

  describe("download cap and retries", () => {
    it("a declared Content-Length above the cap is refused before reading the body", async () => {
      const s = await server((_req, res) => {
        res.writeHead(200, { "Content-Length": "10000000" });
        res.write(Buffer.alloc(1000));
      });
      const c = client({ origins: [s.origin] });
      await assert.rejects(
        c.download(`${s.origin}/b`, 1018, async () => undefined),
        withCode("media-response-too-large"),
      );
      assert.equal(s.hits(), 1);
    });

    it("an endless chunked body is aborted once more than the blob length arrived", async () => {
      let written = 0;
      const s = await server((_req, res) => {
        res.writeHead(200);
        const pump = (): void => {
          while (!res.destroyed && written < 50_000_000) {
            written += 16_384;
            if (!res.write(Buffer.alloc(16_384))) {
              res.once("drain", pump);
              return;
            }
          }
          res.end();
        };
        pump();
      });
      const plaintext = Buffer.alloc(1000);
      const ref = referenceFor(`${s.origin}/b/1`, plaintext);
      await assert.rejects(
        downloadAndDecrypt(ref, {
          client: client({ origins: [s.origin] }),
          plaintextPath: join(dir.path, "p"),
        }),
        withCode("media-response-too-large"),
      );
      assert.ok(written < 50_000_000, `server stopped early (wrote ${written})`);
      assert.equal(s.hits(), 1, "an oversize answer is not retried");
      assert.deepEqual((await readdir(dir.path)).sort(), ["store"]);
    });

    it("transport failures are retried, and the blob is verified once it arrives whole", async () => {
      const plaintext = randomBytes(5000);
      const ref = referenceFor("", plaintext);
      const s = await server((req, res, hit) => {
        if (hit === 1) return req.socket.destroy();
        if (hit === 2) {
          res.writeHead(200, { "Content-Length": String(ref.blob.length) });
          res.write(ref.blob.subarray(0, 100));
          setImmediate(() => req.socket.destroy());
          return;
        }
        res.writeHead(200, { "Content-Length": String(ref.blob.length) }).end(ref.blob);
      });
      const got = await downloadAndDecrypt(
        { ...ref, url: `${s.origin}/b/1` },
        { client: client({ origins: [s.origin] }), plaintextPath: join(dir.path, "p") },
      );
      assert.deepEqual(await readFile(got.path), plaintext);
      assert.equal(s.hits(), 3);
    });

    it("gives up after 3 retries of transport failures", async () => {
      const s = await server((req) => req.socket.destroy());
      await assert.rejects(
        client({ origins: [s.origin] }).download(`${s.origin}/b`, 100, async () => undefined),
        withCode("media-transport"),
      );
      assert.equal(s.hits(), 4);
    });

    it("HTTP errors and integrity failures are not retried", async () => {
      const failing = await server((_req, res) => res.writeHead(500).end());
      await assert.rejects(
        client({ origins: [failing.origin] }).download(
          `${failing.origin}/b`,
          100,
          async () => undefined,
        ),
        withCode("media-http-status"),
      );
      assert.equal(failing.hits(), 1);

      const ref = referenceFor("", Buffer.from("a document"));
      const tampered = Buffer.from(ref.blob);
      tampered[0] = (tampered[0] ?? 0) ^ 1;
      const liar = await server((_req, res) => res.writeHead(200).end(tampered));
      await assert.rejects(
        downloadAndDecrypt(
          { ...ref, url: `${liar.origin}/b/1` },
          { client: client({ origins: [liar.origin] }), plaintextPath: join(dir.path, "p") },
        ),
        (err: unknown) => err instanceof MediaIntegrityError && err.reason === "enc-sha256",
      );
      assert.equal(liar.hits(), 1);
    });

    it("a store that never answers fails with media-timeout", async () => {
      const s = await server(() => undefined);
      const c = client({ origins: [s.origin], idleTimeoutMs: 100, maxRetries: 0 });
      await assert.rejects(
        c.download(`${s.origin}/b`, 100, async () => undefined),
        withCode("media-timeout"),
      );
    });
  });
});
