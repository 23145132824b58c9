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
