import type { Knex } from "knex";
import type { ShimConnection } from "./node-sqlite.js";

/**
 * Transactions for the per-message hot path, group-committed.
 *
 * `transaction(fn)` queues `fn`; everything queued in the same turn of the event loop runs in ONE
 * database transaction, and every caller resumes only after the shared COMMIT (rule 1 of
 * docs/message-path.md: nothing is acknowledged before its commit). When one caller's `fn` throws,
 * the group is rolled back, that caller gets its error, and the others run again in the next group:
 * so `fn` may run more than once, and must do nothing but database work through `tx` (it did so
 * already: a failed COMMIT could always be retried by its caller). No savepoints: they were four
 * statements per message on the hot path, for a failure that is rare. One commit per group instead of
 * one per message is what makes PostgreSQL's WAL flush affordable, and on SQLite it turns two or
 * three commits per message into a fraction of one.
 *
 * On SQLite the statements run synchronously through `node:sqlite` (src/db/node-sqlite.ts) on the
 * one connection knex's pool holds; a group takes that connection from the pool once, so knex
 * queries and knex transactions elsewhere are excluded while it runs, as before. Statements are
 * prepared once per connection (the driver's cache). `fn` must use only `tx` and must not await
 * anything outside the database: the group (and, on SQLite, every other query) waits for it.
 *
 * On PostgreSQL a group runs in one knex transaction (knex's pool knows how to drop a connection
 * the network killed; the fault tests cut it mid-transaction).
 */

export type SqlValue = string | number | boolean | null | Uint8Array;

/** Anything that builds queries: the shared knex, a knex transaction, or a {@link Tx}. */
export type QueryTarget = (table: string) => Knex.QueryBuilder;

/** One connection inside (or, for `connection`, outside) a transaction. */
export interface Tx {
  /** A knex query builder on this connection, for statements that are not on the hot path. */
  (table: string): Knex.QueryBuilder;
  readonly dialect: "sqlite" | "postgres";
  /** Runs a statement written with `?` placeholders; returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** Runs a query written with `?` placeholders and returns its rows. */
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
}

interface Queued {
  fn: (tx: Tx) => Promise<unknown>;
  /** `connection` work: alone in its group it runs without BEGIN/COMMIT. */
  autocommit: boolean;
  resolve(value: unknown): void;
  reject(err: unknown): void;
  outcome?: { ok: true; value: unknown } | { ok: false; error: unknown };
}

interface PoolClient {
  acquireConnection(): Promise<unknown>;
  releaseConnection(conn: unknown): Promise<unknown>;
}

const runners = new WeakMap<Knex, SqlRunner>();

/** PostgreSQL groups in flight at once, each on its own pooled connection. */
const PG_CONCURRENT_GROUPS = 4;

/** Largest group: bounds the time one group holds the connection. */
const MAX_GROUP = 256;

/** Transactions opened (one per group, lone `connection` work excluded) and work items run. */
export const runnerStats = { groups: 0, transactions: 0 };

export class SqlRunner {
  readonly dialect: "sqlite" | "postgres";
  private readonly queue: Queued[] = [];
  private scheduled = false;
  /** Groups in flight; at most `maxRunning` (one on SQLite: one connection, one writer). */
  private running = 0;
  private readonly maxRunning: number;
  private readonly legacySqlite: boolean = false;
  private readonly txOf = new WeakMap<object, Tx>();

  private constructor(private readonly knex: Knex) {
    const client = knex.client as { driverName?: unknown };
    if (client.driverName === "node:sqlite" || client.driverName === "sqlite3") {
      // sqlite3: a knex some tests still build by hand (asynchronous, statements not cached).
      this.dialect = "sqlite";
      this.legacySqlite = client.driverName === "sqlite3";
      this.maxRunning = 1;
    } else if (client.driverName === "pg") {
      this.dialect = "postgres";
      // A PostgreSQL commit waits ~1 ms or more for its WAL flush: while one group waits, the
      // next may start on another pooled connection (as separate transactions always could).
      this.maxRunning = PG_CONCURRENT_GROUPS;
    } else {
      throw new Error(`no SQL runner for the knex driver ${String(client.driverName)}`);
    }
  }

  /** The runner of a knex instance (one per instance: it owns the instance's commit queue). */
  static of(knex: Knex): SqlRunner {
    let runner = runners.get(knex);
    if (runner === undefined) {
      runner = new SqlRunner(knex);
      runners.set(knex, runner);
    }
    return runner;
  }

  /**
   * Runs `fn` in a transaction shared with the other work queued in this turn: its writes commit
   * if it resolves and are rolled back if it throws (the error is rethrown unchanged). Resolves
   * after the COMMIT. `fn` must use only `tx`: the shared knex would wait for the connection.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue(fn, false);
  }

  /**
   * Runs `fn` on the connection. Alone, its statements commit one by one; queued with other work,
   * it joins that work's transaction (atomically, which is only stronger).
   */
  connection<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue(fn, true);
  }

  private enqueue<T>(fn: (tx: Tx) => Promise<T>, autocommit: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn, autocommit, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  /**
   * The next group starts at the end of this turn (setImmediate: after the I/O callbacks and
   * microtasks that may queue more work), or once the running group committed.
   */
  private schedule(): void {
    if (this.scheduled || this.running >= this.maxRunning || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.running += 1;
    const group = this.queue.splice(0, MAX_GROUP);
    let again: Queued[] = [];
    try {
      runnerStats.transactions += group.length;
      if (this.dialect === "postgres") await this.flushPostgres(group);
      else await this.flushSqlite(group);
    } catch (err) {
      const failed = group.find((item) => item.outcome?.ok === false);
      if (failed !== undefined && !(err instanceof GroupFailure)) {
        // One item threw: it alone fails; the others were rolled back with it and run again,
        // first in the next group.
        again = group.filter((item) => item !== failed);
        for (const item of again) item.outcome = undefined;
        this.queue.unshift(...again);
      } else {
        // The group as a whole failed (connection lost, COMMIT refused): nothing of it committed.
        const error = err instanceof GroupFailure ? err.cause : err;
        for (const item of group) {
          if (item.outcome?.ok !== false) item.outcome = { ok: false, error };
        }
      }
    } finally {
      this.running -= 1;
    }
    for (const item of group) {
      if (again.includes(item)) continue;
      const outcome = item.outcome ?? {
        ok: false,
        error: new Error("group ended without outcome"),
      };
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    }
    this.schedule();
  }

  private async flushSqlite(group: Queued[]): Promise<void> {
    const client = this.knex.client as PoolClient;
    const conn = (await client.acquireConnection()) as ShimConnection;
    // The legacy driver cannot tell whether SQLite dropped the transaction: ROLLBACK is tried.
    const open = () => (this.legacySqlite ? true : conn.inTransaction);
    try {
      const tx = this.legacySqlite ? this.bindLegacy(conn) : this.bindSqlite(conn);
      const only = group.length === 1 ? group[0] : undefined;
      if (only?.autocommit === true) {
        await runAlone(only, tx);
        return;
      }
      await tx.run("BEGIN");
      runnerStats.groups++;
      try {
        await runItems(group, tx);
      } catch (err) {
        if (open()) await tx.run("ROLLBACK").catch(() => undefined);
        throw err;
      }
      try {
        await tx.run("COMMIT");
      } catch (err) {
        // A failed COMMIT can leave the transaction open (SQLITE_BUSY); never hand it back so.
        if (open()) await tx.run("ROLLBACK").catch(() => undefined);
        throw new GroupFailure(err);
      }
    } finally {
      await client.releaseConnection(conn);
    }
  }

  private async flushPostgres(group: Queued[]): Promise<void> {
    const only = group.length === 1 ? group[0] : undefined;
    if (only?.autocommit === true) {
      await runAlone(only, this.onKnex(this.knex));
      return;
    }
    let itemFailed = false;
    runnerStats.groups++;
    try {
      await this.knex.transaction(async (trx) => {
        try {
          await runItems(group, this.onKnex(trx));
        } catch (err) {
          itemFailed = true;
          throw err;
        }
      });
    } catch (err) {
      throw itemFailed ? err : new GroupFailure(err);
    }
  }

  /**
   * PostgreSQL goes through knex: a commit there costs a WAL flush (~1 ms) that dwarfs knex's
   * overhead, and knex's pool already knows how to drop a connection the network killed (the
   * fault tests cut it mid-transaction); a raw client handed back after such a cut hung work.
   */
  private onKnex(db: Knex | Knex.Transaction): Tx {
    const tx = ((table: string) => db(table)) as Tx;
    Object.assign(tx, {
      dialect: this.dialect,
      run: async (sql: string, params: readonly SqlValue[] = []) =>
        ((await db.raw(sql, pgValues(params))) as { rowCount: number | null }).rowCount ?? 0,
      all: async <T>(sql: string, params: readonly SqlValue[] = []) =>
        ((await db.raw(sql, pgValues(params))) as { rows: T[] }).rows,
    });
    return tx;
  }

  /** A Tx on a `sqlite3` (asynchronous) connection, as before node:sqlite. */
  private bindLegacy(conn: object): Tx {
    const known = this.txOf.get(conn);
    if (known !== undefined) return known;
    const { knex } = this;
    const db = conn as LegacySqliteConnection;
    const tx = ((table: string) => knex(table).connection(conn)) as Tx;
    Object.assign(tx, {
      dialect: this.dialect,
      run: (sql: string, params: readonly SqlValue[] = []) =>
        new Promise<number>((resolve, reject) => {
          db.run(sql, sqliteValues(params), function (err) {
            if (err === null) resolve(this.changes);
            else reject(withSql(err, sql));
          });
        }),
      all: <T>(sql: string, params: readonly SqlValue[] = []) =>
        new Promise<T[]>((resolve, reject) => {
          db.all(sql, sqliteValues(params), (err, rows) => {
            if (err === null) resolve(rows as T[]);
            else reject(withSql(err, sql));
          });
        }),
    });
    this.txOf.set(conn, tx);
    return tx;
  }

  /** A Tx on the synchronous SQLite connection: each statement runs in place. */
  private bindSqlite(conn: ShimConnection): Tx {
    const known = this.txOf.get(conn);
    if (known !== undefined) return known;
    const { knex } = this;
    const tx = ((table: string) => knex(table).connection(conn)) as Tx;
    Object.assign(tx, {
      dialect: this.dialect,
      run: (sql: string, params: readonly SqlValue[] = []): Promise<number> => {
        try {
          return Promise.resolve(conn.prepare(sql).run(sqliteValues(params)).changes);
        } catch (err) {
          return Promise.reject(withSql(err, sql));
        }
      },
      all: <T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> => {
        try {
          return Promise.resolve(conn.prepare(sql).all(sqliteValues(params)) as T[]);
        } catch (err) {
          return Promise.reject(withSql(err, sql));
        }
      },
    });
    this.txOf.set(conn, tx);
    return tx;
  }
}

/** The callback API of the `sqlite3` package's connection, for `bindLegacy`. */
interface LegacySqliteConnection {
  run(
    sql: string,
    params: unknown[],
    cb: (this: { changes: number }, err: Error | null) => void,
  ): void;
  all(sql: string, params: unknown[], cb: (err: Error | null, rows: unknown[]) => void): void;
}

async function runAlone(item: Queued, tx: Tx): Promise<void> {
  try {
    item.outcome = { ok: true, value: await item.fn(tx) };
  } catch (error) {
    item.outcome = { ok: false, error };
  }
}

/** A failure of the group as such (not of one item's work): every item gets `cause`. */
class GroupFailure extends Error {
  constructor(override readonly cause: unknown) {
    super("group commit failed", { cause });
  }
}

/**
 * Runs the items of a group, in order, inside the open transaction; stops at the first that
 * throws (the caller rolls the group back; the failing item is never run again, so every round
 * settles at least one item).
 */
async function runItems(group: Queued[], tx: Tx): Promise<void> {
  for (const item of group) {
    await runAlone(item, tx);
    if (item.outcome?.ok === false) throw item.outcome.error;
  }
}

const sqliteValues = (params: readonly SqlValue[]) =>
  params.map((v) => (typeof v === "boolean" ? (v ? 1 : 0) : v));

const pgValues = (params: readonly SqlValue[]) =>
  params.map((v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v) : v));

/** Names the statement in the error, keeping the driver's error (its code) as the cause. */
function withSql(err: unknown, sql: string): Error {
  const message = err instanceof Error ? err.message : String(err);
  const wrapped = new Error(`${message} (in: ${sql.slice(0, 120)})`, { cause: err });
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) (wrapped as Error & { code?: unknown }).code = code;
  return wrapped;
}
