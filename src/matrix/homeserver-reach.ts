import { randomUUID } from "node:crypto";
import { describeError } from "../util/errors.js";
import { RetryingCheck, type HomeserverCheckOptions } from "./homeserver-access.js";

/**
 * Whether the homeserver reaches the bridge's listener, as far as the start-up ping told. The
 * other direction (bridge → homeserver) is HomeserverAccessCheck's; this one is the first-run trap
 * it cannot see: a registration `url` the homeserver cannot connect to (`localhost` inside a
 * container, a wrong port, a firewall) lets the bridge start, log in and answer commands sent
 * through provisioning, while no Matrix message ever arrives.
 */
type ReachState =
  | { state: "checking"; detail: string }
  | { state: "reached"; ms: number }
  /** The homeserver has no appservice ping (spec v1.7; Synapse before 1.84): not checkable. */
  | { state: "unknown"; detail: string }
  | { state: "unreachable"; detail: string };

interface ReachCheckOptions extends HomeserverCheckOptions {
  /** The registration's `id`: the ping names the appservice by it. */
  appserviceId: string;
  /** The registration's `url`: where the homeserver connects, named in the advice. */
  registrationUrl: string;
  /** Where the listener is bound, named in the advice. */
  listening: string;
}

const REQUEST_TIMEOUT_MS = 40_000;

/**
 * Asks the homeserver to ping the bridge (`POST /_matrix/client/v1/appservice/{id}/ping`, which
 * makes it call `POST /_matrix/app/v1/ping` on the registration's url) once the as_token is
 * confirmed. A failure is logged with the fix and retried with backoff; /ready says it meanwhile.
 * mautrix bridges exit on this failure; this one keeps running, since a homeserver's network may
 * come right (a container started later) without a restart of the bridge.
 */
export class HomeserverReachCheck extends RetryingCheck<ReachState> {
  private failures = 0;

  constructor(private readonly options: ReachCheckOptions) {
    super(
      { state: "checking", detail: "not asked yet" },
      { initialMs: options.retryInitialMs ?? 1_000, maxMs: options.retryMaxMs ?? 60_000 },
    );
  }

  protected async attempt(delayMs: number): Promise<boolean> {
    const { log, registrationUrl, listening } = this.options;
    const outcome = await this.ping();
    if (this.isStopped) return false;
    this.current = outcome;
    if (outcome.state === "reached") {
      log.info(
        { url: registrationUrl, ms: outcome.ms },
        this.failures > 0
          ? "the homeserver reaches the bridge now"
          : "the homeserver reaches the bridge (appservice ping)",
      );
      return false;
    }
    if (outcome.state === "unknown") {
      log.info(
        { detail: outcome.detail },
        "cannot check whether the homeserver reaches the bridge",
      );
      return false;
    }
    this.failures++;
    // Said fully once, then briefly: the advice does not change between attempts.
    if (this.failures === 1) {
      log.error(
        { url: registrationUrl, listening, reason: outcome.detail },
        outcome.detail.includes("M_FORBIDDEN")
          ? `the homeserver refuses to ping appservice "${this.options.appserviceId}": it has ` +
              `loaded a registration with another id for this as_token; give it the current ` +
              `registration file and restart it`
          : `the homeserver cannot reach the bridge at ${registrationUrl}: no Matrix event will ` +
              `arrive. The registration's url must be an address the homeserver can connect to ` +
              `(the bridge listens on ${listening}; from a container, localhost is the container ` +
              `itself); fix appservice.address in the config, regenerate the registration with ` +
              `-r, and restart the homeserver`,
      );
    } else {
      log.warn(
        { reason: outcome.detail, retryInMs: delayMs },
        "the homeserver still cannot reach the bridge",
      );
    }
    return true;
  }

  private async ping(): Promise<ReachState> {
    const { homeserverUrl, asToken, appserviceId } = this.options;
    const base = homeserverUrl.endsWith("/") ? homeserverUrl : `${homeserverUrl}/`;
    const url = new URL(
      `_matrix/client/v1/appservice/${encodeURIComponent(appserviceId)}/ping`,
      base,
    );
    let res: Response;
    let body: { errcode?: unknown; error?: unknown; duration_ms?: unknown } = {};
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${asToken}`, "content-type": "application/json" },
        body: JSON.stringify({ transaction_id: `mwi-${randomUUID()}` }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      body = (await res.json().catch(() => ({}))) as typeof body;
    } catch (err) {
      // The homeserver itself did not answer: HomeserverAccessCheck reports that side.
      return { state: "unreachable", detail: `the ping request failed (${describeError(err)})` };
    }
    if (res.ok) {
      return { state: "reached", ms: typeof body.duration_ms === "number" ? body.duration_ms : 0 };
    }
    const code = typeof body.errcode === "string" ? body.errcode : undefined;
    const said = `HTTP ${res.status}${code === undefined ? "" : ` ${code}`}${
      typeof body.error === "string" ? `: ${body.error}` : ""
    }`;
    // Synapse before 1.84 answers 404 or 400 M_UNRECOGNIZED; other servers may answer 405.
    if (code === "M_UNRECOGNIZED" || (code === undefined && [404, 405].includes(res.status))) {
      return { state: "unknown", detail: `the homeserver has no appservice ping (${said})` };
    }
    // M_CONNECTION_FAILED, M_CONNECTION_TIMEOUT, M_BAD_STATUS: the homeserver tried and failed.
    return { state: "unreachable", detail: said };
  }
}
