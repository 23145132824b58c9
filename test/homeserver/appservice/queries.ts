import type { HomeserverCore } from "../core.js";
import { MatrixError } from "../errors.js";
import { callAppservice, isTimeout } from "./transport.js";

/**
 * Asks the appservices owning `alias` to create it (AS API "Querying"), then reports whether it
 * now resolves. Failures count as "not created", as a homeserver falls back to 404.
 */
export async function queryAlias(core: HomeserverCore, alias: string): Promise<string | undefined> {
  for (const as of core.appservices.all) {
    if (!as.ownsAlias(alias) || !as.registration.url) continue;
    const path = `/rooms/${encodeURIComponent(alias)}`;
    try {
      await callAppservice(core.profile, as.registration.url, as.registration.hs_token, {
        method: "GET",
        path: `/_matrix/app/v1${path}`,
        legacyPath: path,
        timeoutMs: core.options.pushTimeoutMs,
      });
    } catch {
      // The appservice being down means the alias does not exist yet.
    }
    const roomId = core.aliases.get(alias);
    if (roomId !== undefined) return roomId;
  }
  return undefined;
}

/** Asks the appservices owning `userId` whether it exists; true once it is registered. */
export async function queryUser(core: HomeserverCore, userId: string): Promise<boolean> {
  for (const as of core.appservices.all) {
    if (!as.ownsUser(userId) || !as.registration.url) continue;
    const path = `/users/${encodeURIComponent(userId)}`;
    try {
      await callAppservice(core.profile, as.registration.url, as.registration.hs_token, {
        method: "GET",
        path: `/_matrix/app/v1${path}`,
        legacyPath: path,
        timeoutMs: core.options.pushTimeoutMs,
      });
    } catch {
      // Treated as "no such user".
    }
    if (core.users.get(userId) !== undefined) return true;
  }
  return false;
}

/**
 * `POST /_matrix/client/v1/appservice/{id}/ping`'s outbound half: calls `POST /_matrix/app/v1/ping`
 * and maps the outcome to the spec's M_BAD_STATUS / M_CONNECTION_FAILED / M_CONNECTION_TIMEOUT.
 */
export async function pingAppservice(
  core: HomeserverCore,
  url: string,
  hsToken: string,
  transactionId: string | undefined,
): Promise<number> {
  const started = Date.now();
  let answer;
  try {
    answer = await callAppservice(core.profile, url, hsToken, {
      method: "POST",
      path: "/_matrix/app/v1/ping",
      legacyPath: "/_matrix/app/v1/ping",
      body: transactionId === undefined ? {} : { transaction_id: transactionId },
      timeoutMs: core.options.pushTimeoutMs,
    });
  } catch (err) {
    if (isTimeout(err))
      throw new MatrixError(504, "M_CONNECTION_TIMEOUT", "Connection to appservice timed out");
    throw new MatrixError(
      502,
      "M_CONNECTION_FAILED",
      `Connection to appservice failed: ${String(err)}`,
    );
  }
  if (answer.status < 200 || answer.status >= 300) {
    throw new MatrixError(502, "M_BAD_STATUS", `Ping returned status ${answer.status}`, {
      status: answer.status,
      body: answer.text,
    });
  }
  return Date.now() - started;
}
