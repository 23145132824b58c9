import type { Knex } from "knex";

/**
 * `interop_groups.rotation`: a counter bumped each time `rotate_pending` is set (§17.5). A send
 * reads it with the flag and clears the flag only if it is unchanged when the message commits, so
 * a removal committed while the send was under way is not wiped (it rotates again next time).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("interop_groups", (t) => {
    t.bigInteger("rotation").notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("interop_groups", (t) => {
    t.dropColumn("rotation");
  });
}
