import type { Knex } from "knex";

/**
 * Deliveries to the simulated gatekeeper users that were accepted but not yet processed. Acceptance
 * (§15.3) promises the provider that the gatekeeper has the message; the user's device decrypts it
 * afterwards. Without this table a crash between the two lost an accepted message: the provider's
 * retransmission met the de-duplication record and was answered, not delivered. The row is written
 * in the acceptance's transaction and removed in the transaction that logs what the user received.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("gk_local_pending", (t) => {
    t.increments("id").primary();
    t.string("jid", 64).notNullable();
    t.text("data").notNullable();
    t.bigInteger("at").notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("gk_local_pending");
}
