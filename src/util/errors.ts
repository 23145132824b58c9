/**
 * Base of the project's typed errors. Callers branch on `code` (stable, machine-readable), never
 * on the message text. `retryAt` is set when the operation may succeed later (rate limits,
 * gatekeeper offline).
 */
export class BridgeError extends Error {
  readonly code: string;
  readonly retryAt: Date | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; retryAt?: Date } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryAt = options.retryAt;
  }
}

/** A problem in what the operator configured: shown as one clear line, never as a stack trace. */
export class ConfigError extends BridgeError {
  constructor(
    message: string,
    readonly problems: readonly string[] = [message],
  ) {
    super("config-invalid", message);
  }
}

/** A start-up precondition failed (database unreachable, port in use, key missing). */
export class StartupError extends BridgeError {
  constructor(code: string, message: string, cause?: unknown) {
    super(code, message, { cause });
  }
}

/** Human-readable one-line description of any thrown value, with its causes. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    if (current instanceof Error) {
      // A message that already quotes its cause (`cannot listen on …: ${describeError(err)}`)
      // must not say it twice.
      const message = current.message;
      if (!parts.some((part) => part.includes(message))) parts.push(message);
      current = current.cause;
    } else {
      parts.push(typeof current === "object" ? describeObject(current) : String(current));
      break;
    }
  }
  return parts.join(": ");
}

/**
 * A thrown non-Error object (an HTTP library's raw response, say) by its status, codes and
 * message, never as "[object Object]" and never with its whole body (it may hold content).
 */
function describeObject(value: object): string {
  const v = value as Record<string, unknown>;
  const body = errorBody(v["body"]);
  const parts: string[] = [];
  if (typeof v["statusCode"] === "number") parts.push(`HTTP ${v["statusCode"]}`);
  for (const field of [v["errcode"], body["errcode"], v["code"]]) {
    if (typeof field === "string" || typeof field === "number") parts.push(String(field));
  }
  for (const field of [v["message"], v["error"], body["error"]]) {
    if (typeof field === "string" && field !== "") parts.push(field.slice(0, 200));
  }
  if (parts.length > 0) return [...new Set(parts)].join(" ");
  return `a thrown ${value.constructor?.name ?? "object"} without a message`;
}

/** The JSON error body of a response, when the body is one (object, JSON text or bytes). */
function errorBody(body: unknown): Record<string, unknown> {
  if (typeof body === "object" && body !== null && !(body instanceof Uint8Array)) {
    return body as Record<string, unknown>;
  }
  if (typeof body !== "string" && !(body instanceof Uint8Array)) return {};
  const text = typeof body === "string" ? body : Buffer.from(body).toString("utf8");
  if (text.length > 4096) return {};
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Error codes of failures that pass by themselves (a lost or busy connection). */
const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  // The homeserver unreachable, rate limiting or failing with 5xx (src/matrix/crypto/homeserver.ts).
  "homeserver-unavailable",
  // SQLite: another connection holds the lock.
  "SQLITE_BUSY",
  "SQLITE_LOCKED",
  // PostgreSQL SQLSTATE: connection exceptions (08), server shutting down or starting (57P0x),
  // serialization failure and deadlock (40001, 40P01), too many connections (53300).
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
  "57P01",
  "57P02",
  "57P03",
  "40001",
  "40P01",
  "53300",
  // A database that became read-only or full: the operator fixes it, and until then the work
  // waits and is retried; reporting it as failed would drop the message (PROTOCOL.md P13).
  "25006",
  "53100",
  "SQLITE_READONLY",
  "SQLITE_FULL",
]);

/** What node-postgres and knex say, without a code, when the connection went away. */
const TRANSIENT_MESSAGE =
  /Connection terminated|not queryable|Timeout acquiring a connection|Client was closed|connection error/i;

/**
 * Whether `err` (or one of its causes) is an infrastructure failure that passes by itself: the
 * database connection lost, refused or busy. Work that fails with one must be retried (the
 * homeserver retries its transaction, the gatekeeper redelivers), never reported to the user as
 * a failed message: the message would then be dropped although nothing was wrong with it.
 */
export function isTransientError(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && TRANSIENT_CODES.has(code)) return true;
    if (TRANSIENT_MESSAGE.test(current.message)) return true;
    current = current.cause;
  }
  return false;
}
