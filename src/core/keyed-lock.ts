/**
 * Runs tasks one at a time per key, in call order. The core uses it so that two events about the
 * same conversation (a message and its redelivery, two first messages from a new contact) cannot
 * interleave: otherwise both could create a room, or both pass the "already bridged?" check.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
