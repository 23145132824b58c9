import { BridgeError } from "../../util/errors.js";

/** How long one crypto request to the homeserver may take. */
const REQUEST_TIMEOUT_MS = 30_000;
/** How long a media upload or download may take (files of tens of megabytes). */
const MEDIA_TIMEOUT_MS = 10 * 60_000;

/** A homeserver's error answer, with its Matrix errcode for callers that branch on it. */
export class HomeserverError extends BridgeError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    readonly errcode: string | undefined,
    options: { retryAt?: Date } = {},
  ) {
    super(code, message, options);
  }
}

/**
 * The client-server requests of the crypto layer, made with a device's own access token (every
 * homeserver honours it; device masquerading needs an experimental Synapse flag). Errors are
 * typed once: 429 and 5xx and connection failures are transient, everything else permanent.
 */
export class CryptoHttp {
  constructor(
    private readonly homeserverUrl: string,
    private readonly timeoutMs = REQUEST_TIMEOUT_MS,
  ) {}

  async request(
    method: "GET" | "POST" | "PUT",
    path: string,
    token: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const response = await this.fetch(method, path, token, {
      ...(signal === undefined ? {} : { signal }),
      ...(body === undefined
        ? {}
        : {
            body: typeof body === "string" ? body : JSON.stringify(body),
            contentType: "application/json",
          }),
    });
    return this.answer(method, path, response);
  }

  /** Uploads a stream (media); resolves with the homeserver's JSON answer. */
  async upload(
    path: string,
    token: string,
    chunks: AsyncIterable<Uint8Array>,
    contentType: string,
  ): Promise<Record<string, unknown>> {
    const response = await this.fetch("POST", path, token, {
      body: streamBody(chunks),
      contentType,
      timeoutMs: MEDIA_TIMEOUT_MS,
    });
    return this.answer("POST", path, response);
  }

  /** A download as a stream of chunks; errors as {@link request}'s. */
  async download(path: string, token: string): Promise<AsyncIterable<Uint8Array>> {
    const response = await this.fetch("GET", path, token, { timeoutMs: MEDIA_TIMEOUT_MS });
    if (!response.ok || response.body === null) {
      await this.answer("GET", path, response);
      throw new BridgeError("homeserver-refused", `GET ${pathOnly(path)} answered no body`);
    }
    return response.body;
  }

  private async fetch(
    method: string,
    path: string,
    token: string,
    send: {
      body?: string | ReadableStream<Uint8Array>;
      contentType?: string;
      timeoutMs?: number;
      signal?: AbortSignal;
    },
  ): Promise<Response> {
    try {
      return await fetch(new URL(path, this.homeserverUrl), {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(send.contentType === undefined ? {} : { "content-type": send.contentType }),
        },
        ...(send.body === undefined ? {} : { body: send.body }),
        ...(send.body instanceof ReadableStream ? { duplex: "half" } : {}),
        signal: AbortSignal.any([
          AbortSignal.timeout(send.timeoutMs ?? this.timeoutMs),
          ...(send.signal === undefined ? [] : [send.signal]),
        ]),
      } as RequestInit);
    } catch (err) {
      throw new BridgeError("homeserver-unavailable", `${method} ${pathOnly(path)} failed`, {
        cause: err,
        retryAt: new Date(Date.now() + 1000),
      });
    }
  }

  private async answer(
    method: string,
    path: string,
    response: Response,
  ): Promise<Record<string, unknown>> {
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? {} : JSON.parse(text);
    } catch {
      parsed = {};
    }
    if (!response.ok) {
      const errcode = (parsed as { errcode?: unknown }).errcode;
      const transient = response.status === 429 || response.status >= 500;
      throw new HomeserverError(
        transient ? "homeserver-unavailable" : "homeserver-refused",
        `${method} ${pathOnly(path)} answered ${response.status} ${typeof errcode === "string" ? errcode : ""}`.trim(),
        response.status,
        typeof errcode === "string" ? errcode : undefined,
        transient ? { retryAt: new Date(Date.now() + 1000) } : {},
      );
    }
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  }
}

/** Streams `chunks` as the request body (no Content-Length: chunked transfer). */
function streamBody(chunks: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = chunks[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await iterator.next();
      if (next.done === true) controller.close();
      else controller.enqueue(next.value);
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

/** The path without its query (which may name users): what logs and errors may show. */
function pathOnly(path: string): string {
  return path.split("?")[0] ?? path;
}
