import type { Pool } from "undici";
import { BridgeError } from "../util/errors.js";

/**
 * Homeserver requests on the message path through a keep-alive undici pool.
 *
 * Why: matrix-bot-sdk sends through `request` (deprecated), which builds a new request object,
 * parses the URL and formats log lines for every call: 15-25 % of the bridge's CPU per
 * WhatsApp -> Matrix message (issue #15's profile). Event sends are the one request per message,
 * so they go through here; everything else (registration, rooms, media) stays on the library.
 *
 * The errors keep the shape of the bot-sdk's, which src/matrix/retry.ts classifies: an HTTP error
 * carries `statusCode` (and, for a Matrix error body, `errcode`, `error`, `retryAfterMs`), a
 * network error its `code` (undici's, e.g. UND_ERR_SOCKET, or the system's ECONNREFUSED).
 */

/** What the gateway knows of the client it would otherwise call: the bot-sdk MatrixClient. */
interface HomeserverClient {
  readonly homeserverUrl: string;
  readonly accessToken: string;
}

/** Connections per homeserver: sends of different rooms go in parallel. */
const CONNECTIONS = 8;
/** As the bot-sdk's default: a send that takes longer has failed. */
const TIMEOUT_MS = 60_000;

const pools = new Map<string, Pool>();

/**
 * The pool of a homeserver, made on its first request. undici loads then too, not at start: it is
 * ~5-10 MB of resident memory an idle bridge does not use (docs/dependencies.md). Later requests
 * find the pool in the map without waiting for anything.
 */
async function openPool(origin: string): Promise<Pool> {
  const { Pool } = await import("undici");
  let pool = pools.get(origin);
  if (pool === undefined) {
    pool = new Pool(origin, {
      connections: CONNECTIONS,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
      keepAliveTimeout: 30_000,
    });
    pools.set(origin, pool);
  }
  return pool;
}

/** Observes each request before it is sent (the bench's hand-off mark); unset in production. */
export const httpHooks: { beforeRequest?: (method: string, path: string, body: string) => void } =
  {};

/** An HTTP error answer, shaped as matrix-bot-sdk's MatrixError (see the module comment). */
class HomeserverHttpError extends BridgeError {
  constructor(
    readonly statusCode: number,
    readonly errcode: string | undefined,
    readonly error: string | undefined,
    readonly retryAfterMs: number | undefined,
  ) {
    super(
      "matrix-http",
      `homeserver answered ${statusCode}${errcode === undefined ? "" : ` ${errcode}`}` +
        (error === undefined ? "" : `: ${error}`),
    );
  }
}

/**
 * One JSON request as `user` (the appservice asserts the identity with `user_id`; undefined: as
 * the appservice's own user), on the pool of the client's homeserver. Resolves with the parsed
 * JSON answer of a 2xx.
 */
export async function homeserverRequest(
  client: HomeserverClient,
  user: string | undefined,
  method: "PUT" | "POST" | "GET",
  path: string,
  body: Record<string, unknown> | undefined,
): Promise<unknown> {
  const base = new URL(client.homeserverUrl);
  const prefix = base.pathname.replace(/\/$/, "");
  const fullPath =
    prefix + path + (user === undefined ? "" : `?user_id=${encodeURIComponent(user)}`);
  const text = body === undefined ? undefined : JSON.stringify(body);
  httpHooks.beforeRequest?.(method, fullPath, text ?? "");
  const pool = pools.get(base.origin) ?? (await openPool(base.origin));
  const answer = await pool.request({
    method,
    path: fullPath,
    headers: {
      authorization: `Bearer ${client.accessToken}`,
      ...(text === undefined ? {} : { "content-type": "application/json" }),
    },
    body: text,
  });
  const raw = await answer.body.text();
  let parsed: unknown;
  try {
    parsed = raw === "" ? {} : JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (answer.statusCode >= 200 && answer.statusCode < 300) {
    if (parsed === undefined) {
      throw new BridgeError(
        "matrix-http",
        `homeserver answered ${answer.statusCode} with non-JSON`,
      );
    }
    return parsed;
  }
  const error = (parsed ?? {}) as { errcode?: unknown; error?: unknown; retry_after_ms?: unknown };
  throw new HomeserverHttpError(
    answer.statusCode,
    typeof error.errcode === "string" ? error.errcode : undefined,
    typeof error.error === "string" ? error.error : undefined,
    retryAfter(answer.headers["retry-after"], error.retry_after_ms),
  );
}

function retryAfter(header: unknown, bodyMs: unknown): number | undefined {
  if (typeof header === "string") {
    const seconds = Number.parseInt(header, 10);
    if (!Number.isNaN(seconds)) return seconds * 1000;
    const at = Date.parse(header);
    if (!Number.isNaN(at)) return Math.max(0, at - Date.now());
  }
  return typeof bodyMs === "number" && bodyMs > 0 ? bodyMs : undefined;
}

/** Closes every pool (bridge stop, tests). */
export async function closeHomeserverPools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((pool) => pool.close()));
}
