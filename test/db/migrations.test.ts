import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import {
  DirectoryMigrationSource,
  defaultMigrationsDirectory,
  migrateToLatest,
  pendingMigrations,
} from "../../src/db/migrate.js";
import { describeOnBackends } from "../helpers/db.js";

const EXPECTED_TABLES = [
  "users",
  "ghosts",
  "contacts",
  "portals",
  "messages",
  "reactions",
  "outbox",
  "inbox",
  "decrypted_messages",
  "matrix_inbox",
  "matrix_transactions",
  "group_portals",
  "group_members",
  "group_users",
  "group_messages",
  "group_reactions",
  "interop_users",
];

describeOnBackends(
  "database migrations",
  (get) => {
    it("an empty database is migrated to the latest schema with every table", async function () {
      const { db } = get();
      const onDisk = (await readdir(fileURLToPath(new URL("../../migrations/", import.meta.url))))
        .filter((f) => /^\d{4}_.*\.ts$/.test(f))
        .map((f) => f.replace(/\.ts$/, ""))
        .sort();
      assert.deepEqual(await pendingMigrations(db.knex), onDisk);
      const result = await migrateToLatest(db.knex);
      assert.deepEqual(result.applied, onDisk);
      assert.deepEqual(await pendingMigrations(db.knex), []);
      for (const table of EXPECTED_TABLES) {
        assert.equal(await db.knex.schema.hasTable(table), true, `table ${table} exists`);
      }
      // 0020: the key-value table of the first schema, never used by the bridge, is gone.
      assert.equal(await db.knex.schema.hasTable("bridge_state"), false);
    });

    it("migrating twice applies nothing the second time and keeps the data", async function () {
      const { db } = get();
      await migrateToLatest(db.knex);
      const now = Date.now();
      await db.knex("users").insert({
        mxid: "@alice:example.org",
        created_at: now,
        updated_at: now,
      });
      const again = await migrateToLatest(db.knex);
      assert.deepEqual(again.applied, []);
      const user = await db.knex("users").where({ mxid: "@alice:example.org" }).first();
      assert.equal(user.created_at, now, "bigint timestamps read back as numbers");
    });

    it("every migration can be rolled back and replayed", async function () {
      const { db } = get();
      await migrateToLatest(db.knex);
      await db.knex("users").del();
      // Roll back everything through knex with our source, then replay from scratch.
      const migrationSource = new DirectoryMigrationSource(defaultMigrationsDirectory());
      let rolledBack = 0;
      for (;;) {
        const [, names] = (await db.knex.migrate.rollback(
          { tableName: "schema_migrations", migrationSource },
          true,
        )) as [number, string[]];
        rolledBack += names.length;
        if (names.length === 0) break;
      }
      assert.ok(rolledBack > 0);
      for (const table of EXPECTED_TABLES) {
        assert.equal(await db.knex.schema.hasTable(table), false, `table ${table} dropped`);
      }
      const replay = await migrateToLatest(db.knex);
      assert.ok(replay.applied.length > 0);
      for (const table of EXPECTED_TABLES) {
        assert.equal(await db.knex.schema.hasTable(table), true, `table ${table} recreated`);
      }
    });
  },
  { migrate: false },
);
