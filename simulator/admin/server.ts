import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BridgeError, describeError } from "../../src/util/errors.js";
import type { Logger } from "../../src/util/log.js";
import { routes, type Route } from "./routes.js";
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

/**
 * The simulator's admin API: JSON over HTTP on loopback only, every request with
 * `Authorization: Bearer <token>` except the verification-code endpoint of Appendix A, which
 * provider test suites call as specified there.
 */
export async function startAdminServer(options: {
  token: string;
  port?: number;
  deps: AdminDeps;
  logger: Logger;
}): Promise<AdminServer> {
  const log = options.logger.child({ component: "admin-api" });
  const table = routes(options.deps);
  const server = createServer((req, res) => {
    handle(table, options.token, req, res).catch((err: unknown) => {
      log.warn({ err: describeError(err) }, "admin request failed");
      if (!res.headersSent) send(res, 500, { error: "internal", message: describeError(err) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handle(
  table: readonly Route[],
  token: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const method = req.method ?? "GET";
  let match: { route: Route; params: string[] } | undefined;
  let pathKnown = false;
  for (const route of table) {
    const m = route.path.exec(url.pathname);
    if (m === null) continue;
    pathKnown = true;
    if (route.method === method) {
      match = { route, params: m.slice(1).map((p) => decodeURIComponent(p)) };
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
    const result = await match.route.run({ params: match.params, query: url.searchParams, body });
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

function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? "";
  const given = Buffer.from(header);
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
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
