import type { Knex } from "knex";

/**
 * Groups (PROTOCOL.md §17): the groups, their membership history, the messages accepted in them
 * (for receipt, marker and retry routing, §15.7, §17.6), and the simulated users' sender-key
 * bookkeeping (§17.4, §17.5). Membership rows are never deleted: a member who leaves gets
 * `left_seq`, so "was a member when message N was accepted" is a query on seq, not on a clock.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("gk_groups", (t) => {
    t.string("jid", 128).primary();
    t.string("creator", 1100).notNullable();
    t.bigInteger("created_at").notNullable();
    t.text("subject").nullable();
    // The group version of §17.2, and the group's seq counter (§15.6: messages and events).
    t.integer("version").notNullable();
    t.integer("seq").notNullable().defaultTo(0);
  });

  await knex.schema.createTable("gk_group_members", (t) => {
    t.increments("id").primary();
    t.string("group_jid", 128).notNullable();
    t.string("jid", 1100).notNullable();
    t.string("role", 8).notNullable();
    // Group seq when the member joined and (null while a member) when they left or were removed.
    t.integer("joined_seq").notNullable();
    t.integer("left_seq").nullable();
    t.bigInteger("joined_at").notNullable();
    t.index(["group_jid", "left_seq"]);
    t.index(["group_jid", "jid"]);
  });

  // Messages accepted in a group (not re-sends, receipts or distribution-only stanzas).
  await knex.schema.createTable("gk_group_messages", (t) => {
    t.string("group_jid", 128).notNullable();
    t.string("sender", 1100).notNullable();
    t.string("origin_id", 64).notNullable();
    t.integer("sender_device").notNullable();
    t.integer("seq").notNullable();
    t.boolean("has_group").notNullable();
    t.bigInteger("at").notNullable();
    t.primary(["group_jid", "sender", "origin_id"]);
  });

  // Simulated users: which member devices hold the current SKDM of one of their devices.
  await knex.schema.createTable("gk_user_sender_keys", (t) => {
    t.string("owner", 64).notNullable();
    t.integer("owner_device").notNullable();
    t.string("group_jid", 128).notNullable();
    t.string("distribution_id", 64).notNullable();
    t.string("target", 1100).notNullable();
    t.integer("target_device").notNullable();
    // Hex of the target user's identity key when it got the SKDM: a change forces rotation.
    t.string("identity", 128).notNullable();
    t.primary(["owner", "owner_device", "group_jid", "target", "target_device"]);
  });

  // Simulated users: group envelopes they sent, kept to answer retries (§17.6, E29).
  await knex.schema.createTable("gk_user_group_sent", (t) => {
    t.string("owner", 64).notNullable();
    t.integer("owner_device").notNullable();
    t.string("origin_id", 64).notNullable();
    t.string("group_jid", 128).notNullable();
    t.text("envelope").notNullable();
    // JSON {jid: devices[]} of every member device as the sender knew them when it sent.
    t.text("members").notNullable();
    t.text("answered").notNullable().defaultTo("[]");
    t.bigInteger("at").notNullable();
    t.primary(["owner", "owner_device", "origin_id"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    "gk_user_group_sent",
    "gk_user_sender_keys",
    "gk_group_messages",
    "gk_group_members",
    "gk_groups",
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
