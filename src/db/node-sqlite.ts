import { createRequire } from "node:module";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { Knex } from "knex";

/**
 * SQLite through Node's built-in `node:sqlite` (synchronous), as a knex client.
 *
 * Why: the `sqlite3` package runs every statement on a worker thread and calls back on the main
 * thread; on the message path that round trip was ~40 % of the bridge's main-thread time (issue
 * #15's profile), for statements that take a few microseconds in SQLite itself. A synchronous
 * driver runs them in place. knex's `better-sqlite3` dialect already speaks to a synchronous
 * driver, so this client is that dialect with a thin driver over `DatabaseSync`: knex queries,
 * migrations and the hot path's statements (src/db/sql.ts) share this one connection.
 *
 * The shim keeps what the rest of the bridge saw from `sqlite3`: BLOBs come back as `Buffer`,
 * rows are plain objects, and errors carry the `SQLITE_*` name as `code` and message prefix
 * (src/util/errors.ts and `storageRefusal` branch on the code).
 */

const require = createRequire(import.meta.url);
// knex has no typings for its dialect classes; the constructor is all this module needs.
const BetterSqlite3Client = require("knex/lib/dialects/better-sqlite3/index.js") as new (
  config: Knex.Config,
) => object;

/** Prepared statements kept per connection; more than every statement text the bridge uses. */
const STATEMENT_CACHE_SIZE = 512;

/** SQLite's primary result codes (the low byte of an extended code) by name. */
const PRIMARY_CODES: Record<number, string> = {
  1: "SQLITE_ERROR",
  2: "SQLITE_INTERNAL",
  3: "SQLITE_PERM",
  4: "SQLITE_ABORT",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  7: "SQLITE_NOMEM",
  8: "SQLITE_READONLY",
  9: "SQLITE_INTERRUPT",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  15: "SQLITE_PROTOCOL",
  17: "SQLITE_SCHEMA",
  18: "SQLITE_TOOBIG",
  19: "SQLITE_CONSTRAINT",
  20: "SQLITE_MISMATCH",
  21: "SQLITE_MISUSE",
  26: "SQLITE_NOTADB",
};

/** An error as `sqlite3` reports it: `code` SQLITE_*, the code first in the message. */
function sqliteError(err: unknown): unknown {
  const errcode = (err as { errcode?: unknown }).errcode;
  if (!(err instanceof Error) || typeof errcode !== "number") return err;
  const code = PRIMARY_CODES[errcode & 0xff] ?? "SQLITE_ERROR";
  const mapped = new Error(`${code}: ${err.message}`, { cause: err }) as Error & {
    code: string;
    errno: number;
  };
  mapped.code = code;
  mapped.errno = errcode & 0xff;
  return mapped;
}

type SqliteParam = string | number | bigint | null | Uint8Array;

/** One prepared statement, with the interface knex's better-sqlite3 dialect uses. */
class ShimStatement {
  /** Whether the statement returns rows (SELECT, PRAGMA, ... RETURNING). */
  readonly reader: boolean;

  constructor(private readonly stmt: StatementSync) {
    this.reader = stmt.columns().length > 0;
  }

  all(params: readonly SqliteParam[] = []): Record<string, unknown>[] {
    let rows: Record<string, unknown>[];
    try {
      rows = this.stmt.all(...params) as Record<string, unknown>[];
    } catch (err) {
      throw sqliteError(err);
    }
    return rows.map(plainRow);
  }

  run(params: readonly SqliteParam[] = []): { changes: number; lastInsertRowid: number } {
    try {
      const result = this.stmt.run(...params);
      return { changes: Number(result.changes), lastInsertRowid: Number(result.lastInsertRowid) };
    } catch (err) {
      throw sqliteError(err);
    }
  }

  /** knex asks for it only when a query sets `safeIntegers`; the bridge never does. */
  safeIntegers(on: boolean): void {
    this.stmt.setReadBigInts(on);
  }
}

/** A row as a plain object, BLOBs as Buffer (no copy), as `sqlite3` returned them. */
function plainRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in row) {
    const value = row[key];
    out[key] =
      value instanceof Uint8Array
        ? Buffer.from(value.buffer, value.byteOffset, value.length)
        : value;
  }
  return out;
}

/**
 * Statements counted at the driver (all connections of the process), for the bench: knex's
 * queries and the hot path's alike. `tally`, when set, is called with each statement's text.
 */
export const driverStatements: { count: number; tally?: (sql: string) => void } = { count: 0 };

/** The driver object knex's better-sqlite3 dialect expects, over one `DatabaseSync`. */
export class ShimConnection {
  private readonly db: DatabaseSync;
  private readonly cache = new Map<string, ShimStatement>();

  constructor(filename: string, options: { readonly?: boolean } = {}) {
    try {
      this.db = new DatabaseSync(filename, { readOnly: options.readonly === true });
    } catch (err) {
      throw sqliteError(err);
    }
  }

  /** A prepared statement for `sql`, prepared once per connection (least recently used evicted). */
  prepare(sql: string): ShimStatement {
    driverStatements.count++;
    driverStatements.tally?.(sql);
    const cached = this.cache.get(sql);
    if (cached !== undefined) {
      this.cache.delete(sql);
      this.cache.set(sql, cached);
      return cached;
    }
    let stmt: ShimStatement;
    try {
      stmt = new ShimStatement(this.db.prepare(sql));
    } catch (err) {
      throw sqliteError(err);
    }
    this.cache.set(sql, stmt);
    if (this.cache.size > STATEMENT_CACHE_SIZE) {
      const oldest = this.cache.keys().next().value as string;
      // A statement that is dropped is finalized by the garbage collector.
      this.cache.delete(oldest);
    }
    return stmt;
  }

  exec(sql: string): void {
    try {
      this.db.exec(sql);
    } catch (err) {
      throw sqliteError(err);
    }
  }

  get inTransaction(): boolean {
    return this.db.isTransaction;
  }

  close(): void {
    this.cache.clear();
    this.db.close();
  }
}

/** `new ShimConnection(...)` under the name knex's dialect constructs its driver with. */
function driver(filename: string, options: { readonly?: boolean }): ShimConnection {
  return new ShimConnection(filename, options);
}

/** knex's better-sqlite3 dialect with the `node:sqlite` driver. */
export class NodeSqliteClient extends (BetterSqlite3Client as new (config: Knex.Config) => {
  driver: unknown;
}) {
  _driver(): unknown {
    return driver;
  }
}
Object.assign(NodeSqliteClient.prototype, { driverName: "node:sqlite" });
