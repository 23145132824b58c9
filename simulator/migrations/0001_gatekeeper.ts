import type { Knex } from "knex";

/**
 * The gatekeeper simulator's state, so that a restart loses nothing (PROTOCOL.md §8.2 hello state,
 * §15.4 de-duplication, §15.5 queue, §15.6 seq, §9 bindings, §11 key directory, §16 blocks, and
 * the rolling counters behind every quota). Times are integer ms since the epoch.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("gk_hello", (t) => {
    t.string("provider_domain", 255).primary();
    t.string("session", 64).notNullable();
    t.text("features").notNullable();
    t.bigInteger("at").notNullable();
  });

  await knex.schema.createTable("gk_iq_cache", (t) => {
    t.string("from_jid", 1100).notNullable();
    t.string("iq_id", 255).notNullable();
    t.text("response").notNullable();
    t.bigInteger("expires_at").notNullable();
    t.primary(["from_jid", "iq_id"]);
  });

  // Rolling-window counters: one row per counted event (§9.1, §10.2, §11.4, §16.3).
  await knex.schema.createTable("gk_events", (t) => {
    t.increments("id").primary();
    t.string("scope", 64).notNullable();
    t.string("subject", 1100).notNullable();
    t.string("item", 1100).notNullable().defaultTo("");
    t.bigInteger("at").notNullable();
    t.index(["scope", "subject", "at"]);
  });

  await knex.schema.createTable("gk_codes", (t) => {
    t.string("provider", 64).notNullable();
    t.string("phone", 16).notNullable();
    t.string("jid", 1100).notNullable();
    t.string("code", 16).notNullable();
    t.bigInteger("expires_at").notNullable();
    t.integer("attempts").notNullable().defaultTo(0);
    t.boolean("invalidated").notNullable().defaultTo(false);
    t.bigInteger("created_at").notNullable();
    t.primary(["provider", "phone", "jid"]);
  });

  await knex.schema.createTable("gk_locks", (t) => {
    t.string("provider", 64).notNullable();
    t.string("phone", 16).notNullable();
    t.bigInteger("until").notNullable();
    t.primary(["provider", "phone"]);
  });

  await knex.schema.createTable("gk_bindings", (t) => {
    t.string("provider", 64).notNullable();
    t.string("jid", 1100).notNullable();
    t.string("phone", 16).notNullable();
    t.bigInteger("at").notNullable();
    t.primary(["provider", "jid"]);
    t.unique(["provider", "phone"]);
  });

  await knex.schema.createTable("gk_handles", (t) => {
    t.string("provider", 64).notNullable();
    t.string("jid", 1100).notNullable();
    t.string("handle", 255).notNullable();
    t.string("folded", 512).notNullable();
    t.primary(["provider", "jid"]);
  });

  // Gatekeeper users (simulated WhatsApp users) and their reachability settings (§10.1).
  await knex.schema.createTable("gk_users", (t) => {
    t.string("jid", 64).primary();
    t.string("phone", 16).notNullable().unique();
    t.boolean("opted_in").notNullable().defaultTo(true);
    // JSON array of provider ids, or null for "every enlisted provider".
    t.text("allowed_providers").nullable();
    t.boolean("read_markers").notNullable().defaultTo(true);
    t.bigInteger("created_at").notNullable();
  });

  // Key directory (§11).
  await knex.schema.createTable("gk_key_users", (t) => {
    t.string("jid", 1100).primary();
    t.binary("identity").notNullable();
    t.integer("version").notNullable().defaultTo(0);
    t.text("devices").notNullable().defaultTo("[]");
    t.boolean("list_published").notNullable().defaultTo(false);
  });

  await knex.schema.createTable("gk_bundles", (t) => {
    t.string("jid", 1100).notNullable();
    t.integer("device").notNullable();
    t.integer("registration").notNullable();
    t.integer("spk_id").notNullable();
    t.binary("spk").notNullable();
    t.binary("spk_sig").notNullable();
    t.integer("lr_id").notNullable();
    t.binary("lr").notNullable();
    t.binary("lr_sig").notNullable();
    t.boolean("ever_kyber").notNullable().defaultTo(false);
    t.primary(["jid", "device"]);
  });

  await knex.schema.createTable("gk_prekeys", (t) => {
    t.string("jid", 1100).notNullable();
    t.integer("device").notNullable();
    t.string("kind", 8).notNullable(); // ec | kyber
    t.integer("key_id").notNullable();
    t.binary("public_key").notNullable();
    t.binary("signature").nullable();
    t.primary(["jid", "device", "kind", "key_id"]);
  });

  // 1:1 conversations between a provider user and a gatekeeper user (§10.2, §10.3, §15.6).
  await knex.schema.createTable("gk_conversations", (t) => {
    t.string("provider_jid", 1100).notNullable();
    t.string("gk_jid", 64).notNullable();
    // pending (request from the provider user), accepted, declined
    t.string("state", 16).notNullable();
    t.integer("held").notNullable().defaultTo(0);
    t.integer("seq").notNullable().defaultTo(0);
    t.bigInteger("created_at").notNullable();
    t.bigInteger("last_exchange").notNullable();
    t.primary(["provider_jid", "gk_jid"]);
  });

  // Who to tell about device changes (§11.7, E18).
  await knex.schema.createTable("gk_watchers", (t) => {
    t.string("watcher", 1100).notNullable();
    t.string("target", 1100).notNullable();
    t.bigInteger("at").notNullable();
    t.primary(["watcher", "target"]);
  });

  await knex.schema.createTable("gk_blocks", (t) => {
    t.string("owner", 1100).notNullable();
    t.string("target", 1100).notNullable();
    t.bigInteger("at").notNullable();
    t.primary(["owner", "target"]);
  });

  await knex.schema.createTable("gk_reports", (t) => {
    t.increments("id").primary();
    t.string("reporter", 1100).notNullable();
    t.string("target", 1100).notNullable();
    t.string("reason", 32).notNullable();
    t.text("text").nullable();
    t.text("messages").notNullable();
    t.bigInteger("at").notNullable();
  });

  // Accepted stanzas: de-duplication (§15.4) and retry routing (§12.5).
  await knex.schema.createTable("gk_accepted", (t) => {
    t.string("sender", 1100).notNullable();
    t.string("dedup_key", 1400).notNullable();
    t.string("origin_id", 64).notNullable();
    t.integer("sender_device").notNullable();
    t.string("recipient", 1100).notNullable();
    t.string("stanza_id", 64).notNullable();
    t.integer("seq").nullable();
    t.string("conversation", 1100).notNullable();
    t.string("service", 64).notNullable();
    t.boolean("encrypted").notNullable().defaultTo(false);
    t.bigInteger("at").notNullable();
    t.primary(["sender", "dedup_key"]);
    t.index(["sender", "origin_id"]);
  });

  // What each simulated gatekeeper user received (decrypted messages, receipts, markers, typing).
  await knex.schema.createTable("gk_user_log", (t) => {
    t.increments("id").primary();
    t.string("jid", 64).notNullable();
    t.string("kind", 32).notNullable();
    t.text("data").notNullable();
    t.bigInteger("at").notNullable();
    t.index(["jid", "id"]);
  });

  // Deliveries to providers, kept until acknowledged (§15.5).
  await knex.schema.createTable("gk_queue", (t) => {
    t.increments("id").primary();
    t.string("stanza_id", 64).notNullable().unique();
    t.string("provider_domain", 255).notNullable();
    t.string("by_domain", 255).notNullable();
    t.text("stanza").notNullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("sent_at").nullable();
    t.index(["provider_domain", "id"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    "gk_queue",
    "gk_user_log",
    "gk_accepted",
    "gk_reports",
    "gk_blocks",
    "gk_watchers",
    "gk_conversations",
    "gk_prekeys",
    "gk_bundles",
    "gk_key_users",
    "gk_users",
    "gk_handles",
    "gk_bindings",
    "gk_locks",
    "gk_codes",
    "gk_events",
    "gk_iq_cache",
    "gk_hello",
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
