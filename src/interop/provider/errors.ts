import { BridgeError } from "../../util/errors.js";
import type { AppCondition, StanzaError } from "../codec/errors.js";

/**
 * Stable codes of the engine's failures, for callers that branch on them:
 * - `not-ready`: no successful hello yet (or the gatekeeper went offline); retry after `ready`.
 * - `gatekeeper-error`: the gatekeeper answered an IQ with an error; `condition`/`app` say which.
 * - `unsupported`: content of a feature that the latest hello did not negotiate (§7.6, P2).
 * - `no-local-device`: the local user has no Signal device (not logged in, or deleted).
 * - `too-large`: the envelope exceeds `max-envelope-bytes` (§12.2).
 */
type ProviderErrorCode =
  | "not-ready"
  | "gatekeeper-error"
  | "unsupported"
  | "no-local-device"
  | "too-large"
  | "stopped"
  /** A group send by a user the local group store does not list as a member (§17.4). */
  | "not-member";

export class ProviderError extends BridgeError {
  declare readonly code: ProviderErrorCode;

  constructor(
    code: ProviderErrorCode,
    message: string,
    options: { cause?: unknown; retryAt?: Date } = {},
  ) {
    super(code, message, options);
  }
}

/**
 * An IQ of a user (identity, discovery, keys, abuse, media) answered with an error. `app` is the
 * `urn:interop:errors:0` condition when there is one, e.g. `code-invalid` with `attemptsLeft`;
 * `retryAt` is set for `rate-limited` and `locked`.
 */
export class GatekeeperError extends ProviderError {
  readonly condition: string;
  readonly app: AppCondition | undefined;
  readonly errorType: string;

  constructor(what: string, error: StanzaError, now: number, cause?: unknown) {
    const retryAt =
      error.app?.name === "rate-limited"
        ? new Date(now + error.app.retryAfter * 1000)
        : error.app?.name === "locked"
          ? error.app.until
          : undefined;
    super(
      "gatekeeper-error",
      `${what} refused by the gatekeeper: ${error.type}/${error.condition}` +
        (error.app === undefined ? "" : ` + ${error.app.name}`) +
        (error.text === undefined ? "" : ` (${error.text})`),
      { cause, ...(retryAt === undefined ? {} : { retryAt }) },
    );
    this.condition = error.condition;
    this.app = error.app;
    this.errorType = error.type;
  }
}
