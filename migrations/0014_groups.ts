import type { Knex } from "knex";

/**
 * Group portals (issue #17, docs/groups.md). Column names are the network's neutral ones
 * (`remote_id`, `author`): the core knows groups only through core/network.ts.
 *
 * - `group_portals`: one Matrix room per group per bridge, with the subject and the version the
 *   room reflects (changes not newer are ignored).
 * - `group_members`: the members at the network as the bridge last applied them (admin flag and
 *   the name the connector gave, for ghosts of members without a phone number).
 * - `group_users`: the Matrix users of this bridge in a group: their membership in the room as the
 *   bridge last saw it and the request state (added by someone else = message request).
 * - `group_messages` / `group_reactions`: the message and reaction mappings of group portals, in
 *   the shape of `messages` / `reactions`. The unique (portal, author, remote id) key is what makes
 *   several logins reporting the same group message store and post it once.
 * - `ghosts.phone` becomes nullable: a member of another provider has no phone number.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("group_portals", (t) => {
    t.increments("id").primary();
    t.string("remote_id", 255).notNullable().unique();
    t.string("room_id", 255).nullable().unique();
    t.string("subject", 1024).notNullable().defaultTo("");
    t.bigInteger("version").notNullable().defaultTo(0);
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  });
  await knex.schema.createTable("group_members", (t) => {
    t.integer("portal_id")
      .notNullable()
      .references("id")
      .inTable("group_portals")
      .onDelete("CASCADE");
    t.string("remote_id", 255).notNullable();
    t.boolean("admin").notNullable().defaultTo(false);
    t.string("display_name", 255).notNullable();
    t.primary(["portal_id", "remote_id"]);
  });
  await knex.schema.createTable("group_users", (t) => {
    t.integer("portal_id")
      .notNullable()
      .references("id")
      .inTable("group_portals")
      .onDelete("CASCADE");
    t.string("user_mxid", 255)
      .notNullable()
      .references("mxid")
      .inTable("users")
      .onDelete("CASCADE");
    t.string("membership", 8).notNullable().defaultTo("invite");
    t.string("request_state", 20).notNullable().defaultTo("none");
    t.primary(["portal_id", "user_mxid"]);
    t.index(["user_mxid"]);
  });
  await knex.schema.createTable("group_messages", (t) => {
    t.bigIncrements("id").primary();
    t.integer("portal_id")
      .notNullable()
      .references("id")
      .inTable("group_portals")
      .onDelete("CASCADE");
    t.string("event_id", 255).notNullable().unique();
    t.string("remote_id", 64).notNullable();
    t.string("author", 255).notNullable();
    t.bigInteger("seq").nullable();
    t.bigInteger("sent_at").notNullable();
    t.string("direction", 3).notNullable();
    t.boolean("retracted").notNullable().defaultTo(false);
    t.unique(["portal_id", "author", "remote_id"]);
  });
  await knex.schema.createTable("group_reactions", (t) => {
    t.bigIncrements("id").primary();
    t.integer("portal_id")
      .notNullable()
      .references("id")
      .inTable("group_portals")
      .onDelete("CASCADE");
    t.string("event_id", 255).notNullable().unique();
    t.string("target_remote_id", 64).notNullable();
    t.string("target_author", 255).notNullable();
    t.string("sender", 255).notNullable();
    t.string("emoji", 64).notNullable();
    t.bigInteger("created_at").notNullable();
    t.index(["portal_id", "target_author", "target_remote_id"]);
  });
  await knex.schema.alterTable("ghosts", (t) => {
    t.string("phone", 16).nullable().alter();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex("ghosts").whereNull("phone").del();
  await knex.schema.alterTable("ghosts", (t) => {
    t.string("phone", 16).notNullable().alter();
  });
  await knex.schema.dropTableIfExists("group_reactions");
  await knex.schema.dropTableIfExists("group_messages");
  await knex.schema.dropTableIfExists("group_users");
  await knex.schema.dropTableIfExists("group_members");
  await knex.schema.dropTableIfExists("group_portals");
}
