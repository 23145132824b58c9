import { DirectoryMigrationSource, defaultMigrationsDirectory } from "../../src/db/migrate.js";

/**
 * The migrations up to `last` (inclusive, by its four-digit number), from the directory the
 * bridge uses: a migration test builds the schema before the migration it tests, fills it, then
 * runs that one migration up and down.
 */
export class MigrationsUpTo extends DirectoryMigrationSource {
  constructor(private readonly last: string) {
    super(defaultMigrationsDirectory());
  }

  override async getMigrations(): Promise<string[]> {
    return (await super.getMigrations()).filter((file) => file.slice(0, 4) <= this.last);
  }
}
