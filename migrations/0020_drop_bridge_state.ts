import type { Knex } from "knex";

/**
 * `bridge_state` goes (issue #16): a key-value table from the first schema that no version of the
 * bridge ever read or wrote (every piece of state has its own table and module). Only tests used
 * it, as a scratch table. `down` brings it back empty, as 0001 made it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists("bridge_state");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.createTable("bridge_state", (t) => {
    t.string("key", 255).primary();
    t.text("value").notNullable();
  });
}
