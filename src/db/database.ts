import { mkdir } from "node:fs/promises";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import { StartupError, describeError } from "../util/errors.js";
import { startCheckpointer } from "./checkpointer.js";
import { NodeSqliteClient, type ShimConnection } from "./node-sqlite.js";

export type DatabaseType = "sqlite" | "postgres";

interface DatabaseOptions {
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
  const knex = options.type === "sqlite" ? await openSqlite(options) : await openPostgres(options);
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
  const checkpointer =
    options.type === "sqlite" && options.uri !== ":memory:"
      ? startCheckpointer(path.resolve(options.uri))
      : undefined;
  return {
    knex,
    type: options.type,
    close: async () => {
      await knex.destroy();
      await checkpointer?.stop();
    },
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
    client: NodeSqliteClient as unknown as typeof Knex.Client,
    connection: { filename: options.uri },
    useNullAsDefault: true,
    // One connection for everything: knex queries, migrations and the hot path (src/db/sql.ts)
    // take turns on it, so there is never a second writer to fail with SQLITE_BUSY.
    pool: {
      min: 1,
      max: 1,
      afterCreate(conn: ShimConnection, done: (err: Error | null, conn: unknown) => void) {
        // WAL lets readers proceed during a write and makes each commit one sequential append;
        // synchronous=NORMAL is durable in WAL mode except for the last commits on power loss.
        try {
          conn.exec(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;" +
              // Checkpoints run in a worker of their own (checkpointer.ts), not inside a COMMIT
              // on the main thread.
              (options.uri === ":memory:" ? "" : " PRAGMA wal_autocheckpoint = 0;"),
          );
        } catch (err) {
          done(err as Error, conn);
          return;
        }
        done(null, conn);
      },
    },
  });
}

async function openPostgres(options: DatabaseOptions): Promise<Knex> {
  // Loaded here, not at the top: on SQLite the driver is never needed, and loading it costs
  // resident memory for the bridge's whole life (docs/dependencies.md, "Memory at idle").
  const { default: pg } = await import("pg");
  // int8 columns hold millisecond timestamps and counters, all far below 2^53: read them as
  // numbers on PostgreSQL as SQLite does, instead of pg's default strings.
  pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
  return knexFactory({
    client: "pg",
    connection: options.uri,
    searchPath: options.schema === undefined ? undefined : [options.schema],
    pool: { min: 0, max: options.maxConnections ?? 10 },
    acquireConnectionTimeout: 10_000,
  });
}

/** Hides a password in a connection URI for error messages and logs. */
function redactUri(uri: string): string {
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
