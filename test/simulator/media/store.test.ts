import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { MediaStore, SlotRefusedError, type IssuedSlot } from "../../../simulator/media/store.js";
import { parseRange } from "../../../simulator/media/handlers.js";
import { rawRequest, tempDir } from "../../interop/media/support.js";

describe("simulator media store (§14)", () => {
  let dir: { path: string; cleanup: () => Promise<void> };
  let store: MediaStore;
  let now: number;

  const put = (slot: IssuedSlot, body: Buffer, headers: Record<string, string> = {}) =>
    rawRequest(slot.putUrl, {
      method: "PUT",
      headers: {
        Authorization: slot.headers[0]?.value ?? "",
        "Content-Type": "application/octet-stream",
        ...headers,
      },
      body,
    });

  beforeEach(async () => {
    dir = await tempDir("media-store-");
    now = Date.parse("2025-03-01T12:00:00.000Z");
    store = await MediaStore.start({
      dataDir: dir.path,
      now: () => now,
      limits: {
        maxBytes: { image: 1000, video: 1000, audio: 1000, document: 5000 },
        uploadsPerHour: 3,
      },
    });
  });

  afterEach(async () => {
    await store.close();
    await dir.cleanup();
  });

  describe("slots", () => {
    it("issues loopback URLs with 128-bit capability ids, a bearer header and a 300 s validity", () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "alice@p.example" });
      assert.match(store.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(slot.putUrl, new RegExp(`^${store.origin}/media/up/[0-9a-f]{32}$`));
      assert.match(slot.getUrl, new RegExp(`^${store.origin}/media/b/[0-9a-f]{32}$`));
      assert.equal(slot.headers.length, 1);
      assert.match(slot.headers[0]?.value ?? "", /^Bearer [A-Za-z0-9_-]{22}$/);
      assert.equal(slot.expires.getTime(), now + 300_000);
      const other = store.createSlot({ kind: "image", size: 42, owner: "alice@p.example" });
      assert.notEqual(other.getUrl, slot.getUrl);
    });

    it("refuses an unknown kind and size 0 as bad-request", () => {
      const isBadRequest = (err: unknown) =>
        err instanceof SlotRefusedError && err.refusal === "bad-request";
      assert.throws(
        () => store.createSlot({ kind: "sticker", size: 42, owner: "a" }),
        isBadRequest,
      );
      assert.throws(() => store.createSlot({ kind: "image", size: 0, owner: "a" }), isBadRequest);
    });

    it("refuses a blob above the kind's limit as too-large with the maximum", () => {
      assert.throws(
        () => store.createSlot({ kind: "image", size: 1001, owner: "a" }),
        (err: unknown) =>
          err instanceof SlotRefusedError &&
          err.refusal === "too-large" &&
          err.details.max === 1000,
      );
      assert.ok(store.createSlot({ kind: "document", size: 1001, owner: "a" }));
    });

    it("limits slots per owner per hour, with retry-after counted from the oldest slot", () => {
      for (let i = 0; i < 3; i++) {
        store.createSlot({ kind: "image", size: 26, owner: "alice" });
        now += 60_000;
      }
      assert.throws(
        () => store.createSlot({ kind: "image", size: 26, owner: "alice" }),
        (err: unknown) =>
          err instanceof SlotRefusedError &&
          err.refusal === "rate-limited" &&
          err.details.retryAfterSeconds === 3420 &&
          err.retryAt?.getTime() === now + 3_420_000,
      );
      assert.ok(
        store.createSlot({ kind: "image", size: 26, owner: "bob" }),
        "other owners are not affected",
      );
      now += 3_420_000;
      assert.ok(
        store.createSlot({ kind: "image", size: 26, owner: "alice" }),
        "the oldest slot left the window",
      );
    });
  });

  describe("PUT", () => {
    it("stores exactly the body on disk and answers 201", async () => {
      const body = randomBytes(42);
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      assert.equal((await put(slot, body)).status, 201);
      const files = await readdir(dir.path);
      assert.equal(files.length, 1);
      assert.deepEqual(await readFile(join(dir.path, files[0] ?? "")), body);
    });

    it("answers 400 when the length differs from the slot size, and the slot stays usable", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      assert.equal((await put(slot, randomBytes(41))).status, 400);
      assert.equal((await put(slot, randomBytes(43))).status, 400);
      assert.equal((await put(slot, randomBytes(42))).status, 201);
    });

    it("answers 400 for a chunked body longer than the slot", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      const res = await put(slot, randomBytes(100), { "Transfer-Encoding": "chunked" });
      assert.equal(res.status, 400);
      assert.deepEqual(await readdir(dir.path), []);
    });

    it("answers 401 without authorization and 403 with a wrong token", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      const noAuth = await rawRequest(slot.putUrl, { method: "PUT", body: randomBytes(42) });
      assert.equal(noAuth.status, 401);
      assert.equal(
        (await put(slot, randomBytes(42), { Authorization: "Bearer wrong" })).status,
        403,
      );
      const other = store.createSlot({ kind: "image", size: 42, owner: "a" });
      assert.equal(
        (await put(slot, randomBytes(42), { Authorization: other.headers[0]?.value ?? "" })).status,
        403,
      );
    });

    it("answers 409 to a second upload into the same slot", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      assert.equal((await put(slot, randomBytes(42))).status, 201);
      assert.equal((await put(slot, randomBytes(42))).status, 409);
    });

    it("answers 410 once the slot expired", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      now += 300_000;
      assert.equal((await put(slot, randomBytes(42))).status, 410);
    });

    it("answers 413 for a body above the kind's limit", async () => {
      const slot = store.createSlot({ kind: "image", size: 42, owner: "a" });
      assert.equal((await put(slot, randomBytes(1001))).status, 413);
      const chunked = await put(slot, randomBytes(1001), { "Transfer-Encoding": "chunked" });
      assert.equal(chunked.status, 413);
    });

    it("answers 404 for an unknown slot", async () => {
      const res = await rawRequest(`${store.origin}/media/up/${"0".repeat(32)}`, {
        method: "PUT",
        body: Buffer.alloc(1),
      });
      assert.equal(res.status, 404);
    });
  });

  describe("GET", () => {
    let slot: IssuedSlot;
    let body: Buffer;
    beforeEach(async () => {
      body = randomBytes(100);
      slot = store.createSlot({ kind: "document", size: 100, owner: "a" });
      assert.equal((await put(slot, body)).status, 201);
    });

    it("serves the blob any number of times without credentials", async () => {
      for (let i = 0; i < 3; i++) {
        const res = await rawRequest(slot.getUrl);
        assert.equal(res.status, 200);
        assert.equal(res.headers["content-type"], "application/octet-stream");
        assert.deepEqual(res.body, body);
      }
    });

    it("answers 404 for an unknown blob and for a slot not yet uploaded", async () => {
      assert.equal((await rawRequest(`${store.origin}/media/b/${"1".repeat(32)}`)).status, 404);
      const empty = store.createSlot({ kind: "document", size: 100, owner: "a" });
      assert.equal((await rawRequest(empty.getUrl)).status, 404);
    });

    it("answers 410 after the retention period, and the sweep removes the file", async () => {
      now += 2_592_000_000 - 1;
      assert.equal((await rawRequest(slot.getUrl)).status, 200);
      now += 1;
      assert.equal((await rawRequest(slot.getUrl)).status, 410);
      assert.deepEqual(await store.sweep(), { blobsRemoved: 1, slotsForgotten: 0 });
      assert.deepEqual(await readdir(dir.path), []);
      assert.equal((await rawRequest(slot.getUrl)).status, 410);
    });

    it("forgets slots that expired unused only after a retention period", async () => {
      const unused = store.createSlot({ kind: "image", size: 26, owner: "a" });
      now += 300_000;
      assert.deepEqual(await store.sweep(), { blobsRemoved: 0, slotsForgotten: 0 });
      assert.equal((await put(unused, randomBytes(26))).status, 410);
      now += 2_592_000_000;
      const swept = await store.sweep();
      assert.equal(swept.slotsForgotten, 1);
    });

    it("supports single byte ranges with 206 and 416", async () => {
      const part = await rawRequest(slot.getUrl, { headers: { Range: "bytes=10-19" } });
      assert.equal(part.status, 206);
      assert.equal(part.headers["content-range"], "bytes 10-19/100");
      assert.deepEqual(part.body, body.subarray(10, 20));
      const tail = await rawRequest(slot.getUrl, { headers: { Range: "bytes=-5" } });
      assert.deepEqual(tail.body, body.subarray(95));
      const open = await rawRequest(slot.getUrl, { headers: { Range: "bytes=90-" } });
      assert.deepEqual(open.body, body.subarray(90));
      const beyond = await rawRequest(slot.getUrl, { headers: { Range: "bytes=100-" } });
      assert.equal(beyond.status, 416);
      assert.equal(beyond.headers["content-range"], "bytes */100");
    });

    it("ignores multiple or malformed ranges and serves the whole blob", () => {
      assert.equal(parseRange("bytes=0-1,5-6", 100), undefined);
      assert.equal(parseRange("items=0-1", 100), undefined);
      assert.equal(parseRange("bytes=9-3", 100), undefined);
      assert.deepEqual(parseRange("bytes=95-200", 100), { start: 95, end: 99 });
    });
  });

  it("streams a blob to disk without changing it (1 MB chunked upload)", async () => {
    const big = randomBytes(1_000_000);
    const slot = store.createSlot({ kind: "document", size: 5000, owner: "a" });
    store.setLimits({ maxBytes: { image: 1000, video: 1000, audio: 1000, document: 2_000_000 } });
    const bigSlot = store.createSlot({ kind: "document", size: big.length, owner: "b" });
    assert.equal((await put(bigSlot, big, { "Transfer-Encoding": "chunked" })).status, 201);
    const file = (await readdir(dir.path))[0] ?? "";
    assert.equal((await stat(join(dir.path, file))).size, big.length);
    assert.deepEqual((await rawRequest(bigSlot.getUrl)).body, big);
    assert.equal((await rawRequest(slot.getUrl)).status, 404);
  });
});
