/**
 * Exponential backoff with full jitter (the delay is uniform in [0, cap), where the cap doubles
 * per attempt up to `maxMs`). Full jitter spreads the reconnects of many bridges after a shared
 * XMPP server restart instead of synchronising them.
 */
interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Source of randomness in [0, 1); injectable so tests can pin the delays. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly random: () => number;

  constructor(private readonly options: BackoffOptions) {
    if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs)) {
      throw new RangeError(
        `invalid backoff: initialMs=${options.initialMs} maxMs=${options.maxMs} ` +
          "(need 0 < initialMs <= maxMs)",
      );
    }
    this.random = options.random ?? Math.random;
  }

  /** The upper bound of the next delay, before jitter. */
  get currentCapMs(): number {
    // Capping the exponent keeps 2 ** attempt finite after very long outages.
    const exponent = Math.min(this.attempt, 30);
    return Math.min(this.options.maxMs, this.options.initialMs * 2 ** exponent);
  }

  /** Number of delays handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt; each call advances the backoff. */
  next(): number {
    const delay = Math.floor(this.random() * this.currentCapMs);
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }
}
