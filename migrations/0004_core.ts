import type { Knex } from "knex";

/**
 * State of the network-independent core that 0001 does not hold:
 *
 * - `processed_events`: Matrix event ids the bridge has handled. A homeserver retries a whole
 *   transaction after a failed answer or a lost acknowledgement; events already handled are skipped
 *   by id, so a retry processes only what is left and nothing twice. Rows are pruned after a day.
 * - `portals.user_membership`: the Matrix user's membership in the portal as the bridge last saw
 *   it (invite | join | leave). A contact writing to a portal the user left re-invites the user to
 *   the same room instead of losing the message.
 * - `users.login_flow`: the login flow the user chose after reading the security warning, while a
 *   login is in progress.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("processed_events", (t) => {
    t.string("event_id", 255).primary();
    t.bigInteger("processed_at").notNullable();
    t.index(["processed_at"]);
  });
  await knex.schema.alterTable("portals", (t) => {
    t.string("user_membership", 8).notNullable().defaultTo("invite");
  });
  await knex.schema.alterTable("users", (t) => {
    t.string("login_flow", 64).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("users", (t) => {
    t.dropColumn("login_flow");
  });
  await knex.schema.alterTable("portals", (t) => {
    t.dropColumn("user_membership");
  });
  await knex.schema.dropTableIfExists("processed_events");
}
