import type { Knex } from "knex";

/**
 * The Matrix ingress's durable record (src/matrix/ingress/):
 *
 * - `matrix_inbox`: every room event of a transaction, recorded in one commit before the
 *   homeserver gets its 200, then handled from here by one worker per room. `seq` orders the
 *   events of a room as they arrived; `state` is pending | done | failed (permanent failure,
 *   reported and skipped) | dead (transient failures past the retry bound: a dead letter, listed
 *   and retried by the admin command `dead-letters`). The index on (room_id, state, seq) is what a
 *   room's worker reads: no scan of the whole table per event.
 * - `matrix_transactions`: transaction ids already recorded, so a repeat (a lost 200, or two
 *   copies arriving at once) records nothing twice.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("matrix_inbox", (t) => {
    t.increments("seq").primary();
    t.string("event_id", 255).notNullable().unique();
    t.string("room_id", 255).notNullable();
    t.text("event").notNullable();
    t.string("state", 8).notNullable().defaultTo("pending");
    t.integer("attempts").notNullable().defaultTo(0);
    t.string("error", 255).nullable();
    t.bigInteger("received_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.index(["room_id", "state", "seq"]);
    t.index(["state", "updated_at"]);
  });
  await knex.schema.createTable("matrix_transactions", (t) => {
    t.string("txn_id", 255).primary();
    t.bigInteger("received_at").notNullable();
    t.index(["received_at"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("matrix_transactions");
  await knex.schema.dropTableIfExists("matrix_inbox");
}
