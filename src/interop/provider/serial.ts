/**
 * Runs async jobs one at a time, in submission order. A failed job does not stop the queue; its
 * caller gets the rejection.
 */
export class SerialQueue {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  get size(): number {
    return this.pending;
  }

  run<T>(job: () => Promise<T>): Promise<T> {
    this.pending += 1;
    const result = this.tail.then(job);
    this.tail = result.then(
      () => {
        this.pending -= 1;
      },
      () => {
        this.pending -= 1;
      },
    );
    return result;
  }

  /** Resolves once every job submitted so far has finished. */
  idle(): Promise<void> {
    return this.tail;
  }
}

const settled = (): void => undefined;

/**
 * Runs async jobs in submission order per key, and jobs of different keys at the same time. An
 * exclusive job runs alone: after every job submitted before it, and ahead of every job submitted
 * after it (for work that spans keys). A failed job does not stop its key; its caller gets the
 * rejection.
 */
export class KeyedQueue {
  /** The last job of each key (settled, never rejecting); a key's entry goes when it is done. */
  private readonly tails = new Map<string, Promise<void>>();
  /** The last exclusive job: every job submitted after it starts after it. */
  private barrier: Promise<void> = Promise.resolve();

  run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? this.barrier).then(job);
    const tail = result.then(settled, settled);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  runExclusive<T>(job: () => Promise<T>): Promise<T> {
    const result = this.idle().then(job);
    this.barrier = result.then(settled, settled);
    // Every key's last job is before the barrier, so the barrier is every key's tail now.
    this.tails.clear();
    return result;
  }

  /** Resolves once every job submitted so far has finished. */
  idle(): Promise<void> {
    return Promise.all([this.barrier, ...this.tails.values()]).then(settled);
  }
}
