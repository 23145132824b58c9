import { timingSafeEqual } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "../../src/util/log.js";
import { isExpired, type StoreContext } from "./state.js";

/*
 * HTTP semantics of the media store (§14.2). Bodies are streamed to disk and from disk; a blob is
 * never held in memory.
 */

export const PUT_PREFIX = "/media/up/";
export const GET_PREFIX = "/media/b/";

export function handleRequest(
  ctx: StoreContext,
  log: Logger,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const path = new URL(req.url ?? "/", "http://store.invalid").pathname;
  const route = path.startsWith(PUT_PREFIX)
    ? { id: path.slice(PUT_PREFIX.length), put: true }
    : path.startsWith(GET_PREFIX)
      ? { id: path.slice(GET_PREFIX.length), put: false }
      : undefined;
  if (route === undefined) return refuse(req, res, 404);
  if (route.put) {
    if (req.method !== "PUT") return refuse(req, res, 405, { Allow: "PUT" });
    handlePut(ctx, log, route.id, req, res).catch((err: unknown) => {
      log.warn({ err }, "media store PUT failed");
      if (!res.headersSent) refuse(req, res, 500);
      else res.destroy();
    });
    return;
  }
  if (req.method !== "GET" && req.method !== "HEAD")
    return refuse(req, res, 405, { Allow: "GET, HEAD" });
  handleGet(ctx, route.id, req, res);
}

async function handlePut(
  ctx: StoreContext,
  log: Logger,
  id: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const entry = ctx.entries.get(id);
  if (entry === undefined) return refuse(req, res, 404);
  const auth = req.headers.authorization;
  if (auth === undefined) return refuse(req, res, 401, { "WWW-Authenticate": "Bearer" });
  if (!sameSecret(auth, `Bearer ${entry.token}`)) return refuse(req, res, 403);
  if (entry.state !== "open") return refuse(req, res, 409);
  if (ctx.now() >= entry.slotExpires) return refuse(req, res, 410);
  const limit = ctx.limits().maxBytes[entry.kind];
  const declared = req.headers["content-length"];
  const length = declared === undefined ? undefined : Number(declared);
  if (length !== undefined && length > limit) return refuse(req, res, 413);
  if (length !== undefined && length !== entry.size) return refuse(req, res, 400);

  entry.state = "uploading";
  const part = ctx.partPath(id);
  // Without a Content-Length the size is only known while reading: a body that runs over is
  // drained rather than stored, and refused once the partial file is gone.
  const counter = new CountingStream(entry.size, limit);
  try {
    await pipeline(req, counter, createWriteStream(part, { flags: "w", mode: 0o600 }));
  } catch (err) {
    // The client went away mid-body: nobody is left to answer, and the slot may be retried.
    log.debug({ err }, "media upload aborted");
    entry.state = "open";
    await rm(part, { force: true });
    res.destroy();
    return;
  }
  const refusal = counter.refused ?? (counter.count === entry.size ? undefined : 400);
  if (refusal !== undefined) {
    entry.state = "open";
    await rm(part, { force: true });
    return refuse(req, res, refusal);
  }
  await rename(part, ctx.blobPath(id));
  entry.state = "stored";
  entry.uploadedAt = ctx.now();
  res.writeHead(201, { "Content-Length": "0" }).end();
}

function handleGet(ctx: StoreContext, id: string, req: IncomingMessage, res: ServerResponse): void {
  const entry = ctx.entries.get(id);
  if (entry === undefined || entry.state === "open" || entry.state === "uploading")
    return refuse(req, res, 404);
  if (entry.state === "gone" || isExpired(entry, ctx.limits().retentionSeconds, ctx.now())) {
    return refuse(req, res, 410);
  }
  const range = parseRange(req.headers.range, entry.size);
  const common = { "Content-Type": "application/octet-stream", "Accept-Ranges": "bytes" };
  if (range === "unsatisfiable") {
    res
      .writeHead(416, {
        ...common,
        "Content-Range": `bytes */${entry.size}`,
        "Content-Length": "0",
      })
      .end();
    return;
  }
  const { start, end } = range ?? { start: 0, end: entry.size - 1 };
  const headers: Record<string, string> = { ...common, "Content-Length": String(end - start + 1) };
  if (range !== undefined) headers["Content-Range"] = `bytes ${start}-${end}/${entry.size}`;
  res.writeHead(range === undefined ? 200 : 206, headers);
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  pipeline(createReadStream(ctx.blobPath(id), { start, end }), res).catch(() => res.destroy());
}

/**
 * One `bytes=` range (RFC 9110 §14.1.2); several ranges or a malformed header are ignored and the
 * whole blob is served, which the RFC allows.
 */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | "unsatisfiable" | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "" && last === "") return undefined;
  if (first === "") {
    const suffix = Number(last);
    if (suffix === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === "" ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== "" && Number(last) < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

/**
 * Answers before (or without) storing the body. The connection is not closed: closing a socket
 * with unread input sends a reset, which can destroy the answer before the client read it; the
 * body is drained instead, and a client that does not want to send it drops the connection.
 */
function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: Record<string, string> = {},
): void {
  req.resume();
  res.writeHead(status, { ...headers, "Content-Length": "0" }).end();
}

/** Counts body bytes, and drops them once the body is longer than the kind's limit or the slot. */
class CountingStream extends Transform {
  count = 0;
  refused: 400 | 413 | undefined;

  constructor(
    private readonly size: number,
    private readonly limit: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.count += chunk.length;
    if (this.refused === undefined && this.count > this.limit) this.refused = 413;
    else if (this.refused === undefined && this.count > this.size) this.refused = 400;
    if (this.refused === undefined) callback(null, chunk);
    else callback();
  }
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
