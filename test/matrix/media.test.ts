import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { AppServiceRegistration, Bridge } from "matrix-appservice-bridge";
import { IntentMatrixApi } from "../../src/matrix/gateway.js";
import { MatrixMedia } from "../../src/matrix/media.js";
import { createTestHomeserver, type TestHomeserver } from "../homeserver/index.js";

/** A homeserver played by hand, for what the test homeserver cannot do (answer slowly). */
async function rawServer(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ url: string; server: Server }> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server };
}

const versions = (res: ServerResponse) =>
  res
    .writeHead(200, { "content-type": "application/json" })
    .end(JSON.stringify({ versions: ["v1.11"] }));

/** The bridge's Matrix API on a Bridge pointed at `url` (no listener: only requests out). */
/**
 * Gateways (and their library bridges) opened by a test, closed after it: the media pool's
 * connections and the library's intent-culling timer would keep mocha's process alive.
 */
const opened: { api: IntentMatrixApi; bridge: Bridge }[] = [];

async function gatewayOn(url: string, maxBytes: number): Promise<IntentMatrixApi> {
  const registration = AppServiceRegistration.fromObject({
    id: "whatsapp",
    url: null,
    as_token: "as-token",
    hs_token: "hs-token",
    sender_localpart: "whatsappbot",
    rate_limited: false,
    namespaces: { users: [], rooms: [], aliases: [] },
  } as never);
  assert.ok(registration);
  const bridge = new Bridge({
    homeserverUrl: url,
    domain: "hs.test",
    registration,
    disableStores: true,
    controller: { onEvent: () => undefined },
  });
  await bridge.initialise();
  const api = new IntentMatrixApi({ bridge, domain: "hs.test", mediaMaxBytes: maxBytes });
  opened.push({ api, bridge });
  return api;
}

function within<T>(ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe("Matrix media", function () {
  this.timeout(30_000);
  let raw: Server | undefined;
  let hs: TestHomeserver | undefined;
  afterEach(async function () {
    for (const { api, bridge } of opened.splice(0)) {
      await api.close();
      await bridge.close();
    }
    raw?.closeAllConnections();
    raw?.close();
    raw = undefined;
    await hs?.stop();
    hs = undefined;
  });

  it("a download reaches the network chunk by chunk, before the homeserver has sent all of it", async function () {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const first = randomBytes(64 * 1024);
    const rest = randomBytes(64 * 1024);
    const started = await rawServer((req, res) => {
      if (req.url?.startsWith("/_matrix/client/versions")) return versions(res);
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write(first);
      void released.then(() => res.end(rest));
    });
    raw = started.server;
    const api = await gatewayOn(started.url, 10 * 1024 * 1024);
    const stream = await within(
      5_000,
      "the stream",
      api.openMedia({ mxc: "mxc://hs.test/abc" } as never),
    );
    const iterator = stream[Symbol.asyncIterator]();
    const head = await within(5_000, "the first chunk", iterator.next());
    assert.ok(!head.done && head.value.byteLength > 0);
    release();
    const chunks = [Buffer.from(head.value)];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      chunks.push(Buffer.from(next.value));
    }
    assert.deepEqual(Buffer.concat(chunks), Buffer.concat([first, rest]));
  });

  it("a download larger than the limit fails as too large without being read", async function () {
    const started = await rawServer((req, res) => {
      if (req.url?.startsWith("/_matrix/client/versions")) return versions(res);
      res.writeHead(200, { "content-length": String(5_000_000) });
      res.write(Buffer.alloc(1024));
    });
    raw = started.server;
    const api = await gatewayOn(started.url, 1_000_000);
    await assert.rejects(
      within(5_000, "the refusal", api.openMedia({ mxc: "mxc://hs.test/big" } as never)),
      { code: "media-too-large" },
    );
  });

  it("an upload is sent as it is read: the homeserver has the first bytes before the rest exists", async function () {
    let receivedFirst: () => void = () => undefined;
    const gotFirst = new Promise<void>((resolve) => (receivedFirst = resolve));
    let body = Buffer.alloc(0);
    let contentLength: string | undefined;
    const started = await rawServer((req, res) => {
      contentLength = req.headers["content-length"];
      req.on("data", (chunk: Buffer) => {
        body = Buffer.concat([body, chunk]);
        receivedFirst();
      });
      req.on("end", () => {
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ content_uri: "mxc://hs.test/up" }));
      });
    });
    raw = started.server;
    const media = new MatrixMedia({ homeserverUrl: started.url, asToken: "t", maxBytes: 1 << 20 });
    const first = randomBytes(32 * 1024);
    const second = randomBytes(32 * 1024);
    async function* source() {
      yield first;
      // The second half exists only once the homeserver has the first.
      await within(5_000, "the first bytes at the homeserver", gotFirst);
      yield second;
    }
    const uri = await media.upload({
      user: "@whatsapp_4915112345678:hs.test",
      source: source(),
      size: first.length + second.length,
      mimeType: "application/octet-stream",
      fileName: "x.bin",
    });
    assert.equal(uri, "mxc://hs.test/up");
    assert.equal(contentLength, String(first.length + second.length), "Synapse needs the length");
    assert.deepEqual(body, Buffer.concat([first, second]));
    await media.close();
  });

  for (const profile of ["synapse-1.67", "synapse-1.92", "synapse-current", "spec"] as const) {
    it(`${profile}: what a ghost uploads is downloaded again, and the upload limit is read`, async function () {
      hs = createTestHomeserver({ serverName: "hs.test", profile, maxUploadBytes: 4096 });
      await hs.start();
      const alice = hs.registerUser("alice");
      const media = new MatrixMedia({
        homeserverUrl: hs.url,
        asToken: alice.accessToken,
        maxBytes: 1 << 20,
      });
      const data = randomBytes(3000);
      const uri = await media.upload({
        user: alice.userId,
        source: (async function* () {
          yield data;
        })(),
        size: data.length,
        mimeType: "application/octet-stream",
        fileName: "d.bin",
      });
      const chunks: Buffer[] = [];
      for await (const chunk of await media.download(uri)) chunks.push(Buffer.from(chunk));
      assert.deepEqual(Buffer.concat(chunks), data);
      assert.equal(await media.uploadLimit(), 4096);
      await assert.rejects(media.download(`mxc://hs.test/missing`), { code: "media-missing" });
      await media.close();
    });
  }
});
