import type { Knex } from "knex";

/**
 * The Signal-protocol stores of the bridge's local users (src/interop/crypto/). Every column that
 * holds a serialized libsignal record or private key (`*_enc`) is sealed by the KeyVault
 * (AES-256-GCM, associated data naming the row), so that a database dump holds no private key
 * material. Public keys and bookkeeping stay in the clear. Times are integer ms since the epoch.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("crypto_meta", (t) => {
    // `vault_check`: a known value sealed under the vault key, to refuse a wrong key at start-up.
    t.string("key", 64).primary();
    t.binary("value").notNullable();
  });

  await knex.schema.createTable("signal_local_identities", (t) => {
    // One identity key pair per local user, shared by all its devices (PROTOCOL.md §11.2).
    t.string("jid", 1100).primary();
    t.binary("key_pair_enc").notNullable();
    t.binary("public_key").notNullable();
    t.bigInteger("created_at").notNullable();
  });

  await knex.schema.createTable("signal_local_devices", (t) => {
    t.increments("id").primary();
    t.string("jid", 1100)
      .notNullable()
      .references("jid")
      .inTable("signal_local_identities")
      .onDelete("CASCADE");
    t.integer("device_id").notNullable();
    t.integer("registration_id").notNullable();
    // Next id to try per id space (§11.1); ids only grow (wrapping at 2^24-1), so an id is not
    // reused while a row for it (live, consumed or superseded) is still kept.
    t.integer("next_prekey_id").notNullable();
    t.integer("next_signed_prekey_id").notNullable();
    t.integer("next_kyber_prekey_id").notNullable();
    t.bigInteger("created_at").notNullable();
    t.unique(["jid", "device_id"]);
  });

  await knex.schema.createTable("signal_prekeys", (t) => {
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.integer("prekey_id").notNullable();
    // Null once consumed: the row then only reserves the id for 90 days.
    t.binary("record_enc").nullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("consumed_at").nullable();
    t.primary(["owner_id", "prekey_id"]);
  });

  await knex.schema.createTable("signal_signed_prekeys", (t) => {
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.integer("prekey_id").notNullable();
    t.binary("record_enc").notNullable();
    t.bigInteger("created_at").notNullable();
    // Superseded keys stay usable for late PreKeySignalMessages for 90 days (§11.6).
    t.bigInteger("superseded_at").nullable();
    t.primary(["owner_id", "prekey_id"]);
  });

  await knex.schema.createTable("signal_kyber_prekeys", (t) => {
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    // One id space for one-time and last-resort Kyber prekeys (§11.1).
    t.integer("prekey_id").notNullable();
    t.boolean("last_resort").notNullable();
    t.binary("record_enc").nullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("consumed_at").nullable();
    t.bigInteger("superseded_at").nullable();
    t.primary(["owner_id", "prekey_id"]);
  });

  await knex.schema.createTable("signal_kyber_used", (t) => {
    // Uses of last-resort Kyber prekeys, for replay rejection (§11.6, P28); deleted with the key.
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.integer("kyber_prekey_id").notNullable();
    t.integer("signed_prekey_id").notNullable();
    t.string("base_key", 88).notNullable();
    t.bigInteger("used_at").notNullable();
    t.primary(["owner_id", "kyber_prekey_id", "signed_prekey_id", "base_key"]);
  });

  await knex.schema.createTable("signal_sessions", (t) => {
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.string("remote_jid", 1100).notNullable();
    t.integer("remote_device").notNullable();
    t.binary("record_enc").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.primary(["owner_id", "remote_jid", "remote_device"]);
  });

  await knex.schema.createTable("signal_identities", (t) => {
    // Remote identities per user (bare JID), as seen by one local user (§12.4).
    t.string("local_jid", 1100)
      .notNullable()
      .references("jid")
      .inTable("signal_local_identities")
      .onDelete("CASCADE");
    t.string("remote_jid", 1100).notNullable();
    t.binary("identity_key").notNullable();
    t.binary("previous_key").nullable();
    t.bigInteger("first_seen_at").notNullable();
    t.bigInteger("changed_at").nullable();
    t.bigInteger("verified_at").nullable();
    // False after a change until the user confirms it; consulted only in `hold` mode.
    t.boolean("confirmed").notNullable();
    t.primary(["local_jid", "remote_jid"]);
  });

  await knex.schema.createTable("signal_sender_keys", (t) => {
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.string("sender_jid", 1100).notNullable();
    t.integer("sender_device").notNullable();
    t.string("distribution_id", 36).notNullable();
    // The group the distribution id was first seen for (§13.3): binds it to that group.
    t.string("group_jid", 255).nullable();
    t.binary("record_enc").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.primary(["owner_id", "sender_jid", "sender_device", "distribution_id"]);
  });

  await knex.schema.createTable("signal_own_sender_keys", (t) => {
    // The current distribution id of each local device per group; replaced on rotation (§17.5).
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.string("group_jid", 255).notNullable();
    t.string("distribution_id", 36).notNullable();
    t.bigInteger("created_at").notNullable();
    t.primary(["owner_id", "group_jid"]);
  });

  await knex.schema.createTable("signal_device_lists", (t) => {
    // Device lists of remote users as last published by the key directory (§11.3, §11.7).
    t.string("jid", 1100).primary();
    t.bigInteger("version").notNullable();
    t.bigInteger("updated_at").notNullable();
  });

  await knex.schema.createTable("signal_remote_devices", (t) => {
    t.string("jid", 1100).notNullable();
    t.integer("device_id").notNullable();
    t.integer("registration_id").nullable();
    // When the device entered the list: authorises retry requests for earlier messages (§12.5).
    t.bigInteger("added_at").notNullable();
    t.primary(["jid", "device_id"]);
  });

  await knex.schema.createTable("signal_sent_envelopes", (t) => {
    // Envelopes kept for answering retry requests during retry-window-seconds (§12.5).
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.string("origin_id", 64).notNullable();
    t.string("conversation_jid", 1100).notNullable();
    t.binary("envelope_enc").notNullable();
    // JSON: [{ "jid": bare JID, "devices": [rid, ...] }]
    t.text("recipients").notNullable();
    t.bigInteger("sent_at").notNullable();
    t.primary(["owner_id", "origin_id"]);
    t.index(["sent_at"]);
  });

  await knex.schema.createTable("signal_retry_answers", (t) => {
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.string("origin_id", 64).notNullable();
    t.string("requester_jid", 1100).notNullable();
    t.integer("requester_device").notNullable();
    t.integer("count").notNullable();
    t.bigInteger("answered_at").notNullable();
    t.primary(["owner_id", "origin_id", "requester_jid", "requester_device", "count"]);
  });

  await knex.schema.createTable("signal_retry_requests", (t) => {
    // Retry requests this device sent per failed message (at most 2, §12.5).
    t.integer("owner_id")
      .notNullable()
      .references("id")
      .inTable("signal_local_devices")
      .onDelete("CASCADE");
    t.string("sender_jid", 1100).notNullable();
    t.integer("sender_device").notNullable();
    t.string("origin_id", 64).notNullable();
    t.integer("count").notNullable();
    t.bigInteger("first_requested_at").notNullable();
    t.primary(["owner_id", "sender_jid", "sender_device", "origin_id"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    "signal_retry_requests",
    "signal_retry_answers",
    "signal_sent_envelopes",
    "signal_remote_devices",
    "signal_device_lists",
    "signal_own_sender_keys",
    "signal_sender_keys",
    "signal_identities",
    "signal_sessions",
    "signal_kyber_used",
    "signal_kyber_prekeys",
    "signal_signed_prekeys",
    "signal_prekeys",
    "signal_local_devices",
    "signal_local_identities",
    "crypto_meta",
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
