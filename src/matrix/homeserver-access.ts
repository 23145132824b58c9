import { StartupError, describeError } from "../util/errors.js";
import type { Logger } from "../util/log.js";

/** What the start-up check of the appservice token knows so far, for /ready. */
type AccessState =
  | { state: "checking"; detail: string }
  | { state: "confirmed" }
  | { state: "rejected"; error: StartupError };

/** What both start-up checks against the homeserver (this one, HomeserverReachCheck) take. */
export interface HomeserverCheckOptions {
  homeserverUrl: string;
  asToken: string;
  log: Logger;
  /** Backoff between attempts while the check cannot pass yet; tests shorten it. */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

interface AccessCheckOptions extends HomeserverCheckOptions {
  /** The user the homeserver must answer for the as_token: the bot. */
  botUserId: string;
  /** The registration file, named in the line that tells the admin what to give the homeserver. */
  registrationFile: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

/**
 * A start-up check that asks the homeserver until it can tell: its state (for /ready), and the
 * next attempt after a doubling delay. `attempt` returns the delay's next step, or undefined when
 * the check is settled.
 */
export abstract class RetryingCheck<S> {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  protected constructor(
    protected current: S,
    private readonly retry: { initialMs: number; maxMs: number },
  ) {}

  get state(): S {
    return this.current;
  }

  start(): void {
    void this.run(this.retry.initialMs);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** One try; true to try again after `delayMs` (which it may name in its log line). */
  protected abstract attempt(delayMs: number): Promise<boolean>;

  /** Whether stop() was called: an answer arriving after it is dropped. */
  protected get isStopped(): boolean {
    return this.stopped;
  }

  private async run(delayMs: number): Promise<void> {
    if (this.stopped) return;
    if (!(await this.attempt(delayMs)) || this.stopped) return;
    this.timer = setTimeout(() => void this.run(Math.min(delayMs * 2, this.retry.maxMs)), delayMs);
    this.timer.unref();
  }
}

/**
 * Asks the homeserver who the as_token is (`whoami` as the bot) until it answers. A homeserver
 * that is down or restarting is waited for (the state says so, for /ready); one that rejects the
 * token, or answers for another user, has not loaded this registration: the check ends
 * `rejected` with one line naming the file to give it. Nothing else in the bridge can work then,
 * since every request of the bot and the ghosts uses that token.
 */
export class HomeserverAccessCheck extends RetryingCheck<AccessState> {
  private readonly settled: Promise<AccessState>;
  private settle!: (state: AccessState) => void;

  constructor(private readonly options: AccessCheckOptions) {
    super(
      { state: "checking", detail: "not asked yet" },
      { initialMs: options.retryInitialMs ?? 1_000, maxMs: options.retryMaxMs ?? 30_000 },
    );
    this.settled = new Promise((resolve) => (this.settle = resolve));
  }

  /** Resolves once the token is confirmed or rejected (never while the homeserver is unreachable). */
  done(): Promise<AccessState> {
    return this.settled;
  }

  protected async attempt(delayMs: number): Promise<boolean> {
    const { homeserverUrl, registrationFile, log } = this.options;
    const outcome = await this.whoami();
    if (this.isStopped) return false;
    if (outcome.kind === "ok") {
      this.finish({ state: "confirmed" });
      log.info("the homeserver accepts the appservice token");
      return false;
    }
    if (outcome.kind === "rejected") {
      this.finish({
        state: "rejected",
        error: new StartupError(
          "registration-not-loaded",
          `${homeserverUrl} ${outcome.reason}: give ${registrationFile} to the homeserver ` +
            "(Synapse: app_service_config_files in homeserver.yaml) and restart it",
        ),
      });
      return false;
    }
    this.current = { state: "checking", detail: `${homeserverUrl}: ${outcome.reason}` };
    log.warn(
      { homeserver: homeserverUrl, reason: outcome.reason, retryInMs: delayMs },
      "cannot confirm the appservice token with the homeserver yet; retrying",
    );
    return true;
  }

  private finish(state: AccessState): void {
    this.current = state;
    this.settle(state);
  }

  private async whoami(): Promise<
    { kind: "ok" } | { kind: "rejected"; reason: string } | { kind: "unreachable"; reason: string }
  > {
    const { homeserverUrl, asToken, botUserId } = this.options;
    const base = homeserverUrl.endsWith("/") ? homeserverUrl : `${homeserverUrl}/`;
    let res: Response;
    let body: { user_id?: unknown; errcode?: unknown } = {};
    try {
      res = await fetch(new URL("_matrix/client/v3/account/whoami", base), {
        headers: { authorization: `Bearer ${asToken}` },
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      body = (await res.json().catch(() => ({}))) as typeof body;
    } catch (err) {
      return { kind: "unreachable", reason: `unreachable (${describeError(err)})` };
    }
    if (res.ok) {
      if (body.user_id === botUserId) return { kind: "ok" };
      return {
        kind: "rejected",
        reason: `answers the as_token for ${String(body.user_id)}, not the bot ${botUserId}`,
      };
    }
    // 401 M_UNKNOWN_TOKEN (or 403) is a verdict; anything else (5xx, a proxy's 502) may pass.
    if (res.status === 401 || res.status === 403) {
      return {
        kind: "rejected",
        reason: `rejects the appservice token (HTTP ${[res.status, body.errcode].filter((part) => part !== undefined).join(" ")})`,
      };
    }
    return { kind: "unreachable", reason: `HTTP ${res.status} to whoami` };
  }
}
