import assert from "node:assert/strict";
import knexFactory from "knex";
import { DirectoryMigrationSource, migrateToLatest } from "../../src/db/migrate.js";
import { SIMULATOR_MIGRATIONS } from "../../simulator/gatekeeper.js";

describe("simulator: migrations", function () {
  it("apply from scratch, roll back completely and apply again", async function () {
    const knex = knexFactory({
      client: "sqlite3",
      connection: { filename: ":memory:" },
      useNullAsDefault: true,
      pool: { min: 1, max: 1 },
    });
    try {
      const first = await migrateToLatest(knex, SIMULATOR_MIGRATIONS);
      assert.deepEqual(first.applied, [
        "0001_gatekeeper",
        "0002_user_signal_store",
        "0003_local_pending",
        "0004_groups",
      ]);
      assert.equal(await knex.schema.hasTable("gk_queue"), true);
      assert.equal(await knex.schema.hasTable("signal_local_devices"), true);
      assert.deepEqual((await migrateToLatest(knex, SIMULATOR_MIGRATIONS)).applied, []);
      await knex.migrate.rollback(
        {
          migrationSource: new DirectoryMigrationSource(SIMULATOR_MIGRATIONS),
          tableName: "schema_migrations",
        },
        true,
      );
      assert.equal(await knex.schema.hasTable("gk_queue"), false);
      assert.equal(await knex.schema.hasTable("signal_local_devices"), false);
      assert.equal(await knex.schema.hasTable("gk_local_pending"), false);
      assert.equal(await knex.schema.hasTable("gk_group_members"), false);
      assert.equal((await migrateToLatest(knex, SIMULATOR_MIGRATIONS)).applied.length, 4);
    } finally {
      await knex.destroy();
    }
  });
});
