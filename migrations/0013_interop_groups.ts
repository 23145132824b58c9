import type { Knex } from "knex";

/**
 * Groups at the interop provider (PROTOCOL.md §17, issue #17), per local user:
 *
 * - `interop_groups`: the group as the login last saw it: its version (a gap in the versions of
 *   membership notifications means a re-fetch of `info`, §17.2), the participants with their
 *   roles (JSON: the members a group message's sender key goes to) and whether the login's own
 *   sender key must be replaced before its next message (§17.5: a participant was removed or
 *   left, or a member device was removed or changed identity).
 * - `interop_sender_key_holders`: which member devices hold the login's current sender key of a
 *   group, by distribution id, so that a new distribution id (rotation) means nobody holds it.
 *   Written in the transaction that stores the message whose header carried the key.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("interop_groups", (t) => {
    t.string("local_jid", 255).notNullable();
    t.string("group_jid", 255).notNullable();
    t.integer("version").notNullable();
    t.text("participants").notNullable();
    t.boolean("rotate_pending").notNullable().defaultTo(false);
    t.bigInteger("updated_at").notNullable();
    t.primary(["local_jid", "group_jid"]);
  });
  await knex.schema.createTable("interop_sender_key_holders", (t) => {
    t.string("local_jid", 255).notNullable();
    t.string("group_jid", 255).notNullable();
    t.string("distribution_id", 64).notNullable();
    t.string("member_jid", 255).notNullable();
    t.integer("device").notNullable();
    t.primary(["local_jid", "group_jid", "distribution_id", "member_jid", "device"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("interop_sender_key_holders");
  await knex.schema.dropTableIfExists("interop_groups");
}
