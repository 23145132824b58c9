import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../../src/util/log.js";
import { authenticate, type Requester } from "./auth.js";
import type { HomeserverCore } from "./core.js";
import { MatrixError } from "./errors.js";
import { Router, type Handler, type HsReply, type HsRequest } from "./router.js";

type ClientVersion = "r0" | "v3" | "v1";
export type AuthedHandler = (req: HsRequest, who: Requester) => Promise<HsReply> | HsReply;

/** What route modules register against: the core plus helpers that apply the profile's prefixes. */
export class RouteContext {
  readonly router = new Router();

  constructor(readonly core: HomeserverCore) {}

  /**
   * A client-server endpoint under `/_matrix/client/{version}`. Synapse serves `r0` beside `v3`;
   * the current spec only `v3` (HOMESERVERS.md).
   */
  client(
    method: string,
    path: string,
    handler: Handler,
    versions: ClientVersion[] = ["r0", "v3"],
  ): void {
    for (const version of versions) {
      if (version === "r0" && this.core.profile === "spec") continue;
      this.router.add(method, `/_matrix/client/${version}${path}`, handler);
    }
  }

  /** A client-server endpoint that needs an access token. */
  authed(method: string, path: string, handler: AuthedHandler, versions?: ClientVersion[]): void {
    this.client(method, path, (req) => handler(req, authenticate(this.core, req)), versions);
  }
}

export interface ServerOptions {
  host: string;
  port: number;
  logger: Logger;
}

/** Reads the body, keeping at most `cap` bytes (the rest is drained so the reply can still be sent). */
async function readBody(
  req: IncomingMessage,
  cap: number,
): Promise<{ body: Buffer; tooLarge: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > cap) tooLarge = true;
    else chunks.push(chunk);
  }
  return { body: Buffer.concat(chunks), tooLarge };
}

export function startHttpServer(ctx: RouteContext, options: ServerOptions): Promise<Server> {
  const { core } = ctx;
  const log = options.logger;
  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      log.error({ err, url: req.url }, "test homeserver failed to answer");
      if (!res.headersSent)
        send(res, { status: 500, json: { errcode: "M_UNKNOWN", error: String(err) } });
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (core.outage !== undefined && "unreachable" in core.outage) {
      // Dropped unanswered: the client sees a connection reset, as from a server that is gone.
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    if (method === "OPTIONS") {
      send(res, { status: 204 });
      return;
    }
    const { body, tooLarge } = await readBody(req, core.media.maxUploadBytes + 1);
    if (core.outage !== undefined && !("unreachable" in core.outage)) {
      const status = core.outage.status ?? 500;
      send(res, { status, json: { errcode: "M_UNKNOWN", error: "The homeserver is down" } });
      return;
    }
    const abort = new AbortController();
    res.on("close", () => abort.abort());
    let reply: HsReply;
    const fault = clientFault(core, method, url, req.headers.authorization);
    if (fault !== undefined) {
      log.debug({ method, path: url.pathname, status: fault.status }, "request faulted");
      send(res, fault);
      return;
    }
    try {
      const match = ctx.router.match(method, url.pathname);
      if (match === undefined) throw unrecognized(core.profile, url.pathname);
      if (match === "method")
        throw new MatrixError(405, "M_UNRECOGNIZED", `Method ${method} not allowed`);
      const hsReq: HsRequest = {
        method,
        path: url.pathname,
        params: match.params,
        query: url.searchParams,
        headers: req.headers,
        body,
        bodyTooLarge: tooLarge,
        signal: abort.signal,
      };
      reply = await match.handler(hsReq);
    } catch (err) {
      if (!(err instanceof MatrixError)) throw err;
      reply = { status: err.status, json: err.toJson() };
    }
    log.debug({ method, path: url.pathname, status: reply.status ?? 200 }, "request");
    send(res, reply);
  }

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}

/** The injected answer for a client-server or media request, when a fault injector wants one. */
function clientFault(
  core: HomeserverCore,
  method: string,
  url: URL,
  authorization: string | undefined,
): HsReply | undefined {
  const injector = core.clientFaultInjector;
  if (injector === undefined) return undefined;
  if (!/^\/_matrix\/(client|media)\//.test(url.pathname)) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? "")?.[1];
  const token = bearer ?? url.searchParams.get("access_token") ?? undefined;
  const appservice = token === undefined ? undefined : core.appservices.byToken(token);
  const fault = injector({ method, path: url.pathname, appserviceId: appservice?.id });
  if (fault === undefined) return undefined;
  if (fault.status !== 429) {
    return { status: fault.status, json: { errcode: "M_UNKNOWN", error: "Injected failure" } };
  }
  const retryAfterMs = fault.retryAfterMs ?? 1000;
  return {
    status: 429,
    json: { errcode: "M_LIMIT_EXCEEDED", error: "Too many requests", retry_after_ms: retryAfterMs },
    headers: { "retry-after": String(Math.ceil(retryAfterMs / 1000)) },
  };
}

/** Synapse 1.67 answered unknown endpoints 400, later versions and the spec 404 (HOMESERVERS.md). */
function unrecognized(profile: string, path: string): MatrixError {
  return new MatrixError(
    profile === "synapse-1.67" ? 400 : 404,
    "M_UNRECOGNIZED",
    `Unrecognized request: ${path}`,
  );
}

function send(res: ServerResponse, reply: HsReply): void {
  const headers: Record<string, string> = { "access-control-allow-origin": "*" };
  if (reply.binary !== undefined) {
    res.writeHead(reply.status ?? 200, {
      ...headers,
      "content-type": reply.binary.contentType,
      "content-length": String(reply.binary.data.length),
      ...reply.binary.headers,
    });
    res.end(reply.binary.data);
    return;
  }
  if (reply.json === undefined) {
    res.writeHead(reply.status ?? 200, headers);
    res.end();
    return;
  }
  const text = JSON.stringify(reply.json);
  res.writeHead(reply.status ?? 200, {
    ...headers,
    ...reply.headers,
    "content-type": "application/json",
  });
  res.end(text);
}

export function serverUrl(server: Server): string {
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
