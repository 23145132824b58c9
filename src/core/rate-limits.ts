import { noticeTime } from "../util/notice-time.js";
import type { Config } from "../config/schema.js";
import { BridgeError } from "../util/errors.js";
import type { MatrixUserId } from "../util/ids.js";

/**
 * At most `limit` takes per key in any `windowMs`: a sliding log of the takes' times, so that a
 * burst at the end of one window and the start of the next cannot double the rate. Memory is one
 * timestamp per take within the window, per key (a Matrix user): bounded by the limit.
 */
export class SlidingWindowLimiter {
  private readonly takes = new Map<string, number[]>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    readonly now: () => number = Date.now,
  ) {}

  /** Takes one unit: `undefined` when allowed, else when the next take will be allowed. */
  take(key: string): Date | undefined {
    const now = this.now();
    const recent = (this.takes.get(key) ?? []).filter((at) => at > now - this.windowMs);
    if (recent.length >= this.limit) {
      this.takes.set(key, recent);
      return new Date((recent[0] as number) + this.windowMs);
    }
    recent.push(now);
    this.takes.set(key, recent);
    return undefined;
  }
}

/** Thrown to refuse an action over a user's limit; the message is shown to the user. */
export class UserLimitError extends BridgeError {
  constructor(message: string, retryAt: Date) {
    super("rate-limited", message, { retryAt });
  }
}

/**
 * A message request the core holds instead of showing it now (over `message_requests_per_hour`).
 * `deferred` tells the connector to keep the event durably and report it again later
 * (CoreCallbacks.report): nothing is dropped.
 */
export class HeldRequestError extends BridgeError {
  readonly deferred = true;

  constructor(retryAt: Date) {
    super("request-held", "message request held over the hourly limit", { retryAt });
  }
}

/** The per-Matrix-user limits of config `limits`. */
export class UserLimits {
  readonly messages: SlidingWindowLimiter;
  readonly newChats: SlidingWindowLimiter;
  readonly requests: SlidingWindowLimiter;

  constructor(limits: Config["limits"], now: () => number = Date.now) {
    this.messages = new SlidingWindowLimiter(limits.messages_per_minute, 60_000, now);
    this.newChats = new SlidingWindowLimiter(limits.new_chats_per_hour, 3_600_000, now);
    this.requests = new SlidingWindowLimiter(limits.message_requests_per_hour, 3_600_000, now);
  }

  /** Throws UserLimitError when the user may not open another conversation now. */
  takeNewChat(user: MatrixUserId): void {
    const retryAt = this.newChats.take(user);
    if (retryAt !== undefined) {
      throw new UserLimitError(
        `You can open at most ${this.newChats.limit} new chats an hour. Try again after ` +
          `${clock(retryAt)}.`,
        retryAt,
      );
    }
  }
}

/** A moment in a notice: the one format of util/notice-time.ts. */
export function clock(at: Date): string {
  return noticeTime(at);
}
