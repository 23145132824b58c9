import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import { MediaTransferError } from "./errors.js";

/*
 * One HTTP exchange with a media store, on node:http rather than fetch: node:http never follows
 * redirects (§14.2), lets us cap a response body as it arrives, and reuses connections through a
 * keep-alive Agent. Every request has an idle timeout and an overall deadline.
 */

export interface HttpAgents {
  readonly http: HttpAgent;
  readonly https: HttpsAgent;
}

export interface Deadlines {
  /** No byte in either direction for this long fails the request with `media-timeout`. */
  readonly idleTimeoutMs: number;
  /** The whole exchange, body included, must finish within this time. */
  readonly totalTimeoutMs: number;
}

export const createAgents = (): HttpAgents => ({
  http: new HttpAgent({ keepAlive: true, maxSockets: 16 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 16 }),
});

interface PutOutcome {
  readonly status: number;
}

/**
 * PUTs `body` with exactly `headers`. Resolves with the status as soon as the store answers; an
 * early refusal (413 while the body is still being sent) stops the upload instead of finishing it.
 */
export function putBody(
  url: URL,
  headers: OutgoingHttpHeaders,
  body: Readable,
  agents: HttpAgents,
  deadlines: Deadlines,
): Promise<PutOutcome> {
  return new Promise<PutOutcome>((resolve, reject) => {
    let answered = false;
    let bodySent = false;
    const req = startRequest(url, "PUT", headers, agents, deadlines, () => undefined);
    req.on("response", (res: IncomingMessage) => {
      answered = true;
      const status = res.statusCode ?? 0;
      res.on("error", () => undefined);
      res.resume();
      if (status === 201) {
        // The answer counts even if the connection drops before its (empty) body ends.
        res.on("close", () => resolve({ status }));
        return;
      }
      // The connection may still carry part of the body, so it must not be reused.
      if (!bodySent) req.destroy();
      resolve({ status });
    });
    req.on("finish", () => (bodySent = true));
    req.on("error", (err) => {
      if (!answered) reject(asTransportError(err, url, "PUT"));
    });
    body.on("error", (err) => {
      req.destroy();
      reject(err);
    });
    // A body left unread after a refusal or a failure would keep its file open.
    req.on("close", () => {
      if (!body.readableEnded) body.destroy();
    });
    body.pipe(req);
  });
}

interface GetOutcome {
  readonly status: number;
  /**
   * For 200, the body, capped: reading more than `maxLength` bytes fails with
   * `media-response-too-large`. For other statuses, an already discarded response.
   */
  readonly body: Readable;
}

/**
 * Starts a GET and resolves once the status line arrived. For status 200 the body stream is the
 * caller's to consume (transport failures while reading surface as typed errors on it); for any
 * other status the body is discarded and the connection dropped. A declared Content-Length above
 * `maxLength` is refused before any body byte is read.
 */
export function openGet(
  url: URL,
  maxLength: number,
  agents: HttpAgents,
  deadlines: Deadlines,
): Promise<GetOutcome> {
  return new Promise<GetOutcome>((resolve, reject) => {
    let answered = false;
    let capped: CappedStream | undefined;
    const req = startRequest(url, "GET", {}, agents, deadlines, (err) => capped?.destroy(err));
    req.on("error", (err) => {
      if (!answered) reject(asTransportError(err, url, "GET"));
      else capped?.destroy(asTransportError(err, url, "GET"));
    });
    req.on("response", (res: IncomingMessage) => {
      answered = true;
      const status = res.statusCode ?? 0;
      const declared = Number(res.headers["content-length"] ?? Number.NaN);
      if (status !== 200 || declared > maxLength) {
        res.on("error", () => undefined);
        res.resume();
        req.destroy();
        if (status === 200) reject(tooLarge(maxLength));
        else resolve({ status, body: res });
        return;
      }
      const body = new CappedStream(maxLength);
      capped = body;
      // Failures may happen before the caller attached its listeners; pipeline() and finished()
      // still see them through the stream's errored state.
      body.on("error", () => undefined);
      res.on("error", (err) => body.destroy(asTransportError(err, url, "GET")));
      // Once the body is gone (consumed, failed or abandoned), an unfinished response must not
      // leave its socket in the pool.
      body.on("close", () => {
        if (!res.complete) req.destroy();
      });
      res.pipe(body);
      resolve({ status, body });
    });
    req.end();
  });
}

function startRequest(
  url: URL,
  method: "GET" | "PUT",
  headers: OutgoingHttpHeaders,
  agents: HttpAgents,
  deadlines: Deadlines,
  onTimeout: (err: MediaTransferError) => void,
): ClientRequest {
  const secure = url.protocol === "https:";
  const send = secure ? httpsRequest : httpRequest;
  const agent = secure ? agents.https : agents.http;
  const req = send(url, { method, headers, agent, timeout: deadlines.idleTimeoutMs });
  const fail = (detail: string): void => {
    const err = new MediaTransferError("media-timeout", `${method} to ${url.origin}: ${detail}`);
    onTimeout(err);
    req.destroy(err);
  };
  req.on("timeout", () => fail(`no data for ${deadlines.idleTimeoutMs} ms`));
  const deadline = setTimeout(
    () => fail(`not finished within ${deadlines.totalTimeoutMs} ms`),
    deadlines.totalTimeoutMs,
  );
  deadline.unref();
  req.on("close", () => clearTimeout(deadline));
  return req;
}

class CappedStream extends Transform {
  private received = 0;

  constructor(private readonly maxLength: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.received += chunk.length;
    if (this.received > this.maxLength) callback(tooLarge(this.maxLength));
    else callback(null, chunk);
  }
}

const tooLarge = (maxLength: number): MediaTransferError =>
  new MediaTransferError(
    "media-response-too-large",
    `media store sent more than ${maxLength} bytes`,
  );

function asTransportError(err: unknown, url: URL, method: string): MediaTransferError {
  if (err instanceof MediaTransferError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new MediaTransferError(
    "media-transport",
    `${method} to ${url.origin} failed: ${detail}`,
    undefined,
    err,
  );
}
