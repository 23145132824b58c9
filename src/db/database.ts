import { mkdir } from "node:fs/promises";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import pg from "pg";
import { StartupError, describeError } from "../util/errors.js";

export type DatabaseType = "sqlite" | "postgres";

export interface DatabaseOptions {
  type: DatabaseType;
  /** SQLite: a file path (`:memory:` for tests). PostgreSQL: a `postgres://` connection URI. */
  uri: string;
  /** Connection pool size (PostgreSQL). SQLite always uses one connection: one writer at a time. */
  maxConnections?: number;
  /** PostgreSQL schema to use instead of `public` (tests isolate themselves this way). */
  schema?: string;
}

export interface Database {
  readonly knex: Knex;
  readonly type: DatabaseType;
  close(): Promise<void>;
}

/**
 * Opens the bridge's database and checks that it answers. A database that cannot be opened is a
 * StartupError with a one-line reason: the CLI prints it and exits non-zero.
 */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const knex = options.type === "sqlite" ? await openSqlite(options) : openPostgres(options);
  try {
    await knex.raw("select 1");
  } catch (err) {
    await knex.destroy().catch(() => undefined);
    throw new StartupError(
      "database-unreachable",
      `cannot open the ${options.type} database (${redactUri(options.uri)}): ${describeError(err)}`,
      err,
    );
  }
  return {
    knex,
    type: options.type,
    close: () => knex.destroy(),
  };
}

async function openSqlite(options: DatabaseOptions): Promise<Knex> {
  if (options.uri !== ":memory:") {
    const dir = path.dirname(path.resolve(options.uri));
    try {
      await mkdir(dir, { recursive: true });
    } catch (err) {
      throw new StartupError(
        "database-unreachable",
        `cannot create the directory ${dir} for the SQLite database: ${describeError(err)}`,
        err,
      );
    }
  }
  return knexFactory({
    client: "sqlite3",
    connection: { filename: options.uri },
    useNullAsDefault: true,
    // SQLite allows one writer; a single pooled connection serialises transactions in-process
    // instead of failing them with SQLITE_BUSY.
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: SqliteConnection, done: (err: Error | null, conn: unknown) => void) {
        // WAL lets readers proceed during a write and makes each commit one sequential append;
        // synchronous=NORMAL is durable in WAL mode except for the last commits on power loss.
        conn.exec(
          "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
          (err) => {
            if (err === null) reusePreparedStatements(conn);
            done(err, conn);
          },
        );
      },
    },
  });
}

type SqliteCallback = (this: unknown, err: Error | null, rows?: unknown) => void;

interface SqliteStatement {
  run(params: unknown, callback: SqliteCallback): void;
  all(params: unknown, callback: SqliteCallback): void;
  finalize(): void;
}

interface SqliteConnection {
  exec(sql: string, callback: (err: Error | null) => void): void;
  run(sql: string, params: unknown, callback: SqliteCallback): void;
  all(sql: string, params: unknown, callback: SqliteCallback): void;
  prepare(sql: string, callback: (err: Error | null) => void): SqliteStatement;
}

/** Prepared statements kept per connection; enough for every statement text the bridge uses. */
const STATEMENT_CACHE_SIZE = 256;

/**
 * knex runs every query through the driver's `run`/`all`, which prepare a new statement each time:
 * about 120-160 µs per statement, on every one of the two dozen statements a bridged message
 * costs (bench, docs/benchmark.md). Routing them through a per-connection cache of prepared
 * statements keeps knex's behaviour (the callbacks get the statement as `this`, with `lastID` and
 * `changes`, as the driver's own `run` gives) and prepares each statement text once.
 */
function reusePreparedStatements(conn: SqliteConnection): void {
  const cache = new Map<string, SqliteStatement>();
  const statement = (sql: string, onError: SqliteCallback): SqliteStatement | undefined => {
    const cached = cache.get(sql);
    if (cached !== undefined) {
      // Most recently used last, so eviction takes the least recently used.
      cache.delete(sql);
      cache.set(sql, cached);
      return cached;
    }
    let failed = false;
    const stmt = conn.prepare(sql, (err) => {
      if (err === null) return;
      failed = true;
      cache.delete(sql);
      onError.call(stmt, err);
    });
    if (failed) return undefined;
    cache.set(sql, stmt);
    if (cache.size > STATEMENT_CACHE_SIZE) {
      const [oldest, evicted] = cache.entries().next().value as [string, SqliteStatement];
      cache.delete(oldest);
      evicted.finalize();
    }
    return stmt;
  };
  const via =
    (method: "run" | "all") =>
    (sql: string, params: unknown, callback: SqliteCallback): void => {
      // A statement that fails to prepare reports through the callback, as the driver does; its
      // queued run/all is then answered with the same error by the driver.
      let reported = false;
      const once: SqliteCallback = function (this: unknown, err, rows) {
        if (reported) return;
        reported = true;
        callback.call(this, err, rows);
      };
      const stmt = statement(sql, once);
      if (stmt === undefined) return;
      stmt[method](params ?? [], once);
    };
  conn.run = via("run");
  conn.all = via("all");
}

// int8 columns hold millisecond timestamps and counters, all far below 2^53: read them as numbers
// on PostgreSQL as SQLite does, instead of pg's default strings.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

function openPostgres(options: DatabaseOptions): Knex {
  return knexFactory({
    client: "pg",
    connection: options.uri,
    searchPath: options.schema === undefined ? undefined : [options.schema],
    pool: { min: 0, max: options.maxConnections ?? 10 },
    acquireConnectionTimeout: 10_000,
  });
}

/** Hides a password in a connection URI for error messages and logs. */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.password !== "") url.password = "***";
    return url.toString();
  } catch {
    return uri;
  }
}

/**
 * Whether `err` (or a cause) is the database refusing writes: read-only (PostgreSQL SQLSTATE 25006,
 * e.g. `default_transaction_read_only` or a standby; SQLite SQLITE_READONLY, a read-only file or
 * directory) or out of space (53100 disk_full; SQLITE_FULL).
 */
export function storageRefusal(err: unknown): "read-only" | "full" | undefined {
  let current: unknown = err;
  for (let depth = 0; current instanceof Error && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (code === "25006" || code === "SQLITE_READONLY") return "read-only";
    if (code === "53100" || code === "SQLITE_FULL") return "full";
    current = current.cause;
  }
  return undefined;
}

/** The start-up error for a database that refuses writes, or undefined for any other error. */
export function storageStartupError(err: unknown, type: DatabaseType): StartupError | undefined {
  const refusal = storageRefusal(err);
  if (refusal === undefined) return undefined;
  const what = refusal === "read-only" ? "is read-only" : "is full";
  const pgError = err instanceof Error ? err.message.replace(/^.* - /, "") : String(err);
  return new StartupError(
    refusal === "read-only" ? "database-read-only" : "database-full",
    `the ${type} database ${what} (${pgError}); the bridge writes every message it bridges ` +
      "and does not start without a writable database. Nothing was changed in it.",
  );
}

/**
 * Fails when the database cannot be written, before the bridge takes any work: a write that is
 * rolled back (an update of a row of the migrations table, which a read-only PostgreSQL
 * transaction and a read-only SQLite file both refuse).
 */
export async function checkWritable(db: Database): Promise<void> {
  const rollback = new Error("rollback");
  try {
    await db.knex.transaction(async (trx) => {
      await trx.raw(
        "update schema_migrations set batch = batch where id = (select min(id) from schema_migrations)",
      );
      throw rollback;
    });
  } catch (err) {
    if (err !== rollback) throw err;
  }
}
