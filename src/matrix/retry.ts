import { describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";

/** How long transient homeserver failures are retried in place before the work fails. */
export interface MatrixRetryPolicy {
  /** First wait after a failure; doubled per attempt up to `maxDelayMs`. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Longest wait a 429 may ask for; a longer Retry-After is cut to this. */
  readonly maxRetryAfterMs: number;
  /** After this long since the first attempt the error is rethrown. */
  readonly giveUpAfterMs: number;
}

export const DEFAULT_MATRIX_RETRY: MatrixRetryPolicy = {
  initialDelayMs: 250,
  maxDelayMs: 15_000,
  maxRetryAfterMs: 60_000,
  giveUpAfterMs: 5 * 60_000,
};

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

/**
 * Whether a failed homeserver request may succeed when repeated unchanged, and after how long at
 * least: 429 (the homeserver's Retry-After or retry_after_ms, else 0), 5xx, and connection
 * failures. Undefined for everything else (4xx: repeating cannot help).
 *
 * The errors are those of matrix-bot-sdk's doHttpRequest: a MatrixError (statusCode, errcode,
 * retryAfterMs from Retry-After or the body), the raw response for a non-JSON error (statusCode),
 * or the request library's network error (code).
 */
export function transientWait(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { statusCode?: unknown; retryAfterMs?: unknown; code?: unknown };
  if (typeof e.statusCode === "number") {
    if (e.statusCode === 429) {
      return typeof e.retryAfterMs === "number" && e.retryAfterMs > 0 ? e.retryAfterMs : 0;
    }
    return e.statusCode >= 500 ? 0 : undefined;
  }
  return typeof e.code === "string" && NETWORK_CODES.has(e.code) ? 0 : undefined;
}

/**
 * Runs `attempt` until it succeeds, retrying transient homeserver failures (transientWait) with
 * exponential backoff, at least as long as a 429 asks, for at most `giveUpAfterMs`.
 *
 * Why in place rather than failing the work and letting it be redelivered: events of one
 * conversation are bridged one at a time, so waiting here keeps them in order, where a
 * redelivery would post the failed message after the ones that followed it (PROTOCOL.md §15.6).
 * Only idempotent requests may be retried: message sends reuse their transaction id.
 */
export async function withMatrixRetries<T>(
  what: string,
  attempt: () => Promise<T>,
  log: Logger,
  policy: MatrixRetryPolicy = DEFAULT_MATRIX_RETRY,
  only: (err: unknown) => number | undefined = transientWait,
  /** Aborted when the bridge stops: the last failure is rethrown instead of waiting again. */
  signal?: AbortSignal,
): Promise<T> {
  const started = Date.now();
  let delay = policy.initialDelayMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const asked = only(err);
      if (asked === undefined || signal?.aborted === true) throw err;
      const wait = Math.max(Math.min(asked, policy.maxRetryAfterMs), delay);
      if (Date.now() + wait - started > policy.giveUpAfterMs) throw err;
      log.warn(
        { request: what, attempt: n, retryInMs: wait, err: describeError(err) },
        "homeserver request failed; retrying",
      );
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, wait);
        signal?.addEventListener("abort", done, { once: true });
      });
      if (isAborted(signal)) throw err;
      delay = Math.min(delay * 2, policy.maxDelayMs);
    }
  }
}

/** Only rate limiting: the homeserver did nothing, so even a non-idempotent request may repeat. */
export function rateLimitWait(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const e = err as { statusCode?: unknown };
  return e.statusCode === 429 ? transientWait(err) : undefined;
}

/** Read through a call: the compiler would otherwise keep the value it saw before an await. */
const isAborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true;
