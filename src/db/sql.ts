import type { Knex } from "knex";

/**
 * Transactions for the per-message hot path, on the connection knex's pool hands out.
 *
 * Why not `knex.transaction`: on SQLite a knex transaction with one upsert costs about 1.1 ms,
 * against 0.37 ms for the same BEGIN, prepared statement and COMMIT on the raw connection; knex
 * builds a whole new query interface per transaction and compiles every statement from its builder.
 * A relayed message commits two transactions, so this was most of the crypto layer's cost
 * (docs/crypto.md, bench/crypto.ts). On SQLite a transaction here is BEGIN, hand-written
 * statements (prepared once per connection by database.ts's statement cache), and COMMIT; statements off the hot path keep knex's
 * builder, bound to the same connection, by calling the transaction as a table. On PostgreSQL the
 * same statements run through a knex transaction (see `onKnex` for why).
 *
 * The connection comes from knex's own pool, so a transaction here excludes knex queries exactly
 * as a knex transaction does (SQLite has one pooled connection: one writer at a time).
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

const runners = new WeakMap<Knex, SqlRunner>();

export class SqlRunner {
  readonly dialect: "sqlite" | "postgres";

  private constructor(private readonly knex: Knex) {
    const client = (knex.client as { config?: { client?: unknown } }).config?.client;
    if (client === "sqlite3") {
      this.dialect = "sqlite";
    } else if (client === "pg" || client === "postgres" || client === "postgresql") {
      this.dialect = "postgres";
    } else {
      throw new Error(`no SQL runner for the knex client ${String(client)}`);
    }
  }

  /** The runner of a knex instance (one per instance: it caches prepared statements). */
  static of(knex: Knex): SqlRunner {
    let runner = runners.get(knex);
    if (runner === undefined) {
      runner = new SqlRunner(knex);
      runners.set(knex, runner);
    }
    return runner;
  }

  /**
   * Runs `fn` in one transaction: committed if it resolves, rolled back if it throws (the error
   * is rethrown unchanged). `fn` must use only `tx`: on SQLite the shared knex would wait for the
   * connection `tx` holds.
   */
  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.dialect === "postgres") return this.knex.transaction((trx) => fn(this.onKnex(trx)));
    return this.connection(async (tx) => {
      await tx.run("BEGIN");
      let result: T;
      try {
        result = await fn(tx);
      } catch (err) {
        await tx.run("ROLLBACK").catch(() => undefined);
        throw err;
      }
      try {
        await tx.run("COMMIT");
      } catch (err) {
        // A failed COMMIT can leave the transaction open (SQLITE_BUSY); never hand it back so.
        await tx.run("ROLLBACK").catch(() => undefined);
        throw err;
      }
      return result;
    });
  }

  /** Runs `fn` on one pooled connection without a transaction (each statement commits alone). */
  async connection<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    if (this.dialect === "postgres") return fn(this.onKnex(this.knex));
    const client = this.knex.client as {
      acquireConnection(): Promise<unknown>;
      releaseConnection(conn: unknown): Promise<unknown>;
    };
    const conn = await client.acquireConnection();
    try {
      return await fn(this.bind(conn));
    } finally {
      await client.releaseConnection(conn);
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

  /**
   * A Tx on a raw SQLite connection. Its `run`/`all` go through the prepared-statement cache that
   * openDatabase installs on every connection (src/db/database.ts), so each text is prepared once.
   */
  private bind(conn: unknown): Tx {
    const { knex } = this;
    const db = conn as SqliteConnection;
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
      // `all` steps to the end and resets the statement, so no read stays open (a `get` would
      // keep the WAL snapshot pinned until the statement's next use).
      all: <T>(sql: string, params: readonly SqlValue[] = []) =>
        new Promise<T[]>((resolve, reject) => {
          db.all(sql, sqliteValues(params), (err, rows) => {
            if (err === null) resolve(rows as T[]);
            else reject(withSql(err, sql));
          });
        }),
    });
    return tx;
  }
}

interface SqliteConnection {
  run(
    sql: string,
    params: unknown[],
    cb: (this: { changes: number }, err: Error | null) => void,
  ): void;
  all(sql: string, params: unknown[], cb: (err: Error | null, rows: unknown[]) => void): void;
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
