/**
 * The floor: what one bridged message cannot cost less than on this machine, measured in the same
 * process and run as the bridge figures. One message = one raw libsignal decrypt plus encrypt with
 * in-memory stores + one SQLite WAL commit of a prepared statement + one loopback HTTP round trip
 * over a keep-alive connection. Each part is timed alone, sequentially, after a warm-up.
 */
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import sqlite3 from "sqlite3";
import { connectPeers, memoryRelay, type Wire } from "./signal-memory.js";

export interface Floor {
  /** µs per message for each part, and their sum. */
  readonly cryptoUs: number;
  readonly commitUs: number;
  readonly httpUs: number;
  readonly totalUs: number;
  /** 1e6 / totalUs: messages per second per direction on one core. */
  readonly messagesPerSecond: number;
}

export async function measureFloor(count: number): Promise<Floor> {
  const cryptoUs = await cryptoCost(count);
  const commitUs = await commitCost(count);
  const httpUs = await httpCost(count);
  const totalUs = cryptoUs + commitUs + httpUs;
  return { cryptoUs, commitUs, httpUs, totalUs, messagesPerSecond: 1e6 / totalUs };
}

const warmupOf = (count: number) => Math.min(200, Math.floor(count / 5));

/** Raw libsignal: decrypt a message from one peer, encrypt it to another, in-memory stores. */
async function cryptoCost(count: number): Promise<number> {
  const relay = memoryRelay();
  const { p1, p2 } = await connectPeers(relay);
  const body = new Uint8Array(Buffer.from(`<envelope>${"x".repeat(300)}</envelope>`));
  const warmup = warmupOf(count);
  const inbound: Wire[] = [];
  for (let i = 0; i < warmup + count; i++) inbound.push(await p1.encrypt(relay.address, body));
  let start = 0;
  let last: Wire | undefined;
  for (let i = 0; i < inbound.length; i++) {
    if (i === warmup) start = performance.now();
    last = await relay.encrypt(p2, await relay.decrypt(p1, inbound[i] as Wire));
  }
  const us = ((performance.now() - start) * 1000) / count;
  // The output must be readable, or the figure means nothing.
  if (last !== undefined) await p2.decrypt(relay.address, last);
  return us;
}

/** One autocommitted INSERT of a prepared statement, WAL journal, synchronous=NORMAL (as the bridge). */
async function commitCost(count: number): Promise<number> {
  const dir = await mkdtemp(path.join(tmpdir(), "mwi-floor-"));
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened = new sqlite3.Database(path.join(dir, "floor.db"), (err) =>
      err === null ? resolve(opened) : reject(err),
    );
  });
  const exec = (sql: string) =>
    new Promise<void>((resolve, reject) =>
      db.exec(sql, (err) => (err === null ? resolve() : reject(err))),
    );
  try {
    await exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; " +
        "CREATE TABLE m (id INTEGER PRIMARY KEY, event_id TEXT UNIQUE, origin_id TEXT, at INTEGER)",
    );
    const insert = db.prepare("INSERT INTO m (event_id, origin_id, at) VALUES (?, ?, ?)");
    const run = (i: number) =>
      new Promise<void>((resolve, reject) =>
        insert.run(`$event-${i}`, `origin-${i}`, Date.now(), (err: Error | null) =>
          err === null ? resolve() : reject(err),
        ),
      );
    const warmup = warmupOf(count);
    let start = 0;
    for (let i = 0; i < warmup + count; i++) {
      if (i === warmup) start = performance.now();
      await run(i);
    }
    const us = ((performance.now() - start) * 1000) / count;
    await new Promise<void>((resolve) => insert.finalize(() => resolve()));
    return us;
  } finally {
    await new Promise<void>((resolve) => db.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
}

/** A small JSON PUT and its answer over loopback, http.request with a keep-alive agent. */
async function httpCost(count: number): Promise<number> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"event_id":"$x"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no loopback port");
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const body = JSON.stringify({ msgtype: "m.text", body: "x".repeat(300) });
  const once = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port: address.port,
          method: "PUT",
          path: `/_matrix/client/v3/rooms/!r:x/send/m.room.message/${i}`,
          agent,
          timeout: 10_000,
          headers: { "content-type": "application/json", "content-length": body.length },
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve());
        },
      );
      req.on("timeout", () => req.destroy(new Error("loopback round trip timed out")));
      req.on("error", reject);
      req.end(body);
    });
  try {
    const warmup = warmupOf(count);
    let start = 0;
    for (let i = 0; i < warmup + count; i++) {
      if (i === warmup) start = performance.now();
      await once(i);
    }
    return ((performance.now() - start) * 1000) / count;
  } finally {
    agent.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
