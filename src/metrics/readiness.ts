import type { Knex } from "knex";
import type { NetworkConnector } from "../core/network.js";
import { isConnectionHealthReporting } from "../core/network.js";
import type { ReadinessCheck } from "../util/readiness.js";
import { describeError } from "../util/errors.js";

/** How long /ready waits for the database or the homeserver before calling it down. */
const READINESS_TIMEOUT_MS = 5_000;

/** The database answers a trivial query. */
export function databaseCheck(knex: Knex): ReadinessCheck {
  return async () => {
    try {
      await withTimeout(knex.raw("select 1"), READINESS_TIMEOUT_MS);
      return { name: "database", ok: true };
    } catch (err) {
      return { name: "database", ok: false, detail: describeError(err) };
    }
  };
}

/**
 * The gatekeeper session is up (hello succeeded). `connector` is read at each check: it exists
 * only once the core started. A connector that does not report its connection passes, with a note.
 */
export function gatekeeperCheck(connector: () => NetworkConnector | undefined): ReadinessCheck {
  return async () => {
    const current = connector();
    if (current === undefined) return { name: "gatekeeper", ok: false, detail: "not started" };
    if (!isConnectionHealthReporting(current)) {
      return { name: "gatekeeper", ok: true, detail: "no network connection configured" };
    }
    const health = current.connectionHealth();
    return health.connected
      ? { name: "gatekeeper", ok: true }
      : { name: "gatekeeper", ok: false, detail: `${health.code}: ${health.message}` };
  };
}

/**
 * Stored logins that failed to load (src/core/logins.ts retries them with backoff). Shown, but
 * passing: one user's unreadable keys must not take the whole bridge out of service.
 */
export function loginsCheck(failedCount: () => number | undefined): ReadinessCheck {
  return () => {
    const failed = failedCount() ?? 0;
    return Promise.resolve(
      failed === 0
        ? { name: "logins", ok: true }
        : {
            name: "logins",
            ok: true,
            detail: `${failed} stored login(s) failed to load; retrying with backoff`,
          },
    );
  };
}

/** The homeserver's client-server API answers `/versions` (no token needed) within the timeout. */
export function homeserverCheck(homeserverUrl: string): ReadinessCheck {
  const url = new URL(
    "_matrix/client/versions",
    homeserverUrl.endsWith("/") ? homeserverUrl : `${homeserverUrl}/`,
  );
  return async () => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(READINESS_TIMEOUT_MS) });
      await res.body?.cancel();
      return res.ok
        ? { name: "homeserver", ok: true }
        : { name: "homeserver", ok: false, detail: `HTTP ${res.status} from ${url.origin}` };
    } catch (err) {
      return { name: "homeserver", ok: false, detail: `unreachable: ${describeError(err)}` };
    }
  };
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
