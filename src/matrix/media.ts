import { Readable } from "node:stream";
import type { Agent, Dispatcher } from "undici";
import { BridgeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";
import { silentLogger } from "../util/log.js";
import { transientWait } from "./retry.js";

interface MatrixMediaOptions {
  homeserverUrl: string;
  /** The appservice's as_token: the bot downloads; uploads masquerade with `?user_id=`. */
  asToken: string;
  maxBytes: number;
  log?: Logger;
  /** Time to the response headers and between body chunks. */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The homeserver's content repository, streamed both ways: a download is yielded chunk by chunk
 * as it arrives and an upload is sent as it is read, so no attachment is held whole in memory.
 *
 * Downloads and the config use the authenticated endpoints (`/_matrix/client/v1/media/*`, spec
 * v1.11) first: Synapse 1.120+ serves media uploaded since then only there. A homeserver without
 * them answers `M_UNRECOGNIZED` (Synapse 1.67 with HTTP 400, 1.92 with 404); then the legacy
 * `/_matrix/media/v3/*` is used, and remembered. Uploads stay on `/_matrix/media/v3/upload`,
 * which the spec keeps (it has no authenticated twin).
 */
export class MatrixMedia {
  private readonly base: string;
  /** Made on the first request: undici loads then, not at start (see src/matrix/http.ts). */
  private client: Promise<{ agent: Agent; request: typeof import("undici").request }> | undefined;
  private readonly log: Logger;
  private readonly timeoutMs: number;
  /** Learnt from the first `M_UNRECOGNIZED`; undefined until a request told. */
  private authenticated: boolean | undefined;

  constructor(private readonly options: MatrixMediaOptions) {
    this.base = options.homeserverUrl.replace(/\/+$/, "");
    this.log = options.log ?? silentLogger();
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  private undici(): Promise<{ agent: Agent; request: typeof import("undici").request }> {
    this.client ??= import("undici").then(({ Agent, request }) => ({
      agent: new Agent({ headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs }),
      request,
    }));
    return this.client;
  }

  /** The plaintext of `mxc://server/id`, as a stream bounded by `maxBytes`. */
  async download(mxc: string): Promise<AsyncIterable<Uint8Array>> {
    const match = /^mxc:\/\/([^/]+)\/([A-Za-z0-9_-]+)$/.exec(mxc);
    if (match === null) throw new BridgeError("media-invalid-uri", `not an mxc URI: ${mxc}`);
    const tail = `download/${encodeURIComponent(match[1] ?? "")}/${match[2] ?? ""}`;
    const res = await this.get(tail, "download");
    const length = Number(res.headers["content-length"]);
    if (Number.isFinite(length) && length > this.options.maxBytes) {
      res.body.destroy();
      throw tooLarge(this.options.maxBytes);
    }
    return bounded(res.body, this.options.maxBytes);
  }

  /** The homeserver's largest accepted upload (`m.upload.size`), if it says. */
  async uploadLimit(): Promise<number | undefined> {
    const res = await this.get("config", "config");
    const body = (await res.body.json()) as { "m.upload.size"?: unknown };
    const size = body["m.upload.size"];
    return typeof size === "number" ? size : undefined;
  }

  /**
   * Uploads `size` bytes read from `source` as `user` (a ghost of the appservice); resolves the
   * mxc URI. The size is sent as Content-Length (Synapse refuses uploads without one), so a
   * source that yields another count fails the upload rather than storing a truncated file.
   */
  async upload(options: {
    user: string;
    source: AsyncIterable<Uint8Array>;
    size: number;
    mimeType: string;
    fileName: string;
  }): Promise<string> {
    if (options.size > this.options.maxBytes) throw tooLarge(this.options.maxBytes);
    const url = new URL(`${this.base}/_matrix/media/v3/upload`);
    url.searchParams.set("filename", options.fileName);
    url.searchParams.set("user_id", options.user);
    let res: Dispatcher.ResponseData;
    const { agent, request } = await this.undici();
    try {
      res = await request(url, {
        method: "POST",
        dispatcher: agent,
        headers: {
          authorization: `Bearer ${this.options.asToken}`,
          "content-type": options.mimeType,
          "content-length": String(options.size),
        },
        body: Readable.from(exactly(options.source, options.size)),
      });
    } catch (err) {
      throw transportError("upload", err);
    }
    const body = (await res.body.json().catch(() => ({}))) as MatrixErrorBody & {
      content_uri?: unknown;
    };
    if (res.statusCode !== 200 || typeof body.content_uri !== "string") {
      throw httpError("upload", res.statusCode, body);
    }
    return body.content_uri;
  }

  async close(): Promise<void> {
    const client = this.client;
    if (client !== undefined) await (await client).agent.close();
  }

  /** GET of a media endpoint, authenticated first, legacy after `M_UNRECOGNIZED`. */
  private async get(tail: string, what: string): Promise<Dispatcher.ResponseData> {
    if (this.authenticated !== false) {
      const res = await this.send(`/_matrix/client/v1/media/${tail}`, what);
      if (res.statusCode === 200) {
        this.authenticated = true;
        return res;
      }
      const body = (await res.body.json().catch(() => ({}))) as MatrixErrorBody;
      if (body.errcode !== "M_UNRECOGNIZED") throw httpError(what, res.statusCode, body);
      this.authenticated = false;
      this.log.info(
        { status: res.statusCode },
        "the homeserver has no authenticated media; using the legacy media endpoints",
      );
    }
    const res = await this.send(`/_matrix/media/v3/${tail}`, what);
    if (res.statusCode === 200) return res;
    const body = (await res.body.json().catch(() => ({}))) as MatrixErrorBody;
    throw httpError(what, res.statusCode, body);
  }

  private async send(path: string, what: string): Promise<Dispatcher.ResponseData> {
    const { agent, request } = await this.undici();
    try {
      return await request(`${this.base}${path}`, {
        method: "GET",
        dispatcher: agent,
        headers: { authorization: `Bearer ${this.options.asToken}` },
      });
    } catch (err) {
      throw transportError(what, err);
    }
  }
}

interface MatrixErrorBody {
  errcode?: unknown;
  error?: unknown;
}

function tooLarge(max: number): BridgeError {
  return new BridgeError("media-too-large", `media larger than ${max} bytes`);
}

function transportError(what: string, err: unknown): BridgeError {
  const timeout = (err as { code?: unknown }).code?.toString().includes("TIMEOUT") === true;
  return new BridgeError(
    timeout ? "media-timeout" : "media-transport",
    `media ${what}: the homeserver could not be reached`,
    { cause: err },
  );
}

/** A refusal by the homeserver; `statusCode` lets the Matrix retry policy (retry.ts) judge it. */
class MediaHttpError extends BridgeError {
  constructor(
    code: string,
    message: string,
    readonly statusCode: number,
  ) {
    super(code, message);
  }
}

function httpError(what: string, status: number, body: MatrixErrorBody): MediaHttpError {
  const errcode = typeof body.errcode === "string" ? body.errcode : "M_UNKNOWN";
  // 429 and 5xx pass; anything else (404 M_NOT_FOUND, 403, 413) is final for this media, with a
  // reason the user can act on (the codes the core's notices know).
  if (status === 429 || status >= 500) {
    return new MediaHttpError(
      "media-transport",
      `media ${what}: HTTP ${status} ${errcode}`,
      status,
    );
  }
  if (status === 413) {
    return new MediaHttpError("media-too-large", `media ${what}: HTTP 413 ${errcode}`, status);
  }
  if (status === 404 || errcode === "M_NOT_FOUND") {
    return new MediaHttpError(
      "media-missing",
      "the attachment could not be found on the homeserver (it may have been deleted)",
      status,
    );
  }
  return new MediaHttpError(
    "media-unavailable",
    `the homeserver refused to hand out the attachment (${errcode}, HTTP ${status})`,
    status,
  );
}

/** For withMatrixRetries: HTTP answers as any Matrix request, a lost connection at once. */
export function mediaRetryWait(err: unknown): number | undefined {
  const wait = transientWait(err);
  if (wait !== undefined) return wait;
  const code = (err as { code?: unknown } | null)?.code;
  return code === "media-transport" || code === "media-timeout" ? 0 : undefined;
}

/** The body, failing with media-too-large as soon as it passes `max` (not after reading it all). */
async function* bounded(body: Readable, max: number): AsyncIterable<Uint8Array> {
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.byteLength;
      if (size > max) throw tooLarge(max);
      yield chunk;
    }
  } catch (err) {
    if (err instanceof BridgeError) throw err;
    throw new BridgeError(
      "media-transport",
      "media download: the connection failed while reading",
      {
        cause: err,
      },
    );
  } finally {
    body.destroy();
  }
}

/** `source`, checked to hold exactly `size` bytes. */
async function* exactly(
  source: AsyncIterable<Uint8Array>,
  size: number,
): AsyncIterable<Uint8Array> {
  let seen = 0;
  for await (const chunk of source) {
    seen += chunk.byteLength;
    if (seen > size)
      throw new BridgeError("media-size-mismatch", `media is longer than ${size} bytes`);
    yield chunk;
  }
  if (seen !== size) {
    throw new BridgeError("media-size-mismatch", `media is ${seen} bytes, announced ${size}`);
  }
}
