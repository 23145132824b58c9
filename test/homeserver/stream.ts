/**
 * The server's single stream ordering: every change a client can sync (events, typing, receipts,
 * account data, profile) takes the next position, and long-polling `/sync` requests wait for one.
 */
export class Stream {
  private position = 0;
  private waiters = new Set<() => void>();

  get current(): number {
    return this.position;
  }

  advance(): number {
    this.position += 1;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
    return this.position;
  }

  /** Resolves at the next advance, after `timeoutMs`, or when `signal` aborts, whichever is first. */
  waitForChange(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      this.waiters.add(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /** Wakes every waiter, used at shutdown so no request hangs. */
  wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }
}
