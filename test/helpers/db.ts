import { randomBytes } from "node:crypto";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import knexFactory, { type Knex } from "knex";
import { openDatabase, type Database, type DatabaseType } from "../../src/db/database.js";
import { migrateToLatest } from "../../src/db/migrate.js";

/** The local PostgreSQL that CI starts (.ci/run); override with TEST_POSTGRES_URI. */
export const TEST_POSTGRES_URI =
  process.env.TEST_POSTGRES_URI ?? "postgresql://postgres@127.0.0.1:5432/test";

export const BACKENDS: readonly DatabaseType[] = ["sqlite", "postgres"];

export interface TestDatabase {
  readonly db: Database;
  /** Options that open the same database again (a restart of the bridge). */
  readonly options: { type: DatabaseType; uri: string; schema?: string };
  dispose(): Promise<void>;
}

/**
 * A fresh, empty database: a new SQLite file in a temporary directory, or a new schema in the test
 * PostgreSQL database that is dropped again on dispose, so test runs never see each other's rows.
 * With `reuse`, a migrated PostgreSQL schema may be one an earlier test of this run used, emptied:
 * migrating a schema costs PostgreSQL a quarter second, a test harness made per test pays it
 * hundreds of times. A migrated SQLite database is a copy of one migrated once per run. Only for
 * tests that change no table's shape.
 */
export async function createTestDatabase(
  type: DatabaseType,
  { migrate = true, reuse = false }: { migrate?: boolean; reuse?: boolean } = {},
): Promise<TestDatabase> {
  if (type === "postgres" && migrate && reuse) return reusedSchema();
  if (type === "sqlite") {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-db-"));
    const options = { type, uri: path.join(dir, "bridge.db") } as const;
    if (migrate && reuse) await copyFile(await migratedSqlite(), options.uri);
    const db = await openDatabase(options);
    if (migrate && !reuse) await migrateToLatest(db.knex);
    return {
      db,
      options,
      async dispose() {
        await db.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `test_${randomBytes(6).toString("hex")}`;
  const admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
  await admin.raw(`create schema "${schema}"`);
  await admin.destroy();
  const options = { type, uri: TEST_POSTGRES_URI, schema } as const;
  const db = await openDatabase(options);
  if (migrate) await migrateToLatest(db.knex);
  return {
    db,
    options,
    async dispose() {
      await db.close();
      const cleanup = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
      await cleanup.raw(`drop schema "${schema}" cascade`);
      await cleanup.destroy();
    },
  };
}

/** A SQLite database migrated once per run, closed, for `reuse` to copy; removed when the run ends. */
let sqliteTemplate: Promise<{ dir: string; file: string }> | undefined;

async function migratedSqlite(): Promise<string> {
  sqliteTemplate ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "mwi-db-template-"));
    const file = path.join(dir, "bridge.db");
    const db = await openDatabase({ type: "sqlite", uri: file });
    await migrateToLatest(db.knex);
    // Closing the last connection checkpoints the write-ahead log into the file and removes it.
    await db.close();
    return { dir, file };
  })();
  return (await sqliteTemplate).file;
}

/** Migrated schemas of this run whose tests ended, emptied (`reuse`); dropped when the run ends. */
const spareSchemas: string[] = [];

/**
 * The statement that empties a migrated schema's tables and restarts its sequences, by schema:
 * read from the catalog once (its queries are slow where many schemas came and went). Deletes, a
 * table before the tables it refers to: a truncate costs PostgreSQL about 100 ms (new files for
 * every table), a delete from mostly empty tables a few.
 */
const emptying = new Map<string, string>();

async function emptyingOf(knex: Knex, schema: string): Promise<string> {
  const tables = (await knex("pg_tables")
    .where({ schemaname: schema })
    .whereNot("tablename", "like", "schema\\_migrations%")
    .pluck("tablename")) as string[];
  const references = (
    await knex.raw<{ rows: { child: string; parent: string }[] }>(
      `select c.conrelid::regclass::text as child, c.confrelid::regclass::text as parent
         from pg_constraint c where c.contype = 'f' and c.connamespace = ?::regnamespace`,
      [schema],
    )
  ).rows.map(({ child, parent }) => ({ child: unqualified(child), parent: unqualified(parent) }));
  const sequences = (await knex("pg_sequences")
    .where({ schemaname: schema })
    .pluck("sequencename")) as string[];
  // Children first: a table goes once no table left refers to it (other than itself).
  const order: string[] = [];
  const left = new Set(tables);
  while (left.size > 0) {
    const free = [...left].filter(
      (table) =>
        !references.some((r) => r.parent === table && r.child !== table && left.has(r.child)),
    );
    if (free.length === 0) throw new Error(`foreign keys in a cycle among ${[...left].join(", ")}`);
    for (const table of free) {
      order.push(table);
      left.delete(table);
    }
  }
  return [
    "begin",
    ...order.map((table) => `delete from "${schema}"."${table}"`),
    ...sequences.map((sequence) => `alter sequence "${schema}"."${sequence}" restart`),
    "commit",
  ].join(";\n");
}

/** A table's name as `regclass` shows it, without its schema and quotes. */
const unqualified = (name: string): string => (name.split(".").pop() ?? name).replace(/"/g, "");

async function reusedSchema(): Promise<TestDatabase> {
  const spare = spareSchemas.pop();
  const fresh = spare === undefined ? await createTestDatabase("postgres") : undefined;
  const options = fresh?.options ?? { type: "postgres", uri: TEST_POSTGRES_URI, schema: spare };
  const schema = options.schema as string;
  const db = fresh?.db ?? (await openDatabase(options));
  return {
    db,
    options,
    async dispose() {
      emptying.set(schema, emptying.get(schema) ?? (await emptyingOf(db.knex, schema)));
      await db.knex.raw(emptying.get(schema) as string);
      await db.close();
      spareSchemas.push(schema);
    },
  };
}

// Mocha's root hook, where mocha loads this file: the SQLite template and the spare schemas go
// when the run ends.
if (typeof after === "function") {
  after(async function () {
    if (sqliteTemplate !== undefined) {
      await rm((await sqliteTemplate).dir, { recursive: true, force: true });
      sqliteTemplate = undefined;
    }
    if (spareSchemas.length === 0) return;
    const admin = knexFactory({ client: "pg", connection: TEST_POSTGRES_URI });
    try {
      for (const schema of spareSchemas.splice(0))
        await admin.raw(`drop schema "${schema}" cascade`);
    } finally {
      await admin.destroy();
    }
  });
}

/**
 * Runs the same suite once per backend. `get()` returns the suite's database (fresh per suite,
 * shared by its tests).
 */
export function describeOnBackends(
  title: string,
  body: (get: () => TestDatabase) => void,
  { migrate = true }: { migrate?: boolean } = {},
): void {
  for (const backend of BACKENDS) {
    describe(`${title} [${backend}]`, function () {
      let current: TestDatabase | undefined;
      before(async function () {
        current = await createTestDatabase(backend, { migrate });
      });
      after(async function () {
        await current?.dispose();
      });
      body(() => {
        if (current === undefined) throw new Error("test database not created yet");
        return current;
      });
    });
  }
}

/**
 * A key-value table of the tests' own, for a test that needs somewhere to write beside the
 * bridge's tables (a row inside a transaction under test, a planted secret): not part of the
 * schema, made on first use.
 */
export async function scratchTable(knex: Knex): Promise<string> {
  if (!(await knex.schema.hasTable(SCRATCH))) {
    await knex.schema.createTable(SCRATCH, (t) => {
      t.string("key", 255).primary();
      t.text("value").notNullable();
    });
  }
  return SCRATCH;
}

const SCRATCH = "test_scratch";
