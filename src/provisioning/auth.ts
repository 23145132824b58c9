import { createHash, timingSafeEqual } from "node:crypto";
import { describeError } from "../util/errors.js";
import { isMatrixUserId, type MatrixUserId } from "../util/ids.js";
import { ProvisioningError } from "./errors.js";

/**
 * How long a verified Matrix access token is trusted without asking the homeserver again: a
 * token the user revoked (logout) stops working within this time.
 */
const TOKEN_CACHE_MS = 30_000;
/** How long a token the homeserver refused is refused without asking again (floods of guesses). */
const REFUSED_TOKEN_CACHE_MS = 5_000;
/** Bound on the cache, so that a flood of distinct tokens cannot grow memory. */
const TOKEN_CACHE_MAX = 10_000;
const WHOAMI_TIMEOUT_MS = 10_000;

interface AuthOptions {
  /** Empty: only users' own access tokens are accepted. */
  sharedSecret: string;
  homeserverUrl: string;
  /**
   * The bot and the ghosts. Provisioning acts only for real users: the shared secret may not
   * name them, and a token that belongs to one of them (the as_token is the bot's) is refused.
   */
  isBridgeUser: (user: string) => boolean;
  now?: () => number;
}

/**
 * Who a provisioning request acts for. Two ways in, as in mautrix:
 * - the shared secret as bearer token, with the user named in `?user_id=` (integrations);
 * - the user's own Matrix access token, verified with the homeserver's /account/whoami (cached for
 *   30 s by the token's digest, a refusal for 5 s). `?user_id=` may only repeat the token's user.
 * Either way the user must be a real user, never the bot or a ghost.
 * The secret is compared in constant time (digests of equal length).
 */
export class ProvisioningAuth {
  private readonly cache = new Map<string, { user: MatrixUserId | undefined; until: number }>();
  private readonly secretDigest: Buffer | undefined;
  private readonly now: () => number;

  constructor(private readonly options: AuthOptions) {
    this.secretDigest = options.sharedSecret === "" ? undefined : digest(options.sharedSecret);
    this.now = options.now ?? Date.now;
  }

  async authenticate(
    authorization: string | undefined,
    userIdParam: unknown,
  ): Promise<{ user: MatrixUserId; by: "secret" | "token" }> {
    const token = authorization?.startsWith("Bearer ")
      ? authorization.slice("Bearer ".length).trim()
      : "";
    if (token === "") throw new ProvisioningError(401, "M_MISSING_TOKEN", "Missing auth token");
    const requested =
      typeof userIdParam === "string" && userIdParam !== "" ? userIdParam : undefined;
    if (this.secretDigest !== undefined && timingSafeEqual(digest(token), this.secretDigest)) {
      if (requested === undefined) {
        throw new ProvisioningError(
          400,
          "M_MISSING_PARAM",
          "user_id is required with the shared secret",
        );
      }
      if (!isMatrixUserId(requested)) {
        throw new ProvisioningError(400, "M_INVALID_PARAM", "user_id is not a Matrix user id");
      }
      if (this.options.isBridgeUser(requested)) throw notForBridgeUsers();
      return { user: requested, by: "secret" };
    }
    const user = await this.whoami(token);
    if (this.options.isBridgeUser(user)) throw notForBridgeUsers();
    if (requested !== undefined && requested !== user) {
      throw new ProvisioningError(
        403,
        "M_FORBIDDEN",
        "user_id may only name another user with the shared secret",
      );
    }
    return { user, by: "token" };
  }

  private async whoami(token: string): Promise<MatrixUserId> {
    const key = digest(token).toString("hex");
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.until > this.now()) {
      if (cached.user === undefined) throw invalidToken();
      return cached.user;
    }
    const base = this.options.homeserverUrl.replace(/\/+$/, "");
    let res: Response;
    try {
      res = await fetch(`${base}/_matrix/client/v3/account/whoami`, {
        headers: { authorization: `Bearer ${token}` },
        signal: AbortSignal.timeout(WHOAMI_TIMEOUT_MS),
      });
    } catch (err) {
      throw new ProvisioningError(
        502,
        "M_UNKNOWN",
        `the homeserver could not be asked who the token belongs to: ${describeError(err)}`,
      );
    }
    const body = (await res.json().catch(() => ({}))) as { user_id?: unknown };
    if (res.status === 401 || res.status === 403) {
      this.remember(key, undefined, REFUSED_TOKEN_CACHE_MS);
      throw invalidToken();
    }
    if (!res.ok || typeof body.user_id !== "string" || !isMatrixUserId(body.user_id)) {
      throw new ProvisioningError(
        502,
        "M_UNKNOWN",
        `the homeserver answered /account/whoami with HTTP ${res.status}`,
      );
    }
    this.remember(key, body.user_id, TOKEN_CACHE_MS);
    return body.user_id;
  }

  private remember(key: string, user: MatrixUserId | undefined, forMs: number): void {
    if (this.cache.size >= TOKEN_CACHE_MAX) this.cache.clear();
    this.cache.set(key, { user, until: this.now() + forMs });
  }
}

const invalidToken = () => new ProvisioningError(401, "M_UNKNOWN_TOKEN", "Invalid auth token");

const notForBridgeUsers = () =>
  new ProvisioningError(
    403,
    "M_FORBIDDEN",
    "provisioning acts only for real users, not the bridge's",
  );

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}
