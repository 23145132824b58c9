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
          (err) => done(err, conn),
        );
      },
    },
  });
}

interface SqliteConnection {
  exec(sql: string, callback: (err: Error | null) => void): void;
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
