import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { logger as sdkLogger } from "matrix-js-sdk/lib/logger.js";

export interface ApiAnswer {
  status: number;
  json: Record<string, unknown>;
}

/** A raw client-server call, so tests observe exactly what goes over the wire. */
export async function api(
  baseUrl: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; rawBody?: Buffer; contentType?: string } = {},
): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers["authorization"] = `Bearer ${options.token}`;
  let body: string | Uint8Array | undefined;
  if (options.rawBody !== undefined) {
    body = new Uint8Array(options.rawBody);
    headers["content-type"] = options.contentType ?? "application/octet-stream";
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] = "application/json";
  }
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  if (text !== "") {
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { raw: text };
    }
  }
  return { status: response.status, json };
}

export const enc = encodeURIComponent;

export interface AppserviceAnswer {
  status: number;
  body?: unknown;
}

export interface ReceivedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  authorization: string | undefined;
  body: Record<string, unknown>;
}

/** A tiny appservice endpoint recording what the homeserver sends it. */
export class FakeAppservice {
  readonly requests: ReceivedRequest[] = [];
  private server: Server | undefined;
  /** Answer for each request; 200 {} by default. */
  respond: (req: ReceivedRequest) => AppserviceAnswer | Promise<AppserviceAnswer> = () => ({
    status: 200,
    body: {},
  });

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      void readJson(req).then(async (body) => {
        const url = new URL(req.url ?? "/", "http://localhost");
        const received: ReceivedRequest = {
          method: req.method ?? "GET",
          path: url.pathname,
          query: url.searchParams,
          authorization: req.headers.authorization,
          body,
        };
        this.requests.push(received);
        const answer = await this.respond(received);
        res.writeHead(answer.status, { "content-type": "application/json" });
        res.end(JSON.stringify(answer.body ?? {}));
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  transactions(): ReceivedRequest[] {
    return this.requests.filter((r) => r.method === "PUT" && /\/transactions\/[^/]+$/.test(r.path));
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8");
  return text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
}

/** Polls `check` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(
  check: () => T | undefined,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * js-sdk logs sync internals (and known-harmless MatrixRTC errors) through loglevel loggers whose
 * children copy the root's method factory and force level DEBUG, so a no-op factory is the only
 * switch that silences them all; the tests assert outcomes instead.
 */
export function silenceMatrixSdk(): void {
  const root = sdkLogger as unknown as { methodFactory: unknown; rebuild(): void };
  root.methodFactory = () => () => undefined;
  root.rebuild();
}
