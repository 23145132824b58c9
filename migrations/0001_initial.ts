import type { Knex } from "knex";

/**
 * The bridge's initial schema: logins and their interop identity, ghosts, portals, the message and
 * reaction mappings, and the delivery tables (outbox, inbox). The Signal stores have their own
 * migration. Times are integer milliseconds since the epoch (UTC) on both backends. The schema is
 * described in docs/database.md.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("users", (t) => {
    t.string("mxid", 255).primary();
    // Provider JID localpart derived reversibly from the Matrix id (PROTOCOL.md §5.1); never reused.
    t.string("localpart", 1023).notNullable().unique();
    t.integer("device_id").notNullable().defaultTo(1);
    t.string("phone", 16).nullable().unique();
    t.string("handle", 64).nullable();
    // logged-out | warned | verifying | logged-in
    t.string("login_state", 16).notNullable().defaultTo("logged-out");
    t.string("management_room", 255).nullable();
    t.string("space_room", 255).nullable();
    t.boolean("read_receipts").notNullable().defaultTo(true);
    t.boolean("typing_notifications").notNullable().defaultTo(true);
    t.bigInteger("warning_accepted_at").nullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  });

  await knex.schema.createTable("ghosts", (t) => {
    // Bare JID of the gatekeeper user, e.g. 491701234567@wa.example.
    t.string("jid", 255).primary();
    t.string("phone", 16).notNullable();
    t.string("mxid", 255).notNullable().unique();
    t.string("display_name", 255).nullable();
    t.bigInteger("created_at").notNullable();
  });

  await knex.schema.createTable("contacts", (t) => {
    t.string("user_mxid", 255)
      .notNullable()
      .references("mxid")
      .inTable("users")
      .onDelete("CASCADE");
    t.string("contact_jid", 255).notNullable();
    // A name the user gave the contact; shown only in that user's portal.
    t.string("local_name", 255).nullable();
    t.boolean("blocked").notNullable().defaultTo(false);
    t.bigInteger("verified_at").nullable();
    t.bigInteger("created_at").notNullable();
    t.primary(["user_mxid", "contact_jid"]);
  });

  await knex.schema.createTable("portals", (t) => {
    t.increments("id").primary();
    t.string("user_mxid", 255)
      .notNullable()
      .references("mxid")
      .inTable("users")
      .onDelete("CASCADE");
    t.string("contact_jid", 255).notNullable();
    t.string("room_id", 255).nullable().unique();
    // none | incoming-pending | outgoing-pending | accepted | declined
    t.string("request_state", 20).notNullable().defaultTo("none");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.unique(["user_mxid", "contact_jid"]);
  });

  await knex.schema.createTable("messages", (t) => {
    t.bigIncrements("id").primary();
    t.integer("portal_id").notNullable().references("id").inTable("portals").onDelete("CASCADE");
    t.string("event_id", 255).notNullable().unique();
    // The interop message id (origin-id, authenticated inside the envelope) and its author.
    t.string("origin_id", 64).notNullable();
    t.string("author_jid", 255).notNullable();
    t.string("stanza_id", 64).nullable();
    t.bigInteger("seq").nullable();
    t.bigInteger("sent_at").notNullable();
    // in (from WhatsApp) | out (from Matrix)
    t.string("direction", 3).notNullable();
    t.boolean("retracted").notNullable().defaultTo(false);
    t.unique(["portal_id", "author_jid", "origin_id"]);
    t.index(["portal_id", "seq"]);
  });

  await knex.schema.createTable("reactions", (t) => {
    t.bigIncrements("id").primary();
    t.integer("portal_id").notNullable().references("id").inTable("portals").onDelete("CASCADE");
    t.string("event_id", 255).notNullable().unique();
    t.string("target_origin_id", 64).notNullable();
    t.string("target_author_jid", 255).notNullable();
    t.string("sender", 255).notNullable();
    t.string("emoji", 64).notNullable();
    t.bigInteger("created_at").notNullable();
    t.index(["portal_id", "target_author_jid", "target_origin_id"]);
  });

  await knex.schema.createTable("outbox", (t) => {
    t.bigIncrements("id").primary();
    t.string("sender_jid", 1100).notNullable();
    t.string("conversation_jid", 255).notNullable();
    t.string("origin_id", 64).notNullable();
    // The exact stanza bytes: retransmissions must be identical (PROTOCOL.md §15.3).
    t.text("stanza").notNullable();
    // pending | sent | accepted | failed
    t.string("state", 10).notNullable();
    t.integer("attempts").notNullable().defaultTo(0);
    t.bigInteger("first_sent_at").nullable();
    t.bigInteger("next_attempt_at").notNullable();
    t.string("last_error", 1000).nullable();
    // The Matrix event to answer with a failure notice, when the stanza came from one.
    t.string("event_id", 255).nullable();
    t.string("stanza_id", 64).nullable();
    t.bigInteger("seq").nullable();
    t.bigInteger("created_at").notNullable();
    t.unique(["sender_jid", "origin_id"]);
    t.index(["state", "next_attempt_at"]);
  });

  await knex.schema.createTable("inbox", (t) => {
    // De-duplication by stanza-id (PROTOCOL.md §15.4), kept for queue-retention-seconds.
    t.string("stanza_id", 64).primary();
    t.string("by_domain", 255).notNullable();
    t.bigInteger("received_at").notNullable();
    t.boolean("acked").notNullable().defaultTo(false);
    t.index(["acked"]);
    t.index(["received_at"]);
  });

  await knex.schema.createTable("decrypted_messages", (t) => {
    // Per receiving device de-duplication by (sender, origin-id) before decryption (§12.4).
    t.string("receiver_jid", 1100).notNullable();
    t.integer("receiver_device").notNullable();
    t.string("sender_jid", 1100).notNullable();
    t.string("origin_id", 64).notNullable();
    t.bigInteger("decrypted_at").notNullable();
    t.primary(["receiver_jid", "receiver_device", "sender_jid", "origin_id"]);
    t.index(["decrypted_at"]);
  });

  await knex.schema.createTable("bridge_state", (t) => {
    t.string("key", 255).primary();
    t.text("value").notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [
    "bridge_state",
    "decrypted_messages",
    "inbox",
    "outbox",
    "reactions",
    "messages",
    "portals",
    "contacts",
    "ghosts",
    "users",
  ]) {
    await knex.schema.dropTableIfExists(table);
  }
}
