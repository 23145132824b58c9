import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BridgeError, describeError } from "../../src/util/errors.js";
import type { Logger } from "../../src/util/log.js";
import { routes, type Route } from "./routes.js";
import { pageRoutes } from "./page-routes.js";
import { SECURITY_HEADERS, staticFiles, type StaticFiles } from "./static.js";
import type { AdminDeps } from "./types.js";

export interface AdminServer {
  readonly url: string;
  close(): Promise<void>;
}

/** A failed admin request: HTTP status and a stable error code for the JSON body. */
export class AdminError extends BridgeError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message);
  }
}

const MAX_BODY = 32 * 1024 * 1024;

export interface AdminServerOptions {
  readonly token: string;
  readonly port?: number;
  readonly deps: AdminDeps;
  readonly logger: Logger;
  /**
   * Also serve the page that plays the WhatsApp side (simulator/web/) at `/`, opened as
   * `<url>/#token=<token>`. The page and its script hold no data; everything it shows comes from
   * the API below, with the token in the Authorization header.
   */
  readonly web?: boolean;
  /**
   * Whether `GET /_test/verification-codes/*` answers without the token, as Appendix A specifies
   * for provider test suites (default). The bridge's embedded simulator turns it off: there the
   * codes protect logins of the bridge's own users and are read through the token like the rest.
   */
  readonly publicCodes?: boolean;
}

/**
 * The simulator's admin API: JSON over HTTP on loopback only, every request with
 * `Authorization: Bearer <token>` except (unless `publicCodes` is false) the verification-code
 * endpoint of Appendix A, which provider test suites call as specified there. Requests whose
 * `Host` is not this loopback address are refused, so that a web page that rebinds its own name
 * to 127.0.0.1 cannot talk to it.
 */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const log = options.logger.child({ component: "admin-api" });
  const publicCodes = options.publicCodes ?? true;
  const table = [...routes(options.deps), ...pageRoutes(options.deps)].map((r) =>
    publicCodes ? r : { ...r, public: false },
  );
  const files = options.web === true ? await staticFiles() : undefined;
  let port = 0;
  const server = createServer((req, res) => {
    handle({ table, token: options.token, files, port }, req, res).catch((err: unknown) => {
      log.warn({ err: describeError(err) }, "admin request failed");
      if (!res.headersSent) send(res, 500, { error: "internal", message: describeError(err) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new BridgeError(
              "port-in-use",
              `the simulator's admin API cannot listen on 127.0.0.1:${options.port ?? 0}: the port is in use`,
            )
          : err,
      ),
    );
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

interface Served {
  readonly table: readonly Route[];
  readonly token: string;
  readonly files: StaticFiles | undefined;
  readonly port: number;
}

async function handle(s: Served, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { table, token } = s;
  const host = req.headers.host ?? "";
  if (host !== `127.0.0.1:${s.port}` && host !== `localhost:${s.port}`) {
    send(res, 421, { error: "wrong-host", message: "only http://127.0.0.1 is served" });
    return;
  }
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const method = req.method ?? "GET";
  const file = s.files?.get(url.pathname);
  if (file !== undefined && (method === "GET" || method === "HEAD")) {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": file.type,
      "content-length": file.body.length,
    });
    res.end(method === "HEAD" ? undefined : file.body);
    return;
  }
  let match: { route: Route; params: string[] } | undefined;
  let pathKnown = false;
  for (const route of table) {
    const m = route.path.exec(url.pathname);
    if (m === null) continue;
    pathKnown = true;
    if (route.method === method) {
      match = { route, params: m.slice(1) };
      break;
    }
  }
  if (match === undefined) {
    send(res, pathKnown ? 405 : 404, {
      error: pathKnown ? "method-not-allowed" : "not-found",
      message: `${method} ${url.pathname}`,
    });
    return;
  }
  if (!match.route.public && !authorized(req, token)) {
    send(res, 401, { error: "unauthorized", message: "missing or wrong bearer token" });
    return;
  }
  try {
    const body = method === "GET" || method === "DELETE" ? undefined : await readJson(req);
    const params = match.params.map(decodeParam);
    const result = await match.route.run({ params, query: url.searchParams, body });
    if (result.raw !== undefined) {
      res.writeHead(result.status ?? 200, {
        ...SECURITY_HEADERS,
        "content-type": result.raw.type,
        "content-length": result.raw.data.length,
        // Bytes a simulated user received: shown by the page, never run as a document.
        "content-disposition": "attachment",
      });
      res.end(result.raw.data);
      return;
    }
    send(res, result.status ?? 200, result.body ?? {});
  } catch (err) {
    if (err instanceof AdminError) {
      send(res, err.status, { error: err.code, message: err.message });
    } else if (err instanceof BridgeError) {
      send(res, statusFor(err.code), { error: err.code, message: err.message });
    } else {
      throw err;
    }
  }
}

/** A path parameter, decoded; a broken percent-encoding (e.g. `%E0%A4%A`) is a 400. */
function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new AdminError(400, "invalid-request", "a path segment is not valid percent-encoding");
  }
}

/** Compares digests, so that neither the token's bytes nor its length show in the timing. */
function authorized(req: IncomingMessage, token: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();
  return timingSafeEqual(digest(req.headers.authorization ?? ""), digest(`Bearer ${token}`));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new AdminError(413, "too-large", "request body too large");
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AdminError(400, "bad-json", "the request body is not JSON");
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** HTTP status of a simulator error code: missing things 404, state conflicts 409, else 422. */
function statusFor(code: string): number {
  if (code.startsWith("no-such-")) return 404;
  if (code === "user-exists" || code === "device-exists") return 409;
  return 422;
}
