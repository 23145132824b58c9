import { readdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Knex } from "knex";

/**
 * Migrations are numbered files in `migrations/` (`0001_initial.ts`, ...), discovered from disk.
 * The same directory is used from the sources (tsx, tests) and from the build (`dist/migrations`,
 * compiled `.js`), so a migration is named by its number and title without extension: a database
 * migrated by one can be opened by the other.
 */
interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

const MIGRATION_FILE = /^(\d{4}_[a-z0-9_]+)\.(ts|js)$/;

export function defaultMigrationsDirectory(): string {
  // src/db/migrate.ts -> migrations/ ; dist/src/db/migrate.js -> dist/migrations/
  return fileURLToPath(new URL("../../migrations/", import.meta.url));
}

export class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  constructor(private readonly directory: string) {}

  async getMigrations(): Promise<string[]> {
    const files = await readdir(this.directory);
    return files.filter((file) => MIGRATION_FILE.test(file) && !file.endsWith(".d.ts")).sort();
  }

  getMigrationName(file: string): string {
    return file.replace(/\.(ts|js)$/, "");
  }

  async getMigration(file: string): Promise<Knex.Migration> {
    const module = (await import(pathToFileURL(path.join(this.directory, file)).href)) as Migration;
    return { up: module.up, down: module.down };
  }
}

interface MigrationResult {
  /** Names of the migrations this call applied, in order; empty when the schema was current. */
  applied: string[];
}

/** Applies every pending migration. Safe to call on every start and any number of times. */
export async function migrateToLatest(
  knex: Knex,
  directory = defaultMigrationsDirectory(),
): Promise<MigrationResult> {
  const [, applied] = (await knex.migrate.latest({
    migrationSource: new DirectoryMigrationSource(directory),
    tableName: "schema_migrations",
  })) as [number, string[]];
  return { applied };
}

/** Names of the migrations known on disk and not yet applied. */
export async function pendingMigrations(
  knex: Knex,
  directory = defaultMigrationsDirectory(),
): Promise<string[]> {
  const source = new DirectoryMigrationSource(directory);
  const [, pending] = (await knex.migrate.list({
    migrationSource: source,
    tableName: "schema_migrations",
  })) as [unknown[], string[]];
  return pending.map((file) => source.getMigrationName(file));
}
