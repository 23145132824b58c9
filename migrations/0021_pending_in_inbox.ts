import type { Knex } from "knex";

/**
 * `inbound_pending` folds into `inbox` (issue #15): both were keyed by stanza-id and written in the
 * same decrypt transaction, one statement each; now the record and the pending event are one
 * insert. A row is pending while `pending_since` is set (the old `created_at`, the replay order).
 * A pending row without an inbox row (an entry of no delivery: an identity change, `local:...`)
 * gets one, with an empty `by_domain` as the pending row had. The sealed events move as they
 * are: their vault binding names the stanza-id (and the old table's name as a fixed label), not
 * the table they live in. `down` moves the pending events back and drops the inbox rows that
 * only they had made.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("inbox", (t) => {
    t.string("local_jid", 1100).nullable();
    t.binary("event_enc").nullable();
    t.text("receipt").nullable();
    t.bigInteger("pending_since").nullable();
    t.index(["pending_since"]);
  });
  // Few rows (the deliveries not handed over at the upgrade): one at a time, the same on both
  // backends.
  const pending = (await knex("inbound_pending").select()) as {
    stanza_id: string;
    by_domain: string;
    local_jid: string;
    event_enc: Buffer;
    receipt: string | null;
    created_at: number | string;
  }[];
  for (const row of pending) {
    const columns = {
      local_jid: row.local_jid,
      event_enc: row.event_enc,
      receipt: row.receipt,
      pending_since: Number(row.created_at),
    };
    const updated = await knex("inbox").where({ stanza_id: row.stanza_id }).update(columns);
    if (updated === 0) {
      await knex("inbox").insert({
        stanza_id: row.stanza_id,
        by_domain: row.by_domain,
        received_at: Number(row.created_at),
        acked: false,
        ...columns,
      });
    }
  }
  await knex.schema.dropTable("inbound_pending");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.createTable("inbound_pending", (t) => {
    t.string("stanza_id", 64).primary();
    t.string("by_domain", 255).notNullable();
    t.string("local_jid", 1100).notNullable();
    t.binary("event_enc").notNullable();
    t.text("receipt").nullable();
    t.bigInteger("created_at").notNullable();
    t.index(["created_at"]);
  });
  const pending = (await knex("inbox").whereNotNull("pending_since").select()) as {
    stanza_id: string;
    by_domain: string;
    local_jid: string | null;
    event_enc: Buffer;
    receipt: string | null;
    pending_since: number | string;
  }[];
  for (const row of pending) {
    await knex("inbound_pending").insert({
      stanza_id: row.stanza_id,
      by_domain: row.by_domain,
      local_jid: row.local_jid ?? "",
      event_enc: row.event_enc,
      receipt: row.receipt,
      created_at: Number(row.pending_since),
    });
  }
  // The entries of no delivery had no inbox row before.
  await knex("inbox").where({ by_domain: "" }).where("stanza_id", "like", "local:%").delete();
  await knex.schema.alterTable("inbox", (t) => {
    t.dropIndex(["pending_since"]);
  });
  await knex.schema.alterTable("inbox", (t) => {
    t.dropColumn("local_jid");
    t.dropColumn("event_enc");
    t.dropColumn("receipt");
    t.dropColumn("pending_since");
  });
}
