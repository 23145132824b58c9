import type { Knex } from "knex";

/**
 * State of the provider-side protocol engine (src/interop/provider/) that 0001 does not hold:
 *
 * - `outbox` learns what each row is (`kind`), where it goes (`to_jid`), why it waits (`hold`),
 *   the gatekeeper's acceptance time (`stamp`) and, for encrypted messages, the envelope sealed
 *   by the KeyVault, which a `stale-device-list` answer needs to encrypt for added devices only
 *   (PROTOCOL.md §12.3). A retry re-send (§12.5) repeats the original origin-id, so uniqueness
 *   moves to (sender, origin-id, resend_key), with `resend_key` empty for first transmissions.
 * - `inbound_pending`: deliveries committed (decrypted, de-duplicated) but not yet handed over to
 *   the core. The ack waits for the hand-over (§15.5, P13); after a crash the rows are handed over
 *   again, so nothing that was decrypted is lost even though its ratchet step is gone.
 * - `provider_devices`: when each local device last published and rotated its keys (§11.6).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("outbox", (t) => {
    t.dropUnique(["sender_jid", "origin_id"]);
  });
  await knex.schema.alterTable("outbox", (t) => {
    // message | receipt | displayed | retry-request | retry-answer
    t.string("kind", 16).notNullable().defaultTo("message");
    t.string("to_jid", 1100).nullable();
    t.string("resend_key", 160).notNullable().defaultTo("");
    // null | rate-limited | request-pending | unknown-device
    t.string("hold", 20).nullable();
    t.bigInteger("stamp").nullable();
    t.binary("envelope_enc").nullable();
    t.unique(["sender_jid", "origin_id", "resend_key"]);
    t.index(["conversation_jid", "state"]);
  });

  await knex.schema.createTable("inbound_pending", (t) => {
    t.string("stanza_id", 64).primary();
    t.string("by_domain", 255).notNullable();
    t.string("local_jid", 1100).notNullable();
    // The event for the core, as JSON sealed by the KeyVault (it may hold decrypted content).
    t.binary("event_enc").notNullable();
    // JSON of the `<received>` to queue once the hand-over is done, when one is due (§15.7).
    t.text("receipt").nullable();
    t.bigInteger("created_at").notNullable();
    t.index(["created_at"]);
  });

  await knex.schema.createTable("provider_devices", (t) => {
    t.string("jid", 1100).notNullable();
    t.integer("device_id").notNullable();
    t.bigInteger("published_at").notNullable();
    t.bigInteger("rotated_at").notNullable();
    t.primary(["jid", "device_id"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("provider_devices");
  await knex.schema.dropTableIfExists("inbound_pending");
  await knex.schema.alterTable("outbox", (t) => {
    t.dropIndex(["conversation_jid", "state"]);
    t.dropUnique(["sender_jid", "origin_id", "resend_key"]);
  });
  await knex.schema.alterTable("outbox", (t) => {
    t.dropColumn("kind");
    t.dropColumn("to_jid");
    t.dropColumn("resend_key");
    t.dropColumn("hold");
    t.dropColumn("stamp");
    t.dropColumn("envelope_enc");
  });
  await knex.schema.alterTable("outbox", (t) => {
    t.unique(["sender_jid", "origin_id"]);
  });
}
