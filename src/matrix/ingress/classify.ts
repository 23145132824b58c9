import { BridgeError, isTransientError } from "../../util/errors.js";
import { InvalidIdentifierError } from "../../util/ids.js";
import { transientWait } from "../retry.js";

/**
 * What a failed event is: `transient` (may pass by itself: homeserver 5xx or 429, a lost
 * connection, a busy database, a BridgeError with `retryAt`) is retried in its room with backoff;
 * everything else is `permanent` (a 4xx such as M_TOO_LARGE or M_FORBIDDEN, an invalid id, a room
 * that cannot be joined, a bug): reported once and skipped. Decided here, once, by type and code,
 * never by message text.
 */
export type FailureClass = "permanent" | "transient";

interface ClassifiedFailure {
  kind: FailureClass;
  /** A stable code for the record and the logs (an errcode, an error code), never content. */
  code: string;
  /** The earliest useful retry, when the failure says so (429's retry-after). */
  waitMs: number;
}

export function classifyFailure(err: unknown): ClassifiedFailure {
  const code = failureCode(err);
  if (isTransientError(err)) return { kind: "transient", code, waitMs: 0 };
  const wait = transientWait(err);
  if (wait !== undefined) return { kind: "transient", code, waitMs: wait };
  if (err instanceof BridgeError && err.retryAt !== undefined) {
    return { kind: "transient", code, waitMs: Math.max(0, err.retryAt.getTime() - Date.now()) };
  }
  return { kind: "permanent", code, waitMs: 0 };
}

/**
 * A short stable code of any thrown value: the Matrix errcode and status, a BridgeError's or a
 * system error's code, else the error's class name. Used for logs and the inbox's `error`.
 */
function failureCode(err: unknown): string {
  if (typeof err !== "object" || err === null) return "unknown";
  // A library's wrapper ("Failed to join room") says less than the homeserver's answer inside.
  const cause = (err as { cause?: unknown }).cause;
  const own = err as { errcode?: unknown; statusCode?: unknown; code?: unknown };
  if (
    own.errcode === undefined &&
    own.statusCode === undefined &&
    own.code === undefined &&
    cause !== undefined
  ) {
    const inner = failureCode(cause);
    if (inner !== "unknown" && inner !== "Error") return inner;
  }
  const e = err as { errcode?: unknown; statusCode?: unknown; code?: unknown; body?: unknown };
  const body =
    typeof e.body === "object" && e.body !== null ? (e.body as { errcode?: unknown }) : {};
  const errcode = typeof e.errcode === "string" ? e.errcode : body.errcode;
  if (typeof errcode === "string") {
    return typeof e.statusCode === "number" ? `${errcode} (${e.statusCode})` : errcode;
  }
  if (typeof e.statusCode === "number") return `HTTP ${e.statusCode}`;
  if (err instanceof InvalidIdentifierError) return "invalid-identifier";
  if (typeof e.code === "string" || typeof e.code === "number") return String(e.code).slice(0, 64);
  return err instanceof Error ? err.name : "unknown";
}
