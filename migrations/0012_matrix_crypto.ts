import type { Knex } from "knex";

/**
 * Matrix-side end-to-bridge encryption (issue 12):
 *
 * - `matrix_crypto_records`: the records of the OlmMachines' IndexedDB stores (one store per
 *   Matrix device the bridge owns), mirrored write-through from the in-memory IndexedDB
 *   (src/matrix/crypto/idb-mirror.ts). `key_id` is a digest of the IndexedDB key so the primary
 *   key has a fixed length; `idb_key` is the key itself (v8-serialized) and `value` the record,
 *   v8-serialized and sealed with the key vault.
 * - `matrix_crypto_schemas`: each mirrored IndexedDB database's version and object stores, so
 *   that a database is rebuilt with the same shape before the machine opens it.
 * - `matrix_crypto_devices`: the device (and its access token, sealed) of the bot and of each
 *   ghost that sends into an encrypted room, and its /sync position in sync mode.
 * - `matrix_crypto_rooms`: rooms whose m.room.encryption state the bridge has seen, with the
 *   content of that event (algorithm, rotation settings).
 * - `matrix_crypto_outbound`: the rooms each device has shared an outbound Megolm session in, so
 *   that after an unclean stop exactly those sessions are discarded (docs/message-path.md rule 4).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("matrix_crypto_records", (t) => {
    t.string("db_name", 255).notNullable();
    t.string("store", 128).notNullable();
    t.string("key_id", 64).notNullable();
    t.binary("idb_key").notNullable();
    t.binary("value").notNullable();
    t.primary(["db_name", "store", "key_id"]);
  });
  await knex.schema.createTable("matrix_crypto_schemas", (t) => {
    t.string("db_name", 255).primary();
    t.integer("version").notNullable();
    t.text("stores").notNullable();
  });
  await knex.schema.createTable("matrix_crypto_devices", (t) => {
    t.string("user_id", 255).primary();
    t.string("device_id", 255).notNullable();
    t.binary("access_token").notNullable();
    t.bigInteger("created_at").notNullable();
    // Where the device's /sync stands, when the homeserver does not push its to-device events.
    t.text("sync_since").nullable();
  });
  await knex.schema.createTable("matrix_crypto_rooms", (t) => {
    t.string("room_id", 255).primary();
    t.text("encryption").notNullable();
    t.bigInteger("updated_at").notNullable();
  });
  await knex.schema.createTable("matrix_crypto_outbound", (t) => {
    t.string("user_id", 255).notNullable();
    t.string("room_id", 255).notNullable();
    t.primary(["user_id", "room_id"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("matrix_crypto_outbound");
  await knex.schema.dropTableIfExists("matrix_crypto_rooms");
  await knex.schema.dropTableIfExists("matrix_crypto_devices");
  await knex.schema.dropTableIfExists("matrix_crypto_schemas");
  await knex.schema.dropTableIfExists("matrix_crypto_records");
}
