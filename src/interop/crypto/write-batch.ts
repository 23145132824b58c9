import type { Knex } from "knex";
import { SqlRunner, type Tx } from "../../db/sql.js";

/** Marks an entry the batch deleted, so that reads inside the batch no longer see it. */
export const DELETED: unique symbol = Symbol("deleted");
type Staged<T> = T | typeof DELETED;

/** Runs one staged write, inside the commit transaction or, when alone, as its own statement. */
type Write = (db: Tx) => Promise<void>;

/**
 * The store writes of one crypto operation. libsignal writes through its store callbacks while it
 * decrypts or encrypts; those writes are held here (and visible to later reads of the same
 * operation through the overlay) and reach the database in ONE transaction together with the
 * caller's own writes (the stored message, the outbox row). If anything throws before the commit,
 * nothing is written and the in-memory caches never saw the change, so the ratchet is not advanced
 * past a message that was not stored.
 */
export class WriteBatch {
  private readonly overlay = new Map<string, unknown>();
  private readonly writes = new Map<string, Write>();
  private readonly afterCommitHooks: (() => void)[] = [];
  private readonly afterFailureHooks: (() => void)[] = [];
  private committed = false;
  /** Set by the Kyber store when a last-resort use repeats (§11.6): the error is a duplicate. */
  replayDetected = false;
  /**
   * What a store read of this operation threw (the database connection lost, say). libsignal
   * hands it back as a generic error that would read as an undecryptable message; the operation
   * fails with this one instead, so that the caller retries it (isTransientError).
   */
  storeFailure: unknown;

  /** Runs a store read, keeping its failure for the operation's error (`storeFailure`). */
  async reading<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      this.storeFailure ??= err;
      throw err;
    }
  }

  /** The value staged for `key` in this batch, DELETED, or undefined when the batch has none. */
  read<T>(key: string): Staged<T> | undefined {
    return this.overlay.get(key) as Staged<T> | undefined;
  }

  /**
   * Stages a value: later reads in this batch see it, `write` runs in the commit transaction (a
   * later stage of the same key replaces the earlier write), `apply` updates caches after commit.
   */
  stage<T>(key: string, value: Staged<T>, write: Write, apply?: () => void): void {
    this.overlay.set(key, value);
    this.writes.delete(key);
    this.writes.set(key, write);
    if (apply !== undefined) this.afterCommitHooks.push(apply);
  }

  /** A write with no overlay entry (bookkeeping rows nobody reads back within the batch). */
  addWrite(key: string, write: Write): void {
    this.writes.delete(key);
    this.writes.set(key, write);
  }

  /**
   * Runs when the commit failed. Its outcome is then unknown: a COMMIT whose answer was lost with
   * the connection may have committed. A cache of what the batch wrote must be read again from
   * the database rather than kept as it was before: kept, a session would encrypt the next
   * message with the message key the committed one used (the recipient drops the second as a
   * duplicate).
   */
  afterFailure(hook: () => void): void {
    this.afterFailureHooks.push(hook);
  }

  /** Runs after a successful commit, in order (cache updates first, then events). */
  afterCommit(hook: () => void): void {
    this.afterCommitHooks.push(hook);
  }

  get isEmpty(): boolean {
    return this.writes.size === 0;
  }

  /**
   * Writes everything and runs `extra` in the same transaction. Caches and events are updated
   * only once the transaction committed.
   */
  async commit<T>(knex: Knex, extra?: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.committed) throw new Error("write batch committed twice");
    this.committed = true;
    const sql = SqlRunner.of(knex);
    let result: T | undefined;
    try {
      if (extra === undefined && this.writes.size <= 1) {
        // One statement is atomic on its own: skipping BEGIN/COMMIT saves two round trips on the
        // hot path (an encryption with no outbox write of the caller's).
        if (this.writes.size === 1) {
          await sql.connection(async (tx) => {
            for (const write of this.writes.values()) await write(tx);
          });
        }
      } else {
        await sql.transaction(async (tx) => {
          for (const write of this.writes.values()) await write(tx);
          if (extra !== undefined) result = await extra(tx);
        });
      }
    } catch (err) {
      for (const hook of this.afterFailureHooks) hook();
      throw err;
    }
    for (const hook of this.afterCommitHooks) hook();
    return result as T;
  }
}
